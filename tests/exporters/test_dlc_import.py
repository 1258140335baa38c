"""DeepLabCut exported model → bundle: keypoints as DeepLabCut-Live computes them from the .pb."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

from realtime_pose.exporters.frames import synthetic_frames

from .dlc_graphs import KEYPOINTS, LOCREF_STDEV, STRIDE, write_dlc_export

pytestmark = pytest.mark.tf
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def dlc_exports(tmp_path_factory):
    pytest.importorskip("tensorflow", reason="TensorFlow is not installed (train extra)")
    pytest.importorskip("tf2onnx", reason="tf2onnx is not installed (export extra)")
    base = tmp_path_factory.mktemp("dlc")
    return {
        "maps": write_dlc_export(base / "DLC_openfield_resnet_50_iteration-0_shuffle-1"),
        "concat": write_dlc_export(
            base / "DLC_openfield_resnet_50_iteration-0_shuffle-1_gpu", in_graph_pose=True
        ),
    }


def _dlclive_pose(export_dir: Path, frame: np.ndarray) -> np.ndarray:
    """What DeepLabCut-Live computes: the frame fed to the frozen graph, then its pose math."""
    import tensorflow as tf

    graph_def = tf.compat.v1.GraphDef()
    graph_def.ParseFromString(next(export_dir.glob("*.pb")).read_bytes())
    graph = tf.Graph()
    with graph.as_default():
        tf.compat.v1.import_graph_def(graph_def, name="DLC")
    ops = [op.name for op in graph.get_operations()]
    if "concat_1" in ops[-1]:
        outputs = [ops[-1]]
    else:
        outputs = ["DLC/Sigmoid", "DLC/pose/locref_pred/block4/BiasAdd"]
    with tf.compat.v1.Session(graph=graph) as sess:
        values = sess.run(
            [f"{o}:0" for o in outputs], {f"{ops[0]}:0": frame[None].astype(np.float32)}
        )
    if len(values) == 1:
        return np.asarray(values[0])[:, [1, 0, 2]]
    scmap = values[0][0]
    locref = values[1][0].reshape(scmap.shape[0], scmap.shape[1], -1, 2) * LOCREF_STDEV
    pose = []
    for j in range(scmap.shape[2]):
        iy, ix = np.unravel_index(np.argmax(scmap[:, :, j]), scmap.shape[:2])
        x = ix * STRIDE + 0.5 * STRIDE + locref[iy, ix, j, 0]
        y = iy * STRIDE + 0.5 * STRIDE + locref[iy, ix, j, 1]
        pose.append([x, y, scmap[iy, ix, j]])
    return np.array(pose)


def _ort(bundle, frame: np.ndarray) -> dict[str, np.ndarray]:
    import onnxruntime as ort

    sess = ort.InferenceSession(str(bundle.model_path), providers=["CPUExecutionProvider"])
    names = bundle.meta.outputs.names()
    return dict(zip(names, sess.run(names, {"image": frame[None]}), strict=True))


def test_import_maps_model_matches_dlclive(dlc_exports, tmp_path):
    from realtime_pose.exporters.dlc_import import import_dlc
    from realtime_pose.inference.peaks import find_peaks_reference

    bundle = import_dlc(dlc_exports["maps"], tmp_path / "b")
    meta = bundle.meta
    assert meta.keypoints == KEYPOINTS and meta.stride == STRIDE
    assert meta.locref_stdev == pytest.approx(LOCREF_STDEV)
    assert meta.outputs.scoremap.layout == "NCHW" and meta.outputs.locref.name == "locref"
    assert meta.input.dtype == "uint8" and meta.input.pad_to == 1  # as DeepLabCut-Live runs it
    prov = meta.provenance
    assert prov["exported_from"] == "deeplabcut" and prov["steps"] == 1030000
    assert prov["net"] == "resnet_50" and prov["parity"]["tf_vs_onnx"]["passed"]
    for frame in synthetic_frames(3, 120, 176, seed=9):
        out = _ort(bundle, frame)
        assert out["scmap"].shape == (1, len(KEYPOINTS), 15, 22)
        got = find_peaks_reference(
            out["scmap"][0], out["locref"][0], STRIDE, LOCREF_STDEV, dtype=np.float64
        )
        np.testing.assert_allclose(got, _dlclive_pose(dlc_exports["maps"], frame), atol=1e-3)


def test_import_in_graph_argmax_model_gives_keypoints_like_dlclive(dlc_exports, tmp_path):
    from realtime_pose.exporters.dlc_import import import_dlc

    bundle = import_dlc(dlc_exports["concat"], tmp_path / "b")
    assert bundle.meta.outputs.keypoints.name == "keypoints"
    assert bundle.meta.provenance["dlc_in_graph_pose"] is True
    assert bundle.meta.provenance["parity"]["in_graph_peaks"]["passed"]
    for frame in synthetic_frames(3, 96, 128, seed=12):
        got = _ort(bundle, frame)["keypoints"][0]
        np.testing.assert_allclose(got, _dlclive_pose(dlc_exports["concat"], frame), atol=1e-3)


def test_import_maps_model_with_in_graph_peaks(dlc_exports, tmp_path):
    from realtime_pose.exporters.dlc_import import import_dlc

    bundle = import_dlc(dlc_exports["maps"], tmp_path / "b", in_graph_peaks=True)
    frame = synthetic_frames(1, 96, 128, seed=13)[0]
    got = _ort(bundle, frame)["keypoints"][0]
    np.testing.assert_allclose(got, _dlclive_pose(dlc_exports["maps"], frame), atol=1e-3)


def test_import_refuses_folders_that_are_not_dlc_exports(dlc_exports, tmp_path):
    from realtime_pose.exporters.dlc_import import DlcImportError, import_dlc

    with pytest.raises(DlcImportError, match=r"pose_cfg.yaml: missing"):
        import_dlc(tmp_path, tmp_path / "b")

    multi = tmp_path / "multi"
    multi.mkdir()
    for f in dlc_exports["maps"].iterdir():
        (multi / f.name).write_bytes(f.read_bytes())
    cfg = yaml.safe_load((multi / "pose_cfg.yaml").read_text())
    cfg["dataset_type"] = "multi-animal-imgaug"
    (multi / "pose_cfg.yaml").write_text(yaml.safe_dump(cfg))
    with pytest.raises(DlcImportError, match="multi-animal"):
        import_dlc(multi, tmp_path / "b")

    del cfg["all_joints_names"], cfg["dataset_type"]
    (multi / "pose_cfg.yaml").write_text(yaml.safe_dump(cfg))
    with pytest.raises(DlcImportError, match="all_joints_names"):
        import_dlc(multi, tmp_path / "b")
    assert not (tmp_path / "b").exists()


def test_import_refuses_graph_without_dlc_outputs(dlc_exports, tmp_path):
    import tensorflow as tf

    from realtime_pose.exporters.dlc_import import DlcImportError, import_dlc

    folder = tmp_path / "renamed"
    folder.mkdir()
    (folder / "pose_cfg.yaml").write_bytes((dlc_exports["maps"] / "pose_cfg.yaml").read_bytes())
    graph_def = tf.compat.v1.GraphDef()
    graph_def.ParseFromString(next(dlc_exports["maps"].glob("*.pb")).read_bytes())
    for node in graph_def.node:
        if node.name == "Sigmoid":
            node.name = "Probabilities"
    (folder / "snapshot-5.pb").write_bytes(graph_def.SerializeToString())
    with pytest.raises(DlcImportError, match="no node \\['Sigmoid'\\]"):
        import_dlc(folder, tmp_path / "b")


def test_cli_import_dlc(dlc_exports, tmp_path):
    from realtime_pose.bundle import load_bundle

    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "realtime_pose",
            "import-dlc",
            str(dlc_exports["maps"]),
            "--output",
            str(tmp_path / "cli"),
            "--name",
            "openfield-dlc",
        ],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=180,
    )
    assert proc.returncode == 0, proc.stderr
    assert "parity tf_vs_onnx" in proc.stdout
    assert load_bundle(tmp_path / "cli").meta.name == "openfield-dlc"


def test_import_at_a_fixed_size_folds_the_shape_arithmetic(dlc_exports, tmp_path):
    """A fixed input size gives a smaller graph (no shape computations), the same keypoints."""
    import onnx

    from realtime_pose.exporters.dlc_import import import_dlc
    from realtime_pose.geometry import Size

    frames = synthetic_frames(2, 96, 128, seed=13)
    dynamic = import_dlc(dlc_exports["maps"], tmp_path / "dynamic", parity_images=frames)
    fixed = import_dlc(
        dlc_exports["maps"], tmp_path / "fixed", parity_images=frames, input_size=Size(128, 96)
    )
    assert fixed.meta.input.fixed_size == Size(128, 96) and dynamic.meta.input.fixed_size is None
    assert fixed.meta.provenance["parity"]["tf_vs_onnx"]["passed"]
    nodes = [len(onnx.load(str(b.model_path)).graph.node) for b in (fixed, dynamic)]
    assert nodes[0] <= nodes[1]
    for frame in frames:
        a, b = _ort(fixed, frame), _ort(dynamic, frame)
        np.testing.assert_allclose(a["scmap"], b["scmap"], atol=1e-5)
