"""CPU int8 bundles: quantised for real, loaded by the runtime, keypoints close to fp32."""

from __future__ import annotations

import numpy as np
import pytest

from .conftest import spot_frames

pytestmark = pytest.mark.tf


def _estimator(bundle):
    from realtime_pose.engines import open_engine
    from realtime_pose.inference.estimator import PoseEstimator

    engine = open_engine(bundle, dict(threads=1, warmup_runs=0))
    return PoseEstimator(bundle, engine)


def _op_types(bundle) -> set[str]:
    import onnx

    return {node.op_type for node in onnx.load(str(bundle.model_path)).graph.node}


@pytest.fixture(scope="module")
def spot_bundles(spot_train_dir, tmp_path_factory):
    from realtime_pose.exporters.keras_onnx import export_bundle

    out = tmp_path_factory.mktemp("int8")
    return {
        "fp32": export_bundle(spot_train_dir, out / "fp32"),
        "int8": export_bundle(spot_train_dir, out / "int8", int8=True),
    }


def test_int8_bundle_is_quantised_and_records_how(spot_bundles):
    fp32, int8 = spot_bundles["fp32"], spot_bundles["int8"]
    assert {"QuantizeLinear", "DequantizeLinear"} <= _op_types(int8)
    assert "QuantizeLinear" not in _op_types(fp32)
    import onnx

    weights = onnx.load(str(int8.model_path)).graph.initializer
    assert any(w.data_type == onnx.TensorProto.INT8 and len(w.dims) == 4 for w in weights)
    quant = int8.meta.provenance["quantization"]
    assert quant["format"] == "QDQ" and quant["per_channel"] is True
    assert len(quant["fp32_nodes"]) == 2  # the scmap and locref heads stay in float
    assert quant["calibration_source"] == "project train split"
    assert quant["calibration_frames"] == len(int8.meta.provenance["split"]["train"])
    assert quant["vs_fp32"]["frames"] == len(int8.meta.provenance["split"]["test"])
    assert int8.meta.outputs.scoremap.layout == "NCHW"
    assert int8.meta.name.endswith("-int8")


def test_int8_keypoints_close_to_fp32_through_the_runtime(spot_bundles):
    est32, est8 = _estimator(spot_bundles["fp32"]), _estimator(spot_bundles["int8"])
    diffs = []
    for rgb in spot_frames(6, seed=99):  # frames the calibration never saw
        bgr = np.ascontiguousarray(rgb[:, :, ::-1])
        a = est32.estimate(bgr).copy()
        b = est8.estimate(bgr).copy()
        diffs.append(np.hypot(*(a[:, :2] - b[:, :2]).T))
        np.testing.assert_allclose(a[:, 2], b[:, 2], atol=0.05)
    diffs = np.concatenate(diffs)
    assert diffs.max() < 1.0, diffs  # same cell, locref within a pixel
    assert diffs.mean() < 0.25


def test_quantize_bundle_from_existing_bundle(spot_bundles, spot_train_dir, tmp_path):
    from realtime_pose.exporters.frames import read_rgb_frames
    from realtime_pose.exporters.int8 import quantize_bundle

    fp32 = spot_bundles["fp32"]
    project = fp32.meta.provenance["project"]
    calib = read_rgb_frames([f"{project}/{p}" for p in fp32.meta.provenance["split"]["train"]])
    int8 = quantize_bundle(fp32, tmp_path / "q", calib, keep_heads_fp32=False)
    quant = int8.meta.provenance["quantization"]
    assert quant["fp32_nodes"] == [] and quant["calibration_frames"] == len(calib)
    assert quant["vs_fp32"]["keypoints_mean_px_diff"] < 0.5
    est = _estimator(int8)
    pose = est.estimate(np.ascontiguousarray(spot_frames(1, seed=5)[0][:, :, ::-1]))
    assert pose.shape == (3, 3) and np.all(pose[:, 2] > 0.3)


def test_quantize_bundle_refuses_in_graph_peaks(spot_train_dir, tmp_path):
    from realtime_pose.exporters.int8 import quantize_bundle
    from realtime_pose.exporters.keras_onnx import export_bundle

    peaks = export_bundle(spot_train_dir, tmp_path / "peaks", in_graph_peaks=True)
    with pytest.raises(ValueError, match="quantise the map-output bundle"):
        quantize_bundle(peaks, tmp_path / "q", spot_frames(2))
    assert not (tmp_path / "q").exists()


