"""Latency statistics: the one p50/p99/max summary, and the live loop's rolling per-stage buffers.

Every latency figure realtime-pose reports (status stream, benchmarks, latency test, subscriber)
is a :class:`Summary` of nanosecond samples: p50, p99 and max, never only a mean.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

Unit = Literal["ns", "us", "ms", "s"]
_SCALE: dict[str, float] = {"ns": 1.0, "us": 1e3, "ms": 1e6, "s": 1e9}


@dataclass(frozen=True)
class Summary:
    """p50, p99, max (and mean) of latency samples in one unit; NaN when there were none."""

    p50: float
    p99: float
    max: float
    mean: float
    n: int
    unit: Unit = "ms"

    @classmethod
    def of(
        cls, samples_ns: Iterable[int] | np.ndarray, unit: Unit = "ms", digits: int = 4
    ) -> Summary:
        """Summarise nanosecond samples in ``unit``, rounded to ``digits`` decimals."""
        arr = np.asarray(
            samples_ns if isinstance(samples_ns, np.ndarray) else list(samples_ns),
            dtype=np.float64,
        )
        if arr.size == 0:
            nan = float("nan")
            return cls(nan, nan, nan, nan, 0, unit)
        arr = arr / _SCALE[unit]
        p50, p99 = np.percentile(arr, [50, 99])
        return cls(
            round(float(p50), digits),
            round(float(p99), digits),
            round(float(arr.max()), digits),
            round(float(arr.mean()), digits),
            int(arr.size),
            unit,
        )

    @classmethod
    def of_each(
        cls, samples_ns: dict[str, np.ndarray], unit: Unit = "ms", digits: int = 4
    ) -> dict[str, Summary]:
        """Summaries of several series at once: series of equal length go through one NumPy
        call (what the live loop's status message needs, without stalling the loop)."""
        lengths = {len(v) for v in samples_ns.values()}
        if len(lengths) != 1 or 0 in lengths:
            return {k: cls.of(v, unit, digits) for k, v in samples_ns.items()}
        rows = np.stack([np.asarray(v, np.float64) for v in samples_ns.values()]) / _SCALE[unit]
        p50, p99 = np.percentile(rows, [50, 99], axis=1)
        peak, mean = rows.max(axis=1), rows.mean(axis=1)
        n = rows.shape[1]
        return {
            name: cls(
                round(float(p50[i]), digits),
                round(float(p99[i]), digits),
                round(float(peak[i]), digits),
                round(float(mean[i]), digits),
                n,
                unit,
            )
            for i, name in enumerate(samples_ns)
        }

    def to_dict(
        self, suffix: bool = False, *, mean: bool = False, n: bool = False, empty=None
    ) -> dict[str, float | int | None]:
        """``{"p50", "p99", "max"}`` (``p50_ms``… with ``suffix``), plus ``mean``/``n`` if
        asked; an empty summary gives ``empty`` for each value."""
        tail = f"_{self.unit}" if suffix else ""
        keys = ["p50", "p99", "max", *(["mean"] if mean else [])]
        out: dict[str, float | int | None] = {
            f"{k}{tail}": (empty if math.isnan(getattr(self, k)) else getattr(self, k))
            for k in keys
        }
        if n:
            out["n"] = self.n
        return out


def warm_up() -> None:
    """Pay NumPy's one-off cost of the first percentile (about 20 ms) now, not in the loop."""
    Summary.of_each({"a": np.zeros(2, np.int64), "b": np.zeros(2, np.int64)})


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
        self._keys = np.full(window, -1, dtype=np.int64)
        self._window = window
        self._count = 0

    def record(self, values_ns: Sequence[int] | np.ndarray, key: int = -1) -> None:
        """Store one frame's latencies, in the order of :attr:`stages`, under ``key`` (the
        frame index, for :meth:`by_key`)."""
        slot = self._count % self._window
        self._buf[:, slot] = values_ns
        self._keys[slot] = key
        self._count += 1

    def by_key(self, stage: str) -> dict[int, int]:
        """``{key: latency ns}`` of one stage over the window (the frames still held)."""
        n = min(self._count, self._window)
        row = self._buf[self._index[stage]]
        return {int(k): int(v) for k, v in zip(self._keys[:n], row[:n], strict=True) if k >= 0}

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

    def summary_ms(self) -> dict[str, dict[str, float | int | None]]:
        """``{stage: {"p50": ms, "p99": ms, "max": ms}}`` over the window."""
        n = min(self._count, self._window)
        if n == 0:
            return {}
        series = {name: self._buf[i, :n] for i, name in enumerate(self.stages)}
        return {name: s.to_dict() for name, s in Summary.of_each(series).items()}

    def reset(self) -> None:
        """Forget every sample."""
        self._count = 0
