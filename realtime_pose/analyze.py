"""Offline video analysis: every frame of a video through the estimator, saved as DLC tables.

Decoding runs in its own thread (OpenCV releases the GIL while decoding) and feeds a small
queue, so decoding and inference overlap on two cores.
"""

from __future__ import annotations

import logging
import queue
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from realtime_pose.bundle import Bundle, skeleton_indices
from realtime_pose.dlc_output import write_pose_tables
from realtime_pose.estimator import PoseEstimator

log = logging.getLogger(__name__)


class VideoError(RuntimeError):
    """A video that cannot be opened or decoded; the message names the file."""


@dataclass(frozen=True)
class AnalysisResult:
    """What :func:`analyze_video` wrote."""

    video: Path
    frames: int
    h5_path: Path
    csv_path: Path
    labeled_video: Path | None
    seconds: float


def open_video(path: Path) -> cv2.VideoCapture:
    """Open a video with OpenCV, or raise :class:`VideoError` naming it."""
    if not path.is_file():
        raise VideoError(f"{path}: no such video file")
    cap = cv2.VideoCapture(str(path))
    if not cap.isOpened():
        raise VideoError(f"{path}: OpenCV cannot open this video (unknown format or codec?)")
    return cap


def read_frames(
    path: Path, max_frames: int | None = None, queue_size: int = 8
) -> Iterator[np.ndarray]:
    """Yield BGR frames decoded in a background thread.

    Raises :class:`VideoError` when the file cannot be opened or holds no decodable frame.
    """
    cap = open_video(path)
    frames: queue.Queue = queue.Queue(maxsize=queue_size)
    stop = threading.Event()
    _end = object()

    def decode() -> None:
        count = 0
        try:
            while not stop.is_set() and (max_frames is None or count < max_frames):
                ok, frame = cap.read()
                if not ok:
                    break
                count += 1
                while not stop.is_set():
                    try:
                        frames.put(frame, timeout=0.1)
                        break
                    except queue.Full:
                        continue
        except cv2.error as exc:  # a corrupt stream can raise mid-file
            frames.put(VideoError(f"{path}: decoding failed after frame {count} ({exc})"))
        finally:
            cap.release()
            frames.put(_end)

    thread = threading.Thread(target=decode, name=f"decode-{path.name}", daemon=True)
    thread.start()
    produced = 0
    try:
        while True:
            item = frames.get()
            if item is _end:
                break
            if isinstance(item, Exception):
                raise item
            produced += 1
            yield item
    finally:
        stop.set()
        thread.join(timeout=2)
    if produced == 0:
        raise VideoError(f"{path}: no frame could be decoded")


class Progress:
    """A one-line progress bar on stderr (no dependency, redrawn at most 5 times a second)."""

    def __init__(self, label: str, total: int | None, stream=None) -> None:
        stream = sys.stderr if stream is None else stream
        self.label, self.total, self.stream = label, total, stream
        self.count = 0
        self._t0 = time.monotonic()
        self._last = 0.0
        self._tty = hasattr(stream, "isatty") and stream.isatty()

    def update(self, n: int = 1) -> None:
        """Count ``n`` more items and redraw if due."""
        self.count += n
        now = time.monotonic()
        if now - self._last >= 0.2:
            self._last = now
            self._draw(now, end="\r" if self._tty else "\n")

    def close(self) -> None:
        """Draw the final state and end the line."""
        self._draw(time.monotonic(), end="\n")

    def _draw(self, now: float, end: str) -> None:
        rate = self.count / max(now - self._t0, 1e-9)
        if self.total:
            frac = min(1.0, self.count / self.total)
            bar = "#" * int(30 * frac) + "-" * (30 - int(30 * frac))
            text = f"{self.label} [{bar}] {self.count}/{self.total} {rate:6.1f} fps"
        else:
            text = f"{self.label} {self.count} frames {rate:6.1f} fps"
        if not self._tty and end == "\n" and self.count % 500 and self.count != self.total:
            return  # keep logs short when not on a terminal
        print(text, end=end, file=self.stream, flush=True)


