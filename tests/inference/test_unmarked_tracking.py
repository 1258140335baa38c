"""UnmarkedTracking: look-alike animals through crossings, occlusions, spurious detections.

Scenes are hand-made trajectories of a three-keypoint animal (a vertical bar: top, centre,
bottom) at 25 fps; identity switches are counted by :func:`tracking_scores` (motmetrics)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from realtime_pose.inference.tracking import (
    IdentityTracker,
    LastPositionPredictor,
    log_size_ratio,
    pair_distances_px,
    pose_distance_px,
    pose_distances_px,
)
from realtime_pose.inference.unmarked_tracking import UnmarkedTracking, unmarked_tracking_for
from realtime_pose.offline.track_metrics import tracking_scores

FRAME_NS = 40_000_000  # 25 fps
K = 3
MATCH_PX = 20.0
SPEED_PX = 5.0  # px per frame: 125 px/s
EMPTY = np.empty((0, K, 3))


def body(cx: float, cy: float, half_length: float = 6.0, likelihood: float = 0.9) -> np.ndarray:
    """A vertical three-keypoint animal centred at (cx, cy): [K, 3]."""
    pose = np.empty((K, 3))
    pose[:, 0] = cx
    pose[:, 1] = cy + np.array([-half_length, 0.0, half_length])
    pose[:, 2] = likelihood
    return pose


def run(
    stage: UnmarkedTracking,
    truth: list[list[np.ndarray | None]],
    seen: list[list[bool]] | None = None,
    seed: int = 0,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Feed each frame's animals (``seen[f][a]`` False: not detected) in a shuffled order.

    Returns truth [F, A, K, 2] (NaN where absent), rows [F, S, K, 3], track_ids [F, S].
    """
    rng = np.random.default_rng(seed)
    A = len(truth[0])
    true_xy = np.full((len(truth), A, K, 2), np.nan)
    all_rows, all_ids = [], []
    for f, animals in enumerate(truth):
        detections = []
        for a, pose in enumerate(animals):
            if pose is None:
                continue
            true_xy[f, a] = pose[:, :2]
            if seen is None or seen[f][a]:
                detections.append(pose)
        order = rng.permutation(len(detections))
        batch = np.array([detections[i] for i in order], dtype=np.float32).reshape(-1, K, 3)
        rows, ids = stage.update(batch, f * FRAME_NS)
        all_rows.append(rows.reshape(stage.max_animals, K, 3).copy())
        all_ids.append(ids.copy())
    return true_xy, np.array(all_rows), np.array(all_ids)


def head_on(frames: int = 45, meet: float = 20.0, **sizes: float) -> list[list[np.ndarray | None]]:
    """Two animals on one line walking toward each other at constant speed; at frame ``meet``
    their centres meet (a half-integer ``meet``: they cross between two frames)."""
    a_half, b_half = sizes.get("a", 6.0), sizes.get("b", 6.0)
    return [
        [
            body(200 + SPEED_PX * (f - meet), 100, a_half),
            body(200 - SPEED_PX * (f - meet), 100, b_half),
        ]
        for f in range(frames)
    ]


def bounce(frames: int = 45, small: float = 5.0, big: float = 10.0) -> list[list[np.ndarray]]:
    """Two animals that walk toward each other, touch at frame 20 and turn back: up to the
    touch, the same data as a crossing (motion alone cannot tell)."""
    return [
        [
            body(200 - SPEED_PX * abs(f - 20), 100, small),
            body(200 + SPEED_PX * abs(f - 20), 100, big),
        ]
        for f in range(frames)
    ]


# crossings --------------------------------------------------------------------------------------


MERGED = [[True, f != 20] for f in range(45)]
"""At frame 20 the two poses coincide and the decoder sees one animal."""


