"""Online tracking: the animals detected in each frame, matched to tracks that persist.

Every frame brings ``N`` detections (``[N, K, 3]``: x, y, likelihood per keypoint, frame pixels),
in no particular order, and optionally an identity score per detection and name (``[N, C]``, the
identity head's vote) or an appearance descriptor per detection (``[N, D]``).
:class:`IdentityTracker` keeps one track per animal, each with its own motion model (by default
the single-animal Kalman filter, :class:`~realtime_pose.inference.predict.ForwardPredictor`), and
every frame

1. predicts each track's pose at the frame's capture time,
2. scores each (detection, track) pair by the mean distance between the detection's visible
   keypoints and the track's predicted ones (:func:`pose_distance_px`), drops pairs farther than
   ``max_distance_px``, and adds the cues that are switched on, each worth some pixels:
   ``identity_weight_px × (1 − score)`` where identity scores are given and the tracks have
   names, ``size_weight_px × |log(size_detection / size_track)|`` (body size, see
   :func:`log_size_ratio`) and ``appearance_weight_px × (1 − cos)`` (descriptors),
3. assigns detections to confirmed tracks with the Hungarian method
   (``scipy.optimize.linear_sum_assignment``), then what is left to *candidate* tracks,
4. updates matched tracks, lets unmatched tracks coast on their prediction (reported with
   ``detected=False``) until ``max_missed_s`` has passed, and opens a candidate for each
   unmatched detection while fewer than ``max_animals`` tracks are confirmed; a candidate is
   confirmed (gets its ``track_id`` and is reported) once ``min_hits`` detections were matched to
   it within ``birth_window_frames`` frames, and dropped otherwise (``min_hits=1``, the default:
   every new detection is a track at once),
5. where identity scores are given, folds each matched detection's scores into its track's
   *identity evidence* (an exponential average over ``identity_memory_frames``) and gives the
   names to the tracks by that evidence (Hungarian again, one name per track).

Tracks keep their ``track_id`` for as long as they live. Their names follow the accumulated
evidence, not one frame's vote: a network that calls the male "female" for a few frames does
not rename him, while a track that motion alone put on the wrong animal (after an occlusion) is
renamed once the evidence has turned, about ``identity_memory_frames`` later.

:class:`IdentityChannelTracking` is the live loop's stage for identity-channel bundles (every
animal has its own score maps, so the network names each detection);
:class:`~realtime_pose.inference.unmarked_tracking.UnmarkedTracking` is the one for animals that
look alike (nothing names them; candidates, body size and velocity keep them apart).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from realtime_pose.inference.predict import ForwardPredictor

UNASSIGNABLE = 1e9
"""Cost given to pairs that must not be matched (beyond the gate, nothing in common)."""

MOTIONS = ("kalman", "last_position")
"""Motion models a track can predict with: the Kalman filter's constant-velocity prediction
(:class:`ForwardPredictor`) or the last seen pose (:class:`LastPositionPredictor`)."""

CUE_MEMORY_FRAMES = 100
"""Matches over which a track's body size and appearance are averaged (a running mean whose
count stops growing here, so a track that once took the wrong animal recovers)."""

MIN_SIZE_PX = 1.0
"""Body sizes below this are taken as this: a pose whose keypoints coincide has no size."""


def pose_distances_px(
    detections: np.ndarray, predictions: np.ndarray, min_likelihood: float
) -> np.ndarray:
    """Mean distance (px) between the keypoints each detection and each prediction both show:
    ``[N, T]``, ``inf`` where they share none.

    ``detections`` ``[N, K, 3]`` and ``predictions`` ``[T, K, 3]`` are x, y, likelihood (or
    confidence); a keypoint counts where the detection's likelihood is at least
    ``min_likelihood``, the prediction's confidence is above 0 and both positions are finite.
    """
    det = detections[:, None]
    pred = predictions[None]
    distance = np.hypot(det[..., 0] - pred[..., 0], det[..., 1] - pred[..., 1])
    both = (
        (detections[:, :, 2] >= min_likelihood) & np.isfinite(detections[:, :, :2]).all(axis=2)
    )[:, None] & ((predictions[:, :, 2] > 0) & np.isfinite(predictions[:, :, :2]).all(axis=2))[None]
    count = both.sum(axis=2)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(both, distance, 0.0).sum(axis=2) / count
    mean[count == 0] = np.inf
    return mean


def pose_distance_px(detection: np.ndarray, predicted: np.ndarray, min_likelihood: float) -> float:
    """Mean distance (px) between the keypoints two poses ``[K, 3]`` both show; ``inf`` if none
    (one pair of :func:`pose_distances_px`)."""
    return float(pose_distances_px(detection[None], predicted[None], min_likelihood)[0, 0])


def pair_distances_px(poses: np.ndarray, min_likelihood: float) -> np.ndarray:
    """Distances (px) between every two keypoints of each pose: ``[N, K·(K−1)/2]``.

    ``poses`` is ``[N, K, 3]``; pairs are in ``np.triu_indices(K, 1)`` order, NaN where either
    keypoint is below ``min_likelihood`` or not finite. Their median is the pose's body size.
    """
    poses = np.asarray(poses, dtype=np.float64)
    K = poses.shape[1]
    xy = np.where(
        ((poses[:, :, 2] >= min_likelihood) & np.isfinite(poses[:, :, :2]).all(axis=2))[..., None],
        poses[:, :, :2],
        np.nan,
    )
    i, j = _pair_index(K)
    d = xy[:, i] - xy[:, j]
    return np.hypot(d[..., 0], d[..., 1])


@functools.cache
def _pair_index(num_keypoints: int) -> tuple[np.ndarray, np.ndarray]:
    return np.triu_indices(num_keypoints, 1)


def _masked_median(values: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Median over the last axis of the entries ``mask`` keeps; NaN where it keeps none."""
    ordered = np.sort(np.where(mask, values, np.inf), axis=-1).reshape(-1, values.shape[-1])
    n = mask.sum(axis=-1).ravel()
    row = np.arange(len(n))
    lo = ordered[row, np.maximum((n - 1) // 2, 0)]
    hi = ordered[row, np.minimum(n // 2, values.shape[-1] - 1)]
    median = (lo + hi) / 2
    median[n == 0] = np.nan
    return median.reshape(mask.shape[:-1])


def log_size_ratios(detection_pairs: np.ndarray, track_pairs: np.ndarray) -> np.ndarray:
    """``|log(size_detection / size_track)|`` for every detection ``[N, P]`` and track
    ``[T, P]``: ``[N, T]``, sizes compared on the same keypoints; NaN where the two share no
    keypoint pair.

    A pose's size is the median distance between its keypoints (:func:`pair_distances_px`).
    Both medians are taken over the pairs the detection shows and the track knows, so a
    detection that lacks the tail is not "smaller" than the track of the whole animal. Sizes
    below ``MIN_SIZE_PX`` count as ``MIN_SIZE_PX``.
    """
    both = np.isfinite(detection_pairs)[:, None] & np.isfinite(track_pairs)[None]
    shape = both.shape
    size_detection = _masked_median(np.broadcast_to(detection_pairs[:, None], shape), both)
    size_track = _masked_median(np.broadcast_to(track_pairs[None], shape), both)
    return np.abs(
        np.log(np.maximum(size_detection, MIN_SIZE_PX) / np.maximum(size_track, MIN_SIZE_PX))
    )


def log_size_ratio(detection_pairs: np.ndarray, track_pairs: np.ndarray) -> float:
    """One detection's and one track's :func:`log_size_ratios`."""
    return float(log_size_ratios(detection_pairs[None], track_pairs[None])[0, 0])


class MotionModel(Protocol):
    """What a track predicts with: :class:`ForwardPredictor` or :class:`LastPositionPredictor`."""

    def update(self, pose: np.ndarray, t_capture_ns: int) -> None: ...

    def predict(self, t_target_ns: int, out: np.ndarray | None = None) -> np.ndarray: ...


class LastPositionPredictor:
    """The last seen position of each keypoint as the prediction: tracking without a motion
    model (``motion="last_position"``), the baseline that shows what velocity buys.

    Parameters
    ----------
    num_keypoints
        ``K``.
    min_likelihood
        Keypoints below this likelihood (or not finite) do not move the stored position.
    max_coast_s
        A keypoint unseen for longer than this is predicted with confidence 0, as
        :class:`ForwardPredictor` does.
    """

    def __init__(
        self, num_keypoints: int, min_likelihood: float = 0.5, max_coast_s: float = 0.5
    ) -> None:
        if num_keypoints < 1:
            raise ValueError(f"num_keypoints must be at least 1, got {num_keypoints}")
        if not (max_coast_s > 0 and math.isfinite(max_coast_s)):
            raise ValueError(f"max_coast_s must be a positive number, got {max_coast_s}")
        self.num_keypoints = int(num_keypoints)
        self.min_likelihood = float(min_likelihood)
        self.max_coast_ns = int(max_coast_s * 1e9)
        self._pose = np.full((self.num_keypoints, 3), np.nan)
        self._pose[:, 2] = 0.0
        self._seen_ns = np.zeros(self.num_keypoints, dtype=np.int64)

    def reset(self) -> None:
        """Forget every keypoint."""
        self._pose[:, :2] = np.nan
        self._pose[:, 2] = 0.0

    def update(self, pose: np.ndarray, t_capture_ns: int) -> None:
        """Store the keypoints of ``pose`` ``[K, 3]`` that are seen."""
        seen = (pose[:, 2] >= self.min_likelihood) & np.isfinite(pose[:, :2]).all(axis=1)
        self._pose[seen] = pose[seen]
        self._seen_ns[seen] = t_capture_ns

    def predict(self, t_target_ns: int, out: np.ndarray | None = None) -> np.ndarray:
        """The last seen pose ``[K, 3]``; confidence 0 where unseen for over ``max_coast_s``."""
        if out is None:
            out = np.empty((self.num_keypoints, 3))
        out[:] = self._pose
        out[t_target_ns - self._seen_ns > self.max_coast_ns, 2] = 0.0
        return out


@dataclass(frozen=True)
class TrackedAnimal:
    """One animal in one frame, as the tracker reports it.

    Attributes
    ----------
    track_id
        Stable integer for as long as the track lives (never reused within a session).
    name
        The identity name (``female``) where the tracker was given names, else ``animal<id>``.
    keypoints
        ``[K, 3]`` x, y, likelihood: the matched detection, or the track's prediction while it
        coasts (then the prediction's confidence).
    detected
        Whether a detection was matched to the track in this frame.
    detection
        Index of the matched detection in this frame's input (``-1`` while coasting).
    """

    track_id: int
    name: str
    keypoints: np.ndarray
    detected: bool
    detection: int = -1


class _Track:
    """A track's state; ``track_id`` is -1 while it is a candidate (not yet confirmed)."""

    def __init__(self, predictor: MotionModel, t_ns: int, frame: int) -> None:
        self.track_id = -1
        self.name = ""
        self.predictor = predictor
        self.last_seen_ns = t_ns
        self.opened_frame = frame
        self.hits = 0
        self.evidence: np.ndarray | None = None
        self.size_pairs: np.ndarray | None = None  # running mean of each pair's distance
        self.size_counts: np.ndarray | None = None  # its count (0: pair never seen)
        self.descriptor: np.ndarray | None = None  # running mean of unit descriptors
        self.descriptor_count = 0


class IdentityTracker:
    """Match each frame's detections to persistent, named animal tracks.

    Parameters
    ----------
    num_keypoints
        ``K`` keypoints per animal.
    max_animals
        At most this many tracks are confirmed at once (from the config or the bundle).
    names
        Identity names (``["female", "male"]``): a new track takes the free name its detection
        scores highest (or the first free one without identity scores). ``None``: tracks are
        named ``animal<track_id>``.
    max_distance_px
        A detection farther than this (mean keypoint distance) from a track's prediction is not
        matched to it.
    identity_weight_px
        How many pixels of distance a full identity vote is worth.
    max_missed_s
        A track unmatched for longer than this is closed (its name becomes free again).
    min_likelihood
        Keypoints below this likelihood do not count towards distances.
    predictor_options
        Keyword arguments for each track's :class:`ForwardPredictor` (``motion="kalman"``);
        with ``motion="last_position"`` only its ``max_coast_s`` is used.
    identity_memory_frames
        Frames over which identity scores are averaged before they rename a track.
    motion
        ``"kalman"``: a track predicts its pose with the Kalman filter's constant velocity;
        ``"last_position"``: with its last seen pose (no velocity).
    size_weight_px
        Pixels of distance a body-size ratio of ``e`` is worth (``|log ratio|`` scaled); 0 (the
        default) leaves size out.
    appearance_weight_px
        Pixels of distance a cosine distance of 1 between a detection's descriptor and its
        track's mean descriptor is worth; 0 (the default) leaves descriptors out.
    min_hits
        Detections a candidate track needs within ``birth_window_frames`` frames to be confirmed;
        1 (the default): every unmatched detection is a new track at once.
    birth_window_frames
        Frames (counting the first) within which a candidate must reach ``min_hits``; ``None``:
        ``min_hits + 2`` (two misses forgiven).
    """

    def __init__(
        self,
        num_keypoints: int,
        max_animals: int,
        names: Sequence[str] | None = None,
        max_distance_px: float = 100.0,
        identity_weight_px: float = 50.0,
        max_missed_s: float = 1.0,
        min_likelihood: float = 0.5,
        predictor_options: Mapping[str, Any] | None = None,
        identity_memory_frames: float = 25.0,
        motion: str = "kalman",
        size_weight_px: float = 0.0,
        appearance_weight_px: float = 0.0,
        min_hits: int = 1,
        birth_window_frames: int | None = None,
    ) -> None:
        if num_keypoints < 1:
            raise ValueError(f"num_keypoints must be at least 1, got {num_keypoints}")
        if max_animals < 1:
            raise ValueError(f"max_animals must be at least 1, got {max_animals}")
        if names is not None:
            names = list(names)
            if len(set(names)) != len(names) or not all(names):
                raise ValueError(f"names must be distinct and non-empty, got {names}")
            if len(names) < max_animals:
                raise ValueError(
                    f"{max_animals} animals need as many names, got {len(names)}: {names}"
                )
        for label, value in (
            ("max_distance_px", max_distance_px),
            ("max_missed_s", max_missed_s),
        ):
            if not (value > 0 and math.isfinite(value)):
                raise ValueError(f"{label} must be a positive number, got {value}")
        for label, value in (
            ("identity_weight_px", identity_weight_px),
            ("size_weight_px", size_weight_px),
            ("appearance_weight_px", appearance_weight_px),
        ):
            if not (value >= 0 and math.isfinite(value)):
                raise ValueError(f"{label} must be >= 0, got {value}")
        if not 0 <= min_likelihood <= 1:
            raise ValueError(f"min_likelihood must lie in [0, 1], got {min_likelihood}")
        if not (identity_memory_frames >= 1 and math.isfinite(identity_memory_frames)):
            raise ValueError(f"identity_memory_frames must be >= 1, got {identity_memory_frames}")
        if motion not in MOTIONS:
            raise ValueError(f"motion must be one of {list(MOTIONS)}, got {motion!r}")
        if isinstance(min_hits, bool) or int(min_hits) != min_hits or min_hits < 1:
            raise ValueError(f"min_hits must be an integer >= 1, got {min_hits!r}")
        if birth_window_frames is None:
            birth_window_frames = int(min_hits) + 2
        if int(birth_window_frames) != birth_window_frames or birth_window_frames < min_hits:
            raise ValueError(
                f"birth_window_frames must be an integer >= min_hits ({min_hits}), "
                f"got {birth_window_frames!r}"
            )
        self._evidence_rate = 1.0 / float(identity_memory_frames)
        self.num_keypoints = int(num_keypoints)
        self.max_animals = int(max_animals)
        self.names = names
        self.max_distance_px = float(max_distance_px)
        self.identity_weight_px = float(identity_weight_px)
        self.max_missed_ns = int(max_missed_s * 1e9)
        self.min_likelihood = float(min_likelihood)
        self.motion = motion
        self.size_weight_px = float(size_weight_px)
        self.appearance_weight_px = float(appearance_weight_px)
        self.min_hits = int(min_hits)
        self.birth_window_frames = int(birth_window_frames)
        self._predictor_options = {"min_likelihood": min_likelihood, **(predictor_options or {})}
        self._new_predictor()  # refuses bad predictor options now, not at the first animal
        self._tracks: list[_Track] = []  # confirmed
        self._candidates: list[_Track] = []
        self._descriptor_dim: int | None = None
        self._frame = 0
        self._next_id = 0
        self.tracks_opened = 0
        """Tracks confirmed so far (more than ``max_animals`` means animals were lost and
        found)."""
        self.tracks_closed = 0
        """Confirmed tracks closed after ``max_missed_s`` unmatched."""
        self.candidates_dropped = 0
        """Candidate tracks that never reached ``min_hits`` (spurious detections)."""
        self.renames = 0
        """Times a track's name changed because its identity evidence turned."""

    def reset(self) -> None:
        """Close every track and candidate (a new session); ``track_id`` keeps counting up."""
        self._tracks.clear()
        self._candidates.clear()
        self._descriptor_dim = None

    def _new_predictor(self) -> MotionModel:
        if self.motion == "kalman":
            return ForwardPredictor(self.num_keypoints, **self._predictor_options)
        return LastPositionPredictor(
            self.num_keypoints,
            min_likelihood=self._predictor_options["min_likelihood"],
            max_coast_s=self._predictor_options.get("max_coast_s", 0.5),
        )

    def _name_for(self, scores: np.ndarray | None) -> str:
        if self.names is None:
            return f"animal{self._next_id}"
        taken = {t.name for t in self._tracks}
        free = [i for i, name in enumerate(self.names) if name not in taken]
        if scores is not None:
            free.sort(key=lambda i: -scores[i])
        return self.names[free[0]]

    def _cost(
        self,
        tracks: list[_Track],
        predictions: list[np.ndarray],
        detections: np.ndarray,
        rows: list[int],
        identity: np.ndarray | None,
        pairs: np.ndarray | None,
        descriptors: np.ndarray | None,
    ) -> np.ndarray:
        """Costs ``[len(rows), len(tracks)]`` of matching detections ``rows`` to ``tracks``."""
        distance = pose_distances_px(detections[rows], np.stack(predictions), self.min_likelihood)
        cost = distance.copy()
        if identity is not None and self.names is not None:
            for j, track in enumerate(tracks):
                if track.track_id >= 0:
                    vote = identity[rows, self.names.index(track.name)]
                    cost[:, j] += self.identity_weight_px * (1.0 - vote)
        if pairs is not None:
            known = np.full((len(tracks), pairs.shape[1]), np.nan)
            for j, track in enumerate(tracks):
                if track.size_pairs is not None and track.size_counts is not None:
                    np.copyto(known[j], track.size_pairs, where=track.size_counts > 0)
            ratio = log_size_ratios(pairs[rows], known)
            cost += self.size_weight_px * np.where(np.isnan(ratio), 0.0, ratio)
        if descriptors is not None:
            known = np.full((len(tracks), descriptors.shape[1]), np.nan)
            for j, track in enumerate(tracks):
                if track.descriptor is not None:
                    known[j] = track.descriptor
            with np.errstate(invalid="ignore", divide="ignore"):
                known /= np.linalg.norm(known, axis=1, keepdims=True)
                cosine = descriptors[rows] @ known.T
            cost += self.appearance_weight_px * np.nan_to_num(1.0 - cosine)
        cost[~(distance <= self.max_distance_px)] = UNASSIGNABLE
        return cost

    def _assign(
        self,
        tracks: list[_Track],
        t_ns: int,
        detections: np.ndarray,
        rows: list[int],
        cues: tuple[np.ndarray | None, np.ndarray | None, np.ndarray | None],
    ) -> tuple[dict[int, int], list[np.ndarray]]:
        """Hungarian assignment of detections ``rows`` to ``tracks``: {track index: detection
        index}, and each track's prediction."""
        predictions = [t.predictor.predict(t_ns) for t in tracks]
        if not tracks or not rows:
            return {}, predictions
        from scipy.optimize import linear_sum_assignment  # imported once, then a lookup

        cost = self._cost(tracks, predictions, detections, rows, *cues)
        r, c = linear_sum_assignment(cost)
        matched = {int(j): rows[i] for i, j in zip(r, c, strict=True) if cost[i, j] < UNASSIGNABLE}
        return matched, predictions

    def _observe(
        self,
        track: _Track,
        i: int,
        detections: np.ndarray,
        t_ns: int,
        cues: tuple[np.ndarray | None, np.ndarray | None, np.ndarray | None],
    ) -> None:
        """Fold detection ``i`` into ``track``: motion, identity evidence, size, appearance."""
        identity, pairs, descriptors = cues
        track.predictor.update(detections[i], t_ns)
        track.last_seen_ns = t_ns
        track.hits += 1
        if identity is not None:
            self._fold_evidence(track, identity[i])
        if pairs is not None:
            if track.size_pairs is None or track.size_counts is None:
                track.size_pairs = np.zeros(pairs.shape[1])
                track.size_counts = np.zeros(pairs.shape[1])
            seen = np.isfinite(pairs[i])
            np.minimum(track.size_counts + seen, CUE_MEMORY_FRAMES, out=track.size_counts)
            change = np.where(seen, pairs[i], track.size_pairs) - track.size_pairs
            track.size_pairs += change / np.maximum(track.size_counts, 1)
        if descriptors is not None and np.isfinite(descriptors[i]).all():
            track.descriptor_count = min(track.descriptor_count + 1, CUE_MEMORY_FRAMES)
            if track.descriptor is None:
                track.descriptor = descriptors[i].copy()
            else:
                track.descriptor += (descriptors[i] - track.descriptor) / track.descriptor_count

    def _cues(
        self,
        detections: np.ndarray,
        identity: np.ndarray | None,
        descriptors: np.ndarray | None,
    ) -> tuple[np.ndarray | None, np.ndarray | None, np.ndarray | None]:
        pairs = None
        if self.size_weight_px > 0 and self.num_keypoints > 1:
            pairs = pair_distances_px(detections, self.min_likelihood)
        unit = None
        if descriptors is not None and self.appearance_weight_px > 0:
            with np.errstate(invalid="ignore", divide="ignore"):
                unit = descriptors / np.linalg.norm(descriptors, axis=1, keepdims=True)
        return identity, pairs, unit

    def update(
        self,
        detections: np.ndarray,
        t_ns: int,
        identity: np.ndarray | None = None,
        descriptors: np.ndarray | None = None,
    ) -> list[TrackedAnimal]:
        """Fold in one frame's detections and return every confirmed track, sorted by
        ``track_id``.

        Parameters
        ----------
        detections
            ``[N, K, 3]`` x, y, likelihood in frame pixels (``N`` may be 0); a detection with no
            finite keypoint at ``min_likelihood`` is ignored.
        t_ns
            Capture time (must not go backwards).
        identity
            Optional ``[N, C]`` identity scores over ``names`` (each row a probability vector).
        descriptors
            Optional ``[N, D]`` appearance descriptors (used where ``appearance_weight_px`` > 0;
            a row with a NaN says nothing).
        """
        detections = np.asarray(detections, dtype=np.float64).reshape(-1, self.num_keypoints, 3)
        visible = (
            (detections[:, :, 2] >= self.min_likelihood)
            & np.isfinite(detections[:, :, :2]).all(axis=2)
        ).any(axis=1)
        given = np.flatnonzero(visible)  # position in the input of each detection kept
        if identity is not None:
            identity = np.asarray(identity, dtype=np.float64)[visible]
            if self.names is None or identity.shape[1] != len(self.names):
                raise ValueError(
                    f"identity scores must have one column per name ({self.names}), "
                    f"got shape {identity.shape}"
                )
        if descriptors is not None:
            descriptors = np.asarray(descriptors, dtype=np.float64)
            if descriptors.ndim != 2 or len(descriptors) != len(detections):
                raise ValueError(
                    f"descriptors must be [N, D] with one row per detection ({len(detections)}), "
                    f"got shape {descriptors.shape}"
                )
            if self._descriptor_dim is None:
                self._descriptor_dim = descriptors.shape[1]
            elif descriptors.shape[1] != self._descriptor_dim:
                raise ValueError(
                    f"descriptors have {descriptors.shape[1]} values, earlier frames "
                    f"{self._descriptor_dim}: call reset() before changing the descriptor"
                )
            descriptors = descriptors[visible]
        detections = detections[visible]
        self._frame += 1
        cues = self._cues(detections, identity, descriptors)

        everyone = list(range(len(detections)))
        matched_tracks, predictions = self._assign(self._tracks, t_ns, detections, everyone, cues)
        used = set(matched_tracks.values())
        left = [i for i in everyone if i not in used]
        matched_candidates, _ = self._assign(self._candidates, t_ns, detections, left, cues)
        used.update(matched_candidates.values())

        reported: list[TrackedAnimal] = []
        survivors: list[_Track] = []
        for j, track in enumerate(self._tracks):
            if j in matched_tracks:
                i = matched_tracks[j]
                self._observe(track, i, detections, t_ns, cues)
                reported.append(
                    TrackedAnimal(
                        track.track_id, track.name, detections[i].copy(), True, int(given[i])
                    )
                )
            elif t_ns - track.last_seen_ns > self.max_missed_ns:
                self.tracks_closed += 1
                continue  # closed: its name is free again
            else:
                reported.append(
                    TrackedAnimal(track.track_id, track.name, predictions[j].copy(), False, -1)
                )
            survivors.append(track)
        self._tracks = survivors

        waiting: list[_Track] = []
        for j, candidate in enumerate(self._candidates):
            if j in matched_candidates:
                i = matched_candidates[j]
                self._observe(candidate, i, detections, t_ns, cues)
                if self._confirm(candidate):
                    reported.append(self._born(candidate, detections, i, given))
                    continue
            if self._frame - candidate.opened_frame + 1 >= self.birth_window_frames:
                self.candidates_dropped += 1
            else:
                waiting.append(candidate)
        self._candidates = waiting

        for i in everyone:
            if i in used or len(self._tracks) >= self.max_animals:
                continue
            candidate = _Track(self._new_predictor(), t_ns, self._frame)
            self._observe(candidate, i, detections, t_ns, cues)
            if self._confirm(candidate):
                reported.append(self._born(candidate, detections, i, given))
            else:
                self._candidates.append(candidate)
        if identity is not None and self.names is not None:
            reported = self._rename(reported)
        reported.sort(key=lambda a: a.track_id)
        return reported

    def _confirm(self, candidate: _Track) -> bool:
        """Make ``candidate`` a track if it has its hits and there is room for it."""
        if candidate.hits < self.min_hits or len(self._tracks) >= self.max_animals:
            return False
        candidate.name = self._name_for(candidate.evidence)
        candidate.track_id = self._next_id
        self._next_id += 1
        self.tracks_opened += 1
        self._tracks.append(candidate)
        return True

    @staticmethod
    def _born(track: _Track, detections: np.ndarray, i: int, given: np.ndarray) -> TrackedAnimal:
        return TrackedAnimal(track.track_id, track.name, detections[i].copy(), True, int(given[i]))

    def _fold_evidence(self, track: _Track, scores: np.ndarray) -> None:
        if track.evidence is None:
            track.evidence = np.asarray(scores, dtype=np.float64).copy()
        else:
            track.evidence += self._evidence_rate * (scores - track.evidence)

    def _rename(self, reported: list[TrackedAnimal]) -> list[TrackedAnimal]:
        """Give the names to the tracks by their identity evidence (one name per track)."""
        assert self.names is not None
        tracks = [t for t in self._tracks if t.evidence is not None]
        if not tracks:
            return reported
        from scipy.optimize import linear_sum_assignment

        evidence = np.stack([t.evidence for t in tracks])  # type: ignore[misc]
        rows, cols = linear_sum_assignment(-evidence)
        wanted = {tracks[r].track_id: self.names[c] for r, c in zip(rows, cols, strict=True)}
        keep = {t.name for t in self._tracks if t.track_id not in wanted}
        if keep & set(wanted.values()):
            return reported  # a track without evidence holds a name the others want: wait
        for track in tracks:
            if track.name != wanted[track.track_id]:
                track.name = wanted[track.track_id]
                self.renames += 1
        names = {t.track_id: t.name for t in self._tracks}
        return [
            TrackedAnimal(a.track_id, names[a.track_id], a.keypoints, a.detected, a.detection)
            for a in reported
        ]


class IdentityChannelTracking:
    """The live loop's tracking stage for identity-channel bundles.

    The network gives every animal its own score maps, so each frame's pose rows already name
    their animal (``female/head`` ...). This stage treats each animal's rows as a detection that
    votes for its own name, matches the detections to tracks by motion
    (:class:`IdentityTracker`), names the tracks by their accumulated votes, and writes every
    track's rows back under its name: a network that swaps the two flies for a few frames is
    corrected, an animal missed for a frame keeps its track.

    Parameters
    ----------
    names
        The animals, in the bundle's order.
    num_bodyparts
        Keypoints per animal.
    tracker_options
        Keyword arguments for :class:`IdentityTracker`. ``identity_weight_px`` (default 50) is
        what the network's naming is worth in pixels of motion: rows are moved to another name
        only when the motion evidence for that exceeds it (a swap between two flies 100 px
        apart is undone; an animal that really jumps 40 px keeps its name).
    """

    track_ids = None
    """Identity channels keep each animal's rows under its name: no slot track ids."""

    def __init__(self, names: Sequence[str], num_bodyparts: int, **tracker_options: Any) -> None:
        self.names = list(names)
        self.num_bodyparts = int(num_bodyparts)
        options = {"identity_weight_px": 50.0, **tracker_options}
        self.tracker = IdentityTracker(
            self.num_bodyparts, len(self.names), names=self.names, **options
        )
        self._votes = np.eye(len(self.names))
        self._out = np.empty((len(self.names) * self.num_bodyparts, 3))
        self.swapped_frames = 0
        """Frames in which some animal's rows were written under another name than the
        network gave them."""

    def reset(self) -> None:
        """Forget every track (a new session)."""
        self.tracker.reset()

    def update(self, pose: np.ndarray, t_ns: int) -> np.ndarray:
        """The pose ``[A·K, 3]`` with each animal's rows under its tracked name (a reused
        buffer); rows of a name no detection was matched to keep the network's own rows."""
        A, K = len(self.names), self.num_bodyparts
        detections = np.asarray(pose, dtype=np.float64).reshape(A, K, 3)
        animals = self.tracker.update(detections, t_ns, self._votes)
        out = self._out
        out[:] = detections.reshape(A * K, 3)
        swapped = False
        for animal in animals:
            if not animal.detected:
                continue
            slot = animal.detection
            target = self.names.index(animal.name)
            if slot != target:
                out[target * K : (target + 1) * K] = detections[slot]
                swapped = True
        if swapped:
            # a slot whose animal moved elsewhere and that no track took keeps nothing
            taken = {self.names.index(a.name) for a in animals if a.detected}
            for slot in range(A):
                if slot not in taken:
                    out[slot * K : (slot + 1) * K, 2] = 0.0
            self.swapped_frames += 1
        return out
