"""The doubtful frames of analysed videos, picked into DeepLabCut ``labeled-data`` folders.

The offline counterpart of the live capture (``analyze --capture``): once a video's pose table
is written, :func:`capture_video` reads it back and offers each frame with its pose to the
live loop's own :class:`~realtime_pose.live.capture.FrameCapture`, opened as the ``capture:``
section says (:func:`~realtime_pose.live.capture_plan.open_capture`), so the criteria, the
rate limit, the clustering by look and the files are the live ones. Frame ``i`` is offered at
``i / fps`` of video time, so ``min_gap_s`` and ``max_per_minute`` count video seconds, and the
capture waits for its writer rather than drop a frame (``block_when_busy``). Running after the
analysis, it serves the sequential and the Ray analyses alike.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from realtime_pose.bundle import Bundle
from realtime_pose.formats.labeled_data import labels_folder
from realtime_pose.live.run_config import CaptureConfig

NAME_SUFFIX = "-captured"
"""What :func:`capture_name` appends to a video's stem."""
_NOT_IN_NAME = re.compile(r"[^A-Za-z0-9._+-]+")


class CaptureSetupError(ValueError):
    """The captures cannot go where they would: names that collide, or folders that already
    hold captures."""


@dataclass(frozen=True)
class CaptureTarget:
    """Where one video's captures go: ``<project>/labeled-data/<name>``; ``fallback`` is the
    project when neither the ``capture:`` section nor the bundle names one that is here."""

    video: Path
    project: Path
    name: str
    fallback: Path

    @property
    def directory(self) -> Path:
        """The ``labeled-data`` folder of this video."""
        return labels_folder(self.project, self.name)


@dataclass(frozen=True)
class CaptureResult:
    """What :func:`capture_video` did for one video."""

    video: Path
    directory: Path
    frames: int
    """Frames offered (the pose table's rows that the video still had)."""
    stats: dict[str, Any]
    """:meth:`~realtime_pose.live.capture.FrameCapture.stats` after closing."""

    def line(self) -> str:
        """``<video>: captured N frames into <folder> (reason n, ...); D of F frames doubtful``
        (a frame may have several reasons)."""
        stats = self.stats
        by_reason = ", ".join(f"{r} {n}" for r, n in stats["captured_by_reason"].items() if n)
        line = (
            f"{self.video.name}: captured {stats['written']} frames into {self.directory}"
            f"{f' ({by_reason})' if by_reason else ''}; {stats['doubtful']} of {self.frames} "
            "frames doubtful"
        )
        if stats["write_errors"]:
            line += f"; {stats['write_errors']} write errors: {stats['last_error']}"
        return line


def capture_name(video: Path) -> str:
    """``<video stem>-captured``, with what a folder name may not hold replaced by ``_``."""
    stem = _NOT_IN_NAME.sub("_", Path(video).stem).lstrip("._+-") or "video"
    return stem[: 128 - len(NAME_SUFFIX)] + NAME_SUFFIX


def plan_captures(
    videos: Sequence[Path],
    bundle: Bundle,
    config: CaptureConfig,
    output_dir: Path | None,
) -> list[CaptureTarget]:
    """Where each video's captures go: the project as
    :func:`~realtime_pose.live.capture_plan.capture_project` says (``<output dir>/captures``
    when neither ``config.project`` nor the bundle's training project is there), in a folder
    ``config.name`` (one video only) or :func:`capture_name`.

    Raises
    ------
    CaptureSetupError
        A name with several videos, two videos in one folder, or a folder that already holds
        files (FrameCapture would refuse it after the analysis).
    """
    from realtime_pose.live.capture_plan import capture_project

    name = config.name
    if name is not None and len(videos) > 1:
        raise CaptureSetupError(
            f"--capture-name names one folder but {len(videos)} videos were given; leave it "
            f"out (each video then gets <stem>{NAME_SUFFIX}) or analyse one video"
        )
    targets: list[CaptureTarget] = []
    claimed: dict[Path, Path] = {}
    seen: set[Path] = set()
    for video in videos:
        if Path(video).resolve() in seen:  # one video given twice: captured once
            continue
        seen.add(Path(video).resolve())
        fallback = Path(output_dir or Path(video).parent) / "captures"
        project = capture_project(config, bundle, fallback)
        target = CaptureTarget(Path(video), project, name or capture_name(video), fallback)
        folder = target.directory.resolve()
        if folder in claimed:
            raise CaptureSetupError(
                f"{video} and {claimed[folder]} would both capture into {target.directory}; "
                "rename one of the videos or analyse them in separate runs"
            )
        if target.directory.is_dir() and any(target.directory.iterdir()):
            raise CaptureSetupError(
                f"{target.directory} already holds captures (of an earlier run?); move it "
                "away, or choose another folder with --capture-name or --capture-project"
            )
        claimed[folder] = Path(video)
        targets.append(target)
    return targets


