"""Dynamic cropping: the window follows the animal, stays in the frame, and gives up when lost."""

from __future__ import annotations

import numpy as np
import pytest

from realtime_pose.geometry import Size
from realtime_pose.inference.crop import (
    CropWindow,
    DynamicCropper,
    confident_bbox_centre,
    crop_window,
)


def pose(points, likelihood=1.0) -> np.ndarray:
    points = np.asarray(points, dtype=float)
    return np.concatenate([points, np.full((len(points), 1), likelihood)], axis=1)


@pytest.mark.parametrize(
    ("center", "expected"),
    [
        ((320.0, 240.0), (320 - 64, 240 - 48)),  # centred: x0 = round(cx - (w - 1) / 2)
        ((5.0, 5.0), (0, 0)),  # clamped at the top-left
        ((639.0, 479.0), (640 - 128, 480 - 96)),  # clamped at the bottom-right
        ((10.0, 470.0), (0, 480 - 96)),
    ],
)
def test_crop_window_centres_and_clamps(center, expected):
    assert crop_window(center, (128, 96), (640, 480)) == expected


def test_crop_window_refuses_a_crop_larger_than_the_frame():
    with pytest.raises(ValueError, match="does not fit"):
        crop_window((10, 10), (200, 100), (160, 120))


def test_window_follows_the_bbox_centre_of_confident_keypoints():
    cropper = DynamicCropper((640, 480), (160, 120), min_likelihood=0.5)
    assert cropper.window() == CropWindow(0, 0, 640, 480, True)  # nothing seen yet
    p = pose([[300, 200], [340, 260], [600, 20]])
    p[2, 2] = 0.2  # a low-likelihood keypoint far away is ignored
    cropper.update(p)
    window = cropper.window()
    assert not window.full_frame
    assert (window.width, window.height) == (160, 120)
    assert (window.x0 + (window.width - 1) / 2, window.y0 + (window.height - 1) / 2) == (
        pytest.approx(320, abs=0.5),
        pytest.approx(230, abs=0.5),
    )
    cropper.update(pose([[400, 300]]))
    assert (cropper.window().x0, cropper.window().y0) == (320, 240)


def test_window_clamps_at_the_frame_border():
    cropper = DynamicCropper((640, 480), (160, 120))
    cropper.update(pose([[630, 5]]))
    window = cropper.window()
    assert (window.x0, window.y0) == (640 - 160, 0)
    image = np.zeros((480, 640, 3), np.uint8)
    assert window.crop(image).shape == (120, 160, 3)


def test_full_frame_when_lost_and_back_when_found():
    cropper = DynamicCropper((640, 480), (160, 120), lost_after_frames=3)
    cropper.update(pose([[200, 200]]))
    first = cropper.window()
    lost = pose([[0, 0]], likelihood=0.1)
    for _ in range(2):  # a brief miss keeps the last window
        cropper.update(lost)
        assert cropper.window() == first
    cropper.update(lost)
    assert cropper.lost
    assert cropper.window() == CropWindow(0, 0, 640, 480, True)
    cropper.update(pose([[500, 400]]))
    found = cropper.window()
    assert not found.full_frame and not cropper.lost
    assert (found.x0, found.y0) == crop_window((500, 400), (160, 120), (640, 480))


def test_confident_bbox_centre_kernel():
    p = pose([[10, 20], [30, 60], [500, 500]], likelihood=0.9)
    p[2, 2] = 0.3
    assert confident_bbox_centre(p, 0.5) == (20.0, 40.0)
    assert np.isnan(confident_bbox_centre(p, 0.99)[0])
    assert confident_bbox_centre(p.astype(np.float32), 0.2) == (255.0, 260.0)


def test_nan_keypoints_do_not_place_the_window():
    cropper = DynamicCropper((640, 480), (160, 120), lost_after_frames=1)
    cropper.update(np.array([[np.nan, np.nan, 0.99]]))
    assert cropper.window().full_frame


def test_window_transform_maps_network_pixels_back_to_the_full_frame():
    cropper = DynamicCropper((640, 480), (160, 120))
    cropper.update(pose([[300, 250]]))
    window = cropper.window()
    transform = window.transform(Size(80, 60))  # the crop is halved for the network
    # network pixel (10, 7) covers frame pixels x0 + 20..21, y0 + 14..15: its centre
    np.testing.assert_allclose(
        transform.to_frame(np.array([[10.0, 7.0]])), [[window.x0 + 20.5, window.y0 + 14.5]]
    )
    # Network pixel (0, 0) is the centre of the window's top-left 2x2 block.
    np.testing.assert_allclose(
        transform.to_frame(np.array([[0.0, 0.0]])), [[window.x0 + 0.5, window.y0 + 0.5]]
    )


def test_bad_sizes_are_refused():
    with pytest.raises(ValueError, match="larger than the frame"):
        DynamicCropper((160, 120), (320, 240))
    with pytest.raises(ValueError, match="lost_after_frames"):
        DynamicCropper((640, 480), (160, 120), lost_after_frames=0)