def _video_info(path: Path) -> tuple[int | None, float]:
    """Frame count from the header (``None`` when unknown) and fps (30 when unknown)."""
    cap = cv2.VideoCapture(str(path))
    n = int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) if cap.isOpened() else 0
    fps = cap.get(cv2.CAP_PROP_FPS) if cap.isOpened() else 0.0
    cap.release()
    return (n if n > 0 else None), (fps or 30.0)


def draw_pose(
    frame: np.ndarray,
    pose: np.ndarray,
    edges: list[tuple[int, int]],
    pcutoff: float,
    colors: np.ndarray,
) -> np.ndarray:
    """Draw keypoints above ``pcutoff`` (and skeleton edges between them) onto ``frame``."""
    radius = max(2, frame.shape[1] // 160)
    for a, b in edges:
        if pose[a, 2] >= pcutoff and pose[b, 2] >= pcutoff:
            pa = (int(round(pose[a, 0])), int(round(pose[a, 1])))
            pb = (int(round(pose[b, 0])), int(round(pose[b, 1])))
            cv2.line(frame, pa, pb, (200, 200, 200), 1, cv2.LINE_AA)
    for k, (x, y, p) in enumerate(pose):
        if p >= pcutoff and np.isfinite(x) and np.isfinite(y):
            color = tuple(int(c) for c in colors[k])
            cv2.circle(frame, (int(round(x)), int(round(y))), radius, color, -1, cv2.LINE_AA)
    return frame


def keypoint_colors(n: int) -> np.ndarray:
    """``n`` distinct BGR colours (a hue wheel, like DeepLabCut's jet-ish maps)."""
    hues = np.linspace(0, 179, n, endpoint=False).astype(np.uint8)
    hsv = np.stack([hues, np.full(n, 255, np.uint8), np.full(n, 255, np.uint8)], 1)[None]
    return cv2.cvtColor(hsv, cv2.COLOR_HSV2BGR)[0]


def analyze_video(
    video: Path,
    bundle: Bundle,
    estimator: PoseEstimator,
    output_dir: Path | None = None,
    *,
    max_frames: int | None = None,
    labeled_video: bool = False,
    pcutoff: float = 0.6,
    scorer: str | None = None,
    progress: Callable[[str, int | None], Progress] | None = Progress,
) -> AnalysisResult:
    """Analyse one video; write ``<stem>.h5`` and ``<stem>.csv`` (and a labelled video)."""
    video = Path(video)
    output_dir = Path(output_dir) if output_dir else video.parent
    output_dir.mkdir(parents=True, exist_ok=True)
    scorer = scorer or f"realtime-pose_{bundle.meta.name}"
    stem = output_dir / f"{video.stem}_{scorer}"
    total, fps = _video_info(video)
    if max_frames is not None:
        total = min(total, max_frames) if total else max_frames
    bar = progress(video.name, total) if progress else None
    poses: list[np.ndarray] = []
    writer = None
    edges = skeleton_indices(bundle.meta)
    colors = keypoint_colors(len(bundle.keypoints))
    labeled_path = stem.parent / f"{stem.name}_labeled.mp4" if labeled_video else None
    t0 = time.monotonic()
    try:
        for frame in read_frames(video, max_frames):
            pose = estimator.estimate(frame)
            poses.append(pose.copy())
            if labeled_path is not None:
                if writer is None:
                    h, w = frame.shape[:2]
                    writer = cv2.VideoWriter(
                        str(labeled_path), cv2.VideoWriter_fourcc(*"mp4v"), fps, (w, h)
                    )
                writer.write(draw_pose(frame, pose, edges, pcutoff, colors))
            if bar:
                bar.update()
    finally:
        if writer is not None:
            writer.release()
        if bar:
            bar.close()
    seconds = time.monotonic() - t0
    h5_path, csv_path = write_pose_tables(stem, np.stack(poses), bundle.keypoints, scorer)
    return AnalysisResult(video, len(poses), h5_path, csv_path, labeled_path, seconds)