@pytest.mark.parametrize(
    ("scene", "seen"),
    [(head_on(meet=20.0), MERGED), (head_on(meet=20.5), None)],
    ids=["poses-coincide-one-detection", "cross-between-frames"],
)
def test_velocity_carries_each_track_through_a_head_on_crossing(scene, seen):
    truth, rows, ids = run(UnmarkedTracking(K, 2, motion="kalman"), scene, seen)
    scores = tracking_scores(truth, rows, ids, MATCH_PX)
    assert scores["id_switches"] == 0
    assert scores["num_tracks"] == 2
    # each track kept its slot: one id per slot from birth to the end
    assert [set(ids[2:, s]) for s in (0, 1)] in ([{0}, {1}], [{1}, {0}])

    truth, rows, ids = run(UnmarkedTracking(K, 2, motion="last_position"), scene, seen)
    scores = tracking_scores(truth, rows, ids, MATCH_PX)
    assert scores["id_switches"] >= 1  # the last positions lie past each other: a swap
    assert scores["idf1"] < 0.7


def test_body_size_keeps_a_small_and_a_large_animal_apart_where_motion_cannot():
    """Kalman motion predicts a bounce as a crossing; sizes 2x apart settle it."""
    truth, rows, ids = run(UnmarkedTracking(K, 2), bounce())  # size_weight_px: the default
    assert tracking_scores(truth, rows, ids, MATCH_PX)["id_switches"] == 0

    truth, rows, ids = run(UnmarkedTracking(K, 2, size_weight_px=0.0), bounce())
    assert tracking_scores(truth, rows, ids, MATCH_PX)["id_switches"] >= 1


def test_appearance_descriptors_keep_look_alikes_apart_where_motion_cannot():
    scene = bounce(small=6.0, big=6.0)
    descriptors = {0: np.array([1.0, 0.1]), 1: np.array([0.1, 1.0])}

    def switches(weight: float) -> int:
        stage = UnmarkedTracking(K, 2, appearance_weight_px=weight)
        truth = np.full((len(scene), 2, K, 2), np.nan)
        all_rows, all_ids = [], []
        for f, animals in enumerate(scene):
            order = [1, 0] if f % 2 else [0, 1]
            batch = np.stack([animals[a] for a in order])
            rows, ids = stage.update(batch, f * FRAME_NS, np.stack([descriptors[a] for a in order]))
            truth[f] = np.stack(animals)[:, :, :2]
            all_rows.append(rows.reshape(2, K, 3).copy())
            all_ids.append(ids.copy())
        return tracking_scores(truth, np.array(all_rows), np.array(all_ids), MATCH_PX)[
            "id_switches"
        ]

    assert switches(30.0) == 0
    assert switches(0.0) >= 1


def test_a_descriptor_with_a_nan_says_nothing_and_a_wrong_shape_is_refused():
    stage = UnmarkedTracking(K, 2, min_hits=1, appearance_weight_px=30.0)
    animals = np.stack([body(100, 100), body(110, 100)])
    stage.update(animals, 0, np.array([[1.0, 0.0], [np.nan, 1.0]]))  # track 1: no descriptor
    # the first animal's descriptor is unknown now, the second's looks like track 0's
    _, ids = stage.update(animals[::-1], FRAME_NS, np.array([[1.0, 0.0], [np.nan, 0.0]]))
    assert list(ids) == [0, 1] and list(stage.detections) == [1, 0]  # by position
    with pytest.raises(ValueError, match="one row per detection"):
        stage.update(animals, 2 * FRAME_NS, np.ones((3, 2)))
    with pytest.raises(ValueError, match="call reset"):
        stage.update(animals, 2 * FRAME_NS, np.ones((2, 5)))


# births and deaths ------------------------------------------------------------------------------


