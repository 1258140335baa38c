"""A live camera through OpenCV: a device index, a stream URL or a GStreamer pipeline."""

from __future__ import annotations

import logging
import time

import cv2
from pydantic import Field, field_validator

from realtime_pose.geometry import Size
from realtime_pose.plugins import SOURCES, PluginOptions
from realtime_pose.sources.base import Frame, FrameSource, SourceError

log = logging.getLogger(__name__)

# A V4L2 buffer timestamp (CAP_PROP_POS_MSEC) is on CLOCK_MONOTONIC, like time.monotonic_ns(); it
# is used only when it is plausibly that clock: not in the future and at most this old.
_MAX_TIMESTAMP_AGE_NS = 1_000_000_000


def _looks_like_pipeline(device: str) -> bool:
    return "!" in device


class CameraOptions(PluginOptions):
    """``source: {kind: camera, ...}``."""

    device: int | str = Field(
        default=0, description="device index, stream URL or GStreamer pipeline (with '!')"
    )
    width: int | None = Field(default=None, gt=0, description="requested frame width, px")
    height: int | None = Field(default=None, gt=0, description="requested frame height, px")
    fps: float | None = Field(default=None, gt=0, description="requested frame rate")
    exposure: float | None = Field(
        default=None, description="requested exposure in the backend's unit (V4L2: 100 µs)"
    )
    fourcc: str | None = Field(
        default=None, min_length=4, max_length=4, description="pixel format, e.g. MJPG"
    )
    backend: int | None = Field(default=None, description="an explicit cv2.CAP_* backend")
    open_timeout_s: float = Field(default=5.0, gt=0, description="stream URLs: connect timeout")
    read_timeout_s: float = Field(default=5.0, gt=0, description="stream URLs: frame timeout")

    @field_validator("device")
    @classmethod
    def _device(cls, v: int | str) -> int | str:
        if isinstance(v, int) and v < 0:
            raise ValueError("a device index is >= 0")
        return v


