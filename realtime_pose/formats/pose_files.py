"""The files an analysis of one video writes: their names, whether they are already complete,
and writing them.

An analysis writes, per video, some of these *units* (each all-or-nothing):

- ``dlc``: ``<stem>.h5`` and ``<stem>.csv`` in DeepLabCut's layout (:mod:`.dlc_output`);
- ``nwb``: ``<stem>.nwb`` (:mod:`.nwb_output`);
- ``slp``: ``<stem>.slp``, SLEAP predictions with one track per animal (:mod:`.slp_output`);
- ``labeled``: ``<stem>_labeled.mp4``, the video with the poses drawn;

with ``<stem>`` = ``<output dir>/<video stem>_<scorer>``. Every file goes through
:mod:`.safe_write` (temporary name, renamed when complete), so a file under its final name is
whole. Whether it is *this* analysis is told by the provenance stored in it (video name and
size, model hash, scorer, frame limit, frames written): a re-run skips a video whose units all
match, writes the units that are missing, and refuses (naming the file) one that exists but
does not match, unless ``--overwrite``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from realtime_pose import __version__
from realtime_pose.bundle import animal_layout, bodypart_edges

FORMATS = ("dlc", "nwb", "slp")
"""Pose-table formats ``analyze --format`` accepts."""

MATCH_KEYS = ("video", "video_bytes", "model_sha256", "scorer", "max_frames")
"""Provenance fields that must be equal for an existing output to count as this analysis."""


def output_stem(video: Path, output_dir: Path | None, scorer: str) -> Path:
    """``<output_dir or the video's folder>/<video stem>_<scorer>`` (no suffix)."""
    return Path(output_dir or video.parent) / f"{video.stem}_{scorer}"


def provenance(video: Path, bundle, scorer: str, max_frames: int | None) -> dict[str, Any]:
    """What identifies an analysis of ``video`` by ``bundle`` (``frames`` is added on writing)."""
    return {
        "software": "realtime-pose",
        "software_version": __version__,
        "video": video.name,
        "video_bytes": video.stat().st_size,
        "bundle": bundle.meta.name,
        "bundle_provenance": dict(bundle.meta.provenance),
        "model_sha256": bundle.model_sha256(),
        "scorer": scorer,
        "max_frames": max_frames,
    }


@dataclass(frozen=True)
class OutputPlan:
    """The outputs asked for one video."""

    video: Path
    stem: Path
    formats: tuple[str, ...] = ("dlc",)
    labeled_video: bool = False

    def units(self) -> dict[str, list[Path]]:
        """Each unit asked for and its files."""

        def named(suffix: str) -> Path:
            return self.stem.with_name(self.stem.name + suffix)

        units: dict[str, list[Path]] = {}
        if "dlc" in self.formats:
            units["dlc"] = [named(".h5"), named(".csv")]
        if "nwb" in self.formats:
            units["nwb"] = [named(".nwb")]
        if "slp" in self.formats:
            units["slp"] = [named(".slp")]
        if self.labeled_video:
            units["labeled"] = [named("_labeled.mp4")]
        return units

    def file(self, unit: str) -> Path:
        """The (first) file of ``unit``."""
        return self.units()[unit][0]


@dataclass
class OutputState:
    """What :func:`inspect_outputs` found for one video."""

    valid: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    invalid: dict[str, str] = field(default_factory=dict)
    frames: int | None = None

    @property
    def complete(self) -> bool:
        """Every unit asked for exists and matches this analysis."""
        return not self.missing and not self.invalid


def _bodyparts(keypoints: Sequence[str]) -> list[str]:
    """The bodyparts of ``animal/bodypart`` keypoints (the keypoints themselves for one animal).

    Files of several animals are checked by bodypart: which animals they hold is the model's
    (identity channels: fixed by the provenance's model hash) or the video's (animals that
    look alike: one individual per track, known only once the video is analysed)."""
    layout = animal_layout(keypoints)
    return list(keypoints) if layout is None else layout[1]


def _check_dlc(paths: list[Path], expected: Mapping[str, Any], keypoints: Sequence[str]) -> int:
    from realtime_pose.formats.dlc import read_pose_table, read_provenance, table_keypoints

    h5, csv = paths
    stored = read_provenance(h5)
    if stored is None:
        raise ValueError(f"{h5} holds no realtime-pose provenance")
    _compare(h5, stored, expected)
    frames = int(stored["frames"])
    for path in (h5, csv):
        table = read_pose_table(path)
        parts = table_keypoints(table)
        if len(table) != frames or _bodyparts(parts) != _bodyparts(keypoints):
            raise ValueError(
                f"{path} has {len(table)} rows of {parts}, expected {frames} of {list(keypoints)}"
            )
    return frames


def _check_nwb(paths: list[Path], expected: Mapping[str, Any], keypoints: Sequence[str]) -> int:
    from realtime_pose.formats.nwb import read_nwb_analysis

    (path,) = paths
    stored, counts = read_nwb_analysis(path)
    _compare(path, stored, expected)
    frames = int(stored["frames"])
    if set(counts) != set(_bodyparts(keypoints)) or any(n != frames for n in counts.values()):
        raise ValueError(f"{path} holds {counts}, expected {frames} samples of {list(keypoints)}")
    return frames