def test_an_occluded_animal_coasts_in_its_slot_then_is_closed_when_gone_too_long():
    stage = UnmarkedTracking(K, 2, min_hits=1, max_missed_s=0.5)
    walk = [[body(100 + 4 * f, 100), body(400, 300)] for f in range(80)]
    hidden = set(range(10, 20)) | set(range(40, 56))  # 0.4 s (< 0.5 s), then 0.64 s
    seen = [[f not in hidden, True] for f in range(80)]
    _, rows, ids = run(stage, walk, seen)
    walker = int(ids[0, 0]) if rows[0, 0, 1, 0] < 200 else int(ids[0, 1])
    slot = list(ids[0]).index(walker)
    other = 1 - slot
    for f in range(10, 20):  # coasting: same id, same slot, likelihood 0, near the truth
        assert ids[f, slot] == walker
        assert (rows[f, slot, :, 2] == 0).all()
        assert np.abs(rows[f, slot, 1, 0] - (100 + 4 * f)) < 2.0
    assert ids[20, slot] == walker and (rows[20, slot, :, 2] > 0.5).all()  # found again
    # gone 0.64 s: closed once 0.5 s have passed (frame 52), the slot empty until it is back
    assert ids[51, slot] == walker and ids[52, slot] == -1
    assert np.isnan(rows[52, slot, :, :2]).all() and (rows[52, slot, :, 2] == 0).all()
    assert ids[56, slot] == 2  # back, with a new id (min_hits=1: at once)
    assert set(ids[:, other]) == {1 - walker}  # the other animal never moved
    assert stage.tracks_opened == 3 and stage.tracks_closed == 1
    assert stage.coasting_slot_frames == 10 + 12


def test_a_one_frame_detection_never_gets_a_slot_and_a_real_animal_does_on_its_third_frame():
    stage = UnmarkedTracking(K, 3, min_hits=3)
    for f in range(6):
        animals = [body(100 + f, 100)]
        if f == 1:
            animals.append(body(400, 400))  # a one-frame fragment
        if f >= 3:
            animals.append(body(250, 50 + 4 * f))  # a newcomer from frame 3
        rows, ids = stage.update(np.stack(animals), f * FRAME_NS)
        live = sorted(int(t) for t in ids if t >= 0)
        assert live == ([] if f < 2 else [0] if f < 5 else [0, 1]), f"frame {f}"
        assert not np.any(np.abs(rows[:, 0] - 400) < 1)  # the fragment is nowhere
    assert stage.candidates_dropped == 1 and stage.tracks_opened == 2
    assert stage.unassigned_detections == 1 + 2 + 0 + 1 + 1 + 0  # candidates' detections


def test_a_fragment_beside_a_tracked_animal_does_not_become_a_second_track():
    """Confirmed tracks take their detections first: a candidate opened by a one-frame
    fragment 30 px from an animal must not feed on that animal's detections."""
    stage = UnmarkedTracking(K, 2, min_hits=3)
    for f in range(12):
        animals = [body(100 + 2 * f, 100)]
        if f == 4:
            animals.append(body(130 + 2 * f, 100))
        _, ids = stage.update(np.stack(animals), f * FRAME_NS)
        assert sorted(ids.tolist()) == ([-1, -1] if f < 2 else [-1, 0]), f"frame {f}"
    assert stage.tracks_opened == 1 and stage.candidates_dropped == 1


def test_a_candidate_may_miss_frames_within_the_birth_window_but_not_more():
    stage = UnmarkedTracking(K, 2, min_hits=3, birth_window_frames=5)
    for f, present in enumerate([1, 0, 1, 0, 1]):  # 3 hits in 5 frames
        _, ids = stage.update(body(100, 100)[None] if present else EMPTY, f * FRAME_NS)
    assert list(ids) == [0, -1]
    stage = UnmarkedTracking(K, 2, min_hits=3, birth_window_frames=5)
    for f, present in enumerate([1, 0, 0, 1, 0, 1, 0]):  # never 3 hits in 5 frames
        _, ids = stage.update(body(100, 100)[None] if present else EMPTY, f * FRAME_NS)
        assert list(ids) == [-1, -1]
    assert stage.candidates_dropped == 1


