"""The synthetic scene: determinism, a smooth trajectory, keypoints on the drawn parts."""

from __future__ import annotations

import numpy as np
import pytest

from realtime_pose.sources.synthetic_scene import KEYPOINTS, SyntheticScene, random_sample


def test_same_seed_and_index_give_identical_frames_in_any_order():
    a = SyntheticScene(160, 120, seed=3)
    b = SyntheticScene(160, 120, seed=3)
    late_b = b.frame(2500)  # b jumps ahead first; a reads in order
    for i in range(0, 2501, 500):
        img_a, kp_a = a.frame(i)
    assert np.array_equal(img_a, late_b[0]) and np.array_equal(kp_a, late_b[1])
    img0, kp0 = b.frame(0)
    assert np.array_equal(img0, a.frame(0)[0]) and np.array_equal(kp0, a.frame(0)[1])
    other = SyntheticScene(160, 120, seed=4).frame(0)
    assert not np.array_equal(other[0], img0)


def test_a_camera_running_for_hours_keeps_a_bounded_trajectory():
    scene = SyntheticScene(64, 48, seed=1)
    poses = {i: scene.pose(i) for i in range(0, 40 * scene._CHUNK, 97)}
    assert len(scene._chunks) <= scene._KEEP_CHUNKS  # the last few chunks, not the whole track
    again = SyntheticScene(64, 48, seed=1)
    for i in sorted(poses, reverse=True)[::40]:  # backwards, across long gaps
        assert again.pose(i) == poses[i]


def test_trajectory_is_smooth_and_stays_in_the_arena():
    scene = SyntheticScene(320, 240, seed=0, fps=100.0)
    kps = np.stack([scene.frame(i)[1] for i in range(0, 3000)])
    assert kps.shape == (3000, len(KEYPOINTS), 2) and kps.dtype == np.float32
    assert (kps[..., 0] >= 0).all() and (kps[..., 0] < 320).all()
    assert (kps[..., 1] >= 0).all() and (kps[..., 1] < 240).all()
    step = np.linalg.norm(np.diff(kps[:, 3], axis=0), axis=1)
    assert step.max() < 5.0  # px per frame at 100 fps: no teleporting
    assert np.linalg.norm(kps[-1, 3] - kps[0, 3]) > 5.0 or step.sum() > 50  # it does move


def _darkness_at(image: np.ndarray, xy: np.ndarray) -> float:
    x, y = np.round(xy).astype(int)
    patch = image[max(y - 1, 0) : y + 2, max(x - 1, 0) : x + 2].astype(float)
    return float(patch.mean())


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_keypoints_land_on_the_drawn_animal(seed):
    rng = np.random.default_rng(seed)
    for _ in range(5):
        image, kp = random_sample(rng, 320, 240)
        gray = image.mean(axis=2)
        floor = np.median(gray)
        # the ears, and just inside the snout tip and tail base, are much darker than the floor
        inward_snout = kp[0] + 2.0 * (kp[3] - kp[0]) / np.linalg.norm(kp[3] - kp[0])
        for xy in (kp[1], kp[2], inward_snout, kp[3]):
            assert _darkness_at(gray[..., None], xy) < floor - 40
        # and the left ear is on the animal's left (y-down image seen from above)
        forward = kp[0] - kp[3]
        left = np.array([forward[1], -forward[0]])
        assert np.dot(kp[1] - kp[2], left) > 0


def test_a_light_coat_changes_the_animal_only():
    dark = SyntheticScene(160, 120, seed=4)
    light = SyntheticScene(160, 120, seed=4, coat="light")
    (dark_image, dark_kp), (light_image, light_kp) = dark.frame(250), light.frame(250)
    np.testing.assert_array_equal(dark_kp, light_kp)  # the same walk
    changed = np.abs(dark_image.astype(int) - light_image.astype(int)).max(axis=2) > 0
    x, y = dark_kp[0].round().astype(int)
    assert changed[y, x]  # the animal's pixels changed ...
    assert changed.mean() < 0.1  # ... and nothing else (the arena is the same)
    assert light_image[y, x].mean() > dark_image[y, x].mean() + 100  # brighter than before
    with pytest.raises(ValueError, match="coat"):
        SyntheticScene(160, 120, seed=4, coat="spotted")
