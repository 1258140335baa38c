"""Pose data as NWB files (pynwb + ndx-pose), for offline analyses and recorded live sessions.

Layout, the one ``movement`` and DANDI read (``movement.io.load_poses.from_nwb_file``):

- ``processing/behavior/PoseEstimation`` (``PoseEstimation_animal<i>`` for several animals): one
  ``PoseEstimationSeries`` per keypoint (x, y in frame pixels, the likelihood as confidence),
  linked to the ``Skeleton`` in ``processing/behavior/Skeletons`` and to the source video, an
  ``ImageSeries`` in ``acquisition`` pointing at the file by a path relative to the NWB file.
- Timing: an analysis has the video's frame rate (``rate``, from time 0 at the first frame); a
  live session has each frame's capture time, in seconds from ``session_start_time`` (the
  recording's start, from the log header's ``t_start_ns + wall_offset_ns``).
- A live session's events (docs/protocol.md, topic ``event``) become ``EventsTable`` objects,
  one per kind (``rule_events``, ``output_events``, ...), and the periods each output was on
  (pulses, ``on`` → ``off``, toggles) a ``TimeIntervals`` table ``output_on``, on the same clock as
  the poses, so they line up with neural data added to the same file.
- ``general/data_collection`` holds the analysis provenance as JSON (bundle, model hash, video,
  frames), which :mod:`realtime_pose.formats.pose_files` reads to decide whether an output is
  complete.

pynwb and ndx-pose are the ``nwb`` extra, imported inside the functions.
"""

from __future__ import annotations

import datetime
import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from realtime_pose import __version__
from realtime_pose.util.safe_write import writing

REFERENCE_FRAME = "(0, 0) is the top-left corner of the video frame; x points right, y down"
CONFIDENCE_DEFINITION = "the network's score-map peak for the keypoint (likelihood, 0-1)"
_CORE_EVENT_KEYS = {"v", "kind", "t_ns", "t_publish_ns", "duration_s"}
_EVENT_DESCRIPTIONS = {
    "rule": "rule firings: a rule fired, released, or was cut by its output's max-on time",
    "output": "actions an output device was asked to perform (on, off, pulse, toggle)",
    "source": "problems and recoveries reported by the camera or video source",
    "processor": "events emitted by pose processors",
}


def require_nwb() -> None:
    """Raise ``ImportError`` with the install hint when pynwb or ndx-pose is missing."""
    try:
        import ndx_pose  # noqa: F401
        import pynwb  # noqa: F401
    except ImportError as exc:
        raise ImportError(
            f"NWB output needs pynwb and ndx-pose ({exc.name} is missing): "
            "pip install 'realtime-pose[nwb]'"
        ) from None


def _nwbfile(identifier: str, description: str, start: datetime.datetime, provenance: Mapping):
    from pynwb import NWBFile
    from pynwb.file import Subject

    return NWBFile(
        session_description=description,
        identifier=identifier,
        session_start_time=start,
        data_collection=json.dumps({"realtime_pose": dict(provenance)}, sort_keys=True),
        subject=Subject(
            subject_id=identifier,
            sex="U",
            description="unknown to realtime-pose: add species, sex and age before sharing",
        ),
        source_script=f"realtime-pose {__version__}",
        source_script_file_name="realtime-pose",
    )


def _video_series(video: Path, nwb_path: Path, frames: int, timing: dict[str, Any]):
    from pynwb.image import ImageSeries

    try:
        link = os.path.relpath(video.resolve(), nwb_path.resolve().parent)
    except ValueError:  # another drive (Windows)
        link = str(video.resolve())
    return ImageSeries(
        name="video",
        description=f"the video the poses were estimated from ({video.name})",
        external_file=[link],
        format="external",
        starting_frame=[0],
        num_samples=frames,
        **timing,
    )


def _add_pose_estimation(
    nwbfile,
    poses: np.ndarray,
    keypoints: Sequence[str],
    skeleton: Sequence[Sequence[str]],
    timing: dict[str, Any],
    *,
    scorer: str,
    description: str,
    source_video=None,
) -> list:
    """Add ``processing/behavior`` with the skeleton and one PoseEstimation per animal of
    ``poses`` ``[N, A, K, 3]``; return the PoseEstimation objects."""
    from ndx_pose import PoseEstimation, PoseEstimationSeries, Skeleton, Skeletons

    index = {name: i for i, name in enumerate(keypoints)}
    edges = np.array([[index[a], index[b]] for a, b in skeleton], dtype=np.uint8).reshape(-1, 2)
    skel = Skeleton(name="skeleton", nodes=list(keypoints), edges=edges)
    behavior = nwbfile.create_processing_module(
        name="behavior", description="poses estimated by realtime-pose"
    )
    behavior.add(Skeletons(skeletons=[skel]))
    n_animals = poses.shape[1]
    estimations = []
    for animal in range(n_animals):
        series = []
        for k, name in enumerate(keypoints):
            xy = np.asarray(poses[:, animal, k, :2], dtype=np.float64)
            # later series share the first one's timestamps (a link, stored once)
            shared = {"timestamps": series[0]} if series and "timestamps" in timing else timing
            series.append(
                PoseEstimationSeries(
                    name=name,
                    description=f"estimated position of {name}",
                    data=xy,
                    unit="pixels",
                    reference_frame=REFERENCE_FRAME,
                    confidence=np.asarray(poses[:, animal, k, 2], dtype=np.float64),
                    confidence_definition=CONFIDENCE_DEFINITION,
                    **shared,
                )
            )
        suffix = "" if n_animals == 1 else f"_animal{animal}"
        estimation = PoseEstimation(
            name=f"PoseEstimation{suffix}",
            pose_estimation_series=series,
            description=description + (f" (animal {animal})" if suffix else ""),
            scorer=scorer,
            source_software="realtime-pose",
            source_software_version=__version__,
            skeleton=skel,
            source_video=source_video,
        )
        behavior.add(estimation)
        estimations.append(estimation)
    return estimations