def test_never_more_tracks_than_slots_and_ids_are_never_reused():
    stage = UnmarkedTracking(K, 2, min_hits=1, max_missed_s=0.1)
    crowd = np.stack([body(100, 100), body(200, 100), body(300, 100)])
    rows, ids = stage.update(crowd, 0)
    assert ids.dtype == np.int64 and rows.dtype == np.float32 and rows.shape == (2 * K, 3)
    assert list(ids) == [0, 1] and stage.tracks_opened == 2
    # the first animal leaves: its slot empties, the second keeps its own slot
    t = 0
    for _ in range(4):
        t += FRAME_NS
        rows, ids = stage.update(crowd[1:2], t)
    assert list(ids) == [-1, 1] and stage.slot_of(1) == 1 and stage.slot_of(0) is None
    # a newcomer takes the freed slot with a new id
    t += FRAME_NS
    _, ids = stage.update(np.stack([crowd[1], body(50, 300)]), t)
    assert list(ids) == [2, 1]
    assert list(stage.detections) == [1, 0]  # which input row each slot holds
    stage.reset()
    assert list(stage.track_ids) == [-1, -1]
    _, ids = stage.update(crowd[:1], t + FRAME_NS)
    assert list(ids) == [3, -1]  # after reset() too, ids count on


def test_returned_buffers_are_reused():
    stage = UnmarkedTracking(K, 2, min_hits=1)
    rows_a, ids_a = stage.update(body(100, 100)[None], 0)
    rows_b, ids_b = stage.update(body(101, 100)[None], FRAME_NS)
    assert rows_a is rows_b and ids_a is ids_b
    assert rows_b[1, 0] == pytest.approx(101)
    assert np.isnan(rows_b[K:, :2]).all() and (rows_b[K:, 2] == 0).all()


def test_keypoints_the_animal_lacks_and_empty_frames_are_handled():
    stage = UnmarkedTracking(K, 2, min_hits=1)
    stage.update(np.stack([body(100, 100), body(300, 100)]), 0)
    partial = body(102, 100)
    partial[2] = (np.nan, np.nan, 0.0)  # the tail is missing
    nothing = np.full((K, 3), np.nan)
    nothing[:, 2] = 0.0  # an "animal" with no keypoint at all: ignored
    rows, ids = stage.update(np.stack([nothing, body(302, 100), partial]), FRAME_NS)
    assert list(ids) == [0, 1] and list(stage.detections) == [2, 1]
    assert np.isnan(rows[2, :2]).all() and rows[1, 0] == pytest.approx(102)
    assert stage.tracks_opened == 2 and stage.unassigned_detections == 0
    rows, ids = stage.update(np.empty((0, K, 3), np.float32), 2 * FRAME_NS)  # N = 0
    assert list(ids) == [0, 1] and (rows[:, 2] == 0).all()
    assert rows[1, 0] == pytest.approx(104, abs=1.0)  # coasting on the prediction


def test_four_wandering_animals_keep_their_ids():
    """Noisy, weaving walkers that never meet: no switch, no spurious track."""
    rng = np.random.default_rng(3)
    A, F = 4, 150
    start = rng.uniform(100, 700, (A, 2))
    velocity = rng.normal(0, 3, (A, 2))
    scene = []
    for f in range(F):
        centres = start + velocity * f + 2 * np.sin(f / 7 + np.arange(A))[:, None]
        animal_rows = [body(*c) for c in centres]
        for pose in animal_rows:
            pose[:, :2] += rng.normal(0, 0.7, (K, 2))
        scene.append(animal_rows)
    truth, rows, ids = run(UnmarkedTracking(K, A), scene)
    scores = tracking_scores(truth, rows, ids, MATCH_PX)
    assert scores["id_switches"] == 0 and scores["num_tracks"] == A
    assert scores["idf1"] > 0.98
    json.dumps(scores)


# pieces -----------------------------------------------------------------------------------------


def test_body_size_compares_only_the_keypoint_pairs_both_poses_show():
    whole = pair_distances_px(body(0, 0, 10.0)[None], 0.5)[0]
    np.testing.assert_allclose(whole, [10.0, 20.0, 10.0])  # (0,1), (0,2), (1,2)
    half = body(0, 0, 5.0)
    half[2, 2] = 0.1  # the tail below min_likelihood
    pairs = pair_distances_px(half[None], 0.5)[0]
    assert np.isnan(pairs[1:]).all() and pairs[0] == pytest.approx(5.0)
    assert log_size_ratio(pairs, whole) == pytest.approx(np.log(2.0))
    assert log_size_ratio(whole, whole) == 0.0
    assert np.isnan(log_size_ratio(pairs[[1, 2]], whole[[1, 2]]))


