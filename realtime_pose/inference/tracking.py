"""Online identity tracking: the animals detected in each frame, matched to tracks that persist.

Every frame brings ``N`` detections (``[N, K, 3]``: x, y, likelihood per keypoint, frame pixels),
in no particular order, and optionally an identity score per detection and name (``[N, C]``, the
identity head's vote). :class:`IdentityTracker` keeps one track per animal, each with its own
:class:`~realtime_pose.inference.predict.ForwardPredictor` (the single-animal Kalman filter), and
every frame

1. predicts each track's pose at the frame's capture time,
2. scores each (detection, track) pair by the mean distance between the detection's visible
   keypoints and the track's predicted ones (:func:`pose_distance_px`), plus, where identity
   scores are given and the tracks have names, ``identity_weight_px × (1 − score)``,
3. assigns detections to tracks with the Hungarian method
   (``scipy.optimize.linear_sum_assignment``), dropping pairs costlier than ``max_distance_px``,
4. updates matched tracks, lets unmatched tracks coast on their prediction (reported with
   ``detected=False``) until ``max_missed_s`` has passed, and opens tracks for unmatched
   detections while fewer than ``max_animals`` exist,
5. where identity scores are given, folds each matched detection's scores into its track's
   *identity evidence* (an exponential average over ``identity_memory_frames``) and gives the
   names to the tracks by that evidence (Hungarian again, one name per track).

Tracks keep their ``track_id`` for as long as they live. Their names follow the accumulated
evidence, not one frame's vote: a network that calls the male "female" for a few frames does
not rename him, while a track that motion alone put on the wrong animal (after an occlusion) is
renamed once the evidence has turned, about ``identity_memory_frames`` later.

:class:`IdentityChannelTracking` is the live loop's stage for identity-channel bundles (every
animal has its own score maps, so the network names each detection).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from realtime_pose.inference.predict import ForwardPredictor

UNASSIGNABLE = 1e9
"""Cost given to pairs that must not be matched (beyond the gate, nothing in common)."""


def pose_distance_px(detection: np.ndarray, predicted: np.ndarray, min_likelihood: float) -> float:
    """Mean distance (px) between the keypoints two poses both show; ``inf`` if none.

    ``detection`` and ``predicted`` are ``[K, 3]`` (x, y, likelihood or confidence); a keypoint
    counts where the detection's likelihood is at least ``min_likelihood`` and the prediction's
    confidence is above 0 and its position finite.
    """
    both = (
        (detection[:, 2] >= min_likelihood)
        & (predicted[:, 2] > 0)
        & np.isfinite(predicted[:, 0])
        & np.isfinite(detection[:, 0])
    )
    if not both.any():
        return math.inf
    d = detection[both, :2] - predicted[both, :2]
    return float(np.mean(np.hypot(d[:, 0], d[:, 1])))


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
    def __init__(self, track_id: int, name: str, predictor: ForwardPredictor, t_ns: int) -> None:
        self.track_id = track_id
        self.name = name
        self.predictor = predictor
        self.last_seen_ns = t_ns
        self.evidence: np.ndarray | None = None


class IdentityTracker:
    """Match each frame's detections to persistent, named animal tracks.

    Parameters
    ----------
    num_keypoints
        ``K`` keypoints per animal.
    max_animals
        At most this many tracks exist at once (from the config or the bundle).
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
    identity_memory_frames
        Frames over which identity scores are averaged before they rename a track.
    min_likelihood
        Keypoints below this likelihood do not count towards distances.
    predictor_options
        Keyword arguments for each track's :class:`ForwardPredictor`.
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
        if not (identity_weight_px >= 0 and math.isfinite(identity_weight_px)):
            raise ValueError(f"identity_weight_px must be >= 0, got {identity_weight_px}")
        if not (identity_memory_frames >= 1 and math.isfinite(identity_memory_frames)):
            raise ValueError(f"identity_memory_frames must be >= 1, got {identity_memory_frames}")
        self._evidence_rate = 1.0 / float(identity_memory_frames)
        self.num_keypoints = int(num_keypoints)
        self.max_animals = int(max_animals)
        self.names = names
        self.max_distance_px = float(max_distance_px)
        self.identity_weight_px = float(identity_weight_px)
        self.max_missed_ns = int(max_missed_s * 1e9)
        self.min_likelihood = float(min_likelihood)
        self._predictor_options = {"min_likelihood": min_likelihood, **(predictor_options or {})}
        self._tracks: list[_Track] = []
        self._next_id = 0
        self.tracks_opened = 0
        """Tracks opened so far (more than ``max_animals`` means animals were lost and found)."""
        self.renames = 0
        """Times a track's name changed because its identity evidence turned."""

    def reset(self) -> None:
        """Close every track (a new session)."""
        self._tracks.clear()

    def _name_for(self, scores: np.ndarray | None) -> str:
        if self.names is None:
            return f"animal{self._next_id}"
        taken = {t.name for t in self._tracks}
        free = [i for i, name in enumerate(self.names) if name not in taken]
        if scores is not None:
            free.sort(key=lambda i: -scores[i])
        return self.names[free[0]]

    def _cost(
        self, detections: np.ndarray, identity: np.ndarray | None, predictions: list[np.ndarray]
    ) -> np.ndarray:
        cost = np.full((len(detections), len(self._tracks)), UNASSIGNABLE)
        for j, (track, predicted) in enumerate(zip(self._tracks, predictions, strict=True)):
            vote = None
            if identity is not None and self.names is not None:
                vote = identity[:, self.names.index(track.name)]
            for i, detection in enumerate(detections):
                d = pose_distance_px(detection, predicted, self.min_likelihood)
                if d > self.max_distance_px:
                    continue
                if vote is not None:
                    d += self.identity_weight_px * (1.0 - float(vote[i]))
                cost[i, j] = d
        return cost

    def update(
        self, detections: np.ndarray, t_ns: int, identity: np.ndarray | None = None
    ) -> list[TrackedAnimal]:
        """Fold in one frame's detections and return every live track, sorted by ``track_id``.

        Parameters
        ----------
        detections
            ``[N, K, 3]`` x, y, likelihood in frame pixels (``N`` may be 0); a detection with no
            keypoint at ``min_likelihood`` is ignored.
        t_ns
            Capture time (must not go backwards).
        identity
            Optional ``[N, C]`` identity scores over ``names`` (each row a probability vector).
        """
        detections = np.asarray(detections, dtype=np.float64).reshape(-1, self.num_keypoints, 3)
        visible = (detections[:, :, 2] >= self.min_likelihood).any(axis=1)
        given = np.flatnonzero(visible)  # position in the input of each detection kept
        detections = detections[visible]
        if identity is not None:
            identity = np.asarray(identity, dtype=np.float64)[visible]
            if self.names is None or identity.shape[1] != len(self.names):
                raise ValueError(
                    f"identity scores must have one column per name ({self.names}), "
                    f"got shape {identity.shape}"
                )
        matched_tracks: dict[int, int] = {}
        predictions = [t.predictor.predict(t_ns) for t in self._tracks]
        if self._tracks and len(detections):
            from scipy.optimize import linear_sum_assignment  # imported once, then a lookup

            cost = self._cost(detections, identity, predictions)
            rows, cols = linear_sum_assignment(cost)
            matched_tracks = {
                int(j): int(i) for i, j in zip(rows, cols, strict=True) if cost[i, j] < UNASSIGNABLE
            }

        reported: list[TrackedAnimal] = []
        survivors: list[_Track] = []
        for j, track in enumerate(self._tracks):
            if j in matched_tracks:
                i = matched_tracks[j]
                pose = detections[i]
                track.predictor.update(pose, t_ns)
                track.last_seen_ns = t_ns
                if identity is not None:
                    self._fold_evidence(track, identity[i])
                reported.append(
                    TrackedAnimal(track.track_id, track.name, pose.copy(), True, int(given[i]))
                )
            elif t_ns - track.last_seen_ns > self.max_missed_ns:
                continue  # closed: its name is free again
            else:
                reported.append(
                    TrackedAnimal(track.track_id, track.name, predictions[j].copy(), False, -1)
                )
            survivors.append(track)
        self._tracks = survivors

        used = set(matched_tracks.values())
        for i, detection in enumerate(detections):
            if i in used or len(self._tracks) >= self.max_animals:
                continue
            scores = identity[i] if identity is not None else None
            predictor = ForwardPredictor(self.num_keypoints, **self._predictor_options)
            track = _Track(self._next_id, self._name_for(scores), predictor, t_ns)
            self._next_id += 1
            self.tracks_opened += 1
            predictor.update(detection, t_ns)
            if scores is not None:
                self._fold_evidence(track, scores)
            self._tracks.append(track)
            reported.append(
                TrackedAnimal(track.track_id, track.name, detection.copy(), True, int(given[i]))
            )
        if identity is not None and self.names is not None:
            reported = self._rename(reported)
        reported.sort(key=lambda a: a.track_id)
        return reported

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


def tracking_for(bundle_meta: Any, **options: Any) -> IdentityChannelTracking | None:
    """The tracking stage for a bundle: one for a multi-animal bundle, ``None`` otherwise."""
    animals = getattr(bundle_meta, "animals", None)
    if animals is None:
        return None
    return IdentityChannelTracking(animals.names, len(animals.bodyparts), **options)


def video_time_ns(index: int, fps: float) -> int:
    """The time of video frame ``index`` at ``fps`` frames a second (30 where it is unknown),
    what offline analysis gives the tracking stage for capture time."""
    return int(round(index * 1e9 / (fps if fps and fps > 0 else 30.0)))


def track_sequence(poses: np.ndarray, bundle_meta: Any, fps: float) -> np.ndarray:
    """A whole video's poses ``[N, A·K, 3]`` through the tracking stage, frame ``i`` at
    ``i / fps`` s; unchanged for a single-animal bundle. The stage is causal, so this gives
    what tracking frame by frame gives (the sequential and the chunked analyses agree)."""
    stage = tracking_for(bundle_meta)
    if stage is None:
        return poses
    out = np.empty_like(poses)
    for i, pose in enumerate(poses):
        out[i] = stage.update(pose, video_time_ns(i, fps))
    return out
