"""A one-slot, never-blocking hand-off of the newest frame and pose to a slower consumer.

The live loop offers every frame; a consumer on another thread (the live view, a preview
encoder) takes the newest one when it is ready for it. Offers between two takes replace each
other; nothing queues, and the loop never waits for the consumer.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

import numpy as np

from realtime_pose.ports import Predicted
from realtime_pose.sources.base import Frame


@dataclass(frozen=True, slots=True)
class TappedFrame:
    """A frame and its pose as the loop saw them (the tap's own copies)."""

    image: np.ndarray
    frame_index: int
    t_capture_ns: int
    seq: int
    pose: np.ndarray
    predicted: np.ndarray | None
    t_target_ns: int | None


class LatestFrameTap:
    """Keep the newest offered frame for :meth:`take` (a :class:`~realtime_pose.ports.FrameTap`).

    Parameters
    ----------
    max_fps
        At most this many offers per second are kept (the others return at once without a copy),
        so the loop pays for the copies a consumer can use; ``None`` keeps every offer.
    """

    def __init__(self, max_fps: float | None = 30.0) -> None:
        if max_fps is not None and not max_fps > 0:
            raise ValueError(f"max_fps must be positive or None, got {max_fps}")
        self._min_gap_ns = 0 if max_fps is None else round(1e9 / max_fps)
        self._last_kept_ns = -(1 << 62)
        self._cond = threading.Condition()
        self._slot: TappedFrame | None = None
        self.offered = 0
        """Frames offered."""
        self.kept = 0
        """Offers copied into the slot."""
        self.taken = 0
        """Frames handed to the consumer."""

    def offer(self, frame: Frame, seq: int, pose: np.ndarray, predicted: Predicted | None) -> None:
        """Keep ``frame`` and ``pose`` if the rate allows (copies; returns at once)."""
        self.offered += 1
        now = time.monotonic_ns()
        if now - self._last_kept_ns < self._min_gap_ns:
            return
        self._last_kept_ns = now
        tapped = TappedFrame(
            frame.image.copy(),
            frame.frame_index,
            frame.t_capture_ns,
            seq,
            pose.copy(),
            None if predicted is None else predicted[1].copy(),
            None if predicted is None else int(predicted[0]),
        )
        with self._cond:
            self._slot = tapped
            self.kept += 1
            self._cond.notify_all()

    def take(self, timeout_s: float | None = None) -> TappedFrame | None:
        """The newest frame not taken yet, waiting up to ``timeout_s`` for one (``None``: none)."""
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        with self._cond:
            while self._slot is None:
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    return None
                self._cond.wait(left)
            tapped, self._slot = self._slot, None
            self.taken += 1
            return tapped
