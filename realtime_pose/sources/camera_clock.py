"""Camera time on the host clock: a small online model fitted to (camera, host) time pairs.

A camera stamps each frame on its own clock (device ticks since power-on, or a host clock the
driver already used). The live loop needs capture times on the host's ``time.monotonic_ns()``.
Each delivered frame gives one pair ``(t_camera, t_arrival)``: the arrival on the host comes after
the exposure by the readout and transfer time, never before it. The model fits

    t_host = t_ref_host + slope * (t_camera - t_ref_camera) + offset

over a sliding window of recent pairs: ``slope`` (1 + drift) by least squares through the least-
delayed pair of each part of the window, ``offset`` by the *lower envelope* of the residuals (the
least-delayed frames define the mapping, since delays are only ever added), so a mapped time is the
camera time plus the smallest transfer delay seen in the window. A clock jump (the camera restarted,
its timestamp was reset) shows as residuals far outside the window's spread; once ``jump_confirm``
pairs in a row agree, the window restarts from them; a single late frame is mapped but never enters
the fit.

Where the camera's clock is already a host clock (pylon's emulator stamps events with the host's
monotonic time; Aravis's fake cameras use the host's real-time clock), no fit is needed:
:class:`KnownClock` maps exactly, and its residuals are the real transfer delays.

:func:`fit_clock` is the pure kernel; :class:`ClockModel` keeps the window.
"""

from __future__ import annotations

import itertools
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

#: How a source's timestamps relate to the host (``timestamp_clock`` in camera options).
CLOCKS = ("auto", "device", "host_monotonic", "host_realtime", "none")


@dataclass(frozen=True)
class ClockFit:
    """A fitted mapping ``t_host = host_ref + slope * (t_camera - camera_ref) + offset_ns``."""

    camera_ref: int
    host_ref: int
    slope: float
    offset_ns: float

    def map(self, t_camera_ns: int) -> int:
        """Host ``monotonic_ns`` of a camera time."""
        return self.host_ref + round(self.slope * (t_camera_ns - self.camera_ref) + self.offset_ns)

    @property
    def drift_ppm(self) -> float:
        """Camera clock rate error relative to the host, parts per million."""
        return (self.slope - 1.0) * 1e6


def fit_clock(
    camera_ns: np.ndarray,
    host_ns: np.ndarray,
    bins: int = 8,
    max_drift_ppm: float = 200.0,
    min_span_ns: int = 1_000_000_000,
) -> ClockFit:
    """Fit the lower-envelope line through (camera, host) pairs.

    Parameters
    ----------
    camera_ns, host_ns
        ``[N]`` int64 times of the same events on the camera's clock and the host's (the host
        time is at or after the true event time). ``N >= 1``.
    bins
        The pairs are cut into this many consecutive groups; the least-delayed pair of each
        group is an envelope point. The slope is fitted through those points by least squares
        (delays have a sharp lower edge and a long upper tail, so the envelope points are far
        less noisy than all pairs). Fewer than ``2 * bins`` pairs, or pairs spanning less than
        ``min_span_ns`` of camera time: slope 1 (over a short span, delay noise swamps any
        real drift, which is tens of ppm: 50 µs per second).
    max_drift_ppm
        The slope is clamped to ``1 ± max_drift_ppm`` (crystal clocks drift by tens of ppm).

    Returns
    -------
    ClockFit
        The slope, and the offset of the smallest residual, so no pair maps after its own host
        time.
    """
    camera_ns = np.asarray(camera_ns, dtype=np.int64)
    host_ns = np.asarray(host_ns, dtype=np.int64)
    if camera_ns.shape != host_ns.shape or camera_ns.ndim != 1 or camera_ns.size == 0:
        raise ValueError(
            f"camera_ns and host_ns must be equal non-empty 1-D arrays, got "
            f"{camera_ns.shape} and {host_ns.shape}"
        )
    camera_ref, host_ref = int(camera_ns[0]), int(host_ns[0])
    x = (camera_ns - camera_ref).astype(np.float64)
    y = (host_ns - host_ref).astype(np.float64)
    slope = 1.0
    if x.size >= 2 * bins and x[-1] - x[0] >= min_span_ns:
        delay = y - x
        edges = np.linspace(0, x.size, bins + 1).astype(np.intp)
        picks = [lo + int(np.argmin(delay[lo:hi])) for lo, hi in itertools.pairwise(edges)]
        px, py = x[picks], y[picks]
        pxc = px - px.mean()
        denom = float(pxc @ pxc)
        if denom > 0:
            slope = float(pxc @ (py - py.mean())) / denom
        limit = max_drift_ppm * 1e-6
        slope = min(max(slope, 1.0 - limit), 1.0 + limit)
    offset = float(np.min(y - slope * x))
    return ClockFit(camera_ref, host_ref, slope, offset)


