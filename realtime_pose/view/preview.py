"""JPEG previews of the newest frame, with its pose, on the stream's ``frame`` topic.

:class:`FramePreviewer` is a :class:`~realtime_pose.ports.FrameTap`. On the loop thread its
:meth:`~FramePreviewer.offer` does two small things and returns: it hands a preview the encoder
finished to the stream (one non-blocking, zero-copy ZeroMQ send; the PUB socket belongs to the
loop thread) and offers the frame to a one-slot
:class:`~realtime_pose.view.frame_tap.LatestFrameTap` (a copy, at most ``fps`` times a second). Its
own thread takes the newest frame, scales it down, JPEG-encodes it (OpenCV releases the GIL while
it encodes) and packs the msgpack payload. A slow encoder only means fewer previews; the loop never
waits for it.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from realtime_pose.ports import Predicted
from realtime_pose.sources.base import Frame
from realtime_pose.stream import messages
from realtime_pose.util.safe_write import free_name, writing
from realtime_pose.util.supervision import SupervisedThread
from realtime_pose.view.frame_tap import LatestFrameTap, TappedFrame

log = logging.getLogger(__name__)


def encode_preview(
    tapped: TappedFrame, quality: int = 80, max_width: int = 640
) -> tuple[bytes, tuple[int, int]]:
    """JPEG bytes of a tapped frame (scaled to at most ``max_width`` px wide) and the frame's
    own ``(width, height)``, the coordinates its pose is in."""
    image = tapped.image
    height, width = image.shape[:2]
    if width > max_width:
        scale = max_width / width
        image = cv2.resize(
            image, (max_width, max(1, round(height * scale))), interpolation=cv2.INTER_AREA
        )
    ok, jpeg = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    if not ok:
        raise ValueError(f"OpenCV could not JPEG-encode a {image.shape} {image.dtype} frame")
    return jpeg.tobytes(), (width, height)


def preview_payload(tapped: TappedFrame, quality: int = 80, max_width: int = 640) -> bytes:
    """The packed ``frame`` payload of one tapped frame (docs/protocol.md)."""
    jpeg, size = encode_preview(tapped, quality, max_width)
    predicted = None if tapped.predicted is None else (tapped.t_target_ns, tapped.predicted)
    payload = messages.frame_payload(
        tapped.seq, tapped.frame_index, tapped.t_capture_ns, jpeg, size, tapped.pose, predicted
    )
    return messages.encode(payload)


class FramePreviewer:
    """Publishes JPEG previews of the frames the loop offers (see the module docstring).

    Parameters
    ----------
    publisher
        The session's :class:`~realtime_pose.stream.PosePublisher` (its socket is used on the
        loop thread only, from :meth:`offer`).
    fps
        At most this many previews a second.
    quality, max_width
        JPEG quality (10-100) and the widest preview, px.
    """

    def __init__(self, publisher: Any, fps: float = 30.0, quality: int = 80, max_width: int = 640):
        self._publisher = publisher
        self._tap = LatestFrameTap(max_fps=fps)
        self.quality = quality
        self.max_width = max_width
        self._ready: bytes | None = None
        self.last: TappedFrame | None = None
        """The newest frame a preview was made of (the raw image: snapshots save it)."""
        self.encoded = 0
        """Previews encoded."""
        self.sent = 0
        """Previews handed to the stream."""
        self.errors = 0
        """Frames that could not be encoded."""
        self.encode_ns: list[int] = []
        """Encoding time of each preview (the newest 1000)."""
        self._stop = threading.Event()
        self._thread = SupervisedThread(
            self._encode_loop, "preview-encoder", should_stop=self._stop.is_set
        )
        self._thread.start()

    # -- the loop thread ------------------------------------------------------------------
    def offer(self, frame: Frame, seq: int, pose: np.ndarray, predicted: Predicted | None) -> None:
        """Send a finished preview, and offer this frame for the next (returns at once)."""
        ready = self._ready
        if ready is not None:
            self._ready = None
            if self._publisher.publish_encoded(messages.TOPIC_FRAME, ready):
                self.sent += 1
        self._tap.offer(frame, seq, pose, predicted)

    # -- the encoder thread ---------------------------------------------------------------
    def _encode_loop(self) -> None:
        while not self._stop.is_set():
            tapped = self._tap.take(timeout_s=0.1)
            if tapped is None:
                continue
            t0 = time.monotonic_ns()
            try:
                packed = preview_payload(tapped, self.quality, self.max_width)
            except Exception:  # one bad frame must not end previews
                self.errors += 1
                log.exception("preview of frame %d failed", tapped.frame_index)
                continue
            self.encode_ns.append(time.monotonic_ns() - t0)
            del self.encode_ns[:-1000]
            self.last = tapped
            self.encoded += 1
            self._ready = packed  # replaces one the loop has not sent yet: newest wins

    def snapshot(self, folder: Path, stem: str = "snapshot") -> dict[str, str]:
        """Save the newest previewed frame as a lossless PNG and its pose as JSON in ``folder``
        (fresh names, never over a file); return their paths."""
        planned = self.plan_snapshot(folder, stem)
        write_snapshot(planned)
        return planned.paths()

    def plan_snapshot(self, folder: Path, stem: str = "snapshot") -> Snapshot:
        """The newest previewed frame and the fresh names it will be saved under (quick: the
        slow part, PNG encoding and writing, is :func:`write_snapshot`)."""
        tapped = self.last
        if tapped is None:
            raise RuntimeError("no frame has been previewed yet; try again in a moment")
        stamp = time.strftime("%Y%m%d-%H%M%S")
        png_path = free_name(Path(folder) / f"{stem}-{stamp}-frame{tapped.frame_index}.png")
        return Snapshot(tapped, png_path, png_path.with_suffix(".json"))

    def close(self, timeout_s: float = 2.0) -> None:
        """Stop the encoder thread. Idempotent."""
        self._stop.set()
        if self._thread.is_alive() and threading.current_thread() is not self._thread:
            self._thread.join(timeout_s)


@dataclass(frozen=True)
class Snapshot:
    """A previewed frame (the tap's own copy) and where :func:`write_snapshot` saves it."""

    tapped: TappedFrame
    png_path: Path
    json_path: Path

    def paths(self) -> dict[str, str]:
        """``png`` and ``pose``: the files, as the ``snapshot`` reply names them."""
        return {"png": str(self.png_path), "pose": str(self.json_path)}


def write_snapshot(snapshot: Snapshot) -> None:
    """Encode the frame as a lossless PNG and write it and its pose (JSON), each through a
    temporary name, never over a file that exists."""
    tapped, png_path, json_path = snapshot.tapped, snapshot.png_path, snapshot.json_path
    ok, png = cv2.imencode(".png", tapped.image)
    if not ok:
        raise ValueError("OpenCV could not PNG-encode the frame")
    pose = {
        "seq": tapped.seq,
        "frame_index": tapped.frame_index,
        "t_capture_ns": tapped.t_capture_ns,
        "keypoints": messages.keypoints_as_list(tapped.pose),
        "predicted": None
        if tapped.predicted is None
        else {
            "t_target_ns": tapped.t_target_ns,
            "keypoints": messages.keypoints_as_list(tapped.predicted),
        },
        "image": png_path.name,
    }
    with writing(png_path) as tmp:
        tmp.write_bytes(png.tobytes())
    with writing(json_path) as tmp:
        tmp.write_text(json.dumps(pose, indent=1, allow_nan=True) + "\n")