def analysis_nwbfile(
    poses: np.ndarray,
    keypoints: Sequence[str],
    skeleton: Sequence[Sequence[str]],
    *,
    fps: float,
    video: Path,
    nwb_path: Path,
    scorer: str,
    provenance: Mapping[str, Any],
):
    """An NWB file for an offline analysis of ``video``: ``poses`` ``[N, K, 3]`` (or
    ``[N, A, K, 3]``) at ``fps`` from time 0; ``session_start_time`` is the video file's
    modification time (the nearest to the recording's start that a bare video tells)."""
    poses = np.asarray(poses)
    if poses.ndim == 3:
        poses = poses[:, None]
    start = datetime.datetime.fromtimestamp(video.stat().st_mtime, tz=datetime.timezone.utc)
    nwbfile = _nwbfile(
        identifier=f"{video.stem}_{scorer}",
        description=f"pose estimation of {video.name} by {scorer}",
        start=start,
        provenance=provenance,
    )
    timing = {"rate": float(fps), "starting_time": 0.0}
    source = _video_series(video, nwb_path, len(poses), timing)
    nwbfile.add_acquisition(source)
    _add_pose_estimation(
        nwbfile,
        poses,
        keypoints,
        skeleton,
        timing,
        scorer=scorer,
        description=f"realtime-pose offline analysis of {video.name}",
        source_video=source,
    )
    return nwbfile


def session_nwbfile(pose_log, nwb_path: Path, video: Path | None = None):
    """An NWB file for a recorded live session (a :class:`~realtime_pose.recording.PoseLog`):
    poses at their frames' capture times, the rules' and outputs' events, the outputs' on
    periods, and the session video (``video``) when it was recorded."""
    header = pose_log.header
    meta = header.get("meta", {}) or {}
    t0_ns = int(header["t_start_ns"])
    start = datetime.datetime.fromtimestamp(
        (t0_ns + int(header.get("wall_offset_ns", 0))) / 1e9, tz=datetime.timezone.utc
    )
    model = meta.get("model", {}) or {}
    scorer = f"realtime-pose_{model.get('name', 'model')}"
    provenance = {"log": pose_log.path.name, "poses": len(pose_log.poses), "model": model}
    nwbfile = _nwbfile(
        identifier=pose_log.path.stem,
        description=f"closed-loop session recorded by realtime-pose ({pose_log.path.name})",
        start=start,
        provenance=provenance,
    )
    timestamps = (np.asarray(pose_log.t_capture_ns, dtype=np.int64) - t0_ns) / 1e9
    timing = {"timestamps": timestamps}
    source = None
    if video is not None and video.is_file() and len(timestamps):
        source = _video_series(video, nwb_path, len(timestamps), {"timestamps": timestamps})
        nwbfile.add_acquisition(source)
    if len(pose_log.poses):
        _add_pose_estimation(
            nwbfile,
            pose_log.poses,
            pose_log.keypoints,
            meta.get("skeleton", []),
            timing,
            scorer=scorer,
            description="realtime-pose live session: each pose at its frame's capture time",
            source_video=source,
        )
    end_s = float(timestamps[-1]) if len(timestamps) else 0.0
    for table in events_tables(pose_log.events, t0_ns):
        nwbfile.add_events_table(table)
    intervals = output_intervals(pose_log.events, t0_ns, end_s)
    if intervals is not None:
        nwbfile.add_time_intervals(intervals)
    return nwbfile


def _column_values(values: list[Any]) -> list[Any]:
    """One column of event fields: numbers as floats (None → NaN), anything else as text."""
    if all(v is None or (isinstance(v, int | float) and not isinstance(v, bool)) for v in values):
        return [np.nan if v is None else float(v) for v in values]
    return ["" if v is None else v if isinstance(v, str) else json.dumps(v) for v in values]


