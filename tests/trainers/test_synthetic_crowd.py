"""The crowd of identical animals: trajectories, occlusion truth, the clip and its labels."""

from __future__ import annotations

import json
import math
import subprocess
import sys

import cv2
import numpy as np
import pytest

from realtime_pose.sources.synthetic_scene import KEYPOINTS, AnimalPose, animal_keypoints
from realtime_pose.trainers.synthetic_crowd import (
    count_crossings,
    crossing_close_px,
    crowd_poses,
    draw_crowd,
    load_crowd_truth,
    write_crowd_clip,
)

W, H = 160, 120


def _inside(keypoints: np.ndarray) -> np.ndarray:
    """Whether a keypoint's nearest pixel is in the frame."""
    col, row = np.moveaxis(np.floor(keypoints + 0.5), -1, 0)
    return (col >= 0) & (col < W) & (row >= 0) & (row < H)


def _keypoints(n_animals: int, n_frames: int, **kwargs) -> np.ndarray:
    return np.array(
        [
            [animal_keypoints(p) for p in crowd_poses(f, n_animals, W, H, **kwargs)]
            for f in range(n_frames)
        ],
        dtype=np.float64,
    )


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    return write_crowd_clip(tmp_path_factory.mktemp("crowd"), 4, 200, W, H, seed=0)


def test_poses_do_not_depend_on_the_process_or_the_order_asked(tmp_path):
    here = [crowd_poses(f, 3, W, H, seed=5) for f in range(300)]
    script = (
        "import json\n"
        "from realtime_pose.trainers.synthetic_crowd import crowd_poses\n"
        "late = crowd_poses(299, 3, 160, 120, seed=5)\n"  # asked before the frames before it
        "early = crowd_poses(17, 3, 160, 120, seed=5)\n"
        "print(json.dumps([[[p.x, p.y, p.heading, p.head_yaw, p.tail_curl] for p in ps]"
        " for ps in (late, early)]))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, cwd=tmp_path
    )
    late, early = json.loads(done.stdout)
    for mine, theirs in ((here[299], late), (here[17], early)):
        assert [[p.x, p.y, p.heading, p.head_yaw, p.tail_curl] for p in mine] == theirs
    other_seed = crowd_poses(17, 3, W, H, seed=6)
    assert [p.x for p in other_seed] != [p.x for p in here[17]]


def test_all_animals_look_the_same_and_the_coat_changes_only_the_colour():
    dark = crowd_poses(40, 8, W, H, seed=2)
    assert len({(p.body_bgr, p.ear_bgr, p.scale_px) for p in dark}) == 1
    assert len({(round(p.x, 3), round(p.y, 3)) for p in dark}) == 8
    light = crowd_poses(40, 8, W, H, seed=2, coat="light")
    assert light[0].body_bgr != dark[0].body_bgr
    assert len({(p.body_bgr, p.ear_bgr) for p in light}) == 1
    assert [(p.x, p.y, p.heading) for p in light] == [(p.x, p.y, p.heading) for p in dark]
    with pytest.raises(ValueError, match="coat"):
        crowd_poses(0, 2, W, H, coat="spotted")


def test_animals_move_smoothly_in_proportion_to_the_frame():
    small = _keypoints(4, 300, seed=1)
    assert np.linalg.norm(np.diff(small, axis=0), axis=-1).max() < 5.0  # px per frame
    big = np.array(
        [[animal_keypoints(p) for p in crowd_poses(f, 4, 2 * W, 2 * H, seed=1)] for f in range(50)]
    )
    assert np.allclose(big, 2 * small[:50], atol=0.05)
    fast = _keypoints(4, 300, seed=1, speed=2.0)
    assert (
        np.linalg.norm(np.diff(fast, axis=0), axis=-1).mean()
        > 1.5 * np.linalg.norm(np.diff(small, axis=0), axis=-1).mean()
    )


def test_two_animals_cross_within_200_frames():
    assert count_crossings(_keypoints(2, 200, seed=0), crossing_close_px(W, H)) > 0


