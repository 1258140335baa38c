"""Pose log → DeepLabCut tables (``.h5`` and ``.csv``), one pair per animal."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from realtime_pose.dlc_output import DEFAULT_SCORER, write_pose_tables
from realtime_pose.recording.log_format import PoseLog, read_log

log = logging.getLogger(__name__)


def table_stems(log_path: Path, output_dir: Path, n_animals: int) -> list[Path]:
    """Output stems: ``<dir>/<log stem>`` for one animal, ``..._animal<i>`` for several."""
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
        Replace existing tables (else :class:`~realtime_pose.safe_write.OutputExistsError`).

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
    if len(pose_log.poses) == 0:
        log.warning("%s holds no poses; no tables written", log_path)
        return []
    out_dir = Path(output_dir) if output_dir is not None else log_path.parent
    n_animals = pose_log.poses.shape[1]
    written: list[Path] = []
    for animal, stem in enumerate(table_stems(log_path, out_dir, n_animals)):
        written += write_pose_tables(
            stem,
            pose_log.poses[:, animal],
            pose_log.keypoints,
            scorer,
            pose_log.frame_indices,
            overwrite=overwrite,
        )
        if pose_log.predicted is not None:
            has = pose_log.t_target_ns >= 0  # type: ignore[operator]
            written += write_pose_tables(
                stem.with_name(stem.name + "_predicted"),
                pose_log.predicted[has, animal],
                pose_log.keypoints,
                scorer,
                np.asarray(pose_log.frame_indices)[has],
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
    a link to the session video (:func:`realtime_pose.nwb_output.session_nwbfile`)."""
    from realtime_pose.nwb_output import session_nwbfile, write_nwb

    log_path = Path(log_path)
    pose_log = pose_log if pose_log is not None else read_log(log_path)
    out_dir = Path(output_dir) if output_dir is not None else log_path.parent
    path = out_dir / f"{log_path.stem}.nwb"
    video = log_path.with_suffix(".avi")
    nwbfile = session_nwbfile(pose_log, path, video if video.is_file() else None)
    return write_nwb(nwbfile, path, overwrite)
