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

3D poses of a camera rig (:class:`~realtime_pose.formats.anipose.Poses3D`,
:func:`poses3d_nwbfile`) follow ndx-pose's layout for triangulated poses:

- ``processing/behavior/PoseEstimation3D`` (``PoseEstimation3D_animal<i>``), a
  ``MultiCameraPoseEstimation``: one ``PoseEstimationSeries`` per keypoint (x, y, z in
  millimetres in the calibration's frame, the score as confidence, each frame set's capture
  time), and one (2D-less) ``PoseEstimation`` per camera view linking that camera's ``Device``
  in ``general/devices`` (a ``CalibratedCamera`` with its intrinsics and pose when the rig's
  calibration is given). ``movement`` reads it with ``pose_estimation_key="PoseEstimation3D"``.
- ``processing/behavior/reprojection_error`` and ``triangulation_views`` (TimeSeries
  ``[T, K]``, ``_animal<i>`` added as above): each point's reprojection error (px) and how many
  views it came from.
- ``acquisition/frame_sets`` (each frame set's index at its time) and, per camera,
  ``acquisition/camera_frames_<camera>``: the capture time of every frame that camera delivered
  (data: the frame set it belongs to), the times a lab aligns to its camera trigger or exposure
  line recorded beside the electrophysiology.

pynwb and ndx-pose are the ``nwb`` extra, imported inside the functions.
"""

from __future__ import annotations

import datetime
import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from realtime_pose import __version__
from realtime_pose.util.safe_write import writing

if TYPE_CHECKING:
    from realtime_pose.calibration import CameraRig
    from realtime_pose.formats.anipose import Poses3D

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
    animal_names: Sequence[str] | None = None,
) -> list:
    """Add ``processing/behavior`` with the skeleton and one PoseEstimation per animal of
    ``poses`` ``[N, A, K, 3]`` (``PoseEstimation_<name>`` with ``animal_names``, else
    ``PoseEstimation_animal<i>``); return the PoseEstimation objects."""
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
        label = animal_names[animal] if animal_names else f"animal{animal}"
        suffix = "" if n_animals == 1 and not animal_names else f"_{label}"
        estimation = PoseEstimation(
            name=f"PoseEstimation{suffix}",
            pose_estimation_series=series,
            description=description + (f" ({label})" if suffix else ""),
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
    animal_names: Sequence[str] | None = None,
):
    """An NWB file for an offline analysis of ``video``: ``poses`` ``[N, K, 3]`` (or
    ``[N, A, K, 3]``, one PoseEstimation per animal, named by ``animal_names``) at ``fps`` from
    time 0; ``session_start_time`` is the video file's modification time (the nearest to the
    recording's start that a bare video tells)."""
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
        animal_names=animal_names,
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
            # one PoseEstimation, or one per animal (PoseEstimation_<name>): counted together
            counts: dict[str, int] = {}
            for key, estimation in behavior.data_interfaces.items():
                if key == "PoseEstimation" or key.startswith("PoseEstimation_"):
                    for name, series in estimation.pose_estimation_series.items():
                        n = len(series.data)
                        counts[name] = n if counts.get(name, n) == n else -1
            if not counts:
                raise KeyError("no PoseEstimation in processing/behavior")
    except (OSError, KeyError, ValueError, TypeError) as exc:
        raise ValueError(f"{path}: not a readable realtime-pose NWB file ({exc})") from exc
    return provenance, counts


POSE_3D_NAME = "PoseEstimation3D"
"""Name of the ``MultiCameraPoseEstimation`` of :func:`poses3d_nwbfile` (``_animal<i>`` added
for several animals); movement: ``from_nwb_file(path, pose_estimation_key=POSE_3D_NAME)``."""
SCORE_DEFINITION_3D = (
    "confidence of the triangulated point, 0-1 (the 2D likelihoods of the views it was "
    "triangulated from); NaN where it was not triangulated"
)


def poses3d_nwbfile(
    poses: Poses3D | Sequence[Poses3D],
    *,
    identifier: str,
    session_start: datetime.datetime,
    t0_ns: int | None = None,
    rig: CameraRig | None = None,
    calibration_file: str | os.PathLike[str] | None = None,
    scorer: str = "realtime-pose",
    description: str | None = None,
    provenance: Mapping[str, Any] | None = None,
):
    """An NWB file of a camera rig's 3D poses (layout in the module docstring).

    Parameters
    ----------
    poses
        One :class:`~realtime_pose.formats.anipose.Poses3D`, or one per animal (the same
        keypoints, frame sets and times).
    identifier
        The file's unique identifier (e.g. the recording's name).
    session_start
        Wall-clock time (timezone-aware) of ``t0_ns``.
    t0_ns
        The monotonic time that is 0 s in the file; default the earliest capture time.
    rig
        The rig's calibration: each camera becomes a ``CalibratedCamera`` (intrinsics,
        distortions, world → camera rotation and translation); else a plain ``Device``.
    calibration_file
        The calibration's file name, named in the cameras' and poses' descriptions.
    scorer, description, provenance
        The scorer (model) name, a description of the session, and JSON-serialisable
        provenance stored in ``general/data_collection``.

    Raises
    ------
    ValueError
        No frame sets, animals that disagree, a name NWB cannot hold (``/``), or a camera
        missing from ``rig``.
    """
    from ndx_pose import (
        CalibratedCamera,
        MultiCameraPoseEstimation,
        PoseEstimation,
        PoseEstimationSeries,
        Skeleton,
        Skeletons,
    )
    from pynwb import TimeSeries
    from pynwb.device import Device

    animals = [poses] if not isinstance(poses, Sequence) else list(poses)
    first = _check_animals(animals)
    cameras = list(first.camera_names or (rig.names if rig is not None else []))
    slashed = [n for n in (*first.keypoints, *cameras) if "/" in n]
    if slashed:
        raise ValueError(f"NWB object names cannot hold '/': {slashed}")
    calib = Path(calibration_file).name if calibration_file is not None else None
    where = f"calibration {calib}" if calib else "the rig's calibration"
    if t0_ns is None:
        t0_ns = int(first.t_ns[0])
        if first.camera_t_ns is not None and np.any(first.camera_t_ns >= 0):
            t0_ns = min(t0_ns, int(first.camera_t_ns[first.camera_t_ns >= 0].min()))
    stored = {
        "realtime_pose_3d": {"t0_ns": int(t0_ns), "cameras": cameras, "calibration": calib},
        **(provenance or {}),
    }
    nwbfile = _nwbfile(
        identifier=identifier,
        description=description or f"3D poses triangulated from {len(cameras)} cameras",
        start=session_start,
        provenance=stored,
    )
    devices = {}
    for name in cameras:
        what = f"camera {name!r} of the rig, calibrated in {where}"
        if rig is None:
            devices[name] = Device(name=name, description=what)
        else:
            try:
                cam = rig.camera(name)
            except KeyError as exc:
                raise ValueError(f"{where}: {exc.args[0]}") from None
            devices[name] = CalibratedCamera(
                name=name,
                description=f"{what}; image {cam.size[0]}x{cam.size[1]} px, OpenCV conventions",
                intrinsic_matrix=cam.matrix.astype(np.float32),
                rotation_matrix=cam.rotation_matrix.astype(np.float32),
                translation_vector=cam.translation.astype(np.float32),
                distortion_coefficients=cam.distortions.astype(np.float32),
            )
        nwbfile.add_device(devices[name])

    seconds = (first.t_ns - t0_ns) / 1e9
    index = {name: i for i, name in enumerate(first.keypoints)}
    edges = np.array([[index[a], index[b]] for a, b in first.skeleton], dtype=np.uint8)
    skeleton = Skeleton(name="skeleton", nodes=list(first.keypoints), edges=edges.reshape(-1, 2))
    behavior = nwbfile.create_processing_module(
        name="behavior", description="3D poses triangulated by realtime-pose"
    )
    behavior.add(Skeletons(skeletons=[skeleton]))
    reference = f"the world frame of {where} (its board's origin and axes); x, y, z in millimetres"
    keypoint_list = ", ".join(first.keypoints)
    for a, animal in enumerate(animals):
        suffix = "" if len(animals) == 1 else f"_animal{a}"
        series = []
        for k, name in enumerate(first.keypoints):
            timing = {"timestamps": series[0]} if series else {"timestamps": seconds}
            series.append(
                PoseEstimationSeries(
                    name=name,
                    description=f"triangulated 3D position of {name}",
                    data=animal.points[:, k],
                    unit="millimeters",
                    reference_frame=reference,
                    confidence=animal.scores[:, k],
                    confidence_definition=SCORE_DEFINITION_3D,
                    **timing,
                )
            )
        views = [
            PoseEstimation(
                name=cam,
                description=f"camera view {cam!r} (its 2D estimates are not stored here)",
                device=devices[cam],
            )
            for cam in cameras
        ]
        behavior.add(
            MultiCameraPoseEstimation(
                name=POSE_3D_NAME + suffix,
                pose_estimation_series=series,
                pose_estimations=views,
                description=(
                    f"keypoints triangulated from the views of {len(cameras)} cameras with "
                    f"{where}, at each frame set's capture time"
                    + (f" (animal {a})" if suffix else "")
                ),
                scorer=scorer,
                source_software="realtime-pose",
                source_software_version=__version__,
                skeleton=skeleton,
            )
        )
        behavior.add(
            TimeSeries(
                name=f"reprojection_error{suffix}",
                description=f"mean reprojection error of each point, columns {keypoint_list}",
                data=animal.errors,
                unit="pixels",
                timestamps=series[0],
            )
        )
        behavior.add(
            TimeSeries(
                name=f"triangulation_views{suffix}",
                description=f"camera views each point came from, columns {keypoint_list}",
                data=animal.n_views,
                unit="camera views",
                timestamps=series[0],
            )
        )
    nwbfile.add_acquisition(
        TimeSeries(
            name="frame_sets",
            description="each frame set's index (the row of every camera's video) at its time",
            data=first.frame_index,
            unit="frame set index",
            timestamps=series[0],
        )
    )
    if first.camera_t_ns is not None:
        for c, name in enumerate(cameras):
            got = first.camera_t_ns[:, c] >= 0
            nwbfile.add_acquisition(
                TimeSeries(
                    name=f"camera_frames_{name}",
                    description=(
                        f"capture time of each frame camera {name!r} delivered; data: the frame "
                        "set it belongs to (align to the camera's trigger or exposure line)"
                    ),
                    data=first.frame_index[got],
                    unit="frame set index",
                    timestamps=(first.camera_t_ns[got, c] - t0_ns) / 1e9,
                )
            )
    return nwbfile


def _check_animals(animals: Sequence[Poses3D]) -> Poses3D:
    if not animals:
        raise ValueError("no poses to write")
    first = animals[0]
    if first.n_frames == 0:
        raise ValueError("no frame sets to write (NWB series need at least one sample)")
    for a, other in enumerate(animals[1:], 1):
        if other.keypoints != first.keypoints or not (
            np.array_equal(other.t_ns, first.t_ns)
            and np.array_equal(other.frame_index, first.frame_index)
        ):
            raise ValueError(
                f"animal {a} has other keypoints, frame sets or times than animal 0: "
                "the animals of one file share them"
            )
    return first


def read_poses3d_nwb(path: str | os.PathLike[str], animal: int | None = None) -> Poses3D:
    """The :class:`~realtime_pose.formats.anipose.Poses3D` that :func:`poses3d_nwbfile` wrote
    (``animal`` ``i`` of several), capture times restored in the original monotonic ns.

    Raises
    ------
    ValueError
        The file holds no such 3D poses (the message says what is missing).
    """
    from pynwb import NWBHDF5IO

    from realtime_pose.formats.anipose import Poses3D

    suffix = "" if animal is None else f"_animal{animal}"
    try:
        with NWBHDF5IO(str(path), "r") as io:
            nwbfile = io.read()
            facts = json.loads(nwbfile.data_collection or "{}")["realtime_pose"]
            facts = facts["realtime_pose_3d"]
            behavior = nwbfile.processing["behavior"]
            estimation = behavior[POSE_3D_NAME + suffix]
            keypoints = list(estimation.skeleton.nodes[:])
            by_name = estimation.pose_estimation_series
            stamps = np.asarray(by_name[keypoints[0]].timestamps[:])
            t0_ns = int(facts["t0_ns"])
            frame_index = np.asarray(nwbfile.acquisition["frame_sets"].data[:])
            cameras = list(facts["cameras"]) or None
            camera_t_ns = None
            if cameras and f"camera_frames_{cameras[0]}" in nwbfile.acquisition:
                row = {int(f): i for i, f in enumerate(frame_index)}
                camera_t_ns = np.full((len(frame_index), len(cameras)), -1, np.int64)
                for c, name in enumerate(cameras):
                    frames = nwbfile.acquisition[f"camera_frames_{name}"]
                    rows = [row[int(f)] for f in frames.data[:]]
                    camera_t_ns[rows, c] = np.round(np.asarray(frames.timestamps[:]) * 1e9) + t0_ns
            nodes = estimation.skeleton.nodes[:]
            poses = Poses3D(
                keypoints=tuple(keypoints),
                points=np.stack([np.asarray(by_name[k].data[:]) for k in keypoints], 1),
                errors=np.asarray(behavior[f"reprojection_error{suffix}"].data[:]),
                n_views=np.asarray(behavior[f"triangulation_views{suffix}"].data[:]),
                scores=np.stack([np.asarray(by_name[k].confidence[:]) for k in keypoints], 1),
                frame_index=frame_index,
                t_ns=np.round(stamps * 1e9).astype(np.int64) + t0_ns,
                camera_names=tuple(cameras) if cameras else None,
                camera_t_ns=camera_t_ns,
                skeleton=tuple((nodes[i], nodes[j]) for i, j in estimation.skeleton.edges[:]),
            )
    except (OSError, KeyError, TypeError) as exc:
        raise ValueError(
            f"{path}: no realtime-pose 3D poses {POSE_3D_NAME + suffix} ({exc!r})"
        ) from exc
    return poses
