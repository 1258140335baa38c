"""Offline video analysis: every frame of a video through the estimator, saved as DLC tables.

Frames come through the live loop's own parts: a :class:`~realtime_pose.sources.video.VideoSource`
read free-running by a :class:`~realtime_pose.live.grabber.Grabber` in lockstep, so the next frame
decodes (OpenCV releases the GIL) while the network runs on the current one, and no frame is
skipped. A file that cannot be opened, or stops decoding part-way, raises
:class:`~realtime_pose.sources.base.SourceError` naming it.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from realtime_pose.bundle import Bundle, skeleton_indices
from realtime_pose.formats.labelled_video import LabeledVideoWriter
from realtime_pose.formats.pose_files import (
    OutputPlan,
    output_stem,
    provenance,
    units_to_write,
    write_units,
)
from realtime_pose.inference.estimator import PoseEstimator
from realtime_pose.inference.tracking_stage import tracking_for, video_time_ns
from realtime_pose.live.grabber import Grabber
from realtime_pose.offline.tracks import analysis_tables
from realtime_pose.sources.base import Frame, SourceError
from realtime_pose.sources.video import VideoSource
from realtime_pose.util.progress import Progress

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class AnalysisResult:
    """What :func:`analyze_video` did for one video."""

    video: Path
    frames: int
    files: list[Path]
    seconds: float
    skipped: bool = False
    """True when its outputs were already complete and nothing was done."""


def video_frames(
    path: Path, max_frames: int | None = None, start_frame: int = 0
) -> Iterator[Frame]:
    """Every frame of a video file from ``start_frame`` on, in order (decoded one frame ahead
    on a grabber thread); ``frame_index`` is the frame's position in the file.

    Raises
    ------
    SourceError
        The file cannot be opened, holds no decodable frame (from ``start_frame`` 0), or stops
        decoding part-way.
    """
    source = VideoSource(path, realtime=False, max_frames=max_frames, start_frame=start_frame)
    produced = 0
    with Grabber(source, max_reopens=1) as grabber:
        for frame in grabber.frames():
            produced += 1
            yield frame
    if produced == 0 and start_frame == 0:
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
    formats: Sequence[str] = ("dlc",),
    overwrite: bool = False,
    progress: Callable[[str, int | None], Progress] | None = Progress,
) -> AnalysisResult:
    """Analyse one video in this process and write its outputs
    (:mod:`realtime_pose.formats.pose_files`: ``<stem>.h5``/``.csv``, ``.nwb``, a labelled video);
    outputs already complete are skipped.

    Every output goes to a temporary name and is renamed when complete; an output that exists
    but is not this analysis is refused before any frame is read, unless ``overwrite``.

    Raises
    ------
    SourceError
        The video cannot be read (nothing is written then).
    OutputExistsError
        An output exists but is not this analysis, and ``overwrite`` is false.
    """
    video = Path(video)
    if not video.is_file():
        raise SourceError(f"video file {video} does not exist (check the path)")
    scorer = scorer or default_scorer(bundle)
    plan = OutputPlan(video, output_stem(video, output_dir, scorer), tuple(formats), labeled_video)
    expected = provenance(video, bundle, scorer, max_frames)
    todo = units_to_write(plan, expected, bundle.keypoints, overwrite)
    if not todo:
        return AnalysisResult(video, 0, [], 0.0, skipped=True)
    total, fps = video_info(video)
    if max_frames is not None:
        total = min(total, max_frames) if total else max_frames
    bar = progress(video.name, total) if progress else None
    poses: list[np.ndarray] = []
    t0 = time.monotonic()
    with contextlib.ExitStack() as stack:
        labeled = None
        if "labeled" in todo:
            labeled = stack.enter_context(
                LabeledVideoWriter(
                    plan.file("labeled"),
                    fps,
                    skeleton_indices(bundle.meta),
                    bundle.keypoints,
                    pcutoff,
                    overwrite,
                )
            )
        if bar:
            stack.callback(bar.close)
        tracking = tracking_for(bundle.meta)  # several animals: kept under their names
        track_ids: list[np.ndarray] = []  # look-alikes: the track in each slot
        for i, frame in enumerate(video_frames(video, max_frames)):
            pose = estimator.estimate(frame.image)
            if tracking is not None:
                pose = tracking.update(pose, video_time_ns(i, fps))
                if tracking.track_ids is not None:
                    track_ids.append(tracking.track_ids.copy())
            poses.append(pose.copy())
            if labeled is not None:
                labeled.write(frame.image, pose)
            if bar:
                bar.update()
        seconds = time.monotonic() - t0
        tables, table_bundle = analysis_tables(
            np.stack(poses), np.stack(track_ids) if track_ids else None, bundle
        )
        files = write_units(
            plan,
            todo,
            tables,
            table_bundle,
            scorer=scorer,
            fps=fps,
            provenance=expected,
            overwrite=overwrite,
        )
    if labeled is not None:
        files.append(plan.file("labeled"))
    return AnalysisResult(video, len(poses), files, seconds)


def write_labeled_video(
    video: Path,
    poses: np.ndarray,
    bundle: Bundle,
    path: Path,
    fps: float,
    pcutoff: float = 0.6,
    overwrite: bool = False,
) -> Path:
    """Decode ``video`` again and write its first ``len(poses)`` frames with ``poses`` drawn
    (the distributed path, where poses arrive from workers without their frames)."""
    edges = skeleton_indices(bundle.meta)
    with LabeledVideoWriter(path, fps, edges, bundle.keypoints, pcutoff, overwrite) as out:
        for frame, pose in zip(video_frames(video, len(poses)), poses, strict=False):
            out.write(frame.image, pose)
    return path


def default_scorer(bundle: Bundle) -> str:
    """The DeepLabCut ``scorer`` level (and output-name suffix) for ``bundle``."""
    return f"realtime-pose_{bundle.meta.name}"