def test_pose_distances_use_the_keypoints_both_poses_show():
    detections = np.stack([body(0, 0), body(0, 0)])
    detections[1, :2] = (np.nan, np.nan, 0.0)  # only the bottom keypoint left
    predictions = np.stack([body(3, 4), body(0, 0)])
    predictions[0, 2, 2] = 0.0  # no confidence in its bottom keypoint
    d = pose_distances_px(detections, predictions, 0.5)
    np.testing.assert_allclose(d, [[5.0, 0.0], [np.inf, 0.0]])
    assert pose_distance_px(detections[0], predictions[0], 0.5) == pytest.approx(5.0)


def test_last_position_predicts_the_last_seen_keypoints():
    predictor = LastPositionPredictor(K, min_likelihood=0.5, max_coast_s=0.1)
    assert np.isnan(predictor.predict(0)[:, :2]).all()
    predictor.update(body(10, 10), 0)
    moved = body(20, 10)
    moved[0, 2] = 0.2  # not seen: keeps the old position
    predictor.update(moved, FRAME_NS)
    out = predictor.predict(2 * FRAME_NS)
    assert list(out[:, 0]) == [10.0, 20.0, 20.0] and (out[:, 2] == 0.9).all()
    assert (predictor.predict(FRAME_NS + 200_000_000)[:, 2] == 0).all()  # stale after 0.1 s


def test_identity_tracker_default_still_opens_tracks_at_once_and_counts_closures():
    tracker = IdentityTracker(K, 2, max_missed_s=0.1)
    assert [a.track_id for a in tracker.update(body(0, 0)[None], 0)] == [0]
    for f in range(1, 5):
        tracker.update(np.empty((0, K, 3)), f * FRAME_NS)
    assert tracker.tracks_closed == 1 and tracker.candidates_dropped == 0


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"motion": "velocity"}, "motion must be one of"),
        ({"min_hits": 0}, "min_hits"),
        ({"min_hits": 2.5}, "min_hits"),
        ({"min_hits": 3, "birth_window_frames": 2}, "birth_window_frames"),
        ({"size_weight_px": -1.0}, "size_weight_px"),
        ({"appearance_weight_px": float("nan")}, "appearance_weight_px"),
        ({"max_missed_s": 0.0}, "max_missed_s"),
        ({"max_distance_px": -5.0}, "max_distance_px"),
        ({"min_likelihood": 1.5}, "min_likelihood"),
        ({"predictor_options": {"gate": 0.0}}, "gate"),
    ],
)
def test_bad_options_are_refused(options, message):
    with pytest.raises(ValueError, match=message):
        UnmarkedTracking(K, 2, **options)


def test_animals_of_the_wrong_shape_are_refused():
    stage = UnmarkedTracking(K, 2)
    with pytest.raises(ValueError, match=r"animals must be \[N, 3, 3\]"):
        stage.update(np.zeros((2, 4, 3)), 0)


def test_the_stage_for_a_bundle_whose_animals_look_alike():
    from realtime_pose.bundle import AnimalsSpec

    grouped = AnimalsSpec(
        decoding="part_affinity",
        names=["animal0", "animal1", "animal2"],
        bodyparts=["head", "body", "tail"],
        edges=[(0, 1), (1, 2)],
    )
    stage = unmarked_tracking_for(type("Meta", (), {"animals": grouped})(), min_hits=1)
    assert stage is not None and (stage.tracker.max_animals, stage.num_bodyparts) == (3, 3)
    named = AnimalsSpec(names=["female", "male"], bodyparts=["head"])
    assert unmarked_tracking_for(type("Meta", (), {"animals": named})()) is None
    assert unmarked_tracking_for(type("Meta", (), {"animals": None})()) is None