@SOURCES.register("camera")
class CameraSource(FrameSource):
    """A camera opened with ``cv2.VideoCapture``.

    Parameters
    ----------
    device
        A device index (``0`` or ``"0"``), a stream URL (``rtsp://…``) or a GStreamer pipeline
        string (anything containing ``!``; it should end in ``appsink``), which is opened with
        ``cv2.CAP_GSTREAMER``.
    width, height, fps
        Requested resolution and frame rate. The backend may refuse them: a warning names what
        was asked and what the camera gives, and :attr:`size` / :attr:`fps` report the actual
        values.
    exposure
        Requested exposure, in the backend's own unit (V4L2: 100 µs steps with manual exposure;
        OpenCV sets manual mode first). ``None`` leaves the camera's setting.
    fourcc
        Requested pixel format, e.g. ``"MJPG"`` (USB cameras need it for high frame rates).
    backend
        An explicit ``cv2.CAP_*`` backend (default: GStreamer for pipelines, else OpenCV's choice).
    open_timeout_s, read_timeout_s
        For stream URLs (FFmpeg backend): give up connecting, or waiting for a frame, after this
        long, so a dead stream raises :class:`SourceError` instead of blocking the grab thread.
        Device indices rely on the driver's own timeout (V4L2: about 10 s).

    Notes
    -----
    ``t_capture_ns`` is the driver's buffer timestamp where the backend provides one on the
    monotonic clock (V4L2), else host ``time.monotonic_ns()`` when ``read`` returns.
    """

    Options = CameraOptions

    def __init__(
        self,
        device: int | str = 0,
        width: int | None = None,
        height: int | None = None,
        fps: float | None = None,
        exposure: float | None = None,
        fourcc: str | None = None,
        backend: int | None = None,
        open_timeout_s: float = 5.0,
        read_timeout_s: float = 5.0,
    ) -> None:
        if isinstance(device, str) and device.strip().isdigit():
            device = int(device)
        if fourcc is not None and len(fourcc) != 4:
            raise ValueError(f"fourcc must have 4 characters, got {fourcc!r}")
        self.device = device
        self.requested = {"width": width, "height": height, "fps": fps, "exposure": exposure}
        self.fourcc = fourcc
        if backend is None:
            is_pipeline = isinstance(device, str) and _looks_like_pipeline(device)
            backend = cv2.CAP_GSTREAMER if is_pipeline else cv2.CAP_ANY
        self.backend = backend
        self._open_params: list[int] = []
        if isinstance(device, str) and not _looks_like_pipeline(device):
            self._open_params = [
                cv2.CAP_PROP_OPEN_TIMEOUT_MSEC,
                round(open_timeout_s * 1000),
                cv2.CAP_PROP_READ_TIMEOUT_MSEC,
                round(read_timeout_s * 1000),
            ]
        self._cap: cv2.VideoCapture | None = None
        self._fps = 0.0
        self._size = Size(0, 0)
        self._index = 0
        self._use_driver_timestamps = False

    @property
    def fps(self) -> float:
        return self._fps

    @property
    def size(self) -> Size:
        return self._size

    @property
    def source_id(self) -> str:
        if isinstance(self.device, int):
            return f"camera{self.device}"
        return self.device if len(self.device) <= 60 else self.device[:57] + "..."

    def _describe(self) -> str:
        if isinstance(self.device, int):
            return f"camera {self.device} (/dev/video{self.device} on Linux)"
        if _looks_like_pipeline(self.device):
            return f"GStreamer pipeline {self.device!r}"
        return f"camera stream {self.device!r}"

    def open(self) -> None:
        if self._cap is not None:
            return
        try:
            if self._open_params:
                cap = cv2.VideoCapture(self.device, self.backend, self._open_params)
            else:
                cap = cv2.VideoCapture(self.device, self.backend)
        except cv2.error as exc:
            raise SourceError(f"cannot open {self._describe()}: {exc}") from exc
        if not cap.isOpened():
            cap.release()
            hint = (
                "check that OpenCV was built with GStreamer (cv2.getBuildInformation())"
                if self.backend == cv2.CAP_GSTREAMER
                else "check that it is connected, that no other program holds it, "
                "and that you may read it"
            )
            raise SourceError(f"cannot open {self._describe()}: {hint}")
        self._configure(cap)
        self._cap = cap
        self._use_driver_timestamps = cap.getBackendName() == "V4L2"

    def _configure(self, cap: cv2.VideoCapture) -> None:
        if self.fourcc is not None:
            cap.set(cv2.CAP_PROP_FOURCC, cv2.VideoWriter_fourcc(*self.fourcc))
        props = {
            "width": cv2.CAP_PROP_FRAME_WIDTH,
            "height": cv2.CAP_PROP_FRAME_HEIGHT,
            "fps": cv2.CAP_PROP_FPS,
        }
        for name, prop in props.items():
            value = self.requested[name]
            if value is not None:
                cap.set(prop, float(value))
        if self.requested["exposure"] is not None:
            cap.set(cv2.CAP_PROP_AUTO_EXPOSURE, 1)  # V4L2: 1 = manual, 3 = auto
            cap.set(cv2.CAP_PROP_EXPOSURE, float(self.requested["exposure"]))
        self._size = Size(
            int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)),
            int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT)),
        )
        self._fps = float(cap.get(cv2.CAP_PROP_FPS) or 0.0)
        actual = {
            "width": self._size[0],
            "height": self._size[1],
            "fps": self._fps,
            "exposure": cap.get(cv2.CAP_PROP_EXPOSURE),
        }
        for name, wanted in self.requested.items():
            if wanted is not None and abs(actual[name] - wanted) > 1e-3 * max(abs(wanted), 1):
                log.warning(
                    "%s: asked for %s=%s, the camera gives %s",
                    self._describe(),
                    name,
                    wanted,
                    actual[name],
                )

    def close(self) -> None:
        if self._cap is not None:
            self._cap.release()
            self._cap = None

    def read(self) -> Frame | None:
        if self._cap is None:
            raise SourceError(f"{self._describe()} is not open; call open() first")
        try:
            ok, image = self._cap.read()
        except cv2.error as exc:
            raise SourceError(f"reading {self._describe()} failed: {exc}") from exc
        t_host_ns = time.monotonic_ns()
        if not ok or image is None:
            raise SourceError(f"{self._describe()} returned no frame (unplugged or stalled?)")
        t_capture_ns = t_host_ns
        if self._use_driver_timestamps:
            t_driver_ns = round(self._cap.get(cv2.CAP_PROP_POS_MSEC) * 1e6)
            if 0 <= t_host_ns - t_driver_ns <= _MAX_TIMESTAMP_AGE_NS:
                t_capture_ns = t_driver_ns
        if image.ndim == 2:
            image = cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
        frame = Frame(image, self._index, t_capture_ns, self.source_id)
        self._index += 1
        return frame
