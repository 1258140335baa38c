"""Multi-animal evaluation on hand-built poses with known answers."""

import numpy as np
import pytest

from realtime_pose.trainers.animal_evaluation import (
    best_assignment,
    identity_correct,
    identity_switches,
    instance_recall,
    named_errors,
)


def scene(frames: int = 6) -> np.ndarray:
    """Two animals of three keypoints, 100 px apart: labels [F, 2, 3, 2]."""
    truth = np.zeros((frames, 2, 3, 2))
    truth[:, 0] = [[10, 10], [20, 10], [30, 10]]
    truth[:, 1] = [[110, 10], [120, 10], [130, 10]]
    return truth


def predict(truth: np.ndarray, swapped_frames=(), noise_px: float = 1.0) -> np.ndarray:
    pred = np.ones((*truth.shape[:3], 3))
    pred[..., :2] = truth + noise_px
    for f in swapped_frames:
        pred[f] = pred[f, ::-1]
    return pred


def test_names_right_everywhere_but_in_swapped_frames():
    truth = scene()
    pred = predict(truth, swapped_frames=(2, 3))
    assert identity_correct(pred, truth).tolist() == [True, True, False, False, True, True]
    assert identity_switches(pred, truth) == 2  # into the swap and back out
    assert best_assignment(pred, truth)[2].tolist() == [1, 0]
    errors = named_errors(pred, truth)
    assert errors[0] == pytest.approx(np.full((2, 3), np.sqrt(2)))
    assert errors[2, 0, 0] == pytest.approx(np.hypot(101, 1))


def test_recall_counts_animals_found_whatever_their_name():
    truth = scene(4)
    pred = predict(truth, swapped_frames=(1,))
    assert instance_recall(pred, truth, radius_px=5) == 1.0
    pred[3, 0, :2, 2] = 0.1  # two of three keypoints below the cut-off: animal 0 not found
    assert instance_recall(pred, truth, radius_px=5) == pytest.approx(7 / 8)
    truth[0, 1] = np.nan  # an unlabelled animal does not count
    assert instance_recall(pred, truth, radius_px=5) == pytest.approx(6 / 7)


def test_low_confidence_keypoints_do_not_decide_the_names():
    truth = scene(1)
    pred = predict(truth, swapped_frames=(0,))
    pred[0, :, :, 2] = 0.1
    assert best_assignment(pred, truth).tolist() == [[-1, -1]]
    assert not identity_correct(pred, truth)[0]
