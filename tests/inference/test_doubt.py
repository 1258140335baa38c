"""Doubt detection: each reason on hand-computed poses, and silence on a steady one."""

from __future__ import annotations

import numpy as np
import pytest

from realtime_pose.bundle import BundleMeta
from realtime_pose.inference.doubt import DoubtDetector, Reason
from tests.builders import marker_meta

MS = 1_000_000
KP = ["snout", "leftear", "rightear", "tailbase"]


def pose(xy, likelihood=0.9) -> np.ndarray:
    xy = np.asarray(xy, dtype=np.float32).reshape(-1, 2)
    out = np.empty((len(xy), 3), np.float32)
    out[:, :2] = xy
    out[:, 2] = likelihood
    return out


def steady(n: int = 4, t_ms: float = 0.0) -> np.ndarray:
    """Four keypoints 10 px apart along x, shifted right 1 px per ms (constant velocity)."""
    return pose([[100 + 10 * i + t_ms, 50] for i in range(n)])


def test_a_steadily_moving_confident_pose_raises_nothing():
    detector = DoubtDetector(
        KP, distance_pairs=[(0, 1)], distance_min_px=[10.0], distance_max_px=[10.0]
    )
    for frame in range(200):
        t_ms = frame * 10
        assert detector.update(steady(t_ms=t_ms), t_ms * MS) == 0, frame
        assert not detector.flagged.any()
    assert detector.confident.all()


def test_likelihood_drop_after_confident_frames_flags_that_keypoint_once():
    detector = DoubtDetector(KP, confident_frames=3, jump_px=None)
    p = steady()
    for frame in range(3):
        assert detector.update(p, frame * 10 * MS) == 0
    p[2, 2] = 0.49
    mask = detector.update(p, 30 * MS)
    assert mask == Reason.LIKELIHOOD_DROP
    assert detector.flagged.tolist() == [False, False, True, False]
    assert detector.flagged_keypoints() == ["rightear"]
    assert detector.reasons(mask) == ["likelihood_drop"]
    # still low: a drop is the transition, not the state
    assert detector.update(p, 40 * MS) == 0
    assert not detector.flagged.any()


def test_likelihood_drop_needs_confident_frames_in_a_row():
    detector = DoubtDetector(KP, confident_frames=3, jump_px=None)
    p = steady()
    low = p.copy()
    low[0, 2] = 0.1
    for t, q in enumerate([p, low, p, p, low]):  # only two confident frames before the drop
        assert detector.update(q, t * 10 * MS) == 0
    for t in range(5, 8):
        detector.update(p, t * 10 * MS)
    assert detector.update(low, 80 * MS) == Reason.LIKELIHOOD_DROP
    # a NaN likelihood (or position) is not confident either
    detector = DoubtDetector(KP, confident_frames=1, jump_px=None)
    detector.update(p, 0)
    nan = p.copy()
    nan[3, 0] = np.nan
    assert detector.update(nan, 10 * MS) == Reason.LIKELIHOOD_DROP
    assert detector.flagged_keypoints() == ["tailbase"]


def test_jump_is_measured_from_the_constant_velocity_extrapolation_at_capture_times():
    detector = DoubtDetector(KP, jump_px=30.0)
    # snout at 1 px/ms: x=0 at t=0, x=10 at t=10 ms; frames 20-40 ms were skipped
    detector.update(pose([[0, 0], [0, 20], [0, 40], [0, 60]]), 0)
    detector.update(pose([[10, 0], [0, 20], [0, 40], [0, 60]]), 10 * MS)
    # at t=50 ms the extrapolation says x=50: 40 px from the last position is no jump
    assert detector.update(pose([[50, 0], [0, 20], [0, 40], [0, 60]]), 50 * MS) == 0
    # at t=60 ms it says x=60; x=91 is 31 px away
    mask = detector.update(pose([[91, 0], [0, 20], [0, 40], [0, 60]]), 60 * MS)
    assert mask == Reason.JUMP
    assert detector.flagged_keypoints() == ["snout"]


def test_jump_within_the_threshold_and_stale_history_raise_nothing():
    detector = DoubtDetector(KP, jump_px=30.0)
    detector.update(pose([[0, 0], [0, 20], [0, 40], [0, 60]]), 0)
    detector.update(pose([[0, 0], [0, 20], [0, 40], [0, 60]]), 10 * MS)
    assert detector.update(pose([[18, 24], [0, 20], [0, 40], [0, 60]]), 20 * MS) == 0  # 30 px
    # the last two confident positions are 0.49 s and 0.51 s old: not extrapolated
    detector = DoubtDetector(KP, jump_px=30.0)
    detector.update(pose([[0, 0], [0, 20], [0, 40], [0, 60]]), 0)
    detector.update(pose([[0, 0], [0, 20], [0, 40], [0, 60]]), 20 * MS)
    assert detector.update(pose([[200, 0], [0, 20], [0, 40], [0, 60]]), 510 * MS) == 0
    # with jump_px=None there is no jump check at all
    detector = DoubtDetector(KP, jump_px=None)
    for t, x in enumerate([0, 0, 500]):
        assert detector.update(pose([[x, 0], [0, 20], [0, 40], [0, 60]]), t * MS) == 0


