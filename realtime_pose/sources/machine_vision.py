"""The options and the frame assembly every machine-vision camera source shares.

:class:`CameraOptions` holds what a rig sets on any GenICam camera (sensor region, binning,
pixel format, exposure, gain, frame rate, trigger, strobe line, clock); a backend adds its own
fields. :class:`MachineVisionSource` turns the backend's grabbed buffers into
:class:`~realtime_pose.sources.base.Frame`: it waits correctly in trigger mode, counts failed and
incomplete buffers and frame-id gaps (:mod:`~realtime_pose.sources.camera_drops`), maps camera
timestamps to the host clock (:mod:`~realtime_pose.sources.camera_clock`) and converts pixels to
BGR. A backend implements :meth:`MachineVisionSource._open_camera`, ``_configure``, ``_start``,
``_grab``, ``_software_trigger``, ``_stop`` and ``_close_camera``.
"""

from __future__ import annotations

import abc
import time
from dataclasses import dataclass
from typing import Literal

import numpy as np
from pydantic import Field, field_validator, model_validator

from realtime_pose.geometry import Size
from realtime_pose.plugins import PluginOptions
from realtime_pose.sources.base import Frame, FrameSource, SourceError, TriggerTimeoutError
from realtime_pose.sources.camera_clock import CLOCKS, ClockModel, KnownClock, RealtimeClock
from realtime_pose.sources.camera_drops import CameraDrops, FrameIdGaps
from realtime_pose.sources.pixel_formats import to_bgr

TriggerMode = Literal["off", "software", "line"]
ClockKind = Literal["auto", "device", "host_monotonic", "host_realtime", "none"]
assert set(CLOCKS) == set(ClockKind.__args__)  # type: ignore[attr-defined]


class CameraOptions(PluginOptions):
    """Options every machine-vision camera source takes (``None``: leave the camera's value)."""

    device: str | None = Field(
        default=None, description="serial number or device id; None: the first camera found"
    )
    width: int | None = Field(default=None, gt=0, description="sensor region width, px")
    height: int | None = Field(default=None, gt=0, description="sensor region height, px")
    offset_x: int | None = Field(default=None, ge=0, description="sensor region left edge, px")
    offset_y: int | None = Field(default=None, ge=0, description="sensor region top edge, px")
    binning: int | None = Field(default=None, ge=1, description="binning (both directions)")
    pixel_format: str | None = Field(
        default=None, description="GenICam pixel format, e.g. Mono8, BGR8, BayerRG8"
    )
    exposure_us: float | None = Field(default=None, gt=0, description="exposure time, µs")
    gain: float | None = Field(default=None, ge=0, description="gain, in the camera's unit (dB)")
    fps: float | None = Field(
        default=None,
        gt=0,
        description="frame rate (free-running: the camera's AcquisitionFrameRate; software "
        "trigger: the trigger rate)",
    )
    trigger: TriggerMode = Field(
        default="off",
        description="off: free-running; software: the source triggers each frame; line: a "
        "hardware trigger on trigger_line (sync with other acquisition)",
    )
    trigger_line: str = Field(default="Line1", description="input line of the hardware trigger")
    trigger_activation: Literal["RisingEdge", "FallingEdge"] = Field(
        default="RisingEdge", description="trigger edge"
    )
    trigger_timeout_s: float = Field(
        default=1.0,
        gt=0,
        description="trigger mode: a trigger (or a frame after one) not seen within this long "
        "is reported and counted as trigger_timeout; keep it below grab_timeout_s",
    )
    strobe_line: str | None = Field(
        default=None,
        description="output line driven by ExposureActive (a frame strobe for ephys alignment)",
    )
    timestamp_clock: ClockKind = Field(
        default="auto",
        description="what the camera's timestamps are: device (fit a clock model), "
        "host_monotonic / host_realtime (a host clock already), none (use arrival time); "
        "auto: what the backend knows",
    )
    frame_timeout_s: float = Field(
        default=2.0, gt=0, description="free-running: no frame for this long is an error"
    )
    buffers: int = Field(default=8, ge=2, le=256, description="driver buffers")

    @field_validator("trigger", mode="before")
    @classmethod
    def _yaml_off(cls, value: object) -> object:
        return "off" if value is False else value  # YAML reads a bare `off` as false

    @model_validator(mode="after")
    def _region(self) -> CameraOptions:
        if (self.offset_x is not None and self.width is None) or (
            self.offset_y is not None and self.height is None
        ):
            raise ValueError("offset_x/offset_y need width/height")
        return self


