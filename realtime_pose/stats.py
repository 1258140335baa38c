"""Rolling per-stage latency statistics for the live loop (p50, p99, max; never only means)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


class StageStats:
    """Ring buffers of the last ``window`` latencies (ns) for each named stage.

    ``record`` is a few array stores per frame; percentiles are computed only when asked
    (about once a second for the status stream).
    """

    def __init__(self, stages: Sequence[str], window: int = 2048) -> None:
        if window < 1:
            raise ValueError(f"window must be >= 1, got {window}")
        self.stages = tuple(stages)
        self._index = {name: i for i, name in enumerate(self.stages)}
        self._buf = np.zeros((len(self.stages), window), dtype=np.int64)
        self._window = window
        self._count = 0

    def record(self, values_ns: Sequence[int] | np.ndarray) -> None:
        """Store one frame's latencies, in the order of :attr:`stages`."""
        self._buf[:, self._count % self._window] = values_ns
        self._count += 1

    @property
    def count(self) -> int:
        """Frames recorded since the start (not capped by the window)."""
        return self._count

    def samples(self, stage: str) -> np.ndarray:
        """The stored latencies (ns) of one stage, oldest first."""
        n = min(self._count, self._window)
        row = self._buf[self._index[stage]]
        if self._count <= self._window:
            return row[:n].copy()
        start = self._count % self._window
        return np.concatenate([row[start:], row[:start]])

    def samples_since(self, mark: int) -> dict[str, np.ndarray]:
        """Per stage, the samples recorded since :attr:`count` was ``mark`` (at most a window)."""
        n = max(0, min(self._count - mark, self._window))
        idx = np.arange(self._count - n, self._count) % self._window
        return {name: self._buf[i, idx] for i, name in enumerate(self.stages)}

    def summary_ms(self) -> dict[str, dict[str, float]]:
        """``{stage: {"p50": ms, "p99": ms, "max": ms}}`` over the window."""
        n = min(self._count, self._window)
        if n == 0:
            return {}
        data = self._buf[:, :n] / 1e6
        p50, p99 = np.percentile(data, [50, 99], axis=1)
        peak = data.max(axis=1)
        return {
            name: {
                "p50": round(float(p50[i]), 4),
                "p99": round(float(p99[i]), 4),
                "max": round(float(peak[i]), 4),
            }
            for i, name in enumerate(self.stages)
        }

    def reset(self) -> None:
        """Forget every sample."""
        self._count = 0