def test_after_a_jump_the_velocity_starts_afresh():
    detector = DoubtDetector(KP, jump_px=30.0)
    rest = [[0, 20], [0, 40], [0, 60]]
    detector.update(pose([[0, 0], *rest]), 0)
    detector.update(pose([[0, 0], *rest]), 10 * MS)
    assert detector.update(pose([[100, 0], *rest]), 20 * MS) == Reason.JUMP
    # only one position since the jump: nothing to extrapolate, so no second flag from a
    # 100 px/frame "velocity" that never was
    assert detector.update(pose([[100, 0], *rest]), 30 * MS) == 0
    assert detector.update(pose([[100, 0], *rest]), 40 * MS) == 0
    # a one-frame glitch is flagged once: the return to the track is no second jump
    glitch = DoubtDetector(KP, jump_px=30.0)
    for t, x in enumerate([0, 10, 20, 90, 40, 50, 60, 70]):
        mask = glitch.update(pose([[x, 0], *rest]), t * 10 * MS)
        assert mask == (Reason.JUMP if x == 90 else 0), (t, x)
    # a jump of an unconfident keypoint is not checked
    assert detector.update(pose([[300, 0], *rest], likelihood=[0.1, 0.9, 0.9, 0.9]), 50 * MS) == (
        Reason.LIKELIHOOD_DROP
    )


def test_distance_outside_the_widened_label_range_flags_both_keypoints():
    # labels: 10-20 px; margin 0.25: allowed 7.5-25 px
    detector = DoubtDetector(
        KP,
        jump_px=None,
        distance_pairs=[(0, 1)],
        distance_min_px=[10.0],
        distance_max_px=[20.0],
        distance_margin=0.25,
    )
    assert detector.update(pose([[0, 0], [24.9, 0], [0, 99], [0, 200]]), 0) == 0
    assert detector.update(pose([[0, 0], [7.6, 0], [0, 99], [0, 200]]), 1) == 0
    assert (
        detector.update(pose([[0, 0], [18, 18], [0, 99], [0, 200]]), 2) == Reason.DISTANCE
    )  # 25.5
    assert detector.flagged_keypoints() == ["snout", "leftear"]
    assert detector.update(pose([[0, 0], [7.4, 0], [0, 99], [0, 200]]), 3) == Reason.DISTANCE
    # an unconfident keypoint's distance is not checked (only its drop counts)
    far = pose([[0, 0], [90, 0], [0, 99], [0, 200]], likelihood=[0.9, 0.2, 0.9, 0.9])
    assert detector.update(far, 4) == Reason.LIKELIHOOD_DROP


def two_animals(a, b, likelihood_a=0.9, likelihood_b=0.9) -> np.ndarray:
    return np.concatenate([pose(a, likelihood_a), pose(b, likelihood_b)])


ANIMALS_KP = [f"{a}/{b}" for a in ("female", "male") for b in ("snout", "ear", "tail")]
FEMALE = [[0, 0], [10, 0], [20, 0]]
MALE = [[100, 0], [110, 0], [120, 0]]


def test_distance_pairs_hold_within_each_animal():
    detector = DoubtDetector(
        ANIMALS_KP,
        animals=2,
        jump_px=None,
        distance_pairs=[(0, 2)],
        distance_min_px=[20.0],
        distance_max_px=[20.0],
        distance_margin=0.1,
    )
    assert detector.update(two_animals(FEMALE, MALE), 0) == 0
    stretched = [[100, 0], [110, 0], [130, 0]]  # male snout-tail 30 px > 22 px
    assert detector.update(two_animals(FEMALE, stretched), 1) == Reason.DISTANCE
    assert detector.flagged_keypoints() == ["male/snout", "male/tail"]


def test_track_lost_and_reborn_with_several_animals():
    detector = DoubtDetector(ANIMALS_KP, animals=2, jump_px=None, confident_frames=1000)
    assert detector.update(two_animals(FEMALE, MALE), 0) == 0
    # one of the male's three keypoints still confident: not lost yet
    assert detector.update(two_animals(FEMALE, MALE, likelihood_b=[0.1, 0.9, 0.1]), 1) == 0
    mask = detector.update(two_animals(FEMALE, MALE, likelihood_b=0.1), 2)
    assert mask == Reason.TRACK_LOST
    assert detector.flagged_keypoints() == ["male/snout", "male/ear", "male/tail"]
    assert detector.update(two_animals(FEMALE, MALE, likelihood_b=0.1), 3) == 0
    # one of three is less than half: not back yet; two of three is
    assert detector.update(two_animals(FEMALE, MALE, likelihood_b=[0.9, 0.1, 0.1]), 4) == 0
    mask = detector.update(two_animals(FEMALE, MALE, likelihood_b=[0.9, 0.1, 0.9]), 5)
    assert mask == Reason.TRACK_REBORN
    assert detector.flagged_keypoints() == ["male/snout", "male/tail"]
    assert detector.reasons(mask) == ["track_reborn"]


