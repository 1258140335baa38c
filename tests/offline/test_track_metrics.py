"""tracking_scores: IDF1, switches, MOTA, recall and precision from motmetrics on made-up tracks."""

from __future__ import annotations

import json

import numpy as np
import pytest

pytest.importorskip("motmetrics")

from realtime_pose.offline.track_metrics import (
    keypoint_distance_matrix,
    tracking_scores,
    tracks_to_slots,
)

F, K = 20, 3


def animal(cx: float, cy: float) -> np.ndarray:
    """Three keypoints in a row, centred at (cx, cy): [K, 2]."""
    return np.array([[cx - 5, cy], [cx, cy], [cx + 5, cy]], dtype=np.float64)


def two_walkers() -> np.ndarray:
    """Truth [F, 2, K, 2]: two animals 200 px apart, walking right."""
    return np.stack(
        [np.stack([animal(100 + 3 * f, 100), animal(100 + 3 * f, 300)]) for f in range(F)]
    )


def as_slots(truth: np.ndarray, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Slot rows [F, S, K, 3] equal to the truth (likelihood 1), with the given ids [F, S]."""
    rows = np.concatenate([truth, np.ones((*truth.shape[:3], 1))], axis=3)
    return rows, np.asarray(ids, dtype=np.int64)


def test_perfect_tracks_score_perfectly():
    truth = two_walkers()
    rows, ids = as_slots(truth, np.tile([7, 9], (F, 1)))
    scores = tracking_scores(truth, rows, ids, match_px=10)
    assert scores == {
        "idf1": 1.0,
        "id_switches": 0,
        "mota": 1.0,
        "recall": 1.0,
        "precision": 1.0,
        "num_frames": F,
        "num_true_animals": 2,
        "num_tracks": 2,
        "num_matches": 2 * F,
        "num_misses": 0,
        "num_false_positives": 0,
    }
    json.dumps(scores)  # plain numbers


def test_a_swap_halfway_is_a_switch_for_each_animal_and_halves_idf1():
    truth = two_walkers()
    ids = np.tile([0, 1], (F, 1))
    ids[F // 2 :] = [1, 0]  # from halfway, the tracks follow each other's animal
    scores = tracking_scores(truth, *as_slots(truth, ids), match_px=10)
    assert scores["id_switches"] == 2  # each true animal changed track once
    assert scores["idf1"] == pytest.approx(0.5)
    assert scores["recall"] == 1.0 and scores["num_tracks"] == 2


def test_one_track_handed_over_halfway_is_one_switch():
    truth = two_walkers()
    ids = np.tile([0, 1], (F, 1))
    ids[F // 2 :, 0] = 2  # animal 0's track ends, a new one takes over
    scores = tracking_scores(truth, *as_slots(truth, ids), match_px=10)
    assert scores["id_switches"] == 1
    assert scores["idf1"] == pytest.approx(0.75)  # half of one animal's frames on its track
    assert scores["num_tracks"] == 3


def test_a_missed_animal_lowers_recall_and_a_track_on_nothing_lowers_precision():
    truth = two_walkers()
    rows, ids = as_slots(truth, np.tile([0, 1], (F, 1)))
    ids[:5, 1] = -1  # animal 1 not tracked in the first 5 frames
    rows[:5, 1] = np.nan
    missed = tracking_scores(truth, rows, ids, match_px=10)
    assert missed["recall"] == pytest.approx(35 / 40) and missed["precision"] == 1.0
    assert missed["num_misses"] == 5 and missed["id_switches"] == 0

    extra = np.concatenate([rows, rows[:, :1]], axis=1)  # a third slot ...
    extra[:, 2, :, 1] += 500  # ... 500 px from any animal
    extra_ids = np.concatenate([ids, np.full((F, 1), 5)], axis=1)
    scores = tracking_scores(truth, extra, extra_ids, match_px=10)
    assert scores["precision"] == pytest.approx(35 / 55) and scores["recall"] == missed["recall"]
    assert scores["num_false_positives"] == F and scores["mota"] < missed["mota"]


def test_a_track_beyond_match_px_is_a_miss_and_a_false_positive():
    truth = two_walkers()[:, :1]
    rows, ids = as_slots(truth, np.zeros((F, 1)))
    rows[:, :, :, 0] += 12.0
    assert tracking_scores(truth, rows, ids, match_px=15)["recall"] == 1.0
    scores = tracking_scores(truth, rows, ids, match_px=10)
    assert scores["recall"] == 0.0 and scores["precision"] == 0.0
    assert scores["num_misses"] == F and scores["num_false_positives"] == F


def test_absent_animals_empty_slots_and_coasting_rows():
    truth = two_walkers()
    truth[:, 1] = np.nan  # animal 1 never there
    rows, ids = as_slots(two_walkers(), np.tile([0, -1], (F, 1)))
    rows[:, 0, :, 2] = 0.0  # track 0 reported from its prediction throughout
    scores = tracking_scores(truth, rows, ids, match_px=10)
    assert scores["num_true_animals"] == 1 and scores["num_tracks"] == 1
    assert scores["precision"] == 1.0  # the empty slot's rows are not a track
    assert tracking_scores(truth, rows, ids, match_px=10, min_likelihood=0.5)["recall"] == 0.0


def test_no_true_animal_gives_undefined_ratios_not_nan():
    truth = np.full((3, 1, K, 2), np.nan)
    rows = np.full((3, 1, K, 3), np.nan)
    scores = tracking_scores(truth, rows, np.full((3, 1), -1), match_px=10)
    assert scores["recall"] is None and scores["idf1"] is None
    assert scores["num_frames"] == 3 and scores["num_true_animals"] == 0
    json.dumps(scores, allow_nan=False)


def test_distance_is_the_mean_over_keypoints_both_have():
    truth = np.stack([animal(0, 0), animal(100, 0)])
    pose = np.concatenate([animal(0, 4), np.ones((K, 1))], axis=1)
    pose[0, :2] = [50.0, 50.0]
    pose[2, :2] = np.nan
    truth[1, 1] = np.nan  # the second animal's centre unlabelled
    d = keypoint_distance_matrix(truth, pose[None], match_px=80)
    assert d[0, 0] == pytest.approx((np.hypot(55, 50) + 4) / 2)
    assert d[1, 0] == pytest.approx(np.hypot(45, 50))  # only keypoint 0 in common
    assert np.isnan(keypoint_distance_matrix(truth, pose[None], match_px=30)).all()


def test_tracks_to_slots_lays_out_per_frame_track_lists():
    frames = [
        [(3, animal(0, 0)), (4, np.concatenate([animal(9, 9), np.full((K, 1), 0.5)], axis=1))],
        [],
        [(4, animal(1, 1))],
    ]
    rows, ids = tracks_to_slots(frames, K)
    assert rows.shape == (3, 2, K, 3) and ids.tolist() == [[3, 4], [-1, -1], [4, -1]]
    assert rows[0, 0, 1].tolist() == [0.0, 0.0, 1.0] and rows[0, 1, 1, 2] == 0.5
    assert np.isnan(rows[1, :, :, :2]).all() and (rows[1, :, :, 2] == 0).all()
    with pytest.raises(ValueError, match="frame 0, track 1"):
        tracks_to_slots([[(1, np.zeros((K + 1, 2)))]], K)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"truth": np.zeros((F, 2, K))}, "truth must be"),
        ({"rows": np.zeros((F, 2, K, 2))}, "rows must be"),
        ({"track_ids": np.zeros((F, 3))}, "track_ids must be"),
        ({"truth": np.zeros((F + 1, 2, K, 2))}, "as many frames"),
        ({"match_px": 0.0}, "match_px"),
    ],
)
def test_bad_inputs_are_refused(change, message):
    truth = two_walkers()
    rows, ids = as_slots(truth, np.tile([0, 1], (F, 1)))
    arguments = {"truth": truth, "rows": rows, "track_ids": ids, "match_px": 10.0, **change}
    with pytest.raises(ValueError, match=message):
        tracking_scores(**arguments)