def test_int8_with_in_graph_peaks(spot_bundles, spot_train_dir, tmp_path):
    from realtime_pose.exporters.keras_onnx import export_bundle

    both = export_bundle(spot_train_dir, tmp_path / "both", int8=True, in_graph_peaks=True)
    assert "QuantizeLinear" in _op_types(both) and "ArgMax" in _op_types(both)
    assert both.meta.provenance["parity"]["in_graph_peaks"]["passed"]
    est_maps, est_kp = _estimator(spot_bundles["int8"]), _estimator(both)
    for rgb in spot_frames(3, seed=42):
        bgr = np.ascontiguousarray(rgb[:, :, ::-1])
        np.testing.assert_allclose(est_kp.estimate(bgr), est_maps.estimate(bgr), atol=1e-3)


def test_cli_export_int8_in_graph_peaks(spot_train_dir, tmp_path):
    import subprocess
    import sys
    from pathlib import Path

    from realtime_pose.bundle import load_bundle

    proc = subprocess.run(
        [
            sys.executable, "-m", "realtime_pose", "export", str(spot_train_dir),
            "--output", str(tmp_path / "cli"), "--int8", "--in-graph-peaks",
            "--calibration-frames", "4",
        ],
        capture_output=True, text=True, cwd=Path(__file__).resolve().parents[2], timeout=180,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert "parity in_graph_peaks" in proc.stdout and "int8 vs fp32" in proc.stdout
    assert "int8 not judged" in proc.stdout
    bundle = load_bundle(tmp_path / "cli")
    assert bundle.meta.outputs.keypoints is not None
    assert bundle.meta.provenance["quantization"]["calibration_frames"] == 4


def test_int8_is_judged_on_the_held_out_labels_and_refused_beyond_the_tolerance(
    labelled_spot_train_dir, tmp_path
):
    """Both graphs are evaluated against the project's labelled test frames; int8 is the
    bundle's model only within the tolerance, else the fp32 graph is written and says why."""
    import subprocess
    import sys
    from pathlib import Path

    from realtime_pose.bundle import load_bundle
    from realtime_pose.exporters.keras_onnx import export_bundle
    from realtime_pose.trainers.evaluate import evaluate

    kept = export_bundle(
        labelled_spot_train_dir, tmp_path / "kept", int8=True, int8_tolerance_px=50.0
    )
    held_out = kept.meta.provenance["quantization"]["held_out"]
    assert held_out["accepted"] and held_out["frames"] == 8 and held_out["keypoints"] == 24
    assert "QuantizeLinear" in _op_types(kept) and kept.meta.name.endswith("-int8")
    project = labelled_spot_train_dir.parent / "project"
    assert evaluate(kept.root, project)["mean_error_px"] == pytest.approx(
        held_out["int8_mean_px"], abs=1e-4
    )
    assert held_out["fp32_mean_px"] < 10.0  # the spot network finds its spots (random: ~50 px)
    change = held_out["change_px"]
    assert change == pytest.approx(held_out["int8_mean_px"] - held_out["fp32_mean_px"], abs=2e-4)

    proc = subprocess.run(
        [
            sys.executable, "-m", "realtime_pose", "export", str(labelled_spot_train_dir),
            "--output", str(tmp_path / "refused"), "--int8",
            "--int8-tolerance-px", str(change - 0.01),
        ],
        capture_output=True, text=True, cwd=Path(__file__).resolve().parents[2], timeout=180,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert "int8 REFUSED, fp32 written" in proc.stdout and "int8 is not this bundle's model" in (
        proc.stderr
    )
    refused = load_bundle(tmp_path / "refused")
    assert "QuantizeLinear" not in _op_types(refused) and not refused.meta.name.endswith("-int8")
    assert "quantization" not in refused.meta.provenance  # TensorRT reads it as "an int8 graph"
    judged = refused.meta.provenance["int8_refused"]["held_out"]
    assert not judged["accepted"] and judged["int8_mean_px"] == held_out["int8_mean_px"]
    assert evaluate(refused.root, project)["mean_error_px"] == pytest.approx(
        held_out["fp32_mean_px"], abs=1e-4
    )


def test_int8_without_reachable_labels_is_kept_and_says_not_judged(spot_bundles):
    """The spot project has frames but no labels: nothing to judge against, int8 kept."""
    assert spot_bundles["int8"].meta.provenance["quantization"]["held_out"] is None
