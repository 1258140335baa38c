"""Crash-safe pose recording: an append-only log written record by record.

Durability, precisely:

- **Process crash** (exception, ``SIGKILL``, out-of-memory kill): every record whose
  :meth:`PoseRecorder.write_pose` call returned is in the file. Each record goes to the kernel in
  one ``os.write`` on an ``O_APPEND`` descriptor, with no user-space buffer to lose.
- **Power loss or kernel crash**: records reach the disk when a background thread calls
  ``fsync`` (every ``fsync_interval_s``, default 1 s) and on :meth:`PoseRecorder.close`; up to
  that interval of data may be lost.

In both cases the reader (:func:`~realtime_pose.recording.log_format.read_log`) ignores a torn
final record and returns everything before it.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import msgpack
import numpy as np

from realtime_pose.formats.dlc import DEFAULT_SCORER
from realtime_pose.recording.log_format import (
    FORMAT_VERSION,
    MAGIC,
    frame_record,
)
from realtime_pose.util.supervision import SupervisedThread

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RecordingResult:
    """What :meth:`PoseRecorder.stop` produced."""

    log_path: Path
    poses: int
    events: int
    tables: tuple[Path, ...]
    """DeepLabCut ``.h5``/``.csv`` files written from the log (empty if not converted)."""
    conversion_error: str | None = None
    """Why conversion failed (the log itself is complete; convert it later), or ``None``."""

    def as_reply(self) -> dict[str, Any]:
        """What was written, as the ``recording`` event after ``record_stop`` carries it (see
        docs/protocol.md)."""
        reply: dict[str, Any] = {
            "path": str(self.log_path),
            "poses": self.poses,
            "events": self.events,
            "tables": [str(p) for p in self.tables],
        }
        if self.conversion_error is not None:
            reply["conversion_error"] = self.conversion_error
        return reply


class PoseRecorder:
    """Append poses and events to a crash-safe log (see the module docstring for guarantees).

    Parameters
    ----------
    path
        The log file to create (conventionally ``*.poselog``); it must not exist yet.
    keypoints
        Keypoint names, in the order of the ``K`` axis of every pose.
    meta
        Free msgpack-serialisable map stored in the header (model, skeleton, camera, ...).
    fsync_interval_s
        Period of the background ``fsync``; ``0`` syncs after every record (slow, but no
        power-loss window).

    Notes
    -----
    :meth:`write_pose` and :meth:`write_event` never raise on I/O errors (a full disk must not
    stop the live loop): they log the first error, count all of them in :attr:`errors` and
    return ``False``.
    """

    def __init__(
        self,
        path: str | Path,
        keypoints: Sequence[str],
        meta: Mapping[str, Any] | None = None,
        *,
        fsync_interval_s: float = 1.0,
    ) -> None:
        self.path = Path(path)
        self.keypoints = [str(k) for k in keypoints]
        if not self.keypoints:
            raise ValueError("keypoints must name at least one keypoint")
        if fsync_interval_s < 0:
            raise ValueError(f"fsync_interval_s must be >= 0, got {fsync_interval_s}")
        t_start_ns = time.monotonic_ns()
        header = {
            "r": "header",
            "v": FORMAT_VERSION,
            "keypoints": self.keypoints,
            "meta": dict(meta or {}),
            "t_start_ns": t_start_ns,
            "wall_offset_ns": time.time_ns() - t_start_ns,
        }
        try:
            header_bytes = frame_record(msgpack.packb(header, use_bin_type=True))
        except (TypeError, ValueError) as exc:
            raise ValueError(
                f"recording meta must be msgpack-serialisable (str, numbers, lists, maps): {exc}"
            ) from exc
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self._fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND, 0o644)
        except FileExistsError:
            raise FileExistsError(
                f"{self.path} already exists; recordings are never overwritten, choose a new path"
            ) from None
        os.write(self._fd, MAGIC + header_bytes)
        os.fsync(self._fd)
        self._packer = msgpack.Packer(use_bin_type=True)
        self._lock = threading.Lock()  # fsync vs close; writes themselves are atomic appends
        self._fsync_every_record = fsync_interval_s == 0
        self._dirty = False
        self.poses = 0
        """Pose records written."""
        self.events = 0
        """Event records written."""
        self.errors = 0
        """Writes that failed (disk full, ...)."""
        self.last_error: str | None = None
        """The most recent write failure, as text."""
        self._closed = False
        self._stop = threading.Event()
        self._syncer: threading.Thread | None = None
        if not self._fsync_every_record:
            self._syncer = SupervisedThread(
                lambda: self._sync_loop(fsync_interval_s),
                "pose-log-fsync",
                should_stop=self._stop.is_set,
            )
            self._syncer.start()

    def _sync_loop(self, interval_s: float) -> None:
        while not self._stop.wait(interval_s):
            self._sync()

    def _sync(self) -> None:
        with self._lock:
            if self._closed or not self._dirty:
                return
            self._dirty = False
            try:
                os.fsync(self._fd)
            except OSError as exc:
                self._fail(exc)

    def _fail(self, exc: OSError) -> None:
        self.last_error = f"{type(exc).__name__}: {exc}"
        if self.errors == 0:
            log.error(
                "recording to %s failed: %s (further errors are only counted)", self.path, exc
            )
        self.errors += 1

    def _append(self, record: dict[str, Any]) -> bool:
        data = frame_record(self._packer.pack(record))
        try:
            written = os.write(self._fd, data)
        except OSError as exc:
            self._fail(exc)
            return False
        if written != len(data):
            self._fail(OSError(f"short write ({written} of {len(data)} bytes); disk full?"))
            return False
        self._dirty = True
        if self._fsync_every_record:
            self._sync()
        return True

    def write_pose(
        self,
        seq: int,
        frame_index: int,
        t_capture_ns: int,
        keypoints: np.ndarray,
        predicted: tuple[int, np.ndarray] | None = None,
        camera: Mapping[str, int] | None = None,
        track_ids: Sequence[int] | None = None,
    ) -> bool:
        """Append one pose; return whether it was written.

        Parameters
        ----------
        seq
            The pose's sequence number (as published on the stream).
        frame_index
            Camera frame index.
        t_capture_ns
            Capture time, ``time.monotonic_ns()`` clock.
        keypoints
            ``[A, K, 3]`` or ``[K, 3]``: ``x, y, likelihood`` in frame pixels.
        predicted
            ``(t_target_ns, keypoints)`` of the forward prediction, or ``None``.
        camera
            The frame's camera fields (``camera_frame_id``, ``t_camera_ns``, ``t_arrival_ns``,
            ``camera_dropped``; :meth:`~realtime_pose.sources.base.Frame.camera_fields`), stored
            in the record as they are.
        track_ids
            Animals that look alike: the track each animal slot holds (-1: none), stored as
            ``track_ids``.
        """
        if self._closed:
            raise RuntimeError(f"recording {self.path} is closed")
        kp = np.asarray(keypoints, dtype="<f8")
        if kp.ndim == 2:
            kp = kp[None]
        if kp.ndim != 3 or kp.shape[1:] != (len(self.keypoints), 3):
            raise ValueError(
                f"keypoints must have shape [animals, {len(self.keypoints)}, 3], "
                f"got {list(kp.shape)}"
            )
        record: dict[str, Any] = {
            "r": "pose",
            "seq": int(seq),
            "frame_index": int(frame_index),
            "t_capture_ns": int(t_capture_ns),
            "t_record_ns": time.monotonic_ns(),
            "shape": kp.shape[:2],
            "keypoints": kp.tobytes(),
        }
        if camera is not None:
            record.update(camera)
        if track_ids is not None:
            record["track_ids"] = [int(t) for t in track_ids]
        return self._append_pose(record, predicted)

    def write_pose3d(
        self,
        seq: int,
        set_index: int,
        key: int,
        t_capture_ns: int,
        points: np.ndarray,
        views2d: np.ndarray,
        view_frames: np.ndarray,
        view_frame_ids: np.ndarray,
        view_t_capture_ns: np.ndarray,
        missing: Mapping[str, str],
        predicted: tuple[int, np.ndarray] | None = None,
        sync_t_ns: int | None = None,
    ) -> bool:
        """Append one frame set's 3D pose; return whether it was written.

        Parameters
        ----------
        seq, set_index, key, t_capture_ns
            As published on ``pose3d``.
        points
            ``[K, 5]``: ``x, y, z`` (mm), reprojection error (px), views used.
        views2d
            ``[C, K, 3]``: each camera's 2D pose (NaN rows for a missing view).
        view_frames, view_frame_ids, view_t_capture_ns
            ``[C]`` int64: each view's frame index, camera frame id and capture time (``-1``:
            missing, or no camera frame id).
        missing
            Camera name → why its view is missing.
        predicted
            ``(t_target_ns, [K, 3])`` of the 3D forward prediction, or ``None``.
        sync_t_ns
            When the set's sync pulse was sent (electrophysiology alignment), or ``None``.
        """
        if self._closed:
            raise RuntimeError(f"recording {self.path} is closed")
        k = len(self.keypoints)
        pts = np.asarray(points, dtype="<f8")
        views = np.asarray(views2d, dtype="<f8")
        if pts.shape != (k, 5) or views.ndim != 3 or views.shape[1:] != (k, 3):
            raise ValueError(
                f"points must be [{k}, 5] and views2d [cameras, {k}, 3], got "
                f"{list(pts.shape)} and {list(views.shape)}"
            )
        record: dict[str, Any] = {
            "r": "pose3d",
            "seq": int(seq),
            "set_index": int(set_index),
            "key": int(key),
            "t_capture_ns": int(t_capture_ns),
            "t_record_ns": time.monotonic_ns(),
            "cameras": views.shape[0],
            "points": pts.tobytes(),
            "views2d": views.tobytes(),
            "view_frames": np.asarray(view_frames, "<i8").tobytes(),
            "view_frame_ids": np.asarray(view_frame_ids, "<i8").tobytes(),
            "view_t_capture_ns": np.asarray(view_t_capture_ns, "<i8").tobytes(),
            "missing": dict(missing),
        }
        if sync_t_ns is not None:
            record["sync_t_ns"] = int(sync_t_ns)
        return self._append_pose(record, predicted)

    def _append_pose(
        self, record: dict[str, Any], predicted: tuple[int, np.ndarray] | None
    ) -> bool:
        """Append a ``pose`` or ``pose3d`` record with its forward prediction; count it."""
        if predicted is not None:
            record["t_target_ns"] = int(predicted[0])
            record["predicted"] = np.asarray(predicted[1], dtype="<f8").tobytes()
        if self._append(record):
            self.poses += 1
            return True
        return False

    def write_event(
        self, frame_index: int, event: Mapping[str, Any], t_ns: int | None = None
    ) -> bool:
        """Append a rule firing or output action (the map published on ``event``)."""
        if self._closed:
            raise RuntimeError(f"recording {self.path} is closed")
        record = {
            "r": "event",
            "frame_index": int(frame_index),
            "t_ns": time.monotonic_ns() if t_ns is None else int(t_ns),
            "event": dict(event),
        }
        try:
            ok = self._append(record)
        except (TypeError, ValueError) as exc:
            log.error("event not recorded, it is not msgpack-serialisable: %s", exc)
            self.errors += 1
            return False
        if ok:
            self.events += 1
        return ok

    def close(self) -> None:
        """Write the ``close`` record, fsync and close the file. Idempotent."""
        if self._closed:
            return
        self._stop.set()
        if self._syncer is not None:
            self._syncer.join()
        self._append(
            {
                "r": "close",
                "poses": self.poses,
                "events": self.events,
                "t_stop_ns": time.monotonic_ns(),
            }
        )
        with self._lock:
            self._closed = True
            try:
                os.fsync(self._fd)
            except OSError as exc:
                self._fail(exc)
            os.close(self._fd)

    def stop(
        self,
        convert: bool = True,
        output_dir: str | Path | None = None,
        scorer: str = DEFAULT_SCORER,
    ) -> RecordingResult:
        """Close the log and (by default) convert it to DeepLabCut ``.h5``/``.csv`` tables.

        Conversion reads the log back from disk, so the tables hold exactly what was recorded.
        If it fails, the error is logged and returned in ``conversion_error``; the log is
        closed and complete either way (``realtime-pose convert LOG`` retries).
        """
        self.close()
        tables: tuple[Path, ...] = ()
        error = None
        if convert:
            from realtime_pose.recording.convert import convert_log

            try:
                tables = tuple(convert_log(self.path, output_dir, scorer=scorer))
            except Exception as exc:
                error = f"{type(exc).__name__}: {exc}"
                log.error(
                    "converting %s to DeepLabCut tables failed (%s); the log is intact, "
                    "retry with: realtime-pose convert %s",
                    self.path,
                    error,
                    self.path,
                )
        return RecordingResult(self.path, self.poses, self.events, tables, error)

    def __enter__(self) -> PoseRecorder:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
