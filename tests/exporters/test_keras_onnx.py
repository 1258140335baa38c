"""Keras training output → ONNX bundle: parity with TensorFlow, failure path, in-graph peaks."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from realtime_pose.bundle import load_bundle
from realtime_pose.exporters.frames import read_rgb, synthetic_frames
from realtime_pose.exporters.parity import check_parity, ort_network
from realtime_pose.inference.peaks import find_peaks_reference
from realtime_pose.util.safe_write import OutputExistsError

from .conftest import KEYPOINTS, LOCREF_STDEV, STRIDE

pytestmark = pytest.mark.tf
REPO = Path(__file__).resolve().parents[2]


def _keras_keypoints(train_dir: Path, frame: np.ndarray) -> np.ndarray:
    """Keypoints straight from the Keras model (eager) and the NumPy pose math."""
    import keras

    model = keras.models.load_model(train_dir / "model.keras", compile=False)
    scmap, locref = (np.asarray(t) for t in model(frame[None], training=False))
    return find_peaks_reference(
        np.transpose(scmap[0], (2, 0, 1)), np.transpose(locref[0], (2, 0, 1)), STRIDE, LOCREF_STDEV
    )


def _ort_outputs(bundle, frame: np.ndarray) -> dict[str, np.ndarray]:
    import onnxruntime as ort

    sess = ort.InferenceSession(str(bundle.model_path), providers=["CPUExecutionProvider"])
    names = bundle.meta.outputs.names()
    return dict(zip(names, sess.run(names, {"image": frame[None]}), strict=True))


def test_export_writes_nchw_bundle_with_provenance(tiny_bundle, tiny_train_dir):
    meta = tiny_bundle.meta
    assert meta.keypoints == KEYPOINTS
    assert meta.stride == STRIDE and meta.locref_stdev == pytest.approx(LOCREF_STDEV)
    assert meta.outputs.scoremap.layout == "NCHW" and meta.outputs.locref.layout == "NCHW"
    assert (meta.input.name, meta.input.dtype, meta.input.fixed_size) == ("image", "uint8", None)
    assert meta.input.pad_to == 16  # padded past the stride-16 stage (NetworkInput.pad)
    prov = meta.provenance
    split = json.loads((tiny_train_dir / "split.json").read_text())
    assert prov["split"] == split
    assert Path(prov["project"]).is_dir() and prov["net"] == "tiny_test_net"
    assert prov["data_hash"] == "0" * 64 and prov["train_fraction"] == 0.95
    parity = prov["parity"]["tf_vs_onnx"]
    assert parity["source"] == "project test split" and parity["frames"] == len(split["test"])
    assert parity["passed"] and parity["keypoints_max_px_diff"] <= 0.01
    assert {"tensorflow", "tf2onnx", "onnxruntime"} <= set(prov["tools"])


def test_runtime_keypoints_match_tensorflow(tiny_bundle, tiny_train_dir):
    """Any input size (the graph is dynamic), NCHW outputs, same keypoints as Keras."""
    for frame in [
        *synthetic_frames(2, 120, 160, seed=11),
        read_rgb(
            Path(tiny_bundle.meta.provenance["project"])
            / tiny_bundle.meta.provenance["split"]["test"][0]
        ),
    ]:
        out = _ort_outputs(tiny_bundle, frame)
        h, w = frame.shape[0] // STRIDE, frame.shape[1] // STRIDE
        assert out["scmap"].shape == (1, len(KEYPOINTS), h, w)
        assert out["locref"].shape == (1, 2 * len(KEYPOINTS), h, w)
        got = find_peaks_reference(
            out["scmap"][0], out["locref"][0], STRIDE, LOCREF_STDEV, dtype=np.float64
        )
        want = _keras_keypoints(tiny_train_dir, frame)
        np.testing.assert_allclose(got, want, atol=1e-3)


def test_parity_failure_leaves_no_bundle_and_reports_difference(tiny_train_dir, tmp_path):
    from realtime_pose.exporters.keras_onnx import export_bundle
    from realtime_pose.exporters.parity import ParityError

    target = tmp_path / "out" / "bundle"
    target.parent.mkdir()
    with pytest.raises(ParityError, match=r"keypoints max [0-9.e+-]+ px") as info:
        export_bundle(tiny_train_dir, target, tolerance_px=1e-12, raw_tolerance=1e-12)
    assert not info.value.report.ok
    assert info.value.report.raw_max_abs_diff["scmap"] > 0
    assert not target.exists()
    assert list((tmp_path / "out").iterdir()) == []  # no partial folder either


def test_perturbed_graph_fails_parity(tiny_bundle):
    """The check catches a real numerical change (one weight of the score head altered)."""
    import onnx
    from onnx import numpy_helper

    model = onnx.load(str(tiny_bundle.model_path))
    conv_weights = [
        init for init in model.graph.initializer if numpy_helper.to_array(init).ndim == 4
    ]
    w = numpy_helper.to_array(conv_weights[0]).copy()
    w.flat[0] += 0.5
    conv_weights[0].CopyFrom(numpy_helper.from_array(w, conv_weights[0].name))
    frames = synthetic_frames(3, 96, 128, seed=5)
    report = check_parity(
        ort_network(str(tiny_bundle.model_path)),
        ort_network(model.SerializeToString()),
        frames,
        stride=STRIDE,
        locref_stdev=LOCREF_STDEV,
    )
    assert not report.ok
    assert max(report.raw_max_abs_diff.values()) > 1e-3
    same = check_parity(
        ort_network(str(tiny_bundle.model_path)),
        ort_network(str(tiny_bundle.model_path)),
        frames,
        stride=STRIDE,
        locref_stdev=LOCREF_STDEV,
    )
    assert same.ok and same.keypoints_max_px_diff == 0.0


def test_in_graph_peaks_match_python_pose_math(tiny_bundle, tiny_train_dir, tmp_path):
    from realtime_pose.exporters.keras_onnx import export_bundle

    peaks_bundle = export_bundle(tiny_train_dir, tmp_path / "peaks", in_graph_peaks=True)
    assert peaks_bundle.meta.outputs.keypoints.name == "keypoints"
    assert peaks_bundle.meta.outputs.scoremap is None
    assert peaks_bundle.meta.provenance["parity"]["in_graph_peaks"]["passed"]
    try:
        from realtime_pose.inference.peaks import argmax_peaks_nchw
    except ImportError:  # the runtime kernels are not there: the NumPy reference stands in
        argmax_peaks_nchw = None
    for frame in synthetic_frames(3, 104, 136, seed=21):
        kp = _ort_outputs(peaks_bundle, frame)["keypoints"]
        assert kp.shape == (1, len(KEYPOINTS), 3) and kp.dtype == np.float32
        maps = _ort_outputs(tiny_bundle, frame)
        if argmax_peaks_nchw is not None:
            want = argmax_peaks_nchw(
                np.ascontiguousarray(maps["scmap"][0]),
                np.ascontiguousarray(maps["locref"][0]),
                float(STRIDE),
                LOCREF_STDEV,
                np.empty((len(KEYPOINTS), 3), np.float32),
            )
        else:
            want = find_peaks_reference(
                maps["scmap"][0], maps["locref"][0], STRIDE, LOCREF_STDEV, dtype=np.float64
            )
        np.testing.assert_allclose(kp[0], want, atol=1e-4)


def test_existing_foreign_folder_is_not_overwritten(tiny_train_dir, tmp_path):
    from realtime_pose.exporters.keras_onnx import export_bundle

    target = tmp_path / "precious"
    target.mkdir()
    (target / "notes.txt").write_text("keep me")
    with pytest.raises(FileExistsError, match="not a bundle folder"):
        export_bundle(tiny_train_dir, target)
    assert (target / "notes.txt").read_text() == "keep me"


def test_reexport_replaces_a_bundle_only_when_asked(tiny_bundle, tiny_train_dir):
    from realtime_pose.exporters.keras_onnx import export_bundle

    stale = tiny_bundle.engine_cache_dir / "stale.engine"
    stale.parent.mkdir(exist_ok=True)
    stale.write_bytes(b"old")
    with pytest.raises(OutputExistsError, match=rf"{tiny_bundle.root} exists; not replaced"):
        export_bundle(tiny_train_dir, tiny_bundle.root, name="renamed")
    assert stale.exists() and load_bundle(tiny_bundle.root).meta.name != "renamed"
    again = export_bundle(tiny_train_dir, tiny_bundle.root, name="renamed", overwrite=True)
    assert again.meta.name == "renamed" and not stale.exists()
    assert load_bundle(tiny_bundle.root).meta.name == "renamed"


def test_cli_export_fails_with_exit_1_and_writes_nothing(tiny_train_dir, tmp_path):
    target = tmp_path / "cli"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "realtime_pose",
            "export",
            str(tiny_train_dir),
            "--output",
            str(target),
            "--tolerance-px",
            "1e-12",
        ],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=120,
    )
    assert proc.returncode == 1, proc.stderr
    assert "failed the parity check" in proc.stderr and "no bundle was written" in proc.stderr
    assert not target.exists()


def test_cli_export_missing_model_is_a_clear_error(tmp_path):
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "realtime_pose",
            "export",
            str(tmp_path),
            "--output",
            str(tmp_path / "b"),
        ],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=120,
    )
    assert proc.returncode == 2
    assert "model.keras: missing" in proc.stderr


def test_dilated_convolutions_export_as_single_conv_nodes(tmp_path):
    """Dilated Conv2D/DepthwiseConv2D (how stride-8 backbones keep resolution) become one ONNX
    Conv each, not SpaceToBatch shape arithmetic, and still match TensorFlow."""
    import keras
    import onnx

    from realtime_pose.exporters.keras_onnx import export_bundle

    from .conftest import write_train_dir

    keras.utils.set_random_seed(3)
    image = keras.Input((None, None, 3), dtype="uint8", name="image")
    x = keras.layers.Rescaling(1 / 127.5, offset=-1.0)(image)
    x = keras.layers.Conv2D(8, 3, strides=2, padding="same", activation="relu")(x)
    x = keras.layers.Conv2D(16, 3, strides=4, padding="same", activation="relu")(x)
    x = keras.layers.DepthwiseConv2D(3, padding="same", dilation_rate=2, depth_multiplier=2)(x)
    x = keras.layers.BatchNormalization()(x)
    x = keras.layers.Conv2D(16, 3, padding="same", dilation_rate=(2, 3), activation="relu")(x)
    x = keras.layers.DepthwiseConv2D(5, padding="same", dilation_rate=4, activation="relu")(x)
    scmap = keras.layers.Conv2D(3, 1, activation="sigmoid", name="scmap")(x)
    locref = keras.layers.Conv2D(6, 1, name="locref")(x)
    train_dir = write_train_dir(tmp_path / "run", keras.Model(image, [scmap, locref]))
    frames = synthetic_frames(3, 104, 136, seed=8)  # sizes that are not multiples of 16
    bundle = export_bundle(train_dir, tmp_path / "b", parity_images=frames)
    assert bundle.meta.provenance["native_dilated_convs"] == 3
    assert bundle.meta.provenance["parity"]["tf_vs_onnx"]["raw_max_abs_diff"]["scmap"] < 1e-4
    graph = onnx.load(str(bundle.model_path)).graph
    ops = [n.op_type for n in graph.node]
    assert "SpaceToDepth" not in ops and "DepthToSpace" not in ops
    dilations = sorted(
        tuple(a.ints) for n in graph.node if n.op_type == "Conv" for a in n.attribute
        if a.name == "dilations" and max(a.ints) > 1
    )  # fmt: skip
    assert dilations == [(2, 2), (2, 3), (4, 4)]
    for frame in synthetic_frames(2, 88, 120, seed=9):
        out = _ort_outputs(bundle, frame)
        got = find_peaks_reference(
            out["scmap"][0], out["locref"][0], STRIDE, LOCREF_STDEV, dtype=np.float64
        )
        np.testing.assert_allclose(got, _keras_keypoints(train_dir, frame), atol=1e-3)


def test_export_without_reachable_project_checks_on_synthetic_frames(tmp_path):
    from realtime_pose.exporters.keras_onnx import export_bundle

    from .conftest import build_tiny_model, write_train_dir

    train_dir = write_train_dir(
        tmp_path / "run",
        build_tiny_model(seed=4),
        project=tmp_path / "moved-away",
        split={"train": ["a.png"], "test": ["b.png"]},
    )
    bundle = export_bundle(train_dir, tmp_path / "b")
    parity = bundle.meta.provenance["parity"]["tf_vs_onnx"]
    assert parity["source"] == "synthetic" and parity["passed"] and parity["frames"] > 0
    assert bundle.meta.provenance["split"]["test"] == ["b.png"]
