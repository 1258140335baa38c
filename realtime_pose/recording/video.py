"""Raw-video recording that never delays the live loop.

:meth:`VideoRecorder.write` only puts the frame into a bounded queue; a writer thread encodes it.
When the encoder falls behind and the queue is full, the frame is dropped and counted. A CSV
sidecar (``<video>.frames.csv``: ``video_frame,frame_index,t_capture_ns,camera_frame_id,
t_camera_ns,t_arrival_ns``) says which camera frame each video frame is, so the video aligns with
the pose log even after drops (the camera columns are ``-1`` for sources without them).
"""

from __future__ import annotations

import logging
import queue
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from realtime_pose.util.supervision import SupervisedThread

log = logging.getLogger(__name__)

SIDECAR_SUFFIX = ".frames.csv"
_STOP = object()
_NO_CAMERA = "-1,-1,-1"


def _camera_columns(camera: Mapping[str, int]) -> str:
    return f"{camera['camera_frame_id']},{camera['t_camera_ns']},{camera['t_arrival_ns']}"


def sidecar_path(video_path: str | Path) -> Path:
    """Path of the frame-index/timestamp sidecar of ``video_path``."""
    video_path = Path(video_path)
    return video_path.with_name(video_path.name + SIDECAR_SUFFIX)


class VideoRecorder:
    """Encode frames to a video file on a background thread.

    Parameters
    ----------
    path
        Output file (``.avi`` with the default MJPG codec); must not exist.
    fps
        Nominal frame rate stored in the file (timing truth is in the sidecar).
    size
        ``(width, height)`` of every frame.
    fourcc
        OpenCV codec code, e.g. ``"MJPG"`` (always available) or ``"mp4v"``.
    queue_size
        Frames that may wait for the encoder before new ones are dropped.
    color
        Whether frames are ``[H, W, 3]`` BGR (``True``) or ``[H, W]`` gray.
    copy
        Copy each frame before queueing (p50 ~0.17 ms for 640x480 BGR on the 2-core VM).
        Pass ``False`` when the caller never writes into a frame after handing it over (e.g.
        ``cv2.VideoCapture.read()`` without a destination buffer allocates a new array per
        frame).
    """

    def __init__(
        self,
        path: str | Path,
        fps: float,
        size: tuple[int, int],
        *,
        fourcc: str = "MJPG",
        queue_size: int = 32,
        color: bool = True,
        copy: bool = True,
    ) -> None:
        import cv2

        self.path = Path(path)
        if self.path.exists():
            raise FileExistsError(f"{self.path} already exists; choose a new video path")
        if fps <= 0:
            raise ValueError(f"fps must be > 0, got {fps}")
        if queue_size < 1:
            raise ValueError(f"queue_size must be >= 1, got {queue_size}")
        width, height = size
        self.size = (int(width), int(height))
        self._shape = (self.size[1], self.size[0], 3) if color else (self.size[1], self.size[0])
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._writer = cv2.VideoWriter(
            str(self.path), cv2.VideoWriter_fourcc(*fourcc), float(fps), self.size, color
        )
        if not self._writer.isOpened():
            raise ValueError(
                f"OpenCV cannot write {fourcc!r} video to {self.path}; try fourcc='MJPG' "
                "with an .avi file"
            )
        self.sidecar_path = sidecar_path(self.path)
        self._sidecar = open(self.sidecar_path, "x", buffering=1 << 16)  # noqa: SIM115
        self._sidecar.write(
            "video_frame,frame_index,t_capture_ns,camera_frame_id,t_camera_ns,t_arrival_ns\n"
        )
        self._copy = copy
        self._queue: queue.Queue = queue.Queue(maxsize=queue_size)
        self.submitted = 0
        """Frames passed to :meth:`write`."""
        self.dropped = 0
        """Frames dropped because the queue was full."""
        self.rejected = 0
        """Frames refused because their shape did not match ``size``/``color``."""
        self.written = 0
        """Frames encoded into the file."""
        self._closed = False
        self._thread = SupervisedThread(self._run, "video-recorder")
        self._thread.start()

    def write(
        self,
        frame: np.ndarray,
        frame_index: int,
        t_capture_ns: int,
        camera: Mapping[str, int] | None = None,
    ) -> bool:
        """Queue one frame; return ``False`` if it was not queued. Never blocks.

        A frame is dropped (counted in :attr:`dropped`) when the encoder is behind, and
        rejected (counted in :attr:`rejected`, the first one logged) when its shape differs
        from the recorder's; neither raises, so a camera that changes resolution mid-run does
        not stop the live loop.
        """
        if self._closed:
            raise RuntimeError(f"video recording {self.path} is closed")
        self.submitted += 1
        if frame.shape != self._shape:
            if self.rejected == 0:
                log.error(
                    "video %s: frame %d has shape %s, the recorder expects %s (size %s, "
                    "color=%s); such frames are not recorded",
                    self.path,
                    frame_index,
                    list(frame.shape),
                    list(self._shape),
                    self.size,
                    len(self._shape) == 3,
                )
            self.rejected += 1
            return False
        ids = _NO_CAMERA if camera is None else _camera_columns(camera)
        try:
            self._queue.put_nowait(
                (frame.copy() if self._copy else frame, int(frame_index), int(t_capture_ns), ids)
            )
        except queue.Full:
            self.dropped += 1
            return False
        return True

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is _STOP:
                break
            frame, frame_index, t_capture_ns, ids = item
            try:
                self._writer.write(frame)
            except Exception:
                log.exception("video frame %d could not be encoded", frame_index)
                continue
            self._sidecar.write(f"{self.written},{frame_index},{t_capture_ns},{ids}\n")
            self.written += 1

    def close(self) -> None:
        """Encode what is queued, then close the video and sidecar. Idempotent."""
        if self._closed:
            return
        self._closed = True
        self._queue.put(_STOP)
        self._thread.join()
        self._writer.release()
        self._sidecar.close()

    def __enter__(self) -> VideoRecorder:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
