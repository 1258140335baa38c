"""A one-line progress bar on stderr for long offline runs (no dependency)."""

from __future__ import annotations

import sys
import time
from typing import TextIO


class Progress:
    """Counts items and redraws one line at most 5 times a second.

    On a terminal the line is redrawn in place; in a log file a line is written every 500
    items and at the end. With a total the line shows the estimated time left; failures
    (:meth:`fail`) are shown once there is one.
    """

    def __init__(self, label: str, total: int | None, stream: TextIO | None = None) -> None:
        self.label, self.total = label, total
        self.stream: TextIO = sys.stderr if stream is None else stream
        self.count = 0
        self.failures = 0
        self._logged = self._logged_failures = 0
        self._t0 = time.monotonic()
        self._last = 0.0
        self._tty = hasattr(self.stream, "isatty") and self.stream.isatty()

    def update(self, n: int = 1) -> None:
        """Count ``n`` more items and redraw if due."""
        self.count += n
        now = time.monotonic()
        if now - self._last >= 0.2:
            self._last = now
            self._draw(now, end="\r" if self._tty else "\n", final=False)

    def fail(self, n: int = 1) -> None:
        """Count ``n`` failures (shown on the line) and redraw."""
        self.failures += n
        self._last = 0.0
        self.update(0)

    def close(self) -> None:
        """Draw the final state and end the line."""
        self._draw(time.monotonic(), end="\n", final=True)

    def _draw(self, now: float, end: str, final: bool) -> None:
        rate = self.count / max(now - self._t0, 1e-9)
        if self.total:
            frac = min(1.0, self.count / self.total)
            bar = "#" * int(30 * frac) + "-" * (30 - int(30 * frac))
            text = f"{self.label} [{bar}] {self.count}/{self.total} {rate:6.1f} fps"
            if 0 < self.count < self.total:
                text += f" ETA {_clock((self.total - self.count) / max(rate, 1e-9))}"
        else:
            text = f"{self.label} {self.count} frames {rate:6.1f} fps"
        if self.failures:
            text += f" {self.failures} failed"
        if not self._tty:  # keep logs short: a line per 500 items, failure, and at the end
            due = self.count - self._logged >= 500 or self.failures != self._logged_failures
            due = due or self._logged != self.count == self.total
            if not (due or final):
                return
            self._logged, self._logged_failures = self.count, self.failures
        print(text, end=end, file=self.stream, flush=True)


def _clock(seconds: float) -> str:
    """``h:mm:ss`` (or ``m:ss``) for a duration."""
    seconds = int(round(seconds))
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"
