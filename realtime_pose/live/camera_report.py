"""Grab N frames from a camera source the way the live loop does, and measure it.

:func:`check_camera` runs a :class:`~realtime_pose.live.grabber.Grabber` on the source and takes
every frame as a fast loop would; :class:`CameraReport` holds what ``realtime-pose camera-check``
prints and ``benchmarks/cameras.py`` records: achieved vs requested FPS, drops by cause
(camera-side and the grabber's), the spacing and jitter of camera timestamps, and the hand-off
latency from the camera's timestamp (or the frame's arrival) to the frame in the loop's hands.
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from realtime_pose.live.grabber import Grabber
from realtime_pose.sources.base import Frame, FrameSource
from realtime_pose.util.stats import Summary


@dataclass
class CameraReport:
    """The measurements of one :func:`check_camera` run (times in µs)."""

    source: str
    frames: int
    fps_requested: float | None
    fps_achieved: float
    """Frames the source delivered per second (including those the grabber dropped)."""
    camera_drops: dict[str, int]
    grabber_dropped: int
    clock: str
    interval_us: dict[str, float | None]
    jitter_us: dict[str, float | None]
    handoff_us: dict[str, float | None]
    """Camera timestamp mapped to the host (``t_capture_ns``) → frame taken by the loop."""
    arrival_to_loop_us: dict[str, float | None]
    """Frame arrival on the host → frame taken by the loop (the grabber's own share)."""
    camera_timestamps: int
    """Frames that carried a camera timestamp."""
    extra: dict[str, Any] = field(default_factory=dict)
    timing: np.ndarray | None = field(default=None, repr=False)
    """``[N, 4]`` int64 per frame taken: ``t_camera_ns`` (-1: none), ``t_arrival_ns``,
    ``t_capture_ns``, host time the loop took it (not in :meth:`as_dict`)."""

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (without :attr:`timing`)."""
        return {k: v for k, v in self.__dict__.items() if k != "timing"}

    def lines(self) -> list[str]:
        """The report as a few lines of text."""
        drops = ", ".join(f"{k} {v}" for k, v in self.camera_drops.items() if v) or "none"
        requested = f" (requested {self.fps_requested:g})" if self.fps_requested else ""
        return [
            f"{self.source}: {self.frames} frames at {self.fps_achieved:.1f} FPS{requested}",
            f"  camera drops: {drops}; grabber (newest-frame) drops: {self.grabber_dropped}",
            f"  clock: {self.clock}; frames with a camera timestamp: {self.camera_timestamps}",
            f"  frame interval p50 {_us(self.interval_us['p50'])} µs, jitter p50 "
            f"{_us(self.jitter_us['p50'])} / p99 {_us(self.jitter_us['p99'])} µs",
            f"  capture -> loop p50 {_us(self.handoff_us['p50'])} / p99 "
            f"{_us(self.handoff_us['p99'])} µs; arrival -> loop p50 "
            f"{_us(self.arrival_to_loop_us['p50'])} / p99 "
            f"{_us(self.arrival_to_loop_us['p99'])} µs",
        ]


def _summary(samples_ns: np.ndarray) -> dict[str, float | None]:
    return Summary.of(samples_ns, "us", 1).to_dict(mean=True)


def _us(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.0f}"


def check_camera(
    source: FrameSource, frames: int = 200, timeout_s: float = 5.0
) -> tuple[CameraReport, Frame | None]:
    """Grab ``frames`` frames through a grabber; return the report and the last frame.

    The source is opened and closed here. Stops early (and reports what it got) when no frame
    comes for ``timeout_s``. Python's GIL switch interval is the live loop's while it runs
    (:data:`realtime_pose.live.pipeline.GIL_SWITCH_INTERVAL_S`), so the hand-off is the loop's.
    """
    from realtime_pose.live.pipeline import GIL_SWITCH_INTERVAL_S

    taken: list[tuple[Frame, int]] = []
    grabber = Grabber(source, stall_timeout_s=max(timeout_s, 1.0))
    previous_interval = sys.getswitchinterval()
    sys.setswitchinterval(GIL_SWITCH_INTERVAL_S)
    grabber.start()
    try:
        while len(taken) < frames:
            frame = grabber.get(timeout_s=timeout_s)
            if frame is None:
                break
            taken.append((frame, time.monotonic_ns()))
        stats = grabber.stats()
    finally:
        grabber.stop()
        sys.setswitchinterval(previous_interval)
    capture = np.array([f.t_capture_ns for f, _ in taken], np.int64)
    arrival = np.array(
        [f.t_arrival_ns if f.t_arrival_ns >= 0 else f.t_capture_ns for f, _ in taken]
    )
    loop = np.array([t for _, t in taken], np.int64)
    intervals = np.diff(capture)
    median = float(np.median(intervals)) if intervals.size else 0.0
    span_s = (arrival[-1] - arrival[0]) / 1e9 if len(taken) > 1 else 0.0
    delivered = taken[-1][0].frame_index - taken[0][0].frame_index if taken else 0
    options = getattr(source, "options", None)
    report = CameraReport(
        source=source.source_id,
        frames=len(taken),
        fps_requested=getattr(options, "fps", None) or None,
        fps_achieved=delivered / span_s if span_s > 0 else 0.0,
        camera_drops=dict(stats.get("camera_drops", {})),
        grabber_dropped=int(stats.get("dropped", 0)),
        clock=str(stats.get("clock", "none")),
        interval_us=_summary(intervals),
        jitter_us=_summary(np.abs(intervals - median)),
        handoff_us=_summary(loop - capture),
        arrival_to_loop_us=_summary(loop - arrival),
        camera_timestamps=sum(f.t_camera_ns >= 0 for f, _ in taken),
        extra={k: v for k, v in stats.items() if k.startswith(("clock_", "stream_", "trigger"))},
        timing=np.array(
            [
                (f.t_camera_ns, a, f.t_capture_ns, t)
                for (f, t), a in zip(taken, arrival, strict=True)
            ],
            np.int64,
        ).reshape(-1, 4),
    )
    return report, (taken[-1][0] if taken else None)
