"""Animals moved apart for training: rigid moves, pixels and keypoints moved together."""

from __future__ import annotations

import cv2
import numpy as np

from realtime_pose.trainers.rearrange import animal_region, fill_regions, rearrange_animals

DARK, LIGHT, FLOOR = 30, 220, 128


def _scene() -> tuple[np.ndarray, np.ndarray]:
    """A 320x240 floor with a dark and a light ellipse side by side; 3 keypoints each along the
    body axis (animal-major: dark first)."""
    rng = np.random.default_rng(0)
    image = np.clip(rng.normal(FLOOR, 3, (240, 320, 3)), 0, 255).astype(np.uint8)
    cv2.ellipse(image, (120, 120), (30, 12), 0, 0, 360, (DARK,) * 3, -1)
    cv2.ellipse(image, (190, 120), (30, 12), 0, 0, 360, (LIGHT,) * 3, -1)
    keypoints = np.array(
        [[100, 120], [120, 120], [140, 120], [170, 120], [190, 120], [210, 120]], np.float32
    )
    return image, keypoints


def test_each_animal_moves_rigidly_with_its_pixels():
    image, keypoints = _scene()
    moved_any = False
    for seed in range(20):
        out, moved = rearrange_animals(np.random.default_rng(seed), image, keypoints, 2)
        assert out.shape == image.shape and moved.shape == (6, 2)
        for a, colour in ((0, DARK), (1, LIGHT)):
            before, after = keypoints[3 * a : 3 * a + 3], moved[3 * a : 3 * a + 3]
            gaps = lambda p: np.linalg.norm(p[:, None] - p[None], axis=2)  # noqa: E731
            np.testing.assert_allclose(gaps(after), gaps(before), atol=1e-3)
            for x, y in after:  # the animal's own pixels are under its moved keypoints
                assert abs(int(out[int(round(y)), int(round(x)), 0]) - colour) < 30
            moved_any |= bool(np.abs(after - before).max() > 20)
    assert moved_any


def test_the_places_left_are_filled_with_floor():
    image, keypoints = _scene()
    regions = [animal_region(keypoints[:3], 12.0), animal_region(keypoints[3:], 12.0)]
    mask = np.zeros(image.shape[:2], np.uint8)
    for r in regions:
        cv2.fillConvexPoly(mask, np.round(r).astype(np.int32), 255)
    filled = fill_regions(image, mask)
    assert np.abs(filled[mask > 0].astype(int) - FLOOR).max() < 15
    np.testing.assert_array_equal(filled[mask == 0], image[mask == 0])


def test_deterministic_per_seed_and_unchanged_without_enough_keypoints():
    image, keypoints = _scene()
    a = rearrange_animals(np.random.default_rng(3), image, keypoints, 2)
    b = rearrange_animals(np.random.default_rng(3), image, keypoints, 2)
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])
    hidden = keypoints.copy()
    hidden[3:5] = np.nan  # the light animal has one visible keypoint
    out, moved = rearrange_animals(np.random.default_rng(3), image, hidden, 2)
    np.testing.assert_array_equal(out, image)
    np.testing.assert_array_equal(moved, hidden)
    hidden_one = keypoints.copy()
    hidden_one[0] = np.nan  # a hidden keypoint stays hidden, the others move
    _, moved = rearrange_animals(np.random.default_rng(3), image, hidden_one, 2)
    assert np.isnan(moved[0]).all() and np.isfinite(moved[1:]).all()
