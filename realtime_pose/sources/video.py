"""A video file read through OpenCV, paced like a camera or as fast as it decodes."""

from __future__ import annotations

import logging
import time
from pathlib import Path

import cv2
from pydantic import Field

from realtime_pose.geometry import Size
from realtime_pose.plugins import SOURCES, PluginOptions
from realtime_pose.sources.base import Frame, FrameSource, SourceError

log = logging.getLogger(__name__)


class VideoOptions(PluginOptions):
    """``source: {kind: video, path: ...}``."""

    path: Path = Field(description="the video file (relative to the run config's folder)")
    realtime: bool = Field(
        default=True, description="pace delivery at the file's frame rate, like a camera"
    )
    loop: bool = Field(default=False, description="start again at the end of the file")
    max_frames: int | None = Field(default=None, ge=0, description="stop after this many frames")
    fps: float | None = Field(default=None, gt=0, description="override the file's frame rate")
    start_frame: int = Field(default=0, ge=0, description="first frame to read (seeks to it)")


@SOURCES.register("video")
class VideoSource(FrameSource):
    """Frames of a video file.

    Parameters
    ----------
    path
        The video file.
    realtime
        Pace delivery at the file's frame rate, like a camera: each frame is decoded and then
        held until its due time (``t_start + i / fps``). ``False`` delivers frames as fast as
        they decode (benchmarks, offline analysis); the grabber then reads it in lockstep
        with the loop, so no frame is skipped.
    loop
        Start again from the first frame at the end of the file (frame indices keep counting up).
    max_frames
        Stop after this many frames (``None``: the whole file, or forever when looping).
    fps
        Override the frame rate stored in the file (used for pacing and reported by :attr:`fps`).
    start_frame
        Begin at this frame of the file (OpenCV seeks there on open); frame indices then count
        from it. Offline analysis cuts a video into chunks this way: OpenCV's FFmpeg backend
        seeks frame-exactly on constant-frame-rate files such as the openfield H.264 video
        (checked frame by frame), and :mod:`realtime_pose.chunks` verifies every chunk boundary
        against the previous chunk's last frame, so an inexact seek is caught, never merged.

    Notes
    -----
    ``t_capture_ns`` is host ``time.monotonic_ns()`` when the frame is handed out (after pacing).
    A file that ends well before the frame count in its header is reported once as possibly
    truncated (:attr:`truncated`) and then ends normally; a file that cannot be opened raises
    :class:`SourceError`. Re-opening after :meth:`close` resumes after the last frame delivered.
    """

    Options = VideoOptions

    def __init__(
        self,
        path: str | Path,
        realtime: bool = True,
        loop: bool = False,
        max_frames: int | None = None,
        fps: float | None = None,
        start_frame: int = 0,
    ) -> None:
        if start_frame < 0:
            raise ValueError(f"start_frame must be non-negative, got {start_frame}")
        if max_frames is not None and max_frames < 0:
            raise ValueError(f"max_frames must be non-negative or None, got {max_frames}")
        if fps is not None and not fps > 0:
            raise ValueError(f"fps must be positive, got {fps}")
        self.path = Path(path)
        self.realtime = realtime
        self.loop = loop
        self.max_frames = max_frames
        self._fps_override = fps
        self._cap: cv2.VideoCapture | None = None
        self._fps = float(fps or 0.0)
        self._size = Size(0, 0)
        self._frame_count = 0
        self.start_frame = start_frame
        self._file_position = start_frame  # next frame to decode within the file
        self._delivered = start_frame  # frame_index of the next frame delivered
        self._t_start_ns: int | None = None
        self._paced_from = 0
        self.truncated = False
        """True once the file ended well before the frame count in its header."""

    @property
    def fps(self) -> float:
        return self._fps

    @property
    def size(self) -> Size:
        return self._size

    @property
    def live(self) -> bool:
        return self.realtime

    @property
    def source_id(self) -> str:
        return self.path.name

    @property
    def frame_count(self) -> int:
        """Frames announced by the file's header (an estimate for some containers; 0 unknown)."""
        return self._frame_count

    def open(self) -> None:
        if self._cap is not None:
            return
        if not self.path.is_file():
            raise SourceError(f"video file {self.path} does not exist (check the path)")
        cap = cv2.VideoCapture(str(self.path))
        if not cap.isOpened():
            cap.release()
            raise SourceError(
                f"cannot open video file {self.path}: OpenCV cannot decode it "
                "(is it complete? an .mp4 cut short loses its index; try re-encoding it)"
            )
        if self._file_position > 0 and not cap.set(cv2.CAP_PROP_POS_FRAMES, self._file_position):
            log.warning("%s: cannot seek to frame %d", self.path, self._file_position)
        self._cap = cap
        self._fps = float(self._fps_override or cap.get(cv2.CAP_PROP_FPS) or 0.0)
        self._size = Size(
            int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)),
            int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT)),
        )
        self._frame_count = max(int(cap.get(cv2.CAP_PROP_FRAME_COUNT)), 0)
        if self.realtime and not self._fps > 0:
            raise SourceError(
                f"video file {self.path} does not state its frame rate; pass fps= to pace it"
            )
        self._t_start_ns = None

    def close(self) -> None:
        if self._cap is not None:
            self._cap.release()
            self._cap = None

    def _decode(self):
        """The next image in the file, rewinding when looping; None at the end."""
        assert self._cap is not None
        ok, image = self._cap.read()
        if ok:
            self._file_position += 1
            return image
        if self._frame_count and self._file_position < self._frame_count - 1 and not self.truncated:
            self.truncated = True
            log.warning(
                "%s ended at frame %d although its header announces %d frames; "
                "the file may be truncated or corrupt",
                self.path,
                self._file_position,
                self._frame_count,
            )
        if not self.loop or self._file_position == 0:
            return None
        self._file_position = 0
        if not self._cap.set(cv2.CAP_PROP_POS_FRAMES, 0):
            self.close()
            self.open()
        ok, image = self._cap.read()
        if not ok:
            return None
        self._file_position = 1
        return image

    def read(self) -> Frame | None:
        if self._cap is None:
            raise SourceError(f"video file {self.path} is not open; call open() first")
        if self.max_frames is not None and self._delivered - self.start_frame >= self.max_frames:
            return None
        try:
            image = self._decode()
        except cv2.error as exc:
            raise SourceError(
                f"decoding {self.path} failed at frame {self._file_position}: {exc}"
            ) from exc
        if image is None:
            return None
        if self.realtime:
            now = time.monotonic_ns()
            period_ns = 1e9 / self._fps
            if self._t_start_ns is None:
                self._t_start_ns, self._paced_from = now, self._delivered
            due = self._t_start_ns + round((self._delivered - self._paced_from) * period_ns)
            if due > now:
                time.sleep((due - now) * 1e-9)
            elif now - due > period_ns:
                # Decoding fell behind: re-anchor rather than deliver a burst of late frames.
                self._t_start_ns, self._paced_from = now, self._delivered
        frame = Frame(image, self._delivered, time.monotonic_ns(), self.source_id)
        self._delivered += 1
        return frame
