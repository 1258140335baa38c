"""Augmentation moves keypoints with the image: markers drawn at the keypoints stay under them."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from realtime_pose.trainers.augment import (
    AugmentConfig,
    augment,
    flip_permutation,
    sample_affine,
    warp,
)

BODYPARTS = ["leftear", "rightear", "snout"]
COLOURS = [(255, 110, 110), (110, 255, 110), (110, 110, 255)]  # RGB: one channel per keypoint


def _marked_frame(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    image = np.full((240, 320, 3), 40, np.uint8)
    centre = rng.uniform([80, 80], [240, 160])
    kp = centre + rng.uniform(-40, 40, size=(3, 2))  # an animal-sized cluster
    for (x, y), colour in zip(kp, COLOURS, strict=True):
        cv2.circle(image, (round(x), round(y)), 7, colour, -1)
    return image, kp


def _channel_under(image: np.ndarray, xy: np.ndarray) -> int:
    x, y = np.round(xy).astype(int)
    return int(np.argmax(image[y, x].astype(int)))


def test_flip_permutation_pairs_left_and_right():
    assert flip_permutation(BODYPARTS).tolist() == [1, 0, 2]
    assert flip_permutation(["nose", "paw_L", "paw_R"]).tolist() == [0, 2, 1]
    assert flip_permutation(["a", "b"]).tolist() == [0, 1]
    assert flip_permutation(["leftear", "snout"]) is None  # sided but unpaired: no mirroring


@pytest.mark.parametrize("seed", range(8))
def test_warped_keypoints_land_on_their_markers(seed):
    rng = np.random.default_rng(seed)
    image, kp = _marked_frame(rng)
    perm = flip_permutation(BODYPARTS)
    config = AugmentConfig(flip_probability=0.5, keep_animal_probability=1.0)
    matrix, flipped = sample_affine(rng, kp, image.shape[:2], (128, 160), config)
    out, kp_out = warp(image, kp, matrix, (128, 160), perm if flipped else None)
    assert out.shape == (128, 160, 3)
    for j in range(3):
        x, y = kp_out[j]
        assert 0 <= x < 160 and 0 <= y < 128  # the animal is kept in view
        # after mirroring, the animal's left ear is the marker drawn for the right ear
        drawn_for = int(perm[j]) if flipped else j
        assert _channel_under(out, kp_out[j]) == drawn_for
        assert out[round(y), round(x)].max() > 150


def test_full_augmentation_keeps_keypoints_on_bright_markers():
    rng = np.random.default_rng(42)
    perm = flip_permutation(BODYPARTS)
    flipped_seen = 0
    for _ in range(20):
        image, kp = _marked_frame(rng)
        out, kp_out = augment(rng, image, kp, (128, 128), AugmentConfig(), perm)
        assert out.dtype == np.uint8 and out.shape == (128, 128, 3)
        inside = [(0 <= x < 128 and 0 <= y < 128) for x, y in kp_out]
        for j in np.flatnonzero(inside):
            x, y = np.round(kp_out[j]).astype(int)
            x, y = min(x, 127), min(y, 127)
            patch = out[max(y - 1, 0) : y + 2, max(x - 1, 0) : x + 2].astype(int)
            background = np.median(out.astype(int))
            assert patch.max() > background + 30  # on the marker, not the background
            flipped_seen += _channel_under(out, kp_out[j]) != j and j < 2
    assert flipped_seen > 0  # mirroring happened and swapped the ear channels


def test_invisible_keypoints_stay_invisible():
    rng = np.random.default_rng(0)
    image, kp = _marked_frame(rng)
    kp[1] = np.nan
    _, kp_out = augment(rng, image, kp, (96, 96), AugmentConfig(), None)
    assert np.isnan(kp_out[1]).all() and np.isfinite(kp_out[[0, 2]]).all()
