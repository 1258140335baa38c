"""Which poses the model is unsure of: cheap per-frame checks for live capture.

:class:`DoubtDetector` looks at each pose as it leaves the network and returns a bitmask of
reasons to doubt it (0: nothing wrong), keeping which keypoint rows raised them. Every check is
causal (it sees the past, never the next frames) and runs in one Numba kernel on preallocated
arrays, so calling it on every frame of the live loop costs a few microseconds:

``likelihood_drop``
    A keypoint's likelihood falls below ``min_likelihood`` after it was at or above it in each of
    the previous ``confident_frames`` frames: the network lost a point it was following (a
    causal version of DeepLabCut's "uncertain" outlier rule).
``jump``
    A confident keypoint lies farther than ``jump_px`` from where a constant-velocity
    extrapolation of its last two confident positions (at their capture times) puts it now
    (DeepLabCut's "jump" rule, against a prediction instead of the previous frame). The
    history then starts afresh, so a one-frame glitch, or a real relocation, is flagged once.
``distance``
    Two confident bodyparts of one animal are closer or farther apart than they ever were in the
    training labels, widened by ``distance_margin``: a body out of shape.
``track_lost`` / ``track_reborn``
    (several animals) An animal with at least half of its keypoints confident has none left
    (lost), or a lost animal has at least half of them again (reborn): where identities swap.
``uncertain``
    (one animal) At least ``uncertain_share`` of the keypoints are below ``min_likelihood``:
    DeepLabCut's "uncertain" outlier rule, for a network that was never confident here (an
    animal or a light it was not trained on), where a drop or a jump cannot show.

The detector owns no I/O; :class:`~realtime_pose.live.capture.FrameCapture` decides which
doubtful frames to keep.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Sequence
from typing import Any

import numba
import numpy as np


class Reason(enum.IntFlag):
    """Why a pose is doubtful; :meth:`DoubtDetector.update` returns an OR of these."""

    LIKELIHOOD_DROP = 1
    JUMP = 2
    DISTANCE = 4
    TRACK_LOST = 8
    TRACK_REBORN = 16
    UNCERTAIN = 32


REASON_NAMES: dict[int, str] = {int(r): r.name.lower() for r in Reason}
"""Bit → reason name as published in ``capture`` events (``"likelihood_drop"``, ...)."""

_RUN_CAP = 1 << 30
_NEVER_SEEN, _VISIBLE, _LOST = 0, 1, 2


@numba.njit(cache=True)
def doubt_kernel(
    pose: np.ndarray,
    t_ns: int,
    min_likelihood: float,
    confident_frames: int,
    jump_px: float,
    max_age_ns: int,
    pairs: np.ndarray,
    low_px: np.ndarray,
    high_px: np.ndarray,
    animals: int,
    uncertain_count: int,
    run: np.ndarray,
    last_xy: np.ndarray,
    last_t: np.ndarray,
    n_last: np.ndarray,
    track: np.ndarray,
    confident: np.ndarray,
    flagged: np.ndarray,
) -> int:
    """Check one pose against the state of the previous ones and update that state.

    Parameters
    ----------
    pose
        ``[N, 3]`` x, y, likelihood in frame pixels; ``N = animals * K``.
    t_ns
        The pose's capture time.
    min_likelihood, confident_frames
        A keypoint is confident at ``likelihood >= min_likelihood`` (and finite x, y); a drop
        counts after ``confident_frames`` confident frames in a row.
    jump_px, max_age_ns
        Jump threshold (negative: no jump check); older confident positions are not
        extrapolated.
    pairs, low_px, high_px
        ``[P, 2]`` bodypart indices within one animal and the allowed distance range of each.
    animals
        Animals in the pose; track checks run for two or more.
    uncertain_count
        One animal: this many keypoints below ``min_likelihood`` make the pose uncertain
        (negative: no such check).
    run, last_xy, last_t, n_last, track
        State: confident frames in a row ``[N]``; the last two confident positions
        ``[N, 2, 2]`` (newest first) and their times ``[N, 2]``; how many of them are valid
        ``[N]``; each animal's track state ``[animals]`` (never seen, visible, lost).
    confident, flagged
        Out ``[N]``: which rows are confident now, which raised a reason.

    Returns
    -------
    int
        OR of :class:`Reason` bits.
    """
    n = pose.shape[0]
    mask = 0
    check_jump = jump_px >= 0.0
    for i in range(n):
        x = pose[i, 0]
        y = pose[i, 1]
        lik = pose[i, 2]
        flagged[i] = False
        ok = lik >= min_likelihood and math.isfinite(x) and math.isfinite(y)
        confident[i] = ok
        if not ok:
            if run[i] >= confident_frames:
                mask |= 1
                flagged[i] = True
            run[i] = 0
            continue
        if run[i] < _RUN_CAP:
            run[i] += 1
        if check_jump and n_last[i] == 2 and t_ns - last_t[i, 1] <= max_age_ns:
            t0 = last_t[i, 0]
            dt_prev = t0 - last_t[i, 1]
            px = last_xy[i, 0, 0]
            py = last_xy[i, 0, 1]
            if dt_prev > 0:
                ratio = (t_ns - t0) / dt_prev
                px += (last_xy[i, 0, 0] - last_xy[i, 1, 0]) * ratio
                py += (last_xy[i, 0, 1] - last_xy[i, 1, 1]) * ratio
            if (x - px) ** 2 + (y - py) ** 2 > jump_px * jump_px:
                mask |= 2
                flagged[i] = True
                # a glitch or a real move: either way the velocity across it means nothing,
                # so the next two positions start a fresh history (one flag per jump)
                n_last[i] = 0
                continue
        last_xy[i, 1, 0] = last_xy[i, 0, 0]
        last_xy[i, 1, 1] = last_xy[i, 0, 1]
        last_t[i, 1] = last_t[i, 0]
        last_xy[i, 0, 0] = x
        last_xy[i, 0, 1] = y
        last_t[i, 0] = t_ns
        if n_last[i] < 2:
            n_last[i] += 1
    k = n // animals
    for a in range(animals):
        base = a * k
        for p in range(pairs.shape[0]):
            i = base + pairs[p, 0]
            j = base + pairs[p, 1]
            if confident[i] and confident[j]:
                dx = pose[i, 0] - pose[j, 0]
                dy = pose[i, 1] - pose[j, 1]
                d = math.sqrt(dx * dx + dy * dy)
                if d < low_px[p] or d > high_px[p]:
                    mask |= 4
                    flagged[i] = True
                    flagged[j] = True
    if animals > 1:
        for a in range(animals):
            base = a * k
            seen = 0
            for i in range(base, base + k):
                if confident[i]:
                    seen += 1
            if 2 * seen >= k:
                if track[a] == _LOST:
                    mask |= 16
                    for i in range(base, base + k):
                        if confident[i]:
                            flagged[i] = True
                track[a] = _VISIBLE
            elif seen == 0 and track[a] == _VISIBLE:
                mask |= 8
                for i in range(base, base + k):
                    flagged[i] = True
                track[a] = _LOST
    elif uncertain_count > 0:
        unsure = 0
        for i in range(n):
            if not confident[i]:
                unsure += 1
        if unsure >= uncertain_count:
            mask |= 32
            for i in range(n):
                if not confident[i]:
                    flagged[i] = True
    return mask


class DoubtDetector:
    """Flag doubtful poses, one frame at a time (see the module docstring for the reasons).

    Parameters
    ----------
    keypoints
        Names of the pose rows: ``animals * K`` of them, animal ``a``'s bodyparts in rows
        ``a*K .. (a+1)*K - 1`` (a multi-animal bundle's ``animal/bodypart`` order).
    animals
        How many animals the rows hold.
    min_likelihood
        A keypoint is confident at or above this likelihood.
    confident_frames
        A likelihood drop counts after this many confident frames in a row.
    jump_px
        Largest distance from the extrapolated position, frame pixels; ``None``: no jump check.
    distance_pairs
        Bodypart index pairs within one animal whose distance is checked.
    distance_min_px, distance_max_px
        The range of each pair's distance in the training labels (frame pixels).
    distance_margin
        The range is widened to ``[min * (1 - margin), max * (1 + margin)]``.
    max_age_s
        Confident positions older than this are not extrapolated (the jump check waits for two
        fresh ones).
    uncertain_share
        One animal: the pose is uncertain when at least this share of its keypoints is below
        ``min_likelihood``; ``None``: no such check.

    Attributes
    ----------
    flagged
        ``[N]`` bool: the rows that raised a reason in the last :meth:`update` (reused).
    confident
        ``[N]`` bool: the rows that were confident in the last :meth:`update` (reused).
    """

    def __init__(
        self,
        keypoints: Sequence[str],
        *,
        animals: int = 1,
        min_likelihood: float = 0.5,
        confident_frames: int = 3,
        jump_px: float | None = 30.0,
        distance_pairs: Sequence[tuple[int, int]] | None = None,
        distance_min_px: Sequence[float] | np.ndarray | None = None,
        distance_max_px: Sequence[float] | np.ndarray | None = None,
        distance_margin: float = 0.25,
        max_age_s: float = 0.5,
        uncertain_share: float | None = 0.5,
    ) -> None:
        self.keypoints = [str(k) for k in keypoints]
        n = len(self.keypoints)
        if n == 0:
            raise ValueError("keypoints must name at least one pose row")
        if animals < 1 or n % animals:
            raise ValueError(
                f"animals={animals} does not divide the {n} keypoints into equal animals"
            )
        if not math.isfinite(min_likelihood):
            raise ValueError(f"min_likelihood must be a finite number, got {min_likelihood}")
        if confident_frames < 1:
            raise ValueError(f"confident_frames must be at least 1, got {confident_frames}")
        if jump_px is not None and not jump_px > 0:
            raise ValueError(f"jump_px must be positive or None, got {jump_px}")
        if not 0 <= distance_margin < 1:
            raise ValueError(f"distance_margin must be in [0, 1), got {distance_margin}")
        if not max_age_s > 0:
            raise ValueError(f"max_age_s must be positive, got {max_age_s}")
        if uncertain_share is not None and not 0 < uncertain_share <= 1:
            raise ValueError(f"uncertain_share must be in (0, 1] or None, got {uncertain_share}")
        self.animals = int(animals)
        self.bodyparts = n // self.animals
        self.min_likelihood = float(min_likelihood)
        self.confident_frames = int(confident_frames)
        self.jump_px = None if jump_px is None else float(jump_px)
        self.distance_margin = float(distance_margin)
        self.max_age_s = float(max_age_s)
        self.uncertain_share = uncertain_share
        self._uncertain_count = (
            -1 if uncertain_share is None else max(1, math.ceil(uncertain_share * n - 1e-9))
        )
        self.pairs, self.distance_min_px, self.distance_max_px = self._check_pairs(
            distance_pairs, distance_min_px, distance_max_px
        )
        self._low_px = self.distance_min_px * (1.0 - self.distance_margin)
        self._high_px = self.distance_max_px * (1.0 + self.distance_margin)
        self._jump = -1.0 if self.jump_px is None else self.jump_px
        self._max_age_ns = round(self.max_age_s * 1e9)
        self._shape = (n, 3)
        self._run = np.zeros(n, np.int64)
        self._last_xy = np.zeros((n, 2, 2), np.float64)
        self._last_t = np.zeros((n, 2), np.int64)
        self._n_last = np.zeros(n, np.int64)
        self._track = np.zeros(self.animals, np.int64)
        self.confident = np.zeros(n, np.bool_)
        self.flagged = np.zeros(n, np.bool_)

    def _check_pairs(
        self,
        pairs: Sequence[tuple[int, int]] | None,
        min_px: Sequence[float] | np.ndarray | None,
        max_px: Sequence[float] | np.ndarray | None,
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        if pairs is None or len(pairs) == 0:
            if any(v is not None and len(v) for v in (min_px, max_px)):
                raise ValueError("distance_min_px/distance_max_px given without distance_pairs")
            return np.zeros((0, 2), np.int64), np.zeros(0), np.zeros(0)
        index = np.asarray(pairs, dtype=np.int64)
        if index.ndim != 2 or index.shape[1] != 2:
            raise ValueError(f"distance_pairs must be (i, j) pairs, got shape {index.shape}")
        k = self.bodyparts
        if ((index < 0) | (index >= k)).any():
            raise ValueError(
                f"distance_pairs index bodyparts 0..{k - 1} of one animal, got {index.tolist()}"
            )
        if min_px is None or max_px is None:
            raise ValueError("distance_pairs need distance_min_px and distance_max_px")
        low = np.asarray(min_px, dtype=np.float64)
        high = np.asarray(max_px, dtype=np.float64)
        if low.shape != (len(index),) or high.shape != (len(index),):
            raise ValueError(
                f"distance_min_px and distance_max_px need one value per pair ({len(index)}), "
                f"got shapes {low.shape} and {high.shape}"
            )
        if not (np.isfinite(low).all() and np.isfinite(high).all() and (low >= 0).all()):
            raise ValueError("distance_min_px and distance_max_px must be finite and >= 0")
        bad = np.flatnonzero(low > high).tolist()
        if bad:
            raise ValueError(f"distance pairs {bad}: distance_min_px > distance_max_px")
        return index, low, high

    @classmethod
    def from_bundle_meta(cls, meta: Any, **settings: Any) -> DoubtDetector:
        """A detector for a bundle's poses: its keypoints, animals and label distances.

        ``meta`` needs ``keypoints``, ``animals`` (``None`` or with ``names`` and
        ``bodyparts``) and ``label_distances`` (``None`` or with ``pairs`` of bodypart names,
        ``min_px`` and ``max_px``), as :class:`~realtime_pose.bundle.BundleMeta` has;
        ``settings`` are passed on (and win over what the bundle says).
        """
        animals = getattr(meta, "animals", None)
        names = 1 if animals is None else len(animals.names)
        bodyparts = list(meta.keypoints if animals is None else animals.bodyparts)
        kwargs: dict[str, Any] = {"animals": names}
        distances = getattr(meta, "label_distances", None)
        if distances is not None:
            unknown = sorted({b for pair in distances.pairs for b in pair} - set(bodyparts))
            if unknown:
                raise ValueError(f"label_distances.pairs name unknown bodyparts: {unknown}")
            kwargs["distance_pairs"] = [
                (bodyparts.index(a), bodyparts.index(b)) for a, b in distances.pairs
            ]
            kwargs["distance_min_px"] = list(distances.min_px)
            kwargs["distance_max_px"] = list(distances.max_px)
        kwargs.update(settings)
        return cls(list(meta.keypoints), **kwargs)

    def update(self, pose: np.ndarray, t_ns: int) -> int:
        """Check the pose of the frame captured at ``t_ns``; return the OR of its
        :class:`Reason` bits (0: nothing doubtful). :attr:`flagged` then holds the rows that
        raised them. ``pose``: ``[N, 3]`` x, y, likelihood in frame pixels."""
        if pose.shape != self._shape:
            raise ValueError(f"pose must have shape {list(self._shape)}, got {list(pose.shape)}")
        return doubt_kernel(
            pose,
            t_ns,
            self.min_likelihood,
            self.confident_frames,
            self._jump,
            self._max_age_ns,
            self.pairs,
            self._low_px,
            self._high_px,
            self.animals,
            self._uncertain_count,
            self._run,
            self._last_xy,
            self._last_t,
            self._n_last,
            self._track,
            self.confident,
            self.flagged,
        )

    def reset(self) -> None:
        """Forget the past poses (after a gap in the stream or a new model)."""
        self._run[:] = 0
        self._n_last[:] = 0
        self._track[:] = _NEVER_SEEN
        self.confident[:] = False
        self.flagged[:] = False

    @staticmethod
    def reasons(mask: int) -> list[str]:
        """The reason names of ``mask`` in bit order (``["likelihood_drop", "jump"]``)."""
        return [name for bit, name in REASON_NAMES.items() if mask & bit]

    def flagged_keypoints(self) -> list[str]:
        """Names of the rows that raised a reason in the last :meth:`update`."""
        return [self.keypoints[i] for i in np.flatnonzero(self.flagged)]
