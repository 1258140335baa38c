"""Several cameras, one experiment: frames from a camera group assembled into frame sets.

Each camera keeps its own :class:`~realtime_pose.live.grabber.Grabber` (its thread, its stall
watchdog, its reopen-with-backoff); all of them share one wake-up event, so the loop thread waits
for any of them and assembles, in :meth:`FrameSetGrabber.get`, the **newest complete set**: one
frame per camera whose match keys agree.

Match keys, by ``sync.mode``:

- ``frame_id``: the camera's own frame counter (GenICam block id; ``frame_index`` for a source
  without one). Right for cameras on one hardware trigger line (or one software trigger clock)
  whose counters started together: frame *n* of every camera answers trigger *n*.
- ``timestamp``: the capture time (``t_capture_ns``, on the host's monotonic clock: the camera
  clock mapped by :mod:`realtime_pose.sources.camera_clock` where the camera has one); frames
  within ``tolerance_ms`` of each other form a set. Right for free-running cameras.

A set that misses a view is still handed out with the views it has once the view can no
longer come (its camera moved past that key, stalled or ended) or ``wait_ms`` after the set's
first view arrived; the missing camera is counted by cause (``late``: nothing within
``wait_ms``; ``skipped``: the camera delivered a later frame instead, a frame lost on the camera
or in its grabber's mailbox; ``stalled``: the camera is stalled or being reopened; ``ended``:
its stream ended). Older sets overtaken by a newer complete one are ``superseded`` (the loop was
busy), as a single camera's newest-frame mailbox drops what the loop had no time for.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from realtime_pose.live.grabber import Grabber, StatusCallback
from realtime_pose.sources.base import Frame, FrameSource

SyncMode = Literal["frame_id", "timestamp"]
MISSING_CAUSES = ("late", "skipped", "stalled", "ended")
_MAX_PENDING = 16  # frames kept per camera while their set is not complete


@dataclass(slots=True)
class FrameSet:
    """One frame per camera (``None`` where the view is missing), matched by ``key``.

    Attributes
    ----------
    index
        Counts the sets handed out (0, 1, ...).
    key
        The matched frame id (``frame_id`` mode) or capture time (``timestamp`` mode) of the
        set's earliest view.
    frames
        Per camera, in the group's order.
    t_capture_ns
        The earliest capture time among its views (latencies count from it).
    missing
        Camera name → cause, for the views it lacks (:data:`MISSING_CAUSES`).
    t_requested_ns
        When the loop asked for it (:meth:`FrameSetGrabber.get` was called): with its last
        view's arrival, where the group's own assembly time starts.
    """

    index: int
    key: int
    frames: list[Frame | None]
    t_capture_ns: int
    missing: dict[str, str] = field(default_factory=dict)
    t_requested_ns: int = 0

    @property
    def complete(self) -> bool:
        """Every camera's view is there."""
        return not self.missing


@dataclass(slots=True)
class _Pending:
    frame: Frame
    key: int
    t_taken_ns: int


def match_key(mode: SyncMode) -> Callable[[Frame], int]:
    """The function giving a frame's match key in ``mode``."""
    if mode == "frame_id":
        return lambda f: f.camera_frame_id if f.camera_frame_id >= 0 else f.frame_index
    if mode == "timestamp":
        return lambda f: f.t_capture_ns
    raise ValueError(f"sync mode must be 'frame_id' or 'timestamp', got {mode!r}")


