"""Evaluation metrics on hand-made predictions."""

from __future__ import annotations

import numpy as np
import pytest

from realtime_pose.trainers.evaluate import frame_errors, pose_metrics, worst_first


def test_metrics_on_hand_made_predictions():
    labels = np.array(
        [
            [[10.0, 10.0], [20.0, 20.0]],
            [[0.0, 0.0], [np.nan, np.nan]],  # second keypoint not labelled: excluded
        ]
    )
    predictions = np.array(
        [
            [[13.0, 14.0, 0.9], [20.0, 20.0, 0.2]],  # errors 5 (confident) and 0 (not)
            [[0.0, 12.0, 0.95], [99.0, 99.0, 0.99]],  # error 12; the unlabelled one is ignored
        ]
    )
    m = pose_metrics(predictions, labels, ["a", "b"], pcutoff=0.5)
    assert m["n_keypoints"] == 3
    assert m["mean_error_px"] == pytest.approx((5 + 0 + 12) / 3)
    assert m["n_keypoints_pcutoff"] == 2
    assert m["mean_error_px_pcutoff"] == pytest.approx((5 + 12) / 2)
    assert m["pck5"] == pytest.approx(2 / 3)  # 5 <= 5 counts
    assert m["pck10"] == pytest.approx(2 / 3)
    assert m["per_keypoint"]["a"]["mean_error_px"] == pytest.approx(8.5)
    assert m["per_keypoint"]["b"]["n"] == 1 and m["per_keypoint"]["b"]["mean_error_px"] == 0
    assert m["p90_error_px"] == pytest.approx(np.percentile([5, 0, 12], 90))


def test_no_confident_predictions_gives_none_not_nan():
    labels = np.array([[[1.0, 1.0]]])
    m = pose_metrics(np.array([[[1.0, 1.0, 0.1]]]), labels, ["a"], pcutoff=0.5)
    assert m["mean_error_px"] == 0 and m["mean_error_px_pcutoff"] is None


def test_mismatched_shapes_are_refused():
    with pytest.raises(ValueError, match="do not match"):
        pose_metrics(np.zeros((2, 3, 3)), np.zeros((2, 2, 2)), ["a", "b"])


def test_frames_are_ordered_worst_first_and_unlabelled_ones_last():
    labels = np.array(
        [
            [[0.0, 0.0], [10.0, 10.0]],
            [[np.nan, np.nan], [np.nan, np.nan]],  # nothing labelled
            [[0.0, 0.0], [np.nan, np.nan]],  # one keypoint labelled
            [[5.0, 5.0], [5.0, 5.0]],
        ]
    )
    predictions = np.zeros((4, 2, 3))
    predictions[0, :, :2] = [[3.0, 4.0], [10.0, 10.0]]  # errors 5 and 0: mean 2.5
    predictions[2, 0, :2] = [0.0, 9.0]  # 9 on its one labelled keypoint
    predictions[3, :, :2] = [[5.0, 5.0], [5.0, 5.0]]  # exact
    errors = frame_errors(predictions, labels)
    np.testing.assert_allclose(errors[[0, 2, 3]], [2.5, 9.0, 0.0])
    assert np.isnan(errors[1])
    assert worst_first(predictions, labels).tolist() == [2, 0, 3, 1]


def test_a_time_budget_that_reaches_too_few_steps_says_what_would_do():
    from realtime_pose.trainers.train import budget_advice, steps_needed

    assert steps_needed(8) == 10_000 and steps_needed(16) == 5_000
    # the case: 1.25 s/step, 15 minutes: ~720 steps, far short
    projected, advice = budget_advice(1.25, 15 * 60, 60.0, 40, 8)
    assert projected == 40 + int(840 / 1.25)
    assert advice is not None and f"≈ {projected} steps in 15 minutes" in advice
    assert "needs about 10000" in advice and "--minutes 209" in advice
    # openfield's: 0.12 s/step for 30 minutes reaches ~15k: no warning
    projected, advice = budget_advice(0.12, 30 * 60, 30.0, 250, 8)
    assert projected > 10_000 and advice is None
