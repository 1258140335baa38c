"""Frames the camera lost, counted from the camera's own frame ids and buffer states.

These are apart from the frames the newest-frame grabber drops on purpose (the loop was busy):
a camera drop is a frame that never reached the host in one piece: the id sequence skipped
(the camera or the transport lost it, or a full buffer pool made the driver discard it), or the
buffer arrived failed or incomplete (missing packets, a transfer error, a size mismatch).

:class:`FrameIdGaps` is the pure counter of id gaps (16-bit GigE Vision block ids wrap and skip
0); :class:`CameraDrops` keeps the counts by cause for a source.
"""

from __future__ import annotations

import threading

#: Causes of camera-side drops, as they appear in ``camera_drops`` (status, camera-check).
CAUSES = ("skipped", "failed", "incomplete", "missing_packets", "underrun", "trigger_timeout")


class FrameIdGaps:
    """Count frame ids missing between consecutive received ids.

    Parameters
    ----------
    bits
        Width of the camera's frame counter (16 for GigE Vision block ids, 64 otherwise).
    skip_zero
        The counter skips 0 on wrap-around (GigE Vision: block id 0 is reserved).
    max_gap
        A jump larger than this is not counted as lost frames but as a restart of the counter
        (the camera was reset or acquisition restarted); :attr:`restarts` counts them.
    """

    def __init__(self, bits: int = 64, skip_zero: bool = False, max_gap: int = 1 << 14) -> None:
        if not 1 <= bits <= 64:
            raise ValueError(f"bits must be 1..64, got {bits}")
        self.modulus = 1 << bits
        self.skip_zero = skip_zero
        self.max_gap = max_gap
        self.last: int | None = None
        self.missing = 0
        """Frame ids never received."""
        self.restarts = 0
        """Counter restarts (a jump back, or forward by more than ``max_gap``)."""

    def gap(self, frame_id: int) -> int:
        """Record ``frame_id``; return how many ids were missed just before it, or ``-1`` for a
        late frame (an id behind the last one, already counted as missed: a transport that
        completes a frame with missing packets after the next one)."""
        last = self.last
        if last is None:
            self.last = frame_id
            return 0
        back = self._steps(frame_id, last)
        if 0 < back <= self.max_gap and self.missing > 0:
            self.missing -= 1
            return -1
        self.last = frame_id
        step = self._steps(last, frame_id)
        if step == 0 or step > self.max_gap:
            self.restarts += 1
            return 0
        missed = step - 1
        self.missing += missed
        return missed

    def _steps(self, earlier: int, later: int) -> int:
        step = (later - earlier) % self.modulus
        if self.skip_zero and later < earlier:
            step -= 1  # the wrap passed over the reserved id 0
        return step

    def reset(self) -> None:
        """Forget the last id (acquisition restarts; the next id starts a new sequence)."""
        self.last = None


class CameraDrops:
    """Counts of camera-side drops by cause (thread-safe snapshots for the status stream)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts = dict.fromkeys(CAUSES, 0)

    def add(self, cause: str, n: int = 1) -> None:
        """Count ``n`` drops of ``cause`` (one of :data:`CAUSES`); a negative ``n`` takes back
        a ``skipped`` frame that arrived late after all."""
        if cause not in self._counts:
            raise ValueError(f"unknown drop cause {cause!r}; known: {', '.join(CAUSES)}")
        if n:
            with self._lock:
                self._counts[cause] += n

    @property
    def total(self) -> int:
        """Frames lost by the camera or the transport (trigger timeouts are not frames)."""
        with self._lock:
            return sum(v for k, v in self._counts.items() if k != "trigger_timeout")

    def snapshot(self) -> dict[str, int]:
        """A copy of the counts by cause."""
        with self._lock:
            return dict(self._counts)
