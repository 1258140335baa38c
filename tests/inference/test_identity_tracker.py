"""IdentityTracker: detections in any order, crossings, missed frames, identity votes, limits."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from realtime_pose.inference.tracking import IdentityTracker, pose_distance_px

FLIES = (
    Path(__file__).resolve().parents[3] / "shared" / "datasets" / "sleap-flies-clip" / "clip.slp"
)
FRAME_NS = 40_000_000  # 25 fps
K = 3


def animal(cx: float, cy: float, likelihood: float = 0.9) -> np.ndarray:
    """A three-keypoint animal centred at (cx, cy)."""
    offsets = np.array([[-6.0, 0.0], [0.0, 0.0], [6.0, 0.0]])
    pose = np.empty((K, 3))
    pose[:, :2] = offsets + np.array([cx, cy])
    pose[:, 2] = likelihood
    return pose


def crossing_paths(frames: int) -> np.ndarray:
    """Two animals that pass within 12 px of each other going opposite ways: [T, 2, K, 3]."""
    t = np.arange(frames)
    a = np.stack([animal(100 + 4 * i, 200 + 0.1 * i) for i in t])
    b = np.stack([animal(100 + 4 * (frames - 1 - i), 212 - 0.1 * i) for i in t])
    return np.stack([a, b], axis=1)


def test_pose_distance_counts_only_keypoints_both_poses_show():
    det, pred = animal(0, 0), animal(3, 4)
    assert pose_distance_px(det, pred, 0.5) == pytest.approx(5.0)
    det[0] = (1000.0, 1000.0, 0.1)  # below the cut-off: ignored
    assert pose_distance_px(det, pred, 0.5) == pytest.approx(5.0)
    det[:, 2] = 0.0
    assert pose_distance_px(det, pred, 0.5) == np.inf


def test_animals_keep_their_track_through_a_crossing_whatever_the_detection_order():
    rng = np.random.default_rng(0)
    paths = crossing_paths(60)
    tracker = IdentityTracker(K, max_animals=2, max_distance_px=40)
    owner: dict[int, int] = {}  # track_id -> true animal
    for frame, truth in enumerate(paths):
        order = rng.permutation(2)
        noisy = truth[order].copy()
        noisy[:, :, :2] += rng.normal(0, 0.5, noisy[:, :, :2].shape)
        animals = tracker.update(noisy, frame * FRAME_NS)
        assert [a.track_id for a in animals] == [0, 1]
        for a in animals:
            true = int(
                order[np.argmin([pose_distance_px(a.keypoints, noisy[i], 0.5) for i in (0, 1)])]
            )
            assert owner.setdefault(a.track_id, true) == true, f"switch at frame {frame}"
    assert tracker.tracks_opened == 2


def test_a_missed_animal_coasts_on_its_prediction_and_keeps_its_id():
    paths = crossing_paths(40)
    tracker = IdentityTracker(K, max_animals=2, max_distance_px=40, max_missed_s=0.5)
    for frame in range(10):
        tracker.update(paths[frame], frame * FRAME_NS)
    for frame in range(10, 15):  # animal 1 unseen for 5 frames (0.2 s)
        animals = tracker.update(paths[frame, :1], frame * FRAME_NS)
        coasting = next(a for a in animals if a.track_id == 1)
        assert not coasting.detected
        assert pose_distance_px(paths[frame, 1], coasting.keypoints, 0.0) < 10  # near the truth
    animals = tracker.update(paths[15], 15 * FRAME_NS)
    assert [(a.track_id, a.detected) for a in animals] == [(0, True), (1, True)]
    assert tracker.tracks_opened == 2


def test_a_track_unseen_too_long_closes_and_its_name_is_reused():
    tracker = IdentityTracker(K, 2, names=["female", "male"], max_missed_s=0.2)
    first = tracker.update(np.stack([animal(10, 10), animal(300, 300)]), 0)
    assert [a.name for a in first] == ["female", "male"]
    t = 0
    for _ in range(8):  # male gone for 0.32 s
        t += FRAME_NS
        animals = tracker.update(animal(10, 10)[None], t)
    assert [a.name for a in animals] == ["female"]
    t += FRAME_NS
    animals = tracker.update(np.stack([animal(10, 10), animal(500, 80)]), t)
    assert [(a.track_id, a.name) for a in animals] == [(0, "female"), (2, "male")]


def test_identity_votes_name_new_tracks_and_settle_touching_animals():
    tracker = IdentityTracker(K, 2, names=["female", "male"], identity_weight_px=50)
    votes = np.array([[0.1, 0.9], [0.8, 0.2]])  # the first detection is the male
    animals = tracker.update(np.stack([animal(10, 10), animal(200, 10)]), 0, votes)
    assert {a.name: a.keypoints[1, 0] for a in animals} == {"male": 10.0, "female": 200.0}
    # both now at the same place: only the identity vote tells them apart
    same = np.stack([animal(105, 10), animal(105, 10)])
    same[0, :, 0] += 0.5
    animals = tracker.update(same, FRAME_NS, np.array([[0.95, 0.05], [0.05, 0.95]]))
    assert {a.name: a.keypoints[1, 0] for a in animals} == {"female": 105.5, "male": 105.0}


def test_no_more_tracks_than_max_animals_and_invisible_detections_are_ignored():
    tracker = IdentityTracker(K, max_animals=2)
    crowd = np.stack([animal(0, 0), animal(100, 0), animal(200, 0), animal(300, 0, 0.1)])
    animals = tracker.update(crowd, 0)
    assert len(animals) == 2 and tracker.tracks_opened == 2
    assert tracker.update(np.empty((0, K, 3)), FRAME_NS)[0].detected is False


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"num_keypoints": 0, "max_animals": 2}, "num_keypoints"),
        ({"num_keypoints": 3, "max_animals": 0}, "max_animals"),
        ({"num_keypoints": 3, "max_animals": 3, "names": ["a", "b"]}, "3 animals need"),
        ({"num_keypoints": 3, "max_animals": 2, "names": ["a", "a"]}, "distinct"),
        ({"num_keypoints": 3, "max_animals": 2, "max_distance_px": 0}, "max_distance_px"),
    ],
)
def test_bad_settings_are_refused(kwargs, message):
    with pytest.raises(ValueError, match=message):
        IdentityTracker(**kwargs)


def test_identity_scores_need_one_column_per_name():
    tracker = IdentityTracker(K, 2, names=["female", "male"])
    with pytest.raises(ValueError, match="one column per name"):
        tracker.update(animal(0, 0)[None], 0, np.ones((1, 3)))


@pytest.mark.skipif(not FLIES.is_file(), reason=f"dataset absent: {FLIES}")
def test_the_labelled_flies_in_shuffled_order_keep_their_identities():
    """Frames 0-1199 of the flies clip: label positions, order shuffled, 2 px noise, 5 % of
    keypoints lost. The tracker alone (no identity vote) must never swap the two flies."""
    sio = pytest.importorskip("sleap_io")
    labels = sio.load_slp(str(FLIES))
    names = [t.name for t in labels.tracks]
    points = labels.numpy()[:1200]  # [T, 2, 13, 2], NaN where unlabelled
    rng = np.random.default_rng(1)
    tracker = IdentityTracker(points.shape[2], 2, max_distance_px=60)
    owner: dict[int, str] = {}
    switches = 0
    for frame, truth in enumerate(points):
        order = rng.permutation(2)
        det = np.zeros((2, points.shape[2], 3))
        det[:, :, :2] = truth[order] + rng.normal(0, 2.0, truth.shape)
        det[:, :, 2] = np.where(
            np.isfinite(det[:, :, 0]) & (rng.random(det.shape[:2]) > 0.05), 0.9, 0
        )
        det[:, :, :2] = np.nan_to_num(det[:, :, :2])
        for a in tracker.update(det, frame * FRAME_NS):
            if not a.detected:
                continue
            i = int(
                np.argmin(
                    [np.nanmean(np.hypot(*(a.keypoints[:, :2] - det[j, :, :2]).T)) for j in (0, 1)]
                )
            )
            true = names[order[i]]
            switches += owner.setdefault(a.track_id, true) != true
            owner[a.track_id] = true
    assert switches == 0
    assert tracker.tracks_opened == 2


def two_animal_pose(female: tuple[float, float], male: tuple[float, float]) -> np.ndarray:
    """Identity-channel pose rows [2*K, 3]: female's K rows, then the male's."""
    return np.concatenate([animal(*female), animal(*male)])


def test_the_live_stage_undoes_a_short_identity_swap_by_the_network():
    from realtime_pose.inference.tracking import IdentityChannelTracking

    stage = IdentityChannelTracking(["female", "male"], K, max_distance_px=60)
    for frame in range(30):
        female, male = (100 + frame, 100.0), (200 + frame, 100.0)
        pose = two_animal_pose(female, male)
        if 10 <= frame < 13:  # the network calls each fly by the other's name
            pose = two_animal_pose(male, female)
        out = stage.update(pose, frame * FRAME_NS)
        assert out[1, 0] == pytest.approx(female[0]) and out[K + 1, 0] == pytest.approx(male[0])
    assert stage.swapped_frames == 3 and stage.tracker.renames == 0


def test_a_hidden_animal_is_not_drawn_twice():
    from realtime_pose.inference.tracking import IdentityChannelTracking

    stage = IdentityChannelTracking(["female", "male"], K, max_distance_px=60)
    stage.update(two_animal_pose((100, 100), (200, 100)), 0)
    pose = two_animal_pose((200, 100), (0, 0))  # the female's maps found the male; no male maps
    pose[K:, 2] = 0.0
    out = stage.update(pose, FRAME_NS)
    assert out[K + 1, 0] == pytest.approx(200) and out[K + 1, 2] > 0.5  # the male, named right
    assert (out[:K, 2] == 0).all()  # the female is not seen


def test_lasting_identity_evidence_renames_tracks_motion_put_on_the_wrong_animal():
    tracker = IdentityTracker(K, 2, names=["female", "male"], identity_memory_frames=5)
    wrong = np.array([[0.0, 1.0], [1.0, 0.0]])  # first frame: both votes wrong
    right = np.eye(2)
    poses = np.stack([animal(100, 100), animal(300, 100)])  # detection 0 is the female
    named = tracker.update(poses, 0, wrong)
    assert {a.detection: a.name for a in named} == {0: "male", 1: "female"}
    history = []
    for frame in range(1, 12):
        named = tracker.update(poses, frame * FRAME_NS, right)
        history.append({a.detection: a.name for a in named}[0])
    assert history[0] == "male" and history[-1] == "female"  # renamed once the evidence turned
    assert tracker.renames == 2 and tracker.tracks_opened == 2
