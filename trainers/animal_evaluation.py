"""How well several animals were found and named: pure functions on predicted and labelled poses.

Shapes: predictions ``[F, A, K, 3]`` (x, y, likelihood; frame pixels), labels ``[F, A, K, 2]``
(NaN where not labelled), animals in the same (identity) order in both.

- :func:`best_assignment`: per frame, which predicted animal matches which labelled one best,
  whatever the names say (Hungarian on the mean keypoint distance).
- :func:`identity_correct`: whether every animal carries the right name in a frame (the best
  assignment is the identity).
- :func:`identity_switches`: how often the best assignment changes from one frame to the next
  (each swap of names and each swap back counts once).
- :func:`instance_recall`: labelled animals found by some predicted animal.
- :func:`named_errors`: keypoint errors of each animal against the labels of its own name.
"""

from __future__ import annotations

import numpy as np
from scipy.optimize import linear_sum_assignment


def _mean_distance(pred: np.ndarray, truth: np.ndarray, cutoff: float) -> np.ndarray:
    """``[A_pred, A_true]`` mean distance over keypoints labelled and predicted >= cutoff."""
    A = truth.shape[0]
    cost = np.full((pred.shape[0], A), np.inf)
    for i in range(pred.shape[0]):
        for j in range(A):
            ok = np.isfinite(truth[j, :, 0]) & (pred[i, :, 2] >= cutoff)
            if ok.any():
                d = pred[i, ok, :2] - truth[j, ok]
                cost[i, j] = float(np.mean(np.hypot(d[:, 0], d[:, 1])))
    return cost


def best_assignment(pred: np.ndarray, truth: np.ndarray, cutoff: float = 0.5) -> np.ndarray:
    """``[F, A]`` int: the predicted animal matched to each labelled animal (-1: none)."""
    F, A = truth.shape[:2]
    out = np.full((F, A), -1, dtype=np.int64)
    for f in range(F):
        cost = _mean_distance(pred[f], truth[f], cutoff)
        finite = np.where(np.isfinite(cost), cost, 1e12)
        rows, cols = linear_sum_assignment(finite)
        for i, j in zip(rows, cols, strict=True):
            if np.isfinite(cost[i, j]):
                out[f, j] = i
    return out


def identity_correct(pred: np.ndarray, truth: np.ndarray, cutoff: float = 0.5) -> np.ndarray:
    """``[F]`` bool: every labelled animal is best matched by the prediction of its own name."""
    assignment = best_assignment(pred, truth, cutoff)
    return (assignment == np.arange(truth.shape[1])).all(axis=1)


def identity_switches(pred: np.ndarray, truth: np.ndarray, cutoff: float = 0.5) -> int:
    """Changes of the best assignment between consecutive frames where all animals matched."""
    assignment = best_assignment(pred, truth, cutoff)
    complete = (assignment >= 0).all(axis=1)
    rows = assignment[complete]
    return int(np.sum(np.any(rows[1:] != rows[:-1], axis=1)))


def instance_recall(
    pred: np.ndarray, truth: np.ndarray, cutoff: float = 0.5, radius_px: float = 10.0
) -> float:
    """Fraction of labelled animals (with >= 2 labelled keypoints) of which some predicted
    animal puts at least half of the labelled keypoints, at ``cutoff`` or above, within
    ``radius_px`` of the label (names ignored)."""
    found = total = 0
    for f in range(truth.shape[0]):
        for j in range(truth.shape[1]):
            labelled = np.isfinite(truth[f, j, :, 0])
            if labelled.sum() < 2:
                continue
            total += 1
            for i in range(pred.shape[1]):
                d = np.hypot(*(pred[f, i, :, :2] - truth[f, j]).T)
                hit = labelled & (pred[f, i, :, 2] >= cutoff) & (d <= radius_px)
                if hit.sum() * 2 >= labelled.sum():
                    found += 1
                    break
    return found / total if total else float("nan")


def named_errors(pred: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """``[F, A, K]`` distance of each predicted keypoint to the label of the same animal and
    bodypart (NaN where not labelled)."""
    return np.hypot(*(pred[..., :2] - truth).transpose(3, 0, 1, 2))
