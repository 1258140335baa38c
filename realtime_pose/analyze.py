"""Offline video analysis: every frame of a video through the estimator, saved as DLC tables.

Frames come through the live loop's own parts: a :class:`~realtime_pose.sources.video.VideoSource`
read free-running by a :class:`~realtime_pose.grabber.Grabber` in lockstep, so the next frame
decodes (OpenCV releases the GIL) while the network runs on the current one, and no frame is
skipped. A file that cannot be opened, or stops decoding part-way, raises
:class:`~realtime_pose.sources.base.SourceError` naming it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from realtime_pose.bundle import Bundle, skeleton_indices
from realtime_pose.dlc_output import write_pose_tables
from realtime_pose.drawing import draw_pose, keypoint_colors
from realtime_pose.estimator import PoseEstimator
from realtime_pose.grabber import Grabber
from realtime_pose.progress import Progress
from realtime_pose.sources.base import Frame, SourceError
from realtime_pose.sources.video import VideoSource

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class AnalysisResult:
    """What :func:`analyze_video` wrote."""

    video: Path
    frames: int
    h5_path: Path
    csv_path: Path
    labeled_video: Path | None
    seconds: float


def video_frames(path: Path, max_frames: int | None = None) -> Iterator[Frame]:
    """Every frame of a video file, in order (decoded one frame ahead on a grabber thread).

    Raises
    ------
    SourceError
        The file cannot be opened, holds no decodable frame, or stops decoding part-way.
    """
    source = VideoSource(path, realtime=False, max_frames=max_frames)
    produced = 0
    with Grabber(source, max_reopens=1) as grabber:
        for frame in grabber.frames():
            produced += 1
            yield frame
    if produced == 0:
        raise SourceError(f"{path}: no frame could be decoded")


def video_info(path: Path) -> tuple[int | None, float]:
    """Frame count from the header (``None`` when unknown) and fps (30 when unknown)."""
    source = VideoSource(path, realtime=False)
    with source:
        return (source.frame_count or None), (source.fps or 30.0)


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
    """Analyse one video; write ``<stem>.h5`` and ``<stem>.csv`` (and a labelled video).

    Raises
    ------
    SourceError
        The video cannot be read (nothing is written then).
    """
    video = Path(video)
    output_dir = Path(output_dir) if output_dir else video.parent
    output_dir.mkdir(parents=True, exist_ok=True)
    scorer = scorer or f"realtime-pose_{bundle.meta.name}"
    stem = output_dir / f"{video.stem}_{scorer}"
    total, fps = video_info(video)
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
        for frame in video_frames(video, max_frames):
            image = frame.image
            pose = estimator.estimate(image)
            poses.append(pose.copy())
            if labeled_path is not None:
                if writer is None:
                    h, w = image.shape[:2]
                    writer = cv2.VideoWriter(
                        str(labeled_path), cv2.VideoWriter_fourcc(*"mp4v"), fps, (w, h)
                    )
                writer.write(draw_pose(image, pose, edges, pcutoff, colors))
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