class FrameSetGrabber:
    """Reads a camera group and hands out frame sets (see the module notes).

    Parameters
    ----------
    sources
        The cameras, closed; the grabbers open and close them.
    names
        One name per source (the calibration's camera names), in the same order.
    mode, tolerance_ms
        How views are matched; ``tolerance_ms`` applies to ``timestamp`` mode.
    wait_ms
        How long a set waits for a late view after its first view arrived.
    stall_timeout_s, on_status, lockstep
        Passed to each camera's :class:`~realtime_pose.live.grabber.Grabber` (``on_status``
        receives each status dict with ``camera`` added).
    """

    def __init__(
        self,
        sources: Sequence[FrameSource],
        names: Sequence[str],
        mode: SyncMode = "frame_id",
        tolerance_ms: float = 2.0,
        wait_ms: float = 5.0,
        stall_timeout_s: float = 2.0,
        on_status: StatusCallback | None = None,
        lockstep: bool | None = None,
    ) -> None:
        if len(sources) != len(names) or not sources:
            raise ValueError("give one name per source, and at least one source")
        if len(set(names)) != len(names):
            raise ValueError(f"camera names must be unique, got {list(names)}")
        if tolerance_ms < 0 or wait_ms < 0:
            raise ValueError("tolerance_ms and wait_ms must not be negative")
        self.names = list(names)
        self.mode: SyncMode = mode
        self._key = match_key(mode)
        self._tolerance = round(tolerance_ms * 1e6) if mode == "timestamp" else 0
        self._wait_ns = round(wait_ms * 1e6)
        self._wakeup = threading.Event()
        self.grabbers = [
            Grabber(
                source,
                stall_timeout_s=stall_timeout_s,
                on_status=_tagged(on_status, name),
                lockstep=lockstep,
                wakeup=self._wakeup,
            )
            for source, name in zip(sources, names, strict=True)
        ]
        self._pending: list[list[_Pending]] = [[] for _ in sources]
        self._last_key: int | None = None
        self._next_index = 0
        self.counts = {"sets": 0, "complete": 0, "incomplete": 0, "superseded": 0, "gaps": 0}
        """``gaps`` (``frame_id`` mode): frame ids between two sets handed out that no camera's
        view reached the loop for (dropped in every camera's mailbox while the loop was busy)."""
        self.missing = {name: dict.fromkeys(MISSING_CAUSES, 0) for name in self.names}
        self.stale_frames = dict.fromkeys(self.names, 0)
        """Frames that came after their set was handed out (or overflowed the pending list)."""

    # -- the loop's side -------------------------------------------------------------------
    def start(self) -> None:
        """Open every camera and start reading; a camera that cannot be opened stops the others
        and raises (naming it)."""
        started = []
        try:
            for grabber in self.grabbers:
                grabber.start()
                started.append(grabber)
        except BaseException:
            for grabber in started:
                grabber.stop()
            raise

    def stop(self) -> None:
        """Stop every camera's grabber."""
        for grabber in self.grabbers:
            grabber.stop()

    def get(self, timeout_s: float | None = None, poll_s: float | None = None) -> FrameSet | None:
        """The newest frame set ready, waiting up to ``timeout_s``; ``None`` on timeout or
        once every camera ended and nothing is left. ``poll_s``: wake at least this often
        while waiting (see ``RunConfig.idle_poll_us``)."""
        t_requested = time.monotonic_ns()
        deadline = None if timeout_s is None else t_requested + round(timeout_s * 1e9)
        while True:
            self._wakeup.clear()
            now = self._drain()
            frame_set, due_ns = self._assemble(now)
            if frame_set is not None:
                frame_set.t_requested_ns = t_requested
                return frame_set
            if self.ended or (deadline is not None and now >= deadline):
                return None
            targets = [t for t in (due_ns, deadline) if t is not None]
            wait_s = max(0.0, (min(targets) - now) / 1e9) if targets else None
            if poll_s is not None:
                wait_s = poll_s if wait_s is None else min(wait_s, poll_s)
            self._wakeup.wait(wait_s)

    @property
    def ended(self) -> bool:
        """Every camera's stream ended and every frame was handed out."""
        return all(g.ended for g in self.grabbers) and not any(self._pending)

    def summary(self) -> dict[str, Any]:
        """The group's own counters: sets by completeness, missing views per camera by cause,
        frames that came too late (the status message's ``frame_sets``)."""
        return {
            **self.counts,
            "missing": {name: dict(causes) for name, causes in self.missing.items()},
            "stale_frames": dict(self.stale_frames),
        }

    def stats(self) -> dict[str, Any]:
        """:meth:`summary` and each camera's grabber counters (``cameras``)."""
        cameras = {name: g.stats() for name, g in zip(self.names, self.grabbers, strict=True)}
        return {**self.summary(), "cameras": cameras}

    # -- assembly --------------------------------------------------------------------------
    def _drain(self) -> int:
        """Move every grabber's newest frame into the pending lists; return the time."""
        now = time.monotonic_ns()
        for c, grabber in enumerate(self.grabbers):
            frame = grabber.take()
            if frame is None:
                continue
            key = self._key(frame)
            if self._last_key is not None and key <= self._last_key + self._tolerance:
                self.stale_frames[self.names[c]] += 1
                continue
            pending = self._pending[c]
            pending.append(_Pending(frame, key, now))
            if len(pending) > _MAX_PENDING:
                del pending[0]
                self.stale_frames[self.names[c]] += 1
        return now

    def _views_at(self, key: int) -> list[_Pending | None]:
        """Per camera, its pending frame closest to ``key`` within the tolerance."""
        views: list[_Pending | None] = []
        for pending in self._pending:
            best = None
            for p in pending:
                d = abs(p.key - key)
                if d <= self._tolerance and (best is None or d < abs(best.key - key)):
                    best = p
            views.append(best)
        return views

    def _assemble(self, now: int) -> tuple[FrameSet | None, int | None]:
        """The set to hand out now, or ``None`` and when the oldest pending set falls due."""
        keys = sorted({p.key for pending in self._pending for p in pending}, reverse=True)
        if not keys:
            return None, None
        for key in keys:  # newest first: the newest complete set wins
            views = self._views_at(key)
            if all(v is not None for v in views):
                return self._hand_out(key, views, now), None
        oldest = keys[-1]
        views = self._views_at(oldest)
        due = min(v.t_taken_ns for v in views if v is not None) + self._wait_ns
        causes = {}
        for c, view in enumerate(views):
            if view is None:
                causes[c] = self._why_missing(c, oldest)
        if now >= due or all(cause != "late" for cause in causes.values()):
            return self._hand_out(oldest, views, now, causes), None
        return None, due

    def _why_missing(self, c: int, key: int) -> str:
        grabber = self.grabbers[c]
        if grabber.ended:
            return "ended"
        if any(p.key > key + self._tolerance for p in self._pending[c]):
            return "skipped"
        if grabber.stats()["state"] in ("stalled", "reopening"):
            return "stalled"
        return "late"

    def _hand_out(
        self,
        key: int,
        views: list[_Pending | None],
        now: int,
        causes: dict[int, str] | None = None,
    ) -> FrameSet:
        superseded = {
            p.key for pending in self._pending for p in pending if p.key < key - self._tolerance
        }
        if superseded:  # older sets never handed out: count each once (clusters in ts mode)
            self.counts["superseded"] += _clusters(sorted(superseded), self._tolerance)
        limit = key + self._tolerance
        for pending in self._pending:
            pending[:] = [p for p in pending if p.key > limit]
        if self.mode == "frame_id" and self._last_key is not None:
            self.counts["gaps"] += max(0, key - self._last_key - 1 - len(superseded))
        self._last_key = key
        missing = {}
        if causes:
            for c, cause in causes.items():
                missing[self.names[c]] = cause
                self.missing[self.names[c]][cause] += 1
        frames = [v.frame if v is not None else None for v in views]
        present = [f for f in frames if f is not None]
        frame_set = FrameSet(
            self._next_index,
            min(v.key for v in views if v is not None),
            frames,
            min(f.t_capture_ns for f in present),
            missing,
        )
        self._next_index += 1
        self.counts["sets"] += 1
        self.counts["incomplete" if missing else "complete"] += 1
        return frame_set


def _clusters(sorted_keys: list[int], tolerance: int) -> int:
    """How many groups ``sorted_keys`` form when keys within ``tolerance`` are one set."""
    count, start = 0, None
    for key in sorted_keys:
        if start is None or key - start > tolerance:
            count, start = count + 1, key
    return count


def _tagged(on_status: StatusCallback | None, name: str) -> StatusCallback | None:
    if on_status is None:
        return None

    def tagged(status: dict[str, Any]) -> None:
        on_status({**status, "camera": name})

    return tagged
