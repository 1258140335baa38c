"""Reduced-precision engine settings are judged on labelled frames before ``tune`` may choose
them; ``evaluate --engine`` runs a bundle on the engine a rig would use."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from realtime_pose.bundle import load_bundle
from realtime_pose.engines import EngineError
from realtime_pose.geometry import Size
from realtime_pose.offline.precision import (
    accuracy_verdict,
    held_out_change,
    is_reduced,
    labelled_project,
)
from realtime_pose.offline.tuning import tune
from realtime_pose.trainers.synthetic_project import write_synthetic_project

DEMO = Path(__file__).resolve().parents[2] / "realtime_pose" / "assets" / "demo_bundle"
pytestmark = pytest.mark.skipif(
    not (DEMO / "model.onnx").is_file(), reason="the demo bundle has not been generated"
)


def _openvino_precisions() -> list[str]:
    from realtime_pose.engines.openvino import reduced_precisions

    return reduced_precisions()


@pytest.fixture(scope="module")
def labelled_bundle(tmp_path_factory):
    """The demo bundle, its provenance pointing at a small synthetic project it never saw, with
    a train/test split of that project."""
    root = tmp_path_factory.mktemp("precision")
    project = write_synthetic_project(root / "project", 8, width=320, height=240, seed=41)
    images = [f"labeled-data/synthetic/img{i:05d}.png" for i in range(8)]
    folder = root / "bundle"
    shutil.copytree(DEMO, folder)
    meta = json.loads((folder / "bundle.json").read_text())
    meta["provenance"]["project"] = str(project)
    meta["provenance"]["split"] = {"train": images[:2], "test": images[2:]}
    (folder / "bundle.json").write_text(json.dumps(meta))
    return load_bundle(folder), project


def test_reduced_means_below_fp32():
    assert is_reduced({"kind": "openvino", "precision": "bf16"})
    assert is_reduced({"precision": "f16"})
    assert not is_reduced({"kind": "openvino", "precision": "f32"})
    assert not is_reduced({"kind": "onnxruntime", "threads": 2})


def test_the_project_comes_from_the_bundle_unless_given(labelled_bundle, tmp_path):
    bundle, project = labelled_bundle
    assert labelled_project(bundle) == project
    assert labelled_project(bundle, tmp_path) == tmp_path
    assert labelled_project(bundle, tmp_path / "missing") is None
    assert labelled_project(load_bundle(DEMO)) is None  # a project of the machine it was made on


def test_held_out_change_runs_both_engines_on_the_test_frames(labelled_bundle):
    pytest.importorskip("openvino", reason="needs the openvino extra")
    bundle, project = labelled_bundle
    verdict = held_out_change(bundle, {"kind": "openvino"}, project)
    assert verdict["frames"] == 6 and verdict["keypoints"] > 0
    assert verdict["fp32_mean_px"] > 0  # real errors of a real network, not zeros
    # f32 on both: keypoints equal but where a score map has two near-equal maxima (one of the
    # 24 here moves a cell, ~1 px), so the mean moves by hundredths
    assert abs(verdict["change_px"]) < 0.1 and verdict["accepted"]
    refused = held_out_change(bundle, {"kind": "openvino"}, project, tolerance_px=-1.0)
    assert not refused["accepted"] and refused["tolerance_px"] == -1.0


def test_tune_chooses_a_reduced_precision_only_when_judged_and_accepted(labelled_bundle):
    precisions = _openvino_precisions() if _has_openvino() else []
    if not precisions:
        pytest.skip("OpenVINO computes no reduced precision on this CPU")
    bundle, _ = labelled_bundle
    size = Size(64, 48)
    reduced = [{"kind": "openvino", "threads": t, "precision": precisions[0]} for t in (1, 2)]
    calls = []

    def judge(accepted: bool):
        def run(section, input_size):
            calls.append((section, input_size))
            return {"accepted": accepted, "change_px": 0.0 if accepted else 1.0}

        return run

    result = tune(bundle, size, reduced, runs=4, block=2, judge=judge(True))
    assert result.chosen in reduced and len(calls) == 1  # judged once per precision,
    assert calls[0][1] == size  # at the size the rig feeds
    assert all(row["accuracy"]["accepted"] for row in result.rows[:1])
    with pytest.raises(EngineError, match="no candidate kept the bundle's accuracy"):
        tune(bundle, size, reduced, runs=4, block=2, judge=judge(False))
    with pytest.raises(EngineError, match="not judged: no labelled frames"):
        tune(bundle, size, reduced, runs=4, block=2, judge=None)
    full = {"kind": "onnxruntime", "threads": 1}
    assert tune(bundle, size, [*reduced, full], runs=4, block=2, judge=None).chosen == full


def test_tune_on_labelled_frames_stores_its_verdict(labelled_bundle, capsys):
    from realtime_pose.cli import main

    bundle, project = labelled_bundle
    args = ["tune", str(bundle.root), "--size", "64x48", "--runs", "4", "--loop-seconds", "0.5"]
    assert main([*args, "--project", str(project / "missing")]) == 2
    assert "not a folder" in capsys.readouterr().err
    assert main(args) == 0
    stored = json.loads((bundle.engine_cache_dir / "tuned.json").read_text())
    (entry,) = stored.values()
    reduced_rows = [r for r in entry["rows"] if is_reduced(r["engine"]) and "error" not in r]
    judged = [r for r in reduced_rows if "change_px" in r.get("accuracy", {})]
    for row in judged:  # the demo network on 6 labelled frames, bf16 vs ONNX Runtime fp32
        assert row["accuracy"]["frames"] == 6 and row["accuracy"]["project"] == str(project)
        assert row["accuracy"]["input_size"] == [64, 48]
    if is_reduced(entry["chosen"]):
        assert any(r["engine"] == entry["chosen"] and r["accuracy"]["accepted"] for r in judged)
    # ONNX Runtime's spinning is chosen by the closed loop's tail; other backends have none
    if entry["chosen"]["kind"] == "onnxruntime":
        assert len(entry["loop"]) == 3 and entry["chosen"] in [r["engine"] for r in entry["loop"]]
    else:
        assert entry["loop"] == []


def test_evaluate_runs_the_bundle_on_the_engine_asked(labelled_bundle, tmp_path, capsys):
    from realtime_pose.cli import main

    bundle, project = labelled_bundle
    base = ["evaluate", str(bundle.root), str(project), "--json"]
    assert main([*base, str(tmp_path / "ort.json")]) == 0
    ort = json.loads((tmp_path / "ort.json").read_text())
    assert "engine" not in ort
    assert main([*base, str(tmp_path / "x.json"), "--engine", "[openvino]"]) == 2
    assert "--engine: expected a mapping" in capsys.readouterr().err
    assert main([*base, str(tmp_path / "x.json"), "--engine", "{kind: nope}"]) == 2
    assert "unknown engine 'nope'" in capsys.readouterr().err
    assert main([*base, str(tmp_path / "x.json"), "--input-size", "160by120"]) == 2
    assert "expected WIDTHxHEIGHT" in capsys.readouterr().err
    assert main([*base, str(tmp_path / "small.json"), "--input-size", "160x120"]) == 0
    assert json.loads((tmp_path / "small.json").read_text())["input_size"] == [160, 120]
    if not _has_openvino():
        return
    assert main([*base, str(tmp_path / "ov.json"), "--engine", "{kind: openvino}"]) == 0
    ov = json.loads((tmp_path / "ov.json").read_text())
    assert ov["engine"] == {"kind": "openvino"}
    assert ov["mean_error_px"] == pytest.approx(ort["mean_error_px"], abs=0.1)


def test_evaluate_at_the_rigs_input_size_reports_frame_pixels(labelled_bundle):
    from realtime_pose.trainers.evaluate import evaluate

    bundle, project = labelled_bundle
    native = evaluate(bundle.root, project)
    half = evaluate(bundle.root, project, input_size=Size(160, 120))
    assert half["input_size"] == [160, 120] and half["n_keypoints"] == native["n_keypoints"]
    # errors in the 320x240 frames' pixels: a network at half size errs more, not half as much
    assert native["mean_error_px"] < half["mean_error_px"] < 20 * native["mean_error_px"]


def test_openvino_refuses_a_precision_this_cpu_lacks(labelled_bundle):
    pytest.importorskip("openvino", reason="needs the openvino extra")
    from realtime_pose.engines import EngineUnavailableError, open_engine

    missing = [p for p in ("bf16", "f16") if p not in _openvino_precisions()]
    if not missing:
        pytest.skip("this CPU computes every reduced precision OpenVINO offers")
    bundle, _ = labelled_bundle
    with pytest.raises(EngineUnavailableError, match=f"cannot compute {missing[0]}"):
        open_engine(bundle, {"kind": "openvino", "precision": missing[0]})


def _has_openvino() -> bool:
    try:
        import openvino  # noqa: F401
    except ImportError:
        return False
    return True


def _metrics(mean: float | None, median: float | None = None) -> dict:
    return {"n_images": 5, "n_keypoints": 20, "mean_error_px": mean, "median_error_px": median}


def test_one_verdict_rule_serves_engine_precisions_and_int8():
    worse = accuracy_verdict(_metrics(2.0, 1.5), _metrics(2.25, 1.6), 0.1, source="p", name="int8")
    assert worse["int8_mean_px"] == 2.25 and worse["fp32_median_px"] == 1.5
    assert worse["change_px"] == 0.25 and not worse["accepted"]
    better = accuracy_verdict(_metrics(2.0, 1.5), _metrics(1.95, 1.4), 0.1, source="p")
    assert better["mean_px"] == 1.95 and better["accepted"]
    with pytest.raises(ValueError, match="proj: the test split has no labelled keypoints"):
        accuracy_verdict(_metrics(None), _metrics(None), 0.1, source="proj")
