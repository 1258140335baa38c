"""A one-line progress bar on stderr for long offline runs (no dependency)."""

from __future__ import annotations

import sys
import time
from typing import TextIO


class Progress:
    """Counts items and redraws one line at most 5 times a second.

    On a terminal the line is redrawn in place; in a log file a line is written every 500
    items and at the end.
    """

    def __init__(self, label: str, total: int | None, stream: TextIO | None = None) -> None:
        self.label, self.total = label, total
        self.stream: TextIO = sys.stderr if stream is None else stream
        self.count = 0
        self._t0 = time.monotonic()
        self._last = 0.0
        self._tty = hasattr(self.stream, "isatty") and self.stream.isatty()

    def update(self, n: int = 1) -> None:
        """Count ``n`` more items and redraw if due."""
        self.count += n
        now = time.monotonic()
        if now - self._last >= 0.2:
            self._last = now
            self._draw(now, end="\r" if self._tty else "\n")

    def close(self) -> None:
        """Draw the final state and end the line."""
        self._draw(time.monotonic(), end="\n")

    def _draw(self, now: float, end: str) -> None:
        rate = self.count / max(now - self._t0, 1e-9)
        if self.total:
            frac = min(1.0, self.count / self.total)
            bar = "#" * int(30 * frac) + "-" * (30 - int(30 * frac))
            text = f"{self.label} [{bar}] {self.count}/{self.total} {rate:6.1f} fps"
        else:
            text = f"{self.label} {self.count} frames {rate:6.1f} fps"
        if not self._tty and end == "\n" and self.count % 500 and self.count != self.total:
            return  # keep logs short when not on a terminal
        print(text, end=end, file=self.stream, flush=True)
