"""Pose log → DeepLabCut tables (``.h5`` and ``.csv``), one pair per animal."""

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
    if len(pose_log.poses) == 0:
        log.warning("%s holds no poses; no tables written", log_path)
        return []
    out_dir = Path(output_dir) if output_dir is not None else log_path.parent
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
    video = log_path.with_suffix(".avi")
    nwbfile = session_nwbfile(pose_log, path, video if video.is_file() else None)
    return write_nwb(nwbfile, path, overwrite)
