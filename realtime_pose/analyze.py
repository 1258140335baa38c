"""Offline video analysis: every frame of a video through the estimator, saved as DLC tables.

Frames come through the live loop's own parts: a :class:`~realtime_pose.sources.video.VideoSource`
read free-running by a :class:`~realtime_pose.grabber.Grabber` in lockstep, so the next frame
decodes (OpenCV releases the GIL) while the network runs on the current one, and no frame is
skipped. A file that cannot be opened, or stops decoding part-way, raises
:class:`~realtime_pose.sources.base.SourceError` naming it.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from realtime_pose.bundle import Bundle, skeleton_indices
from realtime_pose.dlc_output import table_paths, write_pose_tables
from realtime_pose.drawing import draw_pose, keypoint_colors
from realtime_pose.estimator import PoseEstimator
from realtime_pose.grabber import Grabber
from realtime_pose.progress import Progress
from realtime_pose.safe_write import check_free, writing
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


def default_scorer(bundle: Bundle) -> str:
    """The ``scorer`` level (and output-name suffix) of an analysis with ``bundle``."""
    return f"realtime-pose_{bundle.meta.name}"


def output_paths(
    video: Path, output_dir: Path | None, scorer: str, labeled_video: bool = False
) -> list[Path]:
    """What :func:`analyze_video` writes for ``video``: ``<video stem>_<scorer>.h5``, ``.csv``
    (and ``_labeled.mp4``), in ``output_dir`` or beside the video."""
    video = Path(video)
    folder = Path(output_dir) if output_dir else video.parent
    stem = folder / f"{video.stem}_{scorer}"
    paths = list(table_paths(stem))
    if labeled_video:
        paths.append(stem.with_name(f"{stem.name}_labeled.mp4"))
    return paths


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
    overwrite: bool = False,
) -> AnalysisResult:
    """Analyse one video; write ``<stem>.h5`` and ``<stem>.csv`` (and a labelled video).

    Every output goes to a temporary name and is renamed when complete; outputs that exist are
    refused before any frame is read, unless ``overwrite``.

    Raises
    ------
    SourceError
        The video cannot be read (nothing is written then).
    OutputExistsError
        An output exists and ``overwrite`` is false (nothing is written).
    """
    video = Path(video)
    scorer = scorer or default_scorer(bundle)
    paths = output_paths(video, output_dir, scorer, labeled_video)
    for path in paths:
        check_free(path, overwrite)
    stem = paths[0].with_suffix("")
    total, fps = video_info(video)
    if max_frames is not None:
        total = min(total, max_frames) if total else max_frames
    bar = progress(video.name, total) if progress else None
    poses: list[np.ndarray] = []
    writer = None
    edges = skeleton_indices(bundle.meta)
    colors = keypoint_colors(len(bundle.keypoints))
    labeled_path = paths[2] if labeled_video else None
    t0 = time.monotonic()
    with contextlib.ExitStack() as stack:
        labeled_tmp = (
            stack.enter_context(writing(labeled_path, overwrite)) if labeled_path else None
        )
        try:
            for frame in video_frames(video, max_frames):
                image = frame.image
                pose = estimator.estimate(image)
                poses.append(pose.copy())
                if labeled_tmp is not None:
                    if writer is None:
                        h, w = image.shape[:2]
                        writer = cv2.VideoWriter(
                            str(labeled_tmp), cv2.VideoWriter_fourcc(*"mp4v"), fps, (w, h)
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
        h5_path, csv_path = write_pose_tables(
            stem, np.stack(poses), bundle.keypoints, scorer, overwrite=overwrite
        )
    return AnalysisResult(video, len(poses), h5_path, csv_path, labeled_path, seconds)
