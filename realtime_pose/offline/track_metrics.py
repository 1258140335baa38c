"""Tracking quality against labelled tracks: IDF1, identity switches, MOTA, with motmetrics.

The tracker's output (slots of poses and the ``track_id`` each slot holds, as
:class:`~realtime_pose.inference.unmarked_tracking.UnmarkedTracking` returns them) is compared
with the true animals frame by frame. A true animal and a track are candidates for a match when
the mean distance over the keypoints both have is at most ``match_px``; motmetrics'
:class:`~motmetrics.MOTAccumulator` then does what the MOT benchmarks do (keeps last frame's
matches where they still hold, counts a switch when a true animal is matched to another track,
and a fragmentation-aware global ID assignment for IDF1).

motmetrics is a ``dev`` extra: it is imported when scores are asked for, never on a rig.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np


def keypoint_distance_matrix(truth: np.ndarray, poses: np.ndarray, match_px: float) -> np.ndarray:
    """Mean keypoint distance ``[A, T]`` between true animals ``[A, K, 2]`` and poses
    ``[T, K, ≥2]``, over the keypoints both have (finite); NaN where they share none or the
    distance exceeds ``match_px`` (motmetrics' "do not pair")."""
    d = np.hypot(
        truth[:, None, :, 0] - poses[None, :, :, 0], truth[:, None, :, 1] - poses[None, :, :, 1]
    )
    both = np.isfinite(d)
    count = both.sum(axis=2)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(both, d, 0.0).sum(axis=2) / count
    mean[(count == 0) | ~(mean <= match_px)] = np.nan
    return mean


def tracking_scores(
    truth: np.ndarray,
    rows: np.ndarray,
    track_ids: np.ndarray,
    match_px: float,
    min_likelihood: float = 0.0,
) -> dict[str, Any]:
    """How well tracks follow the true animals over a recording.

    Parameters
    ----------
    truth
        ``float [F, A, K, 2]``: true animal ``a``'s keypoints in frame ``f`` (its identity is its
        index ``a``); NaN where a keypoint is unlabelled or the animal absent.
    rows
        ``float [F, S, K, 3]``: the tracker's slots (x, y, likelihood), e.g. the rows
        :meth:`UnmarkedTracking.update` returns, reshaped.
    track_ids
        ``int [F, S]``: the track in each slot, −1 where the slot is empty.
    match_px
        A track farther than this (mean keypoint distance) from a true animal is not a match.
    min_likelihood
        A slot's keypoints below this likelihood are left out; 0 (the default) counts everything
        the tracker reports, coasting predictions (likelihood 0) included.

    Returns
    -------
    dict
        ``idf1``, ``mota``, ``recall``, ``precision`` (floats; ``None`` where undefined, e.g.
        no true animal at all), ``id_switches``, ``num_frames``, ``num_true_animals`` (animals
        present in some frame), ``num_tracks`` (distinct track ids reported), plus
        ``num_matches``, ``num_misses``, ``num_false_positives``.
    """
    import motmetrics as mm

    truth = np.asarray(truth, dtype=np.float64)
    rows = np.asarray(rows, dtype=np.float64)
    track_ids = np.asarray(track_ids)
    if truth.ndim != 4 or truth.shape[3] < 2:
        raise ValueError(f"truth must be [frames, animals, keypoints, 2], got {truth.shape}")
    if rows.ndim != 4 or rows.shape[3] < 3:
        raise ValueError(f"rows must be [frames, slots, keypoints, 3], got {rows.shape}")
    if track_ids.shape != rows.shape[:2]:
        raise ValueError(
            f"track_ids must be [frames, slots] = {list(rows.shape[:2])}, got {track_ids.shape}"
        )
    if truth.shape[0] != rows.shape[0] or truth.shape[2] != rows.shape[2]:
        raise ValueError(
            f"truth {truth.shape} and rows {rows.shape} must have as many frames and keypoints"
        )
    if not (match_px > 0 and math.isfinite(match_px)):
        raise ValueError(f"match_px must be a positive number, got {match_px}")

    poses = rows[..., :2].copy()
    poses[rows[..., 2] < min_likelihood] = np.nan
    accumulator = mm.MOTAccumulator(auto_id=False)
    seen_animals: set[int] = set()
    seen_tracks: set[int] = set()
    for f in range(truth.shape[0]):
        animals = np.flatnonzero(np.isfinite(truth[f, :, :, :2]).all(axis=2).any(axis=1))
        slots = np.flatnonzero((track_ids[f] >= 0) & np.isfinite(poses[f]).all(axis=2).any(axis=1))
        ids = [int(t) for t in track_ids[f, slots]]
        seen_animals.update(int(a) for a in animals)
        seen_tracks.update(ids)
        distances = keypoint_distance_matrix(truth[f, animals, :, :2], poses[f, slots], match_px)
        accumulator.update([int(a) for a in animals], ids, distances, frameid=f)

    host = mm.metrics.create()
    names = [
        "idf1",
        "mota",
        "recall",
        "precision",
        "num_switches",
        "num_frames",
        "num_matches",
        "num_misses",
        "num_false_positives",
    ]
    summary = host.compute(accumulator, metrics=names, name="tracking").iloc[0]

    def ratio(name: str) -> float | None:
        value = float(summary[name])
        return value if math.isfinite(value) else None

    return {
        "idf1": ratio("idf1"),
        "id_switches": int(summary["num_switches"]),
        "mota": ratio("mota"),
        "recall": ratio("recall"),
        "precision": ratio("precision"),
        "num_frames": int(truth.shape[0]),
        "num_true_animals": len(seen_animals),
        "num_tracks": len(seen_tracks),
        "num_matches": int(summary["num_matches"]),
        "num_misses": int(summary["num_misses"]),
        "num_false_positives": int(summary["num_false_positives"]),
    }


def tracks_to_slots(
    frames: Sequence[Sequence[tuple[int, np.ndarray]]], num_keypoints: int
) -> tuple[np.ndarray, np.ndarray]:
    """Per-frame lists of ``(track_id, keypoints [K, 2 or 3])`` as the arrays
    :func:`tracking_scores` takes: rows ``float [F, S, K, 3]`` and track_ids ``int64 [F, S]``.

    ``S`` is the most tracks any frame has; each frame's tracks fill its first slots in list
    order (slot positions mean nothing to the scores, the ids do). Keypoints without a
    likelihood column get likelihood 1; empty slots are NaN with track_id −1.
    """
    S = max((len(tracks) for tracks in frames), default=0)
    rows = np.full((len(frames), S, num_keypoints, 3), np.nan)
    rows[..., 2] = 0.0
    ids = np.full((len(frames), S), -1, dtype=np.int64)
    for f, tracks in enumerate(frames):
        for s, (track_id, keypoints) in enumerate(tracks):
            keypoints = np.asarray(keypoints, dtype=np.float64)
            if keypoints.shape[0] != num_keypoints or keypoints.shape[1] not in (2, 3):
                raise ValueError(
                    f"frame {f}, track {track_id}: keypoints must be [{num_keypoints}, 2 or 3], "
                    f"got {keypoints.shape}"
                )
            rows[f, s, :, : keypoints.shape[1]] = keypoints
            if keypoints.shape[1] == 2:
                rows[f, s, :, 2] = 1.0
            ids[f, s] = int(track_id)
    return rows, ids