@dataclass(slots=True)
class Grabbed:
    """One buffer as a backend delivers it (before conversion and accounting)."""

    status: str
    """``ok``, ``failed``, ``incomplete`` or ``missing_packets`` (a cause in
    :data:`~realtime_pose.sources.camera_drops.CAUSES`)."""
    t_arrival_ns: int
    image: np.ndarray | None = None
    pixel_format: str = "Mono8"
    frame_id: int | None = None
    t_camera_ns: int | None = None
    message: str = ""


class MachineVisionSource(FrameSource):
    """Frame assembly, trigger waits, drop accounting and camera time for camera SDK sources.

    Parameters are the fields of :class:`CameraOptions` (and the backend's own).
    """

    backend = "camera"
    frame_id_bits = 64
    frame_id_skips_zero = False

    def __init__(self, **options: object) -> None:
        self.options = self.Options.model_validate(options)  # type: ignore[attr-defined]
        self._opened = False
        self._index = 0
        self._size = Size(0, 0)
        self._fps = 0.0
        self._serial = self.options.device or "?"
        self.drops = CameraDrops()
        self._gaps = FrameIdGaps(self.frame_id_bits, self.frame_id_skips_zero)
        self._clock: ClockModel | KnownClock | None = None
        self._next_trigger_ns = 0
        self._failed_since_good = 0

    # -- what a backend implements ------------------------------------------------------------
    @abc.abstractmethod
    def _open_camera(self) -> str:
        """Open the device; return its serial number. Raise :class:`SourceError` naming it."""

    @abc.abstractmethod
    def _configure(self) -> tuple[Size, float]:
        """Check the options against the camera's limits and set them; return the frame size
        and the frame rate the camera will deliver (0 when triggered by a line)."""

    @abc.abstractmethod
    def _start(self) -> None:
        """Start acquisition."""

    @abc.abstractmethod
    def _grab(self, timeout_s: float) -> Grabbed | None:
        """The next buffer, waiting up to ``timeout_s``; ``None`` when none came."""

    @abc.abstractmethod
    def _software_trigger(self) -> None:
        """Fire one software trigger (once the camera is ready for it)."""

    @abc.abstractmethod
    def _stop(self) -> None:
        """Stop acquisition (safe when not started)."""

    @abc.abstractmethod
    def _close_camera(self) -> None:
        """Release the device (safe when not open)."""

    def _default_clock(self) -> str:
        """What ``timestamp_clock: auto`` means for this backend and device."""
        return "device"

    # -- FrameSource -------------------------------------------------------------------------
    def open(self) -> None:
        if self._opened:
            return
        try:
            self._serial = self._open_camera()
            self._size, self._fps = self._configure()
            self._clock = self._make_clock()
            self._gaps.reset()
            self._failed_since_good = 0
            self._start()
        except BaseException:
            self._release()
            raise
        self._opened = True
        self._next_trigger_ns = time.monotonic_ns()

    def close(self) -> None:
        self._release()
        self._opened = False

    def _release(self) -> None:
        try:
            self._stop()
        finally:
            self._close_camera()

    def read(self) -> Frame | None:
        if not self._opened:
            raise SourceError(f"{self.source_id} is not open; call open() first")
        mode = self.options.trigger
        timeout_s = (
            self.options.frame_timeout_s if mode == "off" else self.options.trigger_timeout_s
        )
        deadline = time.monotonic() + timeout_s
        if mode == "software":
            self._pace_and_trigger()
        while True:
            remaining = deadline - time.monotonic()
            grabbed = self._grab(max(remaining, 0.0)) if remaining > 0 else None
            if grabbed is None:
                return self._no_frame(mode, timeout_s)
            if grabbed.status != "ok":
                # a failed buffer's id may be stale (a reused buffer that never got a new
                # leader): it is counted by its cause, and taken out of the next id gap
                self.drops.add(grabbed.status)
                self._failed_since_good += 1
                if mode == "software":
                    self._pace_and_trigger()  # the failed frame used up its trigger
                continue
            frame_id = grabbed.frame_id
            if frame_id is not None and not (frame_id == 0 and self.frame_id_skips_zero):
                gap = self._gaps.gap(frame_id)  # 0 is no valid id where the counter skips it
                if gap > 0:
                    gap = max(0, gap - self._failed_since_good)
                self.drops.add("skipped", gap)
            self._failed_since_good = 0
            return self._frame(grabbed)

    def _pace_and_trigger(self) -> None:
        if self.options.fps:
            now = time.monotonic_ns()
            if self._next_trigger_ns > now:
                time.sleep((self._next_trigger_ns - now) / 1e9)
            period = round(1e9 / self.options.fps)
            self._next_trigger_ns = max(self._next_trigger_ns + period, now)
        self._software_trigger()

    def _no_frame(self, mode: str, timeout_s: float) -> Frame | None:
        if mode == "off":
            raise SourceError(
                f"{self.source_id}: no frame for {timeout_s:g} s (unplugged, or stopped?)"
            )
        self.drops.add("trigger_timeout")
        what = (
            f"no trigger on {self.options.trigger_line}"
            if mode == "line"
            else "a software trigger brought no frame"
        )
        raise TriggerTimeoutError(f"{self.source_id}: {what} within {timeout_s:g} s")

    def _frame(self, grabbed: Grabbed) -> Frame:
        t_arrival = grabbed.t_arrival_ns
        t_camera = grabbed.t_camera_ns
        t_capture = t_arrival
        if t_camera is not None and self._clock is not None:
            t_capture = self._clock.update(t_camera, t_arrival)
        image = to_bgr(grabbed.image, grabbed.pixel_format)  # type: ignore[arg-type]
        frame = Frame(
            image,
            self._index,
            t_capture,
            self.source_id,
            camera_frame_id=-1 if grabbed.frame_id is None else int(grabbed.frame_id),
            t_camera_ns=-1 if t_camera is None else int(t_camera),
            t_arrival_ns=t_arrival,
            camera_dropped=self.drops.total,
        )
        self._index += 1
        return frame

    def _make_clock(self) -> ClockModel | KnownClock | None:
        kind = self.options.timestamp_clock
        if kind == "auto":
            kind = self._default_clock()
        self.clock_kind = kind
        if kind == "device":
            return ClockModel()
        if kind == "host_monotonic":
            return KnownClock(0)
        if kind == "host_realtime":
            return RealtimeClock()
        return None

    def describe(self) -> dict[str, object]:
        """The camera as the session's ``meta`` (and the recording's header) records it."""
        o = self.options
        return {
            "backend": self.backend,
            "serial": self._serial,
            "clock": getattr(self, "clock_kind", o.timestamp_clock),
            "trigger": o.trigger if o.trigger != "line" else f"line:{o.trigger_line}",
            "strobe_line": o.strobe_line,
            "fps": self._fps,
            "frame_id_bits": self.frame_id_bits,
        }

    def counters(self) -> dict[str, object]:
        clock = self._clock
        out: dict[str, object] = {
            "camera_dropped": self.drops.total,
            "camera_drops": self.drops.snapshot(),
            "frame_id_restarts": self._gaps.restarts,
            "clock": getattr(self, "clock_kind", "none"),
        }
        if clock is not None:
            out["clock_jumps"] = clock.jumps
            fit = getattr(clock, "fit", None)
            if fit is not None:
                out["clock_drift_ppm"] = round(fit.drift_ppm, 3)
        return out

    @property
    def fps(self) -> float:
        return self._fps

    @property
    def size(self) -> Size:
        return self._size

    @property
    def source_id(self) -> str:
        return f"{self.backend}:{self._serial}"