def test_count_crossings_counts_each_approach():
    # animal 1 walks past animal 0 (at the origin), away, back past it and away again
    x = np.concatenate([np.linspace(40, -40, 9), np.linspace(-40, 40, 9)])
    keypoints = np.zeros((len(x), 2, 3, 2))
    keypoints[:, 1, :, 0] = x[:, None]
    keypoints[:, 1, :, 1] = [1.0, 2.0, 3.0]  # centre y = 2
    assert count_crossings(keypoints, close_px=5.0) == 2
    assert count_crossings(keypoints, close_px=1.0) == 0  # never closer than 2
    gap = keypoints.copy()
    gap[4, 1] = np.nan  # while on top: the animal is lost for a frame and found again
    assert count_crossings(gap, close_px=15.0) == 3
    assert count_crossings(keypoints[4:5], close_px=5.0) == 1  # close from the first frame
    partial = keypoints.copy()
    partial[:, 1, 0] = np.nan  # the mean of the keypoints left: y = 2.5
    assert count_crossings(partial, close_px=2.4) == 0
    assert count_crossings(partial, close_px=2.6) == 2
    with pytest.raises(ValueError, match="frames, animals"):
        count_crossings(keypoints[0], close_px=5.0)


def test_draw_crowd_finds_covered_and_outside_keypoints():
    image = np.full((H, W, 3), 200, np.uint8)
    look = {"scale_px": 20.0, "body_bgr": (40, 40, 40), "ear_bgr": (90, 90, 120)}
    hidden = AnimalPose(x=60.0, y=60.0, heading=0.3, head_yaw=0.0, tail_curl=0.0, **look)
    on_top = AnimalPose(x=60.0, y=60.0, heading=0.3, head_yaw=0.0, tail_curl=0.5, **look)
    apart = AnimalPose(x=125.0, y=30.0, heading=2.0, head_yaw=0.2, tail_curl=-1.0, **look)
    gone = AnimalPose(x=-60.0, y=60.0, heading=0.0, head_yaw=0.0, tail_curl=0.0, **look)
    half = AnimalPose(x=W - 3.0, y=90.0, heading=0.0, head_yaw=0.0, tail_curl=0.0, **look)
    keypoints, visible, in_frame = draw_crowd(image, [hidden, on_top, apart, gone, half])
    assert keypoints.shape == (5, len(KEYPOINTS), 2) and keypoints.dtype == np.float64
    assert np.allclose(keypoints[2], animal_keypoints(apart))
    assert not visible[0].any()  # the same body drawn over it
    assert visible[1].all() and visible[2].all()
    assert not visible[3].any() and not in_frame[3]
    assert in_frame[4] and visible[4].tolist() == [False, False, False, True]  # head out
    assert in_frame[:3].all()
    assert (image[30, 125] != 200).any() and (image[60, 0] == 200).all()


def test_an_animal_leaves_the_frame_and_comes_back(clip):
    truth = load_crowd_truth(clip.truth)
    gone = ~truth.in_frame
    animal = int(np.argmax(gone.sum(axis=0)))
    frames = np.flatnonzero(gone[:, animal])
    assert frames.size >= 10 and frames[-1] < truth.keypoints.shape[0] - 1
    assert truth.in_frame[frames[-1] + 1 :, animal].all()  # back
    kp = truth.keypoints[frames, animal]
    assert not _inside(kp).any() and not truth.visible[frames, animal].any()