def pose_table_path(video: Path, output_dir: Path | None, bundle: Bundle) -> Path:
    """The ``.h5`` pose table ``analyze --format dlc`` writes for ``video``."""
    from realtime_pose.formats.dlc import table_paths
    from realtime_pose.formats.pose_files import output_stem
    from realtime_pose.offline.analysis import default_scorer

    return table_paths(output_stem(Path(video), output_dir, default_scorer(bundle)))[0]


def table_poses(table: Any, keypoints: Sequence[str]) -> np.ndarray:
    """The poses ``[frames, len(keypoints), 3]`` (x, y, likelihood) of a DeepLabCut-layout
    pose table (:func:`~realtime_pose.formats.dlc.read_pose_table`), rows in ``keypoints``'
    order (``animal/bodypart`` names for the multi-animal layout).

    Raises
    ------
    ValueError
        The table lacks one of ``keypoints``.
    """
    import pandas as pd

    columns = table.columns.droplevel("scorer")
    multi = "individuals" in columns.names
    wanted = []
    for name in keypoints:
        where = tuple(name.split("/", 1)) if multi else (name,)
        wanted += [(*where, coord) for coord in ("x", "y", "likelihood")]
    position = columns.get_indexer(pd.MultiIndex.from_tuples(wanted, names=columns.names))
    if (position < 0).any():
        missing = sorted({"/".join(wanted[i][:-1]) for i in np.flatnonzero(position < 0)})
        raise ValueError(f"the pose table has no columns for keypoints {missing}")
    values = table.to_numpy(dtype=np.float64)[:, position]
    return values.reshape(len(table), len(keypoints), 3).astype(np.float32)


def capture_video(
    video: Path,
    table_path: Path,
    bundle: Bundle,
    config: CaptureConfig,
    target: CaptureTarget,
) -> CaptureResult:
    """Offer every analysed frame of ``video`` with its pose from ``table_path`` (the ``.h5``
    or ``.csv`` the analysis wrote) to a capture into ``target``; return what it kept.

    Raises
    ------
    SourceError
        The video cannot be read.
    OutputExistsError
        ``target``'s folder already holds files.
    ValueError
        The table does not hold the bundle's keypoints.
    """
    from realtime_pose.formats.dlc import read_pose_table
    from realtime_pose.inference.tracking_stage import video_time_ns
    from realtime_pose.live.capture_plan import open_capture
    from realtime_pose.offline.analysis import video_frames, video_info

    table = read_pose_table(table_path)
    poses = table_poses(table, bundle.keypoints)
    by_frame = {int(index): row for row, index in enumerate(table.index)}
    _, fps = video_info(video)
    capture = open_capture(  # offline there is time: no capture lost to a busy disk
        config.model_copy(update={"name": None}),
        bundle,
        target.fallback,
        name=target.name,
        block_when_busy=True,
    )
    offered = 0
    try:
        end = max(by_frame, default=-1) + 1
        for frame in video_frames(video, end) if end else ():
            row = by_frame.get(frame.frame_index)
            if row is None:
                continue
            timed = dataclasses.replace(frame, t_capture_ns=video_time_ns(frame.frame_index, fps))
            capture.offer(timed, frame.frame_index, poses[row], None)
            offered += 1
    finally:
        capture.close()
    return CaptureResult(Path(video), capture.directory, offered, capture.stats())
