"""The look-alike bundle's maker: its scoring of found animals, and a tiny run end to end."""

from __future__ import annotations

import json

import numpy as np
import pytest

from realtime_pose.trainers.make_lookalike_bundle import (
    ASSET_DIR,
    detection_figures,
    keypoints_in_frame,
    match_animals,
)

KEYPOINTS = ["snout", "leftear", "rightear", "tailbase"]


def _animal(x: float, y: float) -> np.ndarray:
    """``[4, 2]``: a small animal whose snout is at (x, y)."""
    return np.array([[x, y], [x - 3, y + 4], [x + 3, y + 4], [x, y + 20]], dtype=np.float64)


def _found(points: np.ndarray, likelihood: float = 0.9) -> np.ndarray:
    return np.concatenate([points, np.full((*points.shape[:-1], 1), likelihood)], axis=-1)


def test_keypoints_whose_nearest_pixel_is_outside_the_frame_become_nan():
    points = np.array([[-0.6, 5.0], [-0.4, 5.0], [9.4, 3.0], [9.5, 3.0], [2.0, 7.6]])
    inside = keypoints_in_frame(points, width=10, height=8)
    assert np.isnan(inside[[0, 3, 4]]).all()  # pixels -1, 10 and row 8 are outside
    np.testing.assert_array_equal(inside[[1, 2]], points[[1, 2]])


def test_animals_are_matched_by_position_not_by_slot_and_never_beyond_the_radius():
    truth = np.stack([_animal(50, 50), _animal(150, 60), _animal(250, 70)])[None]
    pred = np.full((1, 4, 4, 3), np.nan)
    pred[..., 2] = 0.0
    pred[0, 0] = _found(_animal(151, 61))  # the second animal, 1.4 px off
    pred[0, 1] = _found(_animal(50, 50))
    pred[0, 2] = _found(_animal(250, 120))  # the third animal, but 50 px away
    assert match_animals(pred, truth, match_px=20.0).tolist() == [[1, 0, -1]]
    pred[0, 1, :, 2] = 0.2  # below the cutoff: not shown, so not matched
    assert match_animals(pred, truth, match_px=20.0).tolist() == [[-1, 0, -1]]


def test_detection_figures_count_a_missed_keypoint_and_an_animal_that_is_not_there():
    truth = np.stack([_animal(50, 50), _animal(150, 60)])[None].repeat(2, axis=0)
    pred = np.full((2, 3, 4, 3), np.nan)
    pred[..., 2] = 0.0
    pred[:, 0] = _found(truth[:, 0] + [3.0, 4.0])  # 5 px off everywhere
    pred[:, 1] = _found(truth[:, 1])
    pred[0, 1, 3, 2] = 0.1  # its tailbase missed in frame 0
    pred[:, 2] = _found(_animal(280, 200)[None].repeat(2, axis=0))  # no animal there
    figures = detection_figures(pred, truth, match_px=20.0, keypoints=KEYPOINTS)
    assert figures["true_animals"] == 4 and figures["found_animals"] == 6
    assert figures["matched_share"] == 1.0 and figures["instance_recall"] == 1.0
    assert figures["found_precision"] == pytest.approx(4 / 6)
    assert figures["keypoint_found"] == pytest.approx(15 / 16)
    assert figures["median_error_px"] == pytest.approx(5.0)  # 8 at 5 px, 7 at 0 px
    assert figures["pck5"] == pytest.approx(15 / 16)  # 5 px counts, the missed one does not
    assert figures["per_keypoint"]["tailbase"]["keypoint_found"] == pytest.approx(3 / 4)
    assert figures["per_keypoint"]["snout"]["mean_error_px"] == pytest.approx(2.5)


@pytest.mark.tf
@pytest.mark.slow
def test_a_tiny_run_installs_a_part_affinity_bundle_with_eight_slots_where_told(tmp_path):
    pytest.importorskip("tensorflow", reason="training needs TensorFlow (the train extra)")
    pytest.importorskip("tf2onnx", reason="exporting needs tf2onnx (the export extra)")
    pytest.importorskip("sleap_io", reason="the labels are SLEAP files (the train extra)")
    from realtime_pose.trainers.make_lookalike_bundle import main

    shipped = {p: p.stat().st_mtime_ns for p in ASSET_DIR.glob("*")} if ASSET_DIR.is_dir() else {}
    assets = tmp_path / "assets"
    argv = ["--steps", "2", "--batch-size", "2", "--crop", "64", "--seeds", "1",
            "--clip-frames", "8", "--every", "4", "--check-frames", "1",
            "--work", str(tmp_path / "work"), "--asset-dir", str(assets)]  # fmt: skip
    assert main(argv) == 0
    meta = json.loads((assets / "bundle.json").read_text())
    assert meta["animals"]["decoding"] == "part_affinity"
    assert meta["animals"]["names"] == [f"animal{i}" for i in range(8)]
    assert meta["outputs"]["paf"]["name"] == "paf"
    readme = (assets / "README.md").read_text()
    assert "--steps 2" in readme and "| 8 animals |" in readme
    check = json.loads((tmp_path / "work" / "unseen_check.json").read_text())
    assert set(check["by_animals"]) == {"2", "4", "8"}
    assert check["by_animals"]["8"]["true_animals"] > check["by_animals"]["2"]["true_animals"]
    now = {p: p.stat().st_mtime_ns for p in ASSET_DIR.glob("*")} if ASSET_DIR.is_dir() else {}
    assert now == shipped  # the shipped assets are untouched
