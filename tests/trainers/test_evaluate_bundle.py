"""Evaluating an exported bundle (ONNX Runtime, no TensorFlow): the shipped demo bundle on
freshly drawn synthetic frames it never saw."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from realtime_pose.sources.synthetic_scene import KEYPOINTS
from realtime_pose.trainers.synthetic_project import write_synthetic_project

DEMO = Path(__file__).resolve().parents[2] / "realtime_pose" / "assets" / "demo_bundle"
pytestmark = pytest.mark.skipif(
    not (DEMO / "model.onnx").is_file(), reason="the demo bundle has not been generated"
)


def test_demo_bundle_tracks_unseen_synthetic_frames(tmp_path: Path):
    from realtime_pose.cli import main

    project = write_synthetic_project(tmp_path / "p", 12, width=320, height=240, seed=777)
    report = tmp_path / "eval.json"
    plot = tmp_path / "eval.png"
    args = ["evaluate", str(DEMO), str(project), "--split", "all", "--json", str(report)]
    assert main([*args, "--plot", str(plot)]) == 0
    metrics = json.loads(report.read_text())
    assert metrics["n_images"] == 12 and metrics["n_keypoints"] == 12 * len(KEYPOINTS)
    assert metrics["mean_error_px"] < 6.0  # a broken decode or channel order gives tens of px
    assert metrics["pck10"] > 0.8
    assert plot.stat().st_size > 10_000


def test_test_split_needs_a_known_split(tmp_path: Path, capsys):
    from realtime_pose.cli import main

    project = write_synthetic_project(tmp_path / "p", 3, width=320, height=240, seed=1)
    # the demo bundle's provenance split names frames of another project
    assert main(["evaluate", str(DEMO), str(project), "--split", "test"]) == 2
    assert "not labelled frames" in capsys.readouterr().err


def test_split_file_selects_the_frames(tmp_path: Path):
    from realtime_pose.cli import main

    project = write_synthetic_project(tmp_path / "p", 4, width=320, height=240, seed=3)
    split = tmp_path / "split.json"
    test = ["labeled-data/synthetic/img00001.png", "labeled-data/synthetic/img00003.png"]
    split.write_text(json.dumps({"train": [], "test": test}))
    report = tmp_path / "eval.json"
    args = ["evaluate", str(DEMO), str(project), "--split-file", str(split), "--json", str(report)]
    assert main(args) == 0
    metrics = json.loads(report.read_text())
    assert metrics["images"] == test and metrics["n_images"] == 2
