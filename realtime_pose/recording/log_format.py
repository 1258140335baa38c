"""The pose log's on-disk format: framing, record types and the reader.

A log is an 8-byte magic ``b"RTPLOG1\\n"`` followed by records. Each record is framed as::

    uint32 little-endian  length of the payload in bytes
    uint32 little-endian  CRC-32 (zlib) of the payload
    payload               one msgpack map whose "r" field names the record type

Record types:

``header`` (first record)
    ``v`` (format version), ``keypoints`` (names), ``meta`` (free map: model, skeleton, ...),
    ``t_start_ns`` (``time.monotonic_ns()``), ``wall_offset_ns`` (``time.time_ns()`` minus it).
``pose``
    ``seq``, ``frame_index``, ``t_capture_ns``, ``t_record_ns``, ``shape`` ``[A, K]``,
    ``keypoints`` (``A*K*3`` little-endian float64 bytes: ``x, y, likelihood`` per keypoint),
    and, when prediction is on, ``t_target_ns`` and ``predicted`` (same layout); from a
    machine-vision camera also ``camera_frame_id``, ``t_camera_ns`` (the camera's raw timestamp),
    ``t_arrival_ns`` (host time the frame reached the host) and ``camera_dropped`` (frames the
    camera lost so far). ``t_capture_ns`` is then the camera time mapped to the host clock.
``pose3d`` (a camera-group session: one per frame set)
    ``seq``, ``set_index``, ``key`` (the matched frame id or capture time), ``t_capture_ns``
    (the set's earliest view), ``t_record_ns``,
    ``cameras`` (C), ``points`` (``K*5`` float64: ``x, y, z`` mm, reprojection error px, views
    used), ``views2d`` (``C*K*3`` float64: each view's 2D pose, NaN where missing),
    ``view_frames``, ``view_frame_ids`` and ``view_t_capture_ns`` (``C`` int64 each: frame
    index, camera frame id, capture time; ``-1`` where missing),
    ``missing`` (camera → cause), and optionally ``t_target_ns`` + ``predicted`` (``K*3``) and
    ``sync_t_ns`` (when the set's electrophysiology sync pulse was sent). The header's
    ``meta`` names the cameras (``cameras``) and the calibration (``calibration``).
``event``
    ``frame_index``, ``t_ns`` and ``event`` (the map published on the ``event`` topic).
``close`` (last record of a log closed cleanly)
    ``poses``, ``events``, ``t_stop_ns``.

A process killed mid-write leaves at most one torn record at the end; the reader detects it by
its length or CRC, ignores it and reports how many bytes it ignored.
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import msgpack
import numpy as np

MAGIC = b"RTPLOG1\n"
FORMAT_VERSION = 1
FRAME = struct.Struct("<II")
MAX_RECORD_BYTES = 64 * 1024 * 1024
"""Sanity bound: a length field above this means corruption, not a real record."""
LOG_SUFFIX = ".poselog"


class LogFormatError(ValueError):
    """A file that is not a pose log, or whose header is unreadable."""


def frame_record(payload: bytes) -> bytes:
    """Length- and CRC-prefix one msgpack payload."""
    return FRAME.pack(len(payload), zlib.crc32(payload)) + payload


@dataclass
class PoseLog:
    """Everything read back from a pose log.

    Attributes
    ----------
    header
        The header record (``keypoints``, ``meta``, ``t_start_ns``, ``wall_offset_ns``, ...).
    poses
        ``[N, A, K, 3]`` float64: ``x, y, likelihood`` (NaN where an animal was absent).
    predicted
        ``[N, A, K, 3]`` forward-predicted poses (NaN rows where none), or ``None`` if the log
        holds no prediction at all.
    t_target_ns
        ``[N]`` int64 target times of the predictions (``-1`` where none), or ``None``.
    frame_indices, seq, t_capture_ns, t_record_ns
        ``[N]`` int64 per pose.
    camera_frame_id, t_camera_ns, t_arrival_ns, camera_dropped
        ``[N]`` int64 per pose from a machine-vision camera (``-1`` where a record has none;
        ``camera_dropped`` 0). Gaps in ``camera_frame_id`` are frames the camera lost; gaps in
        ``frame_indices`` frames the newest-frame grabber dropped.
    track_ids
        ``[N, S]`` int64: animals that look alike, the track each pose slot held (``-1``: empty
        slot, or a record without track ids); ``None`` when no record has any.
    events
        Event records in log order, each ``{"frame_index", "t_ns", "event"}``.
    sets
        The ``pose3d`` records of a camera-group session (:class:`FrameSets`), else ``None``.
    closed_cleanly
        Whether the log ends with a ``close`` record (``False`` after a crash).
    torn_bytes
        Bytes at the end that did not form a valid record (ignored).
    bad_records
        Well-framed records whose content no recorder writes (skipped, counted here).
    """

    path: Path
    header: dict[str, Any]
    poses: np.ndarray
    predicted: np.ndarray | None
    t_target_ns: np.ndarray | None
    frame_indices: np.ndarray
    seq: np.ndarray
    t_capture_ns: np.ndarray
    t_record_ns: np.ndarray
    camera_frame_id: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    t_camera_ns: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    t_arrival_ns: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    camera_dropped: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    track_ids: np.ndarray | None = None
    events: list[dict[str, Any]] = field(default_factory=list)
    sets: FrameSets | None = None
    closed_cleanly: bool = False
    torn_bytes: int = 0
    bad_records: int = 0

    @property
    def keypoints(self) -> list[str]:
        """Keypoint names from the header."""
        return list(self.header["keypoints"])


@dataclass
class FrameSets:
    """The 3D poses of a camera-group recording, one row per frame set.

    Attributes
    ----------
    points
        ``[N, K, 5]``: ``x, y, z`` (mm), reprojection error (px), views used.
    views2d
        ``[N, C, K, 3]``: each camera's 2D pose (NaN where the view was missing).
    view_frames, view_frame_ids, view_t_capture_ns
        ``[N, C]`` int64: frame index, camera frame id, capture time (``-1`` where the view
        was missing).
    set_index, key, seq, t_capture_ns, t_record_ns
        ``[N]`` int64.
    sync_t_ns
        ``[N]`` int64: when each set's sync pulse was sent (``-1``: none).
    predicted
        ``[N, K, 3]`` (NaN where none), or ``None`` without prediction.
    missing
        Per set, camera → cause of a missing view.
    """

    points: np.ndarray
    views2d: np.ndarray
    view_frames: np.ndarray
    view_frame_ids: np.ndarray
    view_t_capture_ns: np.ndarray
    set_index: np.ndarray
    key: np.ndarray
    seq: np.ndarray
    t_capture_ns: np.ndarray
    t_record_ns: np.ndarray
    sync_t_ns: np.ndarray
    predicted: np.ndarray | None
    missing: list[dict[str, str]]


def _usable_pose3d(record: dict[str, Any], k: int) -> bool:
    ints = ("seq", "set_index", "key", "t_capture_ns", "t_record_ns", "cameras")
    if not all(_int64(record.get(name)) for name in ints):
        return False
    c = record["cameras"]
    sizes = {
        "points": k * 5 * 8,
        "views2d": c * k * 3 * 8,
        "view_frames": c * 8,
        "view_frame_ids": c * 8,
        "view_t_capture_ns": c * 8,
    }
    if not 1 <= c <= 64 or not isinstance(record.get("missing"), dict):
        return False
    if "predicted" in record and not (
        isinstance(record["predicted"], bytes) and len(record["predicted"]) == k * 24
    ):
        return False
    return all(isinstance(record.get(n), bytes) and len(record[n]) == b for n, b in sizes.items())


def _frame_sets(records: list[dict[str, Any]], k: int) -> FrameSets | None:
    if not records:
        return None
    c = max(int(r["cameras"]) for r in records)
    records = [r for r in records if r["cameras"] == c]
    n = len(records)

    def floats(name: str, shape: tuple[int, ...]) -> np.ndarray:
        return np.stack([np.frombuffer(r[name], "<f8").reshape(shape) for r in records])

    def ints(name: str, default: int | None = None) -> np.ndarray:
        values = (r[name] if default is None else r.get(name, default) for r in records)
        return np.fromiter(values, np.int64, count=n)

    predicted = None
    if any("predicted" in r for r in records):
        predicted = np.full((n, k, 3), np.nan)
        for i, r in enumerate(records):
            if "predicted" in r:
                predicted[i] = np.frombuffer(r["predicted"], "<f8").reshape(k, 3)
    return FrameSets(
        points=floats("points", (k, 5)),
        views2d=floats("views2d", (c, k, 3)),
        view_frames=np.stack([np.frombuffer(r["view_frames"], "<i8") for r in records]),
        view_frame_ids=np.stack([np.frombuffer(r["view_frame_ids"], "<i8") for r in records]),
        view_t_capture_ns=np.stack([np.frombuffer(r["view_t_capture_ns"], "<i8") for r in records]),
        set_index=ints("set_index"),
        key=ints("key"),
        seq=ints("seq"),
        t_capture_ns=ints("t_capture_ns"),
        t_record_ns=ints("t_record_ns"),
        sync_t_ns=ints("sync_t_ns", -1),
        predicted=predicted,
        missing=[{str(a): str(b) for a, b in r["missing"].items()} for r in records],
    )


def _iter_records(data: bytes) -> tuple[list[dict[str, Any]], int]:
    """Parse records after the magic; return them and the count of trailing unusable bytes."""
    records: list[dict[str, Any]] = []
    offset = len(MAGIC)
    end = len(data)
    while offset < end:
        if end - offset < FRAME.size:
            break
        length, crc = FRAME.unpack_from(data, offset)
        start = offset + FRAME.size
        if length > MAX_RECORD_BYTES or start + length > end:
            break
        payload = data[start : start + length]
        if zlib.crc32(payload) != crc:
            break
        try:
            record = msgpack.unpackb(payload, raw=False)
        except (ValueError, msgpack.ExtraData, msgpack.FormatError, msgpack.StackError):
            break
        if not isinstance(record, dict):
            break
        records.append(record)
        offset = start + length
    return records, end - offset


def read_log(path: str | Path) -> PoseLog:
    """Read a pose log, tolerating a torn final record.

    Parameters
    ----------
    path
        A ``.poselog`` file written by :class:`~realtime_pose.recording.PoseRecorder`.

    Raises
    ------
    LogFormatError
        If the file is not a pose log or its header record is missing.
    """
    path = Path(path)
    data = path.read_bytes()
    if not data.startswith(MAGIC):
        raise LogFormatError(
            f"{path} is not a realtime-pose log (it does not start with {MAGIC!r})"
        )
    records, torn = _iter_records(data)
    if not records or records[0].get("r") != "header":
        raise LogFormatError(f"{path} has no readable header record; the file is damaged")
    header = records[0]
    names = header.get("keypoints")
    if not isinstance(names, list) or not names or not all(isinstance(k, str) for k in names):
        raise LogFormatError(f"{path}: the header names no keypoints; the file is damaged")
    n_keypoints = len(names)
    poses = [r for r in records[1:] if r.get("r") == "pose" and _usable_pose(r, n_keypoints)]
    events = [
        {"frame_index": r["frame_index"], "t_ns": r["t_ns"], "event": r["event"]}
        for r in records[1:]
        if r.get("r") == "event" and _usable_event(r)
    ]
    sets = [r for r in records[1:] if r.get("r") == "pose3d" and _usable_pose3d(r, n_keypoints)]
    known = sum(r.get("r") in ("close", "header") for r in records[1:])
    bad = len(records) - 1 - len(poses) - len(events) - len(sets) - known
    n = len(poses)
    n_animals = max((int(r["shape"][0]) for r in poses), default=1)
    out = np.full((n, n_animals, n_keypoints, 3), np.nan)
    any_predicted = any("predicted" in r for r in poses)
    predicted = np.full_like(out, np.nan) if any_predicted else None
    t_target = np.full(n, -1, dtype=np.int64) if any_predicted else None
    for i, r in enumerate(poses):
        a, k = r["shape"]
        out[i, :a] = np.frombuffer(r["keypoints"], dtype="<f8").reshape(a, k, 3)
        if predicted is not None and "predicted" in r:
            pa = len(r["predicted"]) // (k * 3 * 8)
            predicted[i, :pa] = np.frombuffer(r["predicted"], dtype="<f8").reshape(pa, k, 3)
            t_target[i] = r["t_target_ns"]  # type: ignore[index]

    def column(name: str, missing: int | None = None) -> np.ndarray:
        values = (r[name] if missing is None else r.get(name, missing) for r in poses)
        return np.fromiter(values, dtype=np.int64, count=n)

    return PoseLog(
        path=path,
        header=header,
        poses=out,
        predicted=predicted,
        t_target_ns=t_target,
        frame_indices=column("frame_index"),
        seq=column("seq"),
        t_capture_ns=column("t_capture_ns"),
        t_record_ns=column("t_record_ns"),
        camera_frame_id=column("camera_frame_id", -1),
        t_camera_ns=column("t_camera_ns", -1),
        t_arrival_ns=column("t_arrival_ns", -1),
        camera_dropped=column("camera_dropped", 0),
        track_ids=_track_ids(poses),
        events=events,
        sets=_frame_sets(sets, n_keypoints),
        closed_cleanly=records[-1].get("r") == "close",
        torn_bytes=torn,
        bad_records=bad,
    )


def _track_ids(poses: list[dict[str, Any]]) -> np.ndarray | None:
    """``[N, S]`` slot track ids of the pose records (``-1`` where a record has none)."""
    slots = max((len(r["track_ids"]) for r in poses if "track_ids" in r), default=0)
    if not slots:
        return None
    out = np.full((len(poses), slots), -1, dtype=np.int64)
    for i, r in enumerate(poses):
        ids = r.get("track_ids")
        if ids:
            out[i, : len(ids)] = ids
    return out


def _int64(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and -(2**63) <= value < 2**63


def _usable_pose(record: dict[str, Any], n_keypoints: int) -> bool:
    """Whether a pose record holds what :class:`~realtime_pose.recording.PoseRecorder` writes."""
    if not all(
        _int64(record.get(k)) for k in ("seq", "frame_index", "t_capture_ns", "t_record_ns")
    ):
        return False
    shape = record.get("shape")
    if not (isinstance(shape, list | tuple) and len(shape) == 2 and all(map(_int64, shape))):
        return False
    animals, k = shape
    if k != n_keypoints or not 1 <= animals <= 10_000:
        return False
    keypoints = record.get("keypoints")
    if not isinstance(keypoints, bytes) or len(keypoints) != animals * k * 24:
        return False
    if "predicted" in record:
        predicted = record["predicted"]
        if not isinstance(predicted, bytes) or not _int64(record.get("t_target_ns")):
            return False
        if len(predicted) % (k * 24) or len(predicted) > animals * k * 24:
            return False
    if "track_ids" in record:
        ids = record["track_ids"]
        if not (isinstance(ids, list) and len(ids) <= 10_000 and all(map(_int64, ids))):
            return False
    return True


def _usable_event(record: dict[str, Any]) -> bool:
    return (
        _int64(record.get("frame_index"))
        and _int64(record.get("t_ns"))
        and isinstance(record.get("event"), dict)
    )