def _check_slp(paths: list[Path], expected: Mapping[str, Any], keypoints: Sequence[str]) -> int:
    from realtime_pose.formats.slp import read_slp_provenance

    stored, frames = read_slp_provenance(paths[0])
    if not stored:
        raise ValueError(f"{paths[0]} holds no realtime-pose provenance")
    _compare(paths[0], stored, expected)
    if frames != int(stored["frames"]):
        raise ValueError(f"{paths[0]} has {frames} frames, its provenance says {stored['frames']}")
    return frames


def _check_labeled(paths: list[Path], frames: int | None) -> None:
    import cv2

    (path,) = paths
    capture = cv2.VideoCapture(str(path))
    try:
        if not capture.isOpened():
            raise ValueError(f"{path} cannot be opened as a video")
        count = int(capture.get(cv2.CAP_PROP_FRAME_COUNT))
    finally:
        capture.release()
    if frames is not None and count != frames:
        raise ValueError(f"{path} has {count} frames, expected {frames}")


def _compare(path: Path, stored: Mapping[str, Any], expected: Mapping[str, Any]) -> None:
    for key in MATCH_KEYS:
        if stored.get(key) != expected.get(key):
            raise ValueError(
                f"{path} was made for {key}={stored.get(key)!r}, this run has {expected.get(key)!r}"
            )


def inspect_outputs(
    plan: OutputPlan, expected: Mapping[str, Any], keypoints: Sequence[str]
) -> OutputState:
    """Classify each unit of ``plan`` as valid (complete, made by this analysis), missing (no
    file of it exists) or invalid (with the reason, naming the file)."""
    state = OutputState()
    units = plan.units()
    checks = {"dlc": _check_dlc, "nwb": _check_nwb, "slp": _check_slp}
    for unit in [u for u in units if u != "labeled"] + (["labeled"] if "labeled" in units else []):
        paths = units[unit]
        present = [p for p in paths if p.exists() or p.is_symlink()]
        if not present:
            state.missing.append(unit)
            continue
        if len(present) != len(paths):
            absent = next(p for p in paths if p not in present)
            state.invalid[unit] = f"{present[0]} exists without {absent.name}"
            continue
        try:
            if unit == "labeled":
                _check_labeled(paths, state.frames)
            else:
                frames = checks[unit](paths, expected, keypoints)
                if state.frames is not None and frames != state.frames:
                    raise ValueError(f"{paths[0]} has {frames} frames, others {state.frames}")
                state.frames = frames
        except (OSError, ValueError, KeyError, TypeError) as exc:
            state.invalid[unit] = str(exc)
            continue
        state.valid.append(unit)
    return state


def write_units(
    plan: OutputPlan,
    units: Sequence[str],
    poses: np.ndarray,
    bundle,
    *,
    scorer: str,
    fps: float,
    provenance: Mapping[str, Any],
    overwrite: bool = False,
) -> list[Path]:
    """Write the table units (``dlc``, ``nwb``, ``slp``) of ``units`` for ``poses`` ``[N, K, 3]``;
    return the files written. The labelled video is written while frames are decoded
    (:class:`realtime_pose.formats.labelled_video.LabeledVideoWriter`), not here."""
    from realtime_pose.formats.dlc import write_pose_tables

    record = {**provenance, "frames": len(poses)}
    written: list[Path] = []
    if "dlc" in units:
        written += write_pose_tables(
            plan.stem, poses, bundle.keypoints, scorer, overwrite=overwrite, provenance=record
        )
    if "nwb" in units:
        from realtime_pose.formats.nwb import analysis_nwbfile, write_nwb

        path = plan.file("nwb")
        keypoints, skeleton, names = bundle.keypoints, bundle.meta.skeleton, None
        layout = animal_layout(keypoints)
        nwb_poses = poses
        if layout is not None:  # several animals: one PoseEstimation each, bodyparts as nodes
            names, keypoints = layout
            nwb_poses = np.asarray(poses).reshape(len(poses), len(names), len(keypoints), 3)
            skeleton = bodypart_edges(skeleton)
        nwbfile = analysis_nwbfile(
            nwb_poses,
            keypoints,
            skeleton,
            fps=fps,
            video=plan.video,
            nwb_path=path,
            scorer=scorer,
            provenance=record,
            animal_names=names,
        )
        written.append(write_nwb(nwbfile, path, overwrite))
    if "slp" in units:
        from realtime_pose.formats.slp import write_slp

        written.append(
            write_slp(
                plan.file("slp"),
                poses,
                bundle.keypoints,
                bundle.meta.skeleton,
                plan.video,
                provenance=record,
                overwrite=overwrite,
            )
        )
    return written


def units_to_write(
    plan: OutputPlan,
    expected: Mapping[str, Any],
    keypoints: Sequence[str],
    overwrite: bool = False,
) -> list[str]:
    """The units of ``plan`` this run must write: none when all are complete, the missing ones
    otherwise, all of them with ``overwrite``.

    Raises
    ------
    OutputExistsError
        A unit exists but is not this analysis (partial, another model or video, damaged) and
        ``overwrite`` is false; the message names the file and the reason.
    """
    from realtime_pose.util.safe_write import OutputExistsError

    if overwrite:
        return list(plan.units())
    state = inspect_outputs(plan, expected, keypoints)
    for unit, reason in state.invalid.items():
        raise OutputExistsError(plan.file(unit), f"{reason}; pass --overwrite to replace it")
    return state.missing
