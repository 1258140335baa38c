"""The scale frames are resized by: chosen from the labels, stored in the bundle, applied by the
estimator (live loop, analyze, evaluation) with keypoints back in frame pixels."""

import numpy as np
import pytest

from realtime_pose.geometry import Size
from realtime_pose.inference.estimator import NetworkInput
from realtime_pose.trainers.scale import choose_scale


def poses(extent_px: float, nearest_px: float, frames: int = 10) -> np.ndarray:
    """Labels [N, 3, 2]: two parts ``nearest_px`` apart and a third ``extent_px`` away."""
    kp = np.zeros((frames, 3, 2))
    kp[:, 1, 0] = nearest_px
    kp[:, 2, 0] = extent_px
    kp += np.arange(frames)[:, None, None]  # anywhere in the frame
    return kp


def test_a_small_animal_is_never_enlarged():
    choice = choose_scale(poses(123, 20))  # openfield's mouse: 192-px crops already
    assert choice.scale == 1.0 and choice.animal_extent_px == pytest.approx(123)


def test_a_large_animal_is_shrunk_to_fit_a_crop_of_at_most_320_px():
    choice = choose_scale(poses(600, 60))  # a hand over most of an 832x747 frame
    assert choice.scale == pytest.approx(0.38)  # (320 - 32) / (1.25 * 600) = 0.384
    assert 1.25 * 600 * choice.scale + 32 <= 320


def test_parts_never_come_closer_than_two_score_map_cells():
    choice = choose_scale(poses(600, 20))  # 0.38 would put two parts 7.7 px apart
    assert choice.scale == pytest.approx(0.8) and choice.nearest_parts_px == pytest.approx(20)
    assert choice.scale * 20 >= 2 * 8


def test_network_input_resizes_by_the_bundle_scale_to_a_multiple_of_16():
    from realtime_pose.inference.crop import CropWindow

    sizing = NetworkInput(None, False, 0.38, 16)
    assert sizing.resize_to(Size(832, 747)) == Size(320, 288)  # 316 -> 320, 284 -> 288
    assert sizing.resize_to(Size(832, 747), CropWindow(0, 0, 200, 100, False)) == Size(80, 32)
    assert NetworkInput(None, False, 1.0).resize_to(Size(832, 747)) is None


def test_the_estimator_applies_the_scale_and_reports_frame_pixels(tmp_path):
    from realtime_pose.bundle import load_bundle, write_bundle
    from realtime_pose.engines import open_engine
    from realtime_pose.inference.estimator import PoseEstimator
    from tests.builders import marker_meta, marker_model

    meta = marker_meta()
    meta["input"]["scale"] = 0.5
    write_bundle(tmp_path / "b", marker_model(), meta)
    bundle = load_bundle(tmp_path / "b")
    assert bundle.meta.input.scale == 0.5
    estimator = PoseEstimator(bundle, open_engine(bundle, {"spinning": False, "warmup_runs": 0}))
    frame = np.zeros((128, 160, 3), np.uint8)
    frame[48:64, 64:80, 2] = 255  # red, 16x16 at frame cell (4, 3) of 16 px: network cell (4, 3)
    pose = estimator.estimate(frame)
    assert estimator.network_size(Size(160, 128)) == Size(80, 64)
    network_px = np.array([4, 3]) * 8 + 4 + 7.2801 * 0.25
    expected = (network_px + 0.5) / 0.5 - 0.5  # pixel centres aligned, as cv2.resize does
    np.testing.assert_allclose(pose[0, :2], expected, atol=1e-3)
