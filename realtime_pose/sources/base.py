"""The one protocol every frame source follows: :class:`FrameSource` producing :class:`Frame`."""

from __future__ import annotations

import abc
from dataclasses import dataclass
from typing import ClassVar, TypeVar

import numpy as np

from realtime_pose.geometry import Size
from realtime_pose.plugins import PluginOptions

_S = TypeVar("_S", bound="FrameSource")


class SourceError(RuntimeError):
    """A source could not be opened or failed while reading; the message names the source."""


class TriggerTimeoutError(SourceError):
    """A triggered camera got no trigger (or no frame after one) in time: reported and counted
    by the grabber, which then waits for the next one without reopening the camera."""


@dataclass(slots=True)
class Frame:
    """One image and where it came from.

    Attributes
    ----------
    image
        BGR ``uint8`` image ``[H, W, 3]``.
    frame_index
        Index of the frame in its source (counts up; gaps mean the source skipped frames).
    t_capture_ns
        Capture time on the ``time.monotonic_ns()`` clock: the camera's timestamp where the
        backend provides one on that clock, else host time when the frame was read.
    source_id
        The source's identifier (:attr:`FrameSource.source_id`).
    ground_truth
        True keypoints ``[K, 2]`` in frame pixels (synthetic sources only), else ``None``.
    camera_frame_id
        The camera's own frame counter (GenICam block id), ``-1`` where it gives none. Its gaps
        are frames the camera lost; gaps in ``frame_index`` are frames the grabber dropped.
    t_camera_ns
        The camera's raw timestamp on its own clock, ns (``-1`` where it gives none).
    t_arrival_ns
        Host ``monotonic_ns`` when the frame reached the host (``-1``: not measured, the same as
        ``t_capture_ns``).
    camera_dropped
        Frames the camera lost (skipped ids, failed or incomplete buffers) before this one,
        since the source was created.
    """

    image: np.ndarray
    frame_index: int
    t_capture_ns: int
    source_id: str
    ground_truth: np.ndarray | None = None
    camera_frame_id: int = -1
    t_camera_ns: int = -1
    t_arrival_ns: int = -1
    camera_dropped: int = 0

    def camera_fields(self) -> dict[str, int] | None:
        """The camera's per-frame fields for the stream and the recording (``None`` for a
        source without a camera frame counter)."""
        if self.camera_frame_id < 0:
            return None
        return {
            "camera_frame_id": self.camera_frame_id,
            "t_camera_ns": self.t_camera_ns,
            "t_arrival_ns": self.t_arrival_ns,
            "camera_dropped": self.camera_dropped,
        }


class FrameSource(abc.ABC):
    """A camera, a video file or a generator of frames.

    Subclasses implement :meth:`open`, :meth:`read`, :meth:`close` and the properties. A source may
    be opened again after :meth:`close` (the grabber does so to recover from failures); a live
    source then continues, a file resumes after the last frame it delivered.

    A source plug-in also declares ``Options`` (a :class:`~realtime_pose.plugins.PluginOptions`
    model of its ``source:`` section; by default its fields are the constructor's keyword
    arguments) and registers with ``@SOURCES.register("name")`` (:mod:`realtime_pose.plugins`).

    Use as a context manager to open and close it::

        with VideoSource("mouse.mp4") as source:
            while (frame := source.read()) is not None:
                ...
    """

    Options: ClassVar[type[PluginOptions]]

    @classmethod
    def from_options(cls: type[_S], options: PluginOptions) -> _S:
        """Build the source from its validated ``source:`` options (returned closed)."""
        return cls(**dict(options))

    @abc.abstractmethod
    def open(self) -> None:
        """Acquire the device or file; raise :class:`SourceError` naming it on failure."""

    @abc.abstractmethod
    def read(self) -> Frame | None:
        """The next frame, blocking until it is due; ``None`` at the end of the stream.

        Raises :class:`SourceError` when the source fails.
        """

    @abc.abstractmethod
    def close(self) -> None:
        """Release the device or file; safe to call more than once."""

    @property
    @abc.abstractmethod
    def fps(self) -> float:
        """Nominal frame rate (frames per second; 0 when unknown)."""

    @property
    @abc.abstractmethod
    def size(self) -> Size:
        """Frame size in pixels (valid once open)."""

    @property
    @abc.abstractmethod
    def source_id(self) -> str:
        """A short human-readable identifier (device, file name…) carried by every frame."""

    def counters(self) -> dict[str, object]:
        """Camera-side counters for the status stream: drops by cause (``camera_drops``), their
        total (``camera_dropped``) and clock-model state; empty for sources without them."""
        return {}

    @property
    def live(self) -> bool:
        """True when frames come on the source's own clock (a camera, a paced file); False
        for a free-running source that makes the next frame as soon as it is asked."""
        return True

    def __enter__(self: _S) -> _S:
        self.open()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.source_id!r})"