class ClockModel:
    """Online camera → host mapping over a sliding window, robust to a clock jump.

    Parameters
    ----------
    window
        Pairs kept for the fit.
    refit_every
        Refit after this many new pairs (every pair while the window is short).
    jump_ns
        A residual beyond ``±jump_ns`` from the current mapping is an outlier (a late frame)
        or the start of a clock jump.
    jump_confirm
        Consecutive outliers that agree with each other (within ``jump_ns``) make a jump: the
        window restarts from them.
    """

    def __init__(
        self,
        window: int = 512,
        refit_every: int = 16,
        jump_ns: int = 20_000_000,
        jump_confirm: int = 3,
    ) -> None:
        if window < 2 or refit_every < 1 or jump_ns <= 0 or jump_confirm < 1:
            raise ValueError("window >= 2, refit_every >= 1, jump_ns > 0, jump_confirm >= 1")
        self.window = window
        self.refit_every = refit_every
        self.jump_ns = jump_ns
        self.jump_confirm = jump_confirm
        self._camera: deque[int] = deque(maxlen=window)
        self._host: deque[int] = deque(maxlen=window)
        self._suspects: list[tuple[int, int]] = []
        self._since_fit = 0
        self.fit: ClockFit | None = None
        self.jumps = 0
        """Clock jumps detected (the window was restarted)."""
        self.outliers = 0
        """Pairs left out of the fit as too late (or as the start of a jump)."""

    def update(self, t_camera_ns: int, t_host_ns: int) -> int:
        """Add one pair and return the camera time mapped to the host clock."""
        fit = self.fit
        if fit is not None:
            residual = t_host_ns - fit.map(t_camera_ns)
            if abs(residual) > self.jump_ns:
                return self._suspect(t_camera_ns, t_host_ns, fit)
        self._suspects.clear()
        self._camera.append(t_camera_ns)
        self._host.append(t_host_ns)
        self._since_fit += 1
        if fit is None or self._since_fit >= self.refit_every or len(self._camera) < 16:
            self._refit()
        elif t_host_ns - fit.map(t_camera_ns) < 0:
            self._refit()  # a pair below the envelope moves it at once
        return self.fit.map(t_camera_ns)  # type: ignore[union-attr]

    def map(self, t_camera_ns: int) -> int | None:
        """Map a camera time with the current fit (``None`` before the first pair)."""
        return None if self.fit is None else self.fit.map(t_camera_ns)

    def reset(self) -> None:
        """Forget every pair (the camera was reopened: its clock may have restarted)."""
        self._camera.clear()
        self._host.clear()
        self._suspects.clear()
        self.fit = None

    def _refit(self) -> None:
        self.fit = fit_clock(np.fromiter(self._camera, np.int64), np.fromiter(self._host, np.int64))
        self._since_fit = 0

    def _suspect(self, t_camera_ns: int, t_host_ns: int, fit: ClockFit) -> int:
        self.outliers += 1
        offset = t_host_ns - t_camera_ns
        if self._suspects and abs((self._suspects[0][1] - self._suspects[0][0]) - offset) > (
            self.jump_ns
        ):
            self._suspects.clear()
        self._suspects.append((t_camera_ns, t_host_ns))
        if len(self._suspects) >= self.jump_confirm:
            pairs = list(self._suspects)
            self.reset()
            self.jumps += 1
            for cam, host in pairs:
                self._camera.append(cam)
                self._host.append(host)
            self._refit()
            return self.fit.map(t_camera_ns)  # type: ignore[union-attr]
        if t_host_ns - fit.map(t_camera_ns) > 0:
            return fit.map(t_camera_ns)  # a late frame: the old mapping still holds
        return t_host_ns  # earlier than the mapping allows: the arrival bounds it


class KnownClock:
    """A camera clock that *is* a host clock: ``t_host = t_camera + offset_ns`` exactly.

    ``offset_ns`` is 0 for the host's monotonic clock; the real-time clock, whose offset moves,
    is :class:`RealtimeClock`.
    """

    def __init__(self, offset_ns: int = 0) -> None:
        self.offset_ns = int(offset_ns)
        self.jumps = 0
        self.outliers = 0

    def update(self, t_camera_ns: int, t_host_ns: int) -> int:
        """The mapped time (the host time is not needed)."""
        return t_camera_ns + self.offset_ns

    def map(self, t_camera_ns: int) -> int:
        """The mapped time."""
        return t_camera_ns + self.offset_ns

    def reset(self) -> None:
        """Nothing to forget."""


def _realtime_offset_ns() -> int:
    """``time.monotonic_ns() - time.time_ns()`` now (the two read ~100 ns apart)."""
    return time.monotonic_ns() - time.time_ns()


class RealtimeClock(KnownClock):
    """A camera stamping with the host's real-time clock: mapped with the offset of *now*.

    The offset between the real-time and monotonic clocks changes while the clock is slewed or
    stepped, so it is read at each :meth:`update` (the frame's arrival, milliseconds after its
    stamp); a slew of even 0.5 % then moves a mapped time by nanoseconds, not milliseconds.
    ``offset_now`` is for tests that drive a clock pair of their own.
    """

    def __init__(self, offset_now: Callable[[], int] = _realtime_offset_ns) -> None:
        self._offset_now = offset_now
        super().__init__(offset_now())

    def update(self, t_camera_ns: int, t_host_ns: int) -> int:
        """The camera time on the monotonic clock, with the offset read now."""
        self.offset_ns = self._offset_now()
        return t_camera_ns + self.offset_ns
