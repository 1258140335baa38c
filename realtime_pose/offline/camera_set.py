"""Offline 3D: the synchronised videos of a camera group → 2D per view, triangulated, written.

``realtime-pose analyze A.mp4 B.mp4 C.mp4 --bundle B --calibration calibration.toml`` runs the
bundle on every frame of each video (frame *i* of every video is one frame set, as anipose
assumes), triangulates with :func:`realtime_pose.inference.triangulate.triangulate_sequence` and
writes, under ``<output>/<set name>``:

- ``<set>_3d.csv``: anipose's 3D table (:mod:`realtime_pose.formats.anipose`);
- ``<set>_3d.nwb`` (``nwb`` in ``formats``): the 3D poses with the calibrated cameras
  (:func:`realtime_pose.formats.nwb.poses3d_nwbfile`);
- ``<set>_<camera>.h5``/``.csv``: each view's 2D poses in DeepLabCut's layout.

Each video's camera is the calibration's camera whose name its file name contains (``back`` in
``minimal_back.mp4``), or is given explicitly.
"""

from __future__ import annotations

import datetime
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from realtime_pose.bundle import Bundle
from realtime_pose.calibration import CameraRig
from realtime_pose.formats.anipose import Poses3D, write_anipose_csv
from realtime_pose.formats.dlc import table_paths, write_pose_tables
from realtime_pose.inference.estimator import PoseEstimator
from realtime_pose.inference.triangulate import triangulate_sequence
from realtime_pose.offline.analysis import default_scorer, video_frames, video_info
from realtime_pose.util.safe_write import check_free

log = logging.getLogger(__name__)


def cameras_of(videos: Sequence[Path], rig: CameraRig) -> dict[str, Path]:
    """Each video's camera: the one calibration camera whose name its file name contains."""
    named: dict[str, Path] = {}
    for video in videos:
        matches = [c for c in rig.names if c in Path(video).stem]
        if len(matches) != 1:
            raise ValueError(
                f"{video}: cannot tell which camera of the calibration ({rig.names}) it is "
                f"({'none' if not matches else ' and '.join(matches)} in its name); name each "
                "video after its camera"
            )
        if matches[0] in named:
            raise ValueError(f"{video} and {named[matches[0]]} are both camera {matches[0]!r}")
        named[matches[0]] = Path(video)
    if len(named) < 2:
        raise ValueError("a camera set needs at least two videos")
    return named


@dataclass(frozen=True)
class CameraSetResult:
    """What :func:`analyze_camera_set` wrote, and how many frame sets."""

    frame_sets: int
    files: list[Path]
    points: np.ndarray
    """``[T, K, 5]``: x, y, z (mm), reprojection error (px), views used."""


def analyze_camera_set(
    videos: Mapping[str, Path],
    rig: CameraRig,
    bundle: Bundle,
    estimator: PoseEstimator,
    output_dir: Path,
    *,
    name: str | None = None,
    formats: Sequence[str] = ("dlc",),
    min_likelihood: float = 0.5,
    outlier_px: float | None = 20.0,
    max_frames: int | None = None,
    overwrite: bool = False,
    calibration_file: Path | None = None,
) -> CameraSetResult:
    """Analyse a camera group's videos and write the 3D table, NWB and per-view tables.

    Raises
    ------
    OutputExistsError
        An output exists and ``overwrite`` is false (checked before any frame is read).
    SourceError
        A video cannot be read.
    """
    names = list(videos)
    rig = rig.subset(names)
    name = name or "-".join(Path(v).stem for v in videos.values())
    output_dir = Path(output_dir)
    csv = output_dir / f"{name}_3d.csv"
    nwb = output_dir / f"{name}_3d.nwb"
    stems = {camera: output_dir / f"{name}_{camera}" for camera in names}
    planned = [csv] + [p for stem in stems.values() for p in table_paths(stem)]
    if "nwb" in formats:
        planned.append(nwb)
    for path in planned:
        check_free(path, overwrite)
    _, fps = video_info(next(iter(videos.values())))
    views = []
    for camera, video in videos.items():
        poses = [estimator.estimate(f.image).copy() for f in video_frames(video, max_frames)]
        log.info("%s (%s): %d frames", video, camera, len(poses))
        views.append(np.stack(poses))
    n = min(len(v) for v in views)
    if any(len(v) != n for v in views):
        log.warning("the videos differ in length; %d frame sets (the shortest video)", n)
    points2d = np.stack([v[:n] for v in views])  # [C, T, K, 3]
    points = triangulate_sequence(rig, points2d, min_likelihood, outlier_px)
    poses3d = poses3d_from_views(bundle, points2d, points, fps, names)
    output_dir.mkdir(parents=True, exist_ok=True)
    scorer = default_scorer(bundle)
    files = [write_anipose_csv(csv, poses3d, overwrite=overwrite)]
    for c, camera in enumerate(names):
        files += write_pose_tables(
            stems[camera], points2d[c], bundle.keypoints, scorer, overwrite=overwrite
        )
    if "nwb" in formats:
        from realtime_pose.formats.nwb import poses3d_nwbfile, write_nwb

        nwbfile = poses3d_nwbfile(
            poses3d,
            identifier=name,
            session_start=datetime.datetime.now(datetime.timezone.utc),
            rig=rig,
            calibration_file=calibration_file,
            scorer=scorer,
            description=f"realtime-pose analysis of the camera set {name}",
        )
        files.append(write_nwb(nwbfile, nwb, overwrite))
    return CameraSetResult(n, files, points)


def poses3d_from_views(
    bundle: Bundle,
    points2d: np.ndarray,
    points: np.ndarray,
    fps: float,
    camera_names: Sequence[str],
) -> Poses3D:
    """Triangulated points ``[T, K, 5]`` of views ``[C, T, K, 3]`` as
    :class:`~realtime_pose.formats.anipose.Poses3D`, frame *i* at ``i / fps``."""
    t = len(points)
    t_ns = np.round(np.arange(t) * 1e9 / fps).astype(np.int64)
    return Poses3D.from_triangulation(
        bundle.keypoints,
        points,
        points2d.transpose(1, 0, 2, 3),
        frame_index=np.arange(t),
        t_ns=t_ns,
        camera_names=camera_names,
        camera_t_ns=np.repeat(t_ns[:, None], len(camera_names), axis=1),
        skeleton=bundle.meta.skeleton,
    )
