"""Pose log → DeepLabCut tables (``.h5`` and ``.csv``), one pair per animal; a camera group's
log → anipose's 3D table (``<stem>_3d.csv``) and one DeepLabCut table pair per camera."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from realtime_pose.formats.dlc import DEFAULT_SCORER, table_paths, write_pose_tables
from realtime_pose.recording.log_format import PoseLog, read_log
from realtime_pose.util.safe_write import check_free

log = logging.getLogger(__name__)


def table_stems(log_path: Path, output_dir: Path, n_animals: int) -> list[Path]:
    """Output stems: ``<dir>/<log stem>`` for one animal, ``..._animal<i>`` for several; the
    whole stem of the log is kept, so every log has tables of its own."""
    base = output_dir / log_path.stem
    if n_animals == 1:
        return [base]
    return [base.with_name(f"{base.name}_animal{i}") for i in range(n_animals)]


def convert_log(
    log_path: str | Path,
    output_dir: str | Path | None = None,
    *,
    scorer: str = DEFAULT_SCORER,
    pose_log: PoseLog | None = None,
    overwrite: bool = False,
) -> list[Path]:
    """Write DeepLabCut-layout tables for every animal (and the predictions, if any).

    Parameters
    ----------
    log_path
        The ``.poselog`` file.
    output_dir
        Folder for the tables (default: beside the log).
    scorer
        The ``scorer`` level of the column MultiIndex.
    pose_log
        An already-read log, to avoid reading it twice.
    overwrite
        Replace tables that exist (else :class:`~realtime_pose.util.safe_write.OutputExistsError`
        names the first one, and nothing is written).

    Returns
    -------
    list of Path
        ``<stem>.h5``, ``<stem>.csv`` (and ``<stem>_predicted.*`` when the log holds
        predictions), rows indexed by frame index; empty if the log holds no poses.
    """
    log_path = Path(log_path)
    pose_log = pose_log if pose_log is not None else read_log(log_path)
    if pose_log.torn_bytes:
        log.warning(
            "%s: ignored %d unreadable bytes at the end (the recording was interrupted)",
            log_path,
            pose_log.torn_bytes,
        )
    if pose_log.bad_records:
        log.warning(
            "%s: skipped %d records whose content no recorder writes (the file was altered?)",
            log_path,
            pose_log.bad_records,
        )
    out_dir = Path(output_dir) if output_dir is not None else log_path.parent
    if pose_log.sets is not None:
        return _convert_sets(log_path, pose_log, out_dir, scorer, overwrite)
    if len(pose_log.poses) == 0:
        log.warning("%s holds no poses; no tables written", log_path)
        return []
    n_animals = pose_log.poses.shape[1]
    tables = []  # (stem, poses, frame indices), checked before anything is written
    for animal, stem in enumerate(table_stems(log_path, out_dir, n_animals)):
        tables.append((stem, pose_log.poses[:, animal], pose_log.frame_indices))
        if pose_log.predicted is not None:
            has = pose_log.t_target_ns >= 0  # type: ignore[operator]
            indices = np.asarray(pose_log.frame_indices)[has]
            tables.append(
                (stem.with_name(stem.name + "_predicted"), pose_log.predicted[has, animal], indices)
            )
    for stem, _, _ in tables:
        for path in table_paths(stem):
            check_free(path, overwrite)
    written: list[Path] = []
    for stem, poses, indices in tables:
        written += write_pose_tables(
            stem, poses, pose_log.keypoints, scorer, indices, overwrite=overwrite
        )
    return written


def camera_names(pose_log: PoseLog) -> list[str]:
    """The cameras of a camera-group log, in its order (from the header's meta)."""
    cameras = pose_log.header.get("meta", {}).get("cameras", {})
    names = cameras.get("names") if isinstance(cameras, dict) else None
    c = pose_log.sets.views2d.shape[1] if pose_log.sets is not None else 0
    if isinstance(names, list) and len(names) == c:
        return [str(n) for n in names]
    return [f"cam{i}" for i in range(c)]


def poses3d_from_log(pose_log: PoseLog):
    """A camera-group log's frame sets as :class:`~realtime_pose.formats.anipose.Poses3D`
    (:meth:`~realtime_pose.formats.anipose.Poses3D.from_triangulation`)."""
    from realtime_pose.formats.anipose import Poses3D

    sets = pose_log.sets
    if sets is None:
        raise ValueError(f"{pose_log.path} is not a camera-group recording (no pose3d records)")
    return Poses3D.from_triangulation(
        pose_log.keypoints,
        sets.points,
        sets.views2d,
        frame_index=sets.set_index,
        t_ns=np.maximum.accumulate(sets.t_capture_ns),
        camera_names=camera_names(pose_log),
        camera_t_ns=sets.view_t_capture_ns,
        skeleton=pose_log.header.get("meta", {}).get("skeleton", []),
    )


def _convert_sets(
    log_path: Path, pose_log: PoseLog, out_dir: Path, scorer: str, overwrite: bool
) -> list[Path]:
    """anipose's 3D CSV and each camera's 2D tables, checked free before anything is written."""
    from realtime_pose.formats.anipose import write_anipose_csv

    sets = pose_log.sets
    assert sets is not None
    if len(sets.points) == 0:
        log.warning("%s holds no frame sets; no tables written", log_path)
        return []
    csv = out_dir / f"{log_path.stem}_3d.csv"
    views = []
    for c, name in enumerate(camera_names(pose_log)):
        has = sets.view_frames[:, c] >= 0
        if has.any():  # a camera that delivered nothing has no table
            views.append((out_dir / f"{log_path.stem}_{name}", c, has))
    check_free(csv, overwrite)
    for stem, _, _ in views:
        for path in table_paths(stem):
            check_free(path, overwrite)
    written = [write_anipose_csv(csv, poses3d_from_log(pose_log), overwrite=overwrite)]
    for stem, c, has in views:
        written += write_pose_tables(
            stem,
            sets.views2d[has, c],
            pose_log.keypoints,
            scorer,
            sets.view_frames[has, c],
            overwrite=overwrite,
        )
    return written


def convert_log_to_nwb(
    log_path: str | Path,
    output_dir: str | Path | None = None,
    *,
    pose_log: PoseLog | None = None,
    overwrite: bool = False,
) -> Path:
    """Write ``<log stem>.nwb``: the session's poses at their capture times, its rule and output
    events, the outputs' on periods and, when it was recorded beside the log (``<stem>.avi``),
    a link to the session video (:func:`realtime_pose.formats.nwb.session_nwbfile`)."""
    from realtime_pose.formats.nwb import session_nwbfile, write_nwb

    log_path = Path(log_path)
    pose_log = pose_log if pose_log is not None else read_log(log_path)
    out_dir = Path(output_dir) if output_dir is not None else log_path.parent
    path = out_dir / f"{log_path.stem}.nwb"
    if pose_log.sets is not None:
        return write_nwb(_sets_nwbfile(log_path, pose_log), path, overwrite)
    video = log_path.with_suffix(".avi")
    nwbfile = session_nwbfile(pose_log, path, video if video.is_file() else None)
    return write_nwb(nwbfile, path, overwrite)


def _sets_nwbfile(log_path: Path, pose_log: PoseLog):
    """The NWB file of a camera-group log: 3D poses, cameras (calibrated where the calibration
    named in the log is still there) and every camera's frame times."""
    import datetime

    from realtime_pose.calibration import CalibrationError, load_calibration
    from realtime_pose.formats.nwb import poses3d_nwbfile

    meta = pose_log.header.get("meta", {})
    calibration = (meta.get("cameras") or {}).get("calibration")
    rig = None
    if calibration:
        try:
            rig = load_calibration(calibration).subset(camera_names(pose_log))
        except (CalibrationError, KeyError) as exc:
            log.warning("%s: cameras written without their calibration (%s)", log_path, exc)
    t0 = int(pose_log.header["t_start_ns"])
    start = datetime.datetime.fromtimestamp(
        (t0 + int(pose_log.header["wall_offset_ns"])) / 1e9, tz=datetime.timezone.utc
    )
    model = meta.get("model", {}) if isinstance(meta.get("model"), dict) else {}
    return poses3d_nwbfile(
        poses3d_from_log(pose_log),
        identifier=log_path.stem,
        session_start=start,
        t0_ns=t0,
        rig=rig,
        calibration_file=calibration,
        scorer=str(model.get("name", "realtime-pose")),
        description=f"realtime-pose camera-group session {log_path.name}",
    )