def test_truth_visibility_comes_from_the_drawn_animals(clip):
    truth = load_crowd_truth(clip.truth)
    assert (truth.width, truth.height, truth.n_animals, truth.seed) == (W, H, 4, 0)
    assert truth.fps == 25.0 and truth.keypoints.shape == (200, 4, 4, 2)
    kp = truth.keypoints
    inside = _inside(kp)
    assert not (truth.visible & ~inside).any()
    centres = kp.mean(axis=2)
    gap = np.linalg.norm(centres[:, :, None] - centres[:, None], axis=-1)  # [F, A, A]
    gap[:, np.arange(4), np.arange(4)] = np.inf
    alone = gap.min(axis=2) > 3 * crossing_close_px(W, H) / 0.5  # three body lengths from all
    open_space = alone[..., None] & inside
    assert open_space.sum() > 100 and truth.visible[open_space].all()
    covered = inside & ~truth.visible
    assert covered.sum() > 10
    for f, a, _ in np.argwhere(covered):  # covered by an animal drawn later, nearby
        assert gap[f, a, a + 1 :].min() < 3.0 * crossing_close_px(W, H) / 0.5
    capture = cv2.VideoCapture(str(clip.video))
    ear = crowd_poses(0, 4, W, H, seed=0)[0].ear_bgr
    seen = hits = 0
    for f in range(40):
        ok, image = capture.read()
        assert ok
        for a, j in np.argwhere(truth.visible[f]):
            if KEYPOINTS[j] in ("leftear", "rightear"):
                x, y = np.floor(kp[f, a, j] + 0.5).astype(int)
                seen += 1
                hits += tuple(image[y, x]) == ear
    capture.release()
    assert seen > 100 and hits >= 0.95 * seen


def test_video_and_labels(clip):
    import sleap_io as sio

    capture = cv2.VideoCapture(str(clip.video))
    assert capture.get(cv2.CAP_PROP_FRAME_COUNT) == 200
    assert (capture.get(cv2.CAP_PROP_FRAME_WIDTH), capture.get(cv2.CAP_PROP_FRAME_HEIGHT)) == (W, H)
    capture.release()
    truth = load_crowd_truth(clip.truth)
    labels = sio.load_slp(str(clip.slp))
    assert [t.name for t in labels.tracks] == ["animal0", "animal1", "animal2", "animal3"]
    assert list(labels.skeletons[0].node_names) == list(KEYPOINTS)
    frames = sorted(labels.labeled_frames, key=lambda lf: lf.frame_idx)
    assert [lf.frame_idx for lf in frames] == list(range(200))
    kp = truth.keypoints
    inside = _inside(kp)
    partly = 0
    for lf in frames:
        f = lf.frame_idx
        tracked = {inst.track.name: inst.numpy()[:, :2] for inst in lf.instances}
        assert set(tracked) == {f"animal{a}" for a in range(4) if inside[f, a].any()}
        for name, points in tracked.items():
            a = int(name.removeprefix("animal"))
            assert np.array_equal(np.isnan(points[:, 0]), ~inside[f, a])
            assert np.allclose(points[inside[f, a]], kp[f, a][inside[f, a]])
            partly += bool(np.isnan(points).any())
    assert partly > 0  # an animal half out of the frame, its outside keypoints NaN


def test_same_arguments_write_the_same_clip(tmp_path):
    first = write_crowd_clip(tmp_path / "a", 3, 12, seed=4, fps=30.0, coat="light")
    second = write_crowd_clip(tmp_path / "b", 3, 12, seed=4, fps=30.0, coat="light")
    assert first.video.read_bytes() == second.video.read_bytes()
    a, b = load_crowd_truth(first.truth), load_crowd_truth(second.truth)
    assert np.array_equal(a.keypoints, b.keypoints) and np.array_equal(a.visible, b.visible)
    capture = cv2.VideoCapture(str(first.video))
    assert math.isclose(capture.get(cv2.CAP_PROP_FPS), 30.0)
    capture.release()


def test_bad_arguments_are_refused(tmp_path):
    with pytest.raises(ValueError, match="n_animals"):
        crowd_poses(0, 0, W, H)
    with pytest.raises(ValueError, match="speed"):
        crowd_poses(0, 2, W, H, speed=0.0)
    with pytest.raises(ValueError, match="frame"):
        crowd_poses(-1, 2, W, H)
    with pytest.raises(ValueError, match="n_frames"):
        write_crowd_clip(tmp_path, 2, 0)
    np.savez(tmp_path / "other.npz", keypoints=np.zeros((1, 2, 4, 2)))
    with pytest.raises(ValueError, match="lacks visible"):
        load_crowd_truth(tmp_path / "other.npz")