def events_tables(events: Sequence[Mapping[str, Any]], t0_ns: int) -> list:
    """One ``EventsTable`` per event kind (``<kind>_events``), timestamps in seconds from
    ``t0_ns``; an output action's ``duration_s`` is the row's duration (NaN when none); every
    other field of the event becomes a column (``name`` as ``rule``, ``output`` or
    ``<kind>_name``)."""
    from pynwb.event import EventsTable

    by_kind: dict[str, list[Mapping[str, Any]]] = {}
    for record in events:
        event = record["event"]
        by_kind.setdefault(str(event.get("kind", "event")), []).append(event)
    tables = []
    for kind, rows in sorted(by_kind.items()):
        table = EventsTable(
            name=f"{kind}_events",
            description=_EVENT_DESCRIPTIONS.get(kind, f"'{kind}' events of the session"),
            source_description="realtime-pose live loop (docs/protocol.md, topic 'event')",
        )
        # 'name' is taken by the table itself: the rule's or output's name gets its kind's column
        named = kind if kind in ("rule", "output") else f"{kind}_name"
        rows = [{(named if k == "name" else k): v for k, v in row.items()} for row in rows]
        keys = sorted({k for row in rows for k in row} - _CORE_EVENT_KEYS)
        columns = {k: _column_values([row.get(k) for row in rows]) for k in keys}
        for key in keys:
            what = f"the {kind}'s name" if key == named else f"the event's '{key}' field"
            table.add_column(name=key, description=what)
        for i, row in enumerate(rows):
            duration = row.get("duration_s")
            table.add_event(
                timestamp=(int(row["t_ns"]) - t0_ns) / 1e9,
                duration=float("nan") if duration is None else float(duration),
                **{k: columns[k][i] for k in keys},
            )
        tables.append(table)
    return tables


def output_intervals(events: Sequence[Mapping[str, Any]], t0_ns: int, end_s: float):
    """``TimeIntervals`` ``output_on``: when each output was on (a pulse for its duration,
    ``on`` until ``off``, toggles alternating; still on at the end: until ``end_s``), or
    ``None`` when no output acted."""
    from pynwb.epoch import TimeIntervals

    rows: list[tuple[float, float, str, str, str]] = []
    opened: dict[str, tuple[float, str]] = {}
    for record in events:
        event = record["event"]
        if event.get("kind") != "output":
            continue
        name, action = str(event.get("name")), str(event.get("action"))
        t = (int(event["t_ns"]) - t0_ns) / 1e9
        rule = str(event.get("rule") or "")
        if action == "pulse" and event.get("duration_s") is not None:
            rows.append((t, t + float(event["duration_s"]), name, rule, "pulse"))
        elif action == "on" or (action == "toggle" and name not in opened):
            opened.setdefault(name, (t, rule))
        elif action in ("off", "toggle") and name in opened:
            t_on, rule_on = opened.pop(name)
            rows.append((t_on, t, name, rule_on, "on/off"))
    for name, (t_on, rule_on) in opened.items():
        rows.append((t_on, max(end_s, t_on), name, rule_on, "on until the recording ended"))
    if not rows:
        return None
    table = TimeIntervals(name="output_on", description="periods during which each output was on")
    table.add_column(name="output", description="output device name")
    table.add_column(name="rule", description="rule whose action switched it on")
    table.add_column(name="how", description="pulse, on/off, or on until the recording ended")
    for start, stop, name, rule, how in sorted(rows):
        table.add_interval(start_time=start, stop_time=stop, output=name, rule=rule, how=how)
    return table


def write_nwb(nwbfile, path: str | os.PathLike[str], overwrite: bool = False) -> Path:
    """Write ``nwbfile`` to ``path`` through :mod:`realtime_pose.util.safe_write` (temporary name,
    renamed when complete; an existing file only with ``overwrite``)."""
    from pynwb import NWBHDF5IO

    path = Path(path)
    with writing(path, overwrite) as tmp, NWBHDF5IO(str(tmp), "w") as io:
        io.write(nwbfile)
    return path


def read_nwb_analysis(path: str | os.PathLike[str]) -> tuple[dict[str, Any], dict[str, int]]:
    """The provenance stored by :func:`analysis_nwbfile` and the number of samples of every
    PoseEstimationSeries (``{keypoint: n}``) of the first animal.

    Raises
    ------
    ValueError
        The file is not an NWB file of realtime-pose poses (the message says why).
    """
    from pynwb import NWBHDF5IO

    try:
        with NWBHDF5IO(str(path), "r") as io:
            nwbfile = io.read()
            provenance = json.loads(nwbfile.data_collection or "{}").get("realtime_pose", {})
            behavior = nwbfile.processing["behavior"]
            estimation = behavior["PoseEstimation"]
            counts = {
                name: len(series.data) for name, series in estimation.pose_estimation_series.items()
            }
    except (OSError, KeyError, ValueError, TypeError) as exc:
        raise ValueError(f"{path}: not a readable realtime-pose NWB file ({exc})") from exc
    return provenance, counts
