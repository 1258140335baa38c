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
    events
        Event records in log order, each ``{"frame_index", "t_ns", "event"}``.
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
    events: list[dict[str, Any]] = field(default_factory=list)
    closed_cleanly: bool = False
    torn_bytes: int = 0
    bad_records: int = 0

    @property
    def keypoints(self) -> list[str]:
        """Keypoint names from the header."""
        return list(self.header["keypoints"])


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
    known = sum(r.get("r") in ("close", "header") for r in records[1:])
    bad = len(records) - 1 - len(poses) - len(events) - known
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
        events=events,
        closed_cleanly=records[-1].get("r") == "close",
        torn_bytes=torn,
        bad_records=bad,
    )


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
    return True


def _usable_event(record: dict[str, Any]) -> bool:
    return (
        _int64(record.get("frame_index"))
        and _int64(record.get("t_ns"))
        and isinstance(record.get("event"), dict)
    )