def test_an_animal_never_seen_is_neither_lost_nor_reborn():
    detector = DoubtDetector(ANIMALS_KP, animals=2, jump_px=None)
    for t in range(3):
        assert detector.update(two_animals(FEMALE, MALE, likelihood_b=0.0), t) == 0
    assert detector.update(two_animals(FEMALE, MALE), 3) == 0
    # one animal: a lost track is no reason of its own (its drops are, and being uncertain)
    single = DoubtDetector(KP, jump_px=None, confident_frames=1000, uncertain_share=None)
    single.update(steady(), 0)
    assert single.update(pose(steady()[:, :2], 0.0), 1) == 0


def test_a_pose_the_network_is_unsure_of_throughout_is_uncertain():
    detector = DoubtDetector(KP, jump_px=None, uncertain_share=0.5)
    unsure = steady()
    unsure[:, 2] = [0.9, 0.1, 0.2, 0.9]  # two of four below the cut-off, never confident before
    assert detector.update(steady(), 0) == 0
    for t in (1, 2):  # no drop after the first frame (they were not confident since), still unsure
        mask = detector.update(unsure, t)
        assert DoubtDetector.reasons(mask)[-1] == "uncertain"
        assert detector.flagged_keypoints() == ["leftear", "rightear"]
    unsure[1, 2] = 0.9  # one of four: not enough
    assert detector.update(unsure, 3) == 0
    several = DoubtDetector(ANIMALS_KP, animals=2, jump_px=None)  # tracks cover several animals
    assert several.update(two_animals(FEMALE, MALE, likelihood_b=0.0), 0) == 0
    with pytest.raises(ValueError, match="uncertain_share"):
        DoubtDetector(KP, uncertain_share=0.0)


def test_several_reasons_at_once_and_reset():
    detector = DoubtDetector(
        KP,
        confident_frames=1,
        jump_px=5.0,
        distance_pairs=[(2, 3)],
        distance_min_px=[10.0],
        distance_max_px=[10.0],
        distance_margin=0.0,
    )
    detector.update(steady(), 0)
    detector.update(steady(), 10 * MS)
    p = steady()
    p[0, 2] = 0.0  # drop
    p[1, 0] += 50  # jump
    p[3, 0] += 1  # distance 11 px
    mask = detector.update(p, 20 * MS)
    assert mask == Reason.LIKELIHOOD_DROP | Reason.JUMP | Reason.DISTANCE
    assert detector.reasons(mask) == ["likelihood_drop", "jump", "distance"]
    assert detector.flagged.all()
    detector.reset()
    assert detector.update(p, 30 * MS) == Reason.DISTANCE  # no history: no drop, no jump


def test_from_bundle_meta_reads_animals_and_label_distances():
    meta = BundleMeta.model_validate(
        marker_meta(
            keypoints=ANIMALS_KP,
            skeleton=[],
            animals={"names": ["female", "male"], "bodyparts": ["snout", "ear", "tail"]},
            label_distances={
                "pairs": [["snout", "tail"], ["ear", "tail"]],
                "min_px": [18.0, 8.0],
                "max_px": [22.0, 12.0],
                "labelled_frames": 40,
            },
        )
    )
    detector = DoubtDetector.from_bundle_meta(meta, jump_px=None, distance_margin=0.0)
    assert detector.animals == 2
    assert detector.keypoints == ANIMALS_KP
    assert detector.pairs.tolist() == [[0, 2], [1, 2]]
    assert detector.distance_max_px.tolist() == [22.0, 12.0]
    assert detector.update(two_animals(FEMALE, MALE), 0) == 0
    assert detector.update(two_animals(FEMALE, [[100, 0], [105, 0], [120, 0]]), 1) == (
        Reason.DISTANCE
    )
    assert detector.flagged_keypoints() == ["male/ear", "male/tail"]
    # a one-animal bundle without label distances
    plain = DoubtDetector.from_bundle_meta(
        BundleMeta.model_validate(marker_meta()), min_likelihood=0.7
    )
    assert plain.animals == 1 and plain.pairs.shape == (0, 2) and plain.min_likelihood == 0.7


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"animals": 3}, "divide"),
        ({"confident_frames": 0}, "confident_frames"),
        ({"jump_px": 0.0}, "jump_px"),
        ({"distance_pairs": [(0, 4)], "distance_min_px": [1], "distance_max_px": [2]}, "0..3"),
        ({"distance_pairs": [(0, 1)], "distance_min_px": [3], "distance_max_px": [2]}, "min"),
        ({"distance_pairs": [(0, 1)], "distance_min_px": [1, 2], "distance_max_px": [3]}, "one"),
        ({"distance_pairs": [(0, 1)]}, "need distance_min_px"),
        ({"distance_margin": 1.0}, "distance_margin"),
    ],
)
def test_bad_settings_are_refused(kwargs, message):
    with pytest.raises(ValueError, match=message):
        DoubtDetector(KP, **kwargs)


def test_a_pose_of_the_wrong_shape_is_refused():
    with pytest.raises(ValueError, match=r"\[4, 3\]"):
        DoubtDetector(KP).update(np.zeros((3, 3), np.float32), 0)
