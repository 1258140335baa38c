"""Causal tracking of animals that look alike: each followed animal keeps one pose slot.

A bottom-up decoder (part-affinity assembly) gives each frame's animals ``[N, K, 3]`` in no
particular order, and nothing in the image names them: the only thing that says which animal is
which is where each was a moment ago. :class:`UnmarkedTracking` runs an
:class:`~realtime_pose.inference.tracking.IdentityTracker` without names and with the cues that
matter for look-alikes switched on, and lays its confirmed tracks out in *slots* (as many as
the bundle has, ``max_animals`` by default):

- a track owns one slot from its confirmation to its death and never moves while alive; a slot
  freed by a closed track is taken by the next new track (lowest free slot first);
- a slot's rows are the matched detection, or, while its track coasts (undetected this frame),
  the track's prediction with likelihood 0; an empty slot has ``track_id`` −1, x = y = NaN and
  likelihood 0;
- ``track_id`` values are never reused within a session (nor after :meth:`reset`).

Defaults, and why
-----------------
``motion="kalman"``
    After two animals cross, their last seen positions are the same place: only velocity says
    which detection continues which track. ``"last_position"`` is there to measure that.
``min_hits=3`` (``birth_window_frames`` = 5)
    Bottom-up assembly produces fragments (half an animal, a reflection) that last a frame or
    two; SORT's choice of 3 keeps them out at the price of reporting a new animal 2 frames late
    (67 ms at 30 fps), which matters little as animals rarely appear mid-session.
``max_missed_s=0.5``
    The Kalman filter's own ``max_coast_s``: beyond it a constant-velocity extrapolation is
    stale, and a look-alike found there is as likely another animal. Closing the track (a new
    ``track_id`` later) is then better than silently continuing it on the wrong animal. Each
    track's filter coasts with confidence for as long as the track lives.
``size_weight_px=20``
    Littermates differ little in size and a pose's size changes with posture (a mouse rearing
    seen from above shrinks by ~30 %, ``|log| ≈ 0.36``, ~7 px), so the cue must stay well below
    the motion gate; where sizes differ clearly it still counts (1.5× ≈ 8 px, 2× ≈ 14 px per
    animal, twice that for a swapped pair), enough to settle a crossing that motion leaves
    open. 0 turns it off.
``max_distance_px=100``
    As :class:`~realtime_pose.inference.tracking.IdentityTracker` and the run config's
    ``tracking.max_distance_px``: a prediction error larger than that is a lost track.
``appearance_weight_px=0``
    Descriptors need the image (an embedding head or a crop's histogram) that the decoder does
    not give; the hook is there for one that does.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from realtime_pose.inference.tracking import IdentityTracker

DEFAULT_MAX_MISSED_S = 0.5
DEFAULT_MIN_HITS = 3
DEFAULT_SIZE_WEIGHT_PX = 20.0


class UnmarkedTracking:
    """The live loop's tracking stage for animals that look alike (part-affinity bundles).

    Parameters
    ----------
    num_bodyparts
        ``K`` keypoints per animal.
    max_animals
        At most this many tracks at once (the bundle's slot count or the config).
    slots
        The pose's animal slots (the bundle's ``animals.names``), at least ``max_animals``;
        ``None``: ``max_animals``.
    max_distance_px
        A detection farther than this (mean keypoint distance) from a track's prediction is not
        matched to it.
    max_missed_s
        A track unmatched for longer than this is closed and its slot freed.
    min_hits
        Detections a new animal needs within ``birth_window_frames`` frames before it gets a
        slot (1: at once).
    birth_window_frames
        ``None``: ``min_hits + 2``.
    motion
        ``"kalman"`` (constant-velocity prediction) or ``"last_position"``.
    size_weight_px
        Pixels of distance worth a body-size ratio of ``e`` (``|log ratio|``); 0: off.
    appearance_weight_px
        Pixels of distance worth a cosine distance of 1 between descriptors; 0: off.
    min_likelihood
        Keypoints below this likelihood count neither for distances nor for size.
    predictor_options
        Keyword arguments for each track's
        :class:`~realtime_pose.inference.predict.ForwardPredictor`; ``max_coast_s`` defaults to
        ``max_missed_s``.

    Notes
    -----
    :meth:`update` returns the same two buffers every frame: copy them to keep them.
    """

    def __init__(
        self,
        num_bodyparts: int,
        max_animals: int,
        *,
        slots: int | None = None,
        max_distance_px: float = 100.0,
        max_missed_s: float = DEFAULT_MAX_MISSED_S,
        min_hits: int = DEFAULT_MIN_HITS,
        birth_window_frames: int | None = None,
        motion: str = "kalman",
        size_weight_px: float = DEFAULT_SIZE_WEIGHT_PX,
        appearance_weight_px: float = 0.0,
        min_likelihood: float = 0.5,
        predictor_options: Mapping[str, Any] | None = None,
    ) -> None:
        self.tracker = IdentityTracker(
            num_bodyparts,
            max_animals,
            names=None,
            max_distance_px=max_distance_px,
            identity_weight_px=0.0,
            max_missed_s=max_missed_s,
            min_likelihood=min_likelihood,
            predictor_options={"max_coast_s": max_missed_s, **(predictor_options or {})},
            motion=motion,
            size_weight_px=size_weight_px,
            appearance_weight_px=appearance_weight_px,
            min_hits=min_hits,
            birth_window_frames=birth_window_frames,
        )
        self.num_bodyparts = self.tracker.num_keypoints
        self.max_animals = self.tracker.max_animals
        if slots is not None and not self.max_animals <= slots:
            raise ValueError(
                f"max_animals must be 1..{slots} (the bundle's slots), got {self.max_animals}"
            )
        self.slots = self.max_animals if slots is None else int(slots)
        S, K = self.slots, self.num_bodyparts
        self._rows = np.empty((S * K, 3), dtype=np.float32)
        self._track_ids = np.empty(S, dtype=np.int64)
        self._detections = np.empty(S, dtype=np.int64)
        self._slot_of: dict[int, int] = {}
        self.frames = 0
        """Frames seen since construction."""
        self.coasting_slot_frames = 0
        """Slot-frames reported from a track's prediction (its animal not detected)."""
        self.unassigned_detections = 0
        """Visible detections not in any slot (candidates, or more animals than slots)."""
        self._clear()

    def _clear(self) -> None:
        self._rows[:, :2] = np.nan
        self._rows[:, 2] = 0.0
        self._track_ids[:] = -1
        self._detections[:] = -1
        self._slot_of.clear()

    def reset(self) -> None:
        """Close every track and empty every slot (a new session); ``track_id`` values keep
        counting up, so none is reused."""
        self.tracker.reset()
        self._clear()

    @property
    def tracks_opened(self) -> int:
        """Tracks confirmed (given a slot) so far."""
        return self.tracker.tracks_opened

    @property
    def tracks_closed(self) -> int:
        """Tracks closed after ``max_missed_s`` unmatched."""
        return self.tracker.tracks_closed

    @property
    def candidates_dropped(self) -> int:
        """New detections that never reached ``min_hits`` (spurious: never given a slot)."""
        return self.tracker.candidates_dropped

    @property
    def track_ids(self) -> np.ndarray:
        """``int64 [slots]``: each slot's track (−1 empty) after the last frame (the
        buffer :meth:`update` returns)."""
        return self._track_ids

    @property
    def detections(self) -> np.ndarray:
        """``int64 [slots]``: which of the last frame's ``animals`` each slot holds (−1:
        empty, or its track coasting). A reused buffer."""
        return self._detections

    def slot_of(self, track_id: int) -> int | None:
        """The slot ``track_id`` holds, or ``None`` if it is not alive."""
        return self._slot_of.get(int(track_id))

    def update(
        self, animals: np.ndarray, t_ns: int, descriptors: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Fold in one frame's animals; return the slots.

        Parameters
        ----------
        animals
            ``float [N, K, 3]`` x, y, likelihood in frame pixels, any order (``N`` may be 0);
            a part an animal lacks has x = y = NaN and likelihood 0.
        t_ns
            Capture time (must not go backwards).
        descriptors
            Optional ``[N, D]`` appearance descriptors (see ``appearance_weight_px``).

        Returns
        -------
        rows
            ``float32 [slots·K, 3]``: slot ``s`` is rows ``s·K … s·K + K − 1``.
        track_ids
            ``int64 [slots]``: each slot's ``track_id``, −1 where empty.
        """
        K = self.num_bodyparts
        animals = np.asarray(animals)
        if animals.ndim != 3 or animals.shape[1:] != (K, 3):
            raise ValueError(
                f"animals must be [N, {K}, 3] (x, y, likelihood per keypoint), "
                f"got shape {animals.shape}"
            )
        reported = self.tracker.update(animals, t_ns, descriptors=descriptors)
        self.frames += 1
        alive = {a.track_id for a in reported}
        for track_id in [t for t in self._slot_of if t not in alive]:
            self._track_ids[self._slot_of.pop(track_id)] = -1
        rows, holds = self._rows, self._detections
        rows[:, :2] = np.nan
        rows[:, 2] = 0.0
        holds[:] = -1
        for animal in reported:
            slot = self._slot_of.get(animal.track_id)
            if slot is None:
                slot = int(np.flatnonzero(self._track_ids < 0)[0])  # there is always one
                self._slot_of[animal.track_id] = slot
                self._track_ids[slot] = animal.track_id
            block = rows[slot * K : (slot + 1) * K]
            block[:] = animal.keypoints
            if animal.detected:
                holds[slot] = animal.detection
            else:
                block[:, 2] = 0.0
                self.coasting_slot_frames += 1
        if len(animals):
            seen = (animals[:, :, 2] >= self.tracker.min_likelihood) & np.isfinite(
                animals[:, :, :2]
            ).all(axis=2)
            visible = seen.any(axis=1)
            self.unassigned_detections += int(visible.sum()) - int((holds >= 0).sum())
        return rows, self._track_ids


class LookAlikeTracking:
    """The live loop's (and offline analysis') tracking stage for look-alike bundles.

    The estimator's pose for a part-affinity bundle holds the animals the decoder found, best
    first, one slot ``[K, 3]`` each (empty: NaN, likelihood 0). This stage hands them to
    :class:`UnmarkedTracking` and returns its slots, so that from here on slot ``s`` is one
    followed animal for as long as its track lives; :attr:`track_ids` says which.

    Parameters
    ----------
    num_bodyparts
        ``K``.
    slots
        The pose's animal slots (the bundle's ``animals.names``).
    max_animals
        At most this many animals are followed (``None``: one per slot).
    options
        Keyword arguments for :class:`UnmarkedTracking`.
    """

    def __init__(
        self, num_bodyparts: int, slots: int, max_animals: int | None = None, **options: Any
    ) -> None:
        self.slots = int(slots)
        self.num_bodyparts = int(num_bodyparts)
        self.tracker = UnmarkedTracking(
            num_bodyparts,
            slots if max_animals is None else max_animals,
            slots=self.slots,
            **options,
        )

    @property
    def track_ids(self) -> np.ndarray:
        """Each slot's ``track_id`` in the last frame, −1 where empty (a reused buffer)."""
        return self.tracker.track_ids

    def reset(self) -> None:
        """Forget every track (a new session); ids keep counting up."""
        self.tracker.reset()

    def update(self, pose: np.ndarray, t_ns: int) -> np.ndarray:
        """The decoder's animals ``[slots·K, 3]`` in, the tracked slots out (a reused buffer)."""
        rows, _ = self.tracker.update(
            np.asarray(pose).reshape(self.slots, self.num_bodyparts, 3), t_ns
        )
        return rows


def unmarked_tracking_for(bundle_meta: Any, **options: Any) -> LookAlikeTracking | None:
    """The tracking stage for a bundle whose animals look alike (``decoding: part_affinity``):
    as many slots as the bundle names, one per bodypart; ``None`` for any other bundle."""
    animals = getattr(bundle_meta, "animals", None)
    if animals is None or not getattr(animals, "grouped", False):
        return None
    return LookAlikeTracking(len(animals.bodyparts), len(animals.names), **options)
