"""The newest-frame grabber: a thread that reads a source and keeps only its latest frame.

A closed loop wants the *newest* frame, not the next one in a queue: a queue turns every hiccup
of the processing loop into latency that never goes away. :class:`Grabber` reads the source as
fast as it delivers into a one-slot mailbox; a frame that is overwritten before the loop takes it
is counted as dropped. A free-running source (a file or synthetic scene read as fast as
possible, :attr:`FrameSource.live` false) is read in lockstep instead: the next frame is read
while the loop works on the current one, and never before the loop took it, so nothing is
dropped and the reader does not burn a core (and the interpreter lock) making frames nobody will
see. Source failures never reach the loop: a source that raises or stalls is reported
(:meth:`Grabber.stats`, ``on_status``) and reopened with backoff.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from realtime_pose.sources.base import Frame, FrameSource, SourceError, TriggerTimeoutError
from realtime_pose.util.supervision import SupervisedThread

log = logging.getLogger(__name__)

StatusCallback = Callable[[dict[str, Any]], None]


class Grabber:
    """Read ``source`` on a background thread; hand out the newest frame.

    Parameters
    ----------
    source
        A closed :class:`~realtime_pose.sources.base.FrameSource`; the grabber opens and closes it.
    stall_timeout_s
        A read that has not returned after this long marks the source as stalled; it is reopened
        once the read returns. Keep it well above the source's frame period.
    reopen_backoff_s
        Waits before successive reopen attempts after a failure; the last value repeats. The
        sequence restarts once a frame is read again.
    lockstep
        Read a frame only once the loop took the previous one (no drops). ``None``: lockstep
        for free-running sources (``source.live`` false), newest-frame for live ones.
    max_reopens
        Give up after this many failed reads or reopens in a row and end the stream with
        :attr:`failure` set (offline analysis: a file that cannot be decoded further); ``None``
        keeps trying, as a live rig should.
    wakeup
        Set whenever a frame lands in the mailbox or the source ends: one event shared by the
        grabbers of a camera group lets one thread wait for any of them
        (:class:`~realtime_pose.live.frame_sets.FrameSetGrabber`).
    on_status
        Called (from a grabber thread) with a dict describing each state change: ``event``
        (``stalled``, ``error``, ``reopened``, ``reopen_failed``, ``ended``; for a triggered
        camera ``trigger_timeout`` when triggers stop and ``trigger_resumed`` when they come
        back), ``message`` and the counters of :meth:`stats`. The pipeline forwards these to
        the status stream.

    Notes
    -----
    States: ``idle`` (not started), ``running``, ``stalled``, ``reopening``, ``ended`` (the source
    reached its end), ``stopped``. OpenCV captures cannot be interrupted safely from another
    thread, so a read that never returns leaves the grabber ``stalled`` (and reported) until it
    does; OpenCV's V4L2 backend gives up on a silent camera by itself after about 10 s.

    Examples
    --------
    >>> grabber = Grabber(source)
    >>> grabber.start()
    >>> while not grabber.ended:
    ...     frame = grabber.get(timeout_s=1.0)
    ...     if frame is not None:
    ...         process(frame)
    >>> grabber.stop()
    """

    def __init__(
        self,
        source: FrameSource,
        stall_timeout_s: float = 2.0,
        reopen_backoff_s: Sequence[float] = (0.1, 0.2, 0.5, 1, 2, 5),
        on_status: StatusCallback | None = None,
        lockstep: bool | None = None,
        max_reopens: int | None = None,
        wakeup: threading.Event | None = None,
    ) -> None:
        if not stall_timeout_s > 0:
            raise ValueError(f"stall_timeout_s must be positive, got {stall_timeout_s}")
        if not reopen_backoff_s or any(b < 0 for b in reopen_backoff_s):
            raise ValueError(
                f"reopen_backoff_s must be non-negative waits, got {list(reopen_backoff_s)}"
            )
        self.source = source
        self.stall_timeout_s = float(stall_timeout_s)
        self.reopen_backoff_s = tuple(float(b) for b in reopen_backoff_s)
        self.on_status = on_status
        self.lockstep = (not source.live) if lockstep is None else bool(lockstep)
        self.max_reopens = max_reopens
        self.wakeup = wakeup
        self.failure: str | None = None
        """Why the grabber gave up on the source (``max_reopens``), or ``None``."""
        self._cond = threading.Condition()
        self._stop = threading.Event()
        self._slot: Frame | None = None
        self._state = "idle"
        self._source_ended = False
        self._read_started_ns = 0  # when the current read began; 0 when not inside a read
        self._stall_declared = False
        self._counts = {
            "read": 0,
            "delivered": 0,
            "dropped": 0,
            "errors": 0,
            "stalls": 0,
            "trigger_timeouts": 0,
        }
        self._reopens = 0
        self._last_error = ""
        self._reader: threading.Thread | None = None
        self._watchdog: threading.Thread | None = None

    # -- the loop's side -------------------------------------------------------------------

    def start(self) -> None:
        """Open the source and start reading.

        Raises
        ------
        SourceError
            When the source cannot be opened the first time (a wrong device or path is better
            reported at once than retried forever).
        """
        if self._reader is not None:
            raise RuntimeError("this Grabber was already started; create a new one")
        self.source.open()
        self._state = "running"
        stop = self._stop.is_set
        source_id = self.source.source_id
        self._reader = SupervisedThread(self._read_loop, f"grabber-{source_id}", should_stop=stop)
        self._watchdog = SupervisedThread(
            self._watch, f"grabber-watchdog-{source_id}", should_stop=stop
        )
        self._reader.start()
        self._watchdog.start()

    def get(self, timeout_s: float | None = None, poll_s: float | None = None) -> Frame | None:
        """The newest frame not yet returned, waiting up to ``timeout_s`` seconds for one.

        With ``poll_s`` the waiting thread also wakes every ``poll_s`` seconds while it waits,
        so its CPU never sits idle for long (see ``RunConfig.idle_poll_us``); a frame is still
        handed over the moment it arrives.

        Returns ``None`` on timeout, once the source has ended and its last frame was taken, and
        after :meth:`stop`.
        """
        with self._cond:
            if self._slot is None and not (self._source_ended or self._stop.is_set()):
                deadline = None if timeout_s is None else time.monotonic() + timeout_s
                while self._slot is None and not (self._source_ended or self._stop.is_set()):
                    remaining = None if deadline is None else deadline - time.monotonic()
                    if remaining is not None and remaining <= 0:
                        break
                    if poll_s is not None:
                        remaining = poll_s if remaining is None else min(remaining, poll_s)
                    self._cond.wait(remaining)
            frame, self._slot = self._slot, None
            if frame is not None:
                self._counts["delivered"] += 1
                if self.lockstep:
                    self._cond.notify_all()  # the reader may make the next one
            return frame

    def frames(self, timeout_s: float | None = None) -> Iterator[Frame]:
        """Yield frames until the source ends, :meth:`stop` is called or none comes for
        ``timeout_s`` (``None``: wait as long as it takes).

        Raises
        ------
        SourceError
            When the grabber gave up on the source (see ``max_reopens``).
        """
        while True:
            frame = self.get(timeout_s)
            if frame is not None:
                yield frame
                continue
            if self.failure is not None:
                raise SourceError(self.failure)
            if self.ended or self._stop.is_set() or timeout_s is not None:
                return

    def take(self) -> Frame | None:
        """The newest frame not yet returned, or ``None`` at once (no waiting)."""
        return self.get(timeout_s=0.0)

    @property
    def ended(self) -> bool:
        """True once the source has ended and its last frame has been taken."""
        with self._cond:
            return self._source_ended and self._slot is None

    def stats(self) -> dict[str, Any]:
        """Counters and state: ``read``, ``delivered``, ``dropped`` (newest-frame drops: the
        loop was busy), ``errors``, ``stalls``, ``trigger_timeouts``, ``reopens``, ``state``,
        ``last_error``, ``source``, and the source's own camera counters
        (:meth:`FrameSource.counters`: ``camera_dropped``, ``camera_drops`` by cause, ...)."""
        with self._cond:
            return self._stats_locked()

    def stop(self, join_timeout_s: float = 5.0) -> None:
        """Stop reading and close the source (unless its read is stuck; see the class notes)."""
        self._stop.set()
        with self._cond:
            if self._state not in ("idle", "ended"):
                self._state = "stopped"
            self._cond.notify_all()
        for thread in (self._reader, self._watchdog):
            if thread is not None:
                thread.join(join_timeout_s)
        if self._reader is not None and self._reader.is_alive():
            log.warning(
                "%s: the read did not return within %.1f s; leaving its thread behind",
                self.source.source_id,
                join_timeout_s,
            )
        elif self._reader is None:
            self.source.close()

    def __enter__(self) -> Grabber:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # -- the reader thread -----------------------------------------------------------------

    def _stats_locked(self) -> dict[str, Any]:
        try:
            camera = self.source.counters()
        except Exception:  # diagnostics only
            camera = {}
        return {
            **camera,
            **self._counts,
            "reopens": self._reopens,
            "state": self._state,
            "last_error": self._last_error,
            "source": self.source.source_id,
        }

    def _report(self, event: str, message: str) -> None:
        with self._cond:
            status = {"event": event, "message": message, **self._stats_locked()}
        level = logging.INFO if event in ("reopened", "ended") else logging.WARNING
        log.log(level, "%s: %s", self.source.source_id, message)
        if self.on_status is not None:
            try:
                self.on_status(status)
            except Exception:  # the callback must not kill the reader
                log.exception("on_status callback failed")

    def _set_state(self, state: str) -> None:
        with self._cond:
            if self._state != "stopped":
                self._state = state
            self._cond.notify_all()

    def _read_loop(self) -> None:
        attempt = 0
        need_reopen = False
        waiting_for_trigger = 0
        try:
            while not self._stop.is_set():
                if need_reopen:
                    if self.max_reopens is not None and attempt >= self.max_reopens:
                        self._give_up(attempt)
                        break
                    wait_s = self.reopen_backoff_s[min(attempt, len(self.reopen_backoff_s) - 1)]
                    attempt += 1
                    self._set_state("reopening")
                    self._close_quietly()
                    if self._stop.wait(wait_s):
                        break
                    try:
                        self.source.open()
                    except Exception as exc:
                        self._record_error(exc)
                        self._report("reopen_failed", f"reopen attempt {attempt} failed: {exc}")
                        continue
                    need_reopen = False
                    with self._cond:
                        self._reopens += 1
                    self._set_state("running")
                    self._report("reopened", f"reopened after {attempt} attempt(s)")
                with self._cond:
                    while self.lockstep and self._slot is not None and not self._stop.is_set():
                        self._cond.wait(0.1)
                    if self._stop.is_set():
                        break
                    self._read_started_ns = time.monotonic_ns()
                    self._stall_declared = False
                try:
                    frame = self.source.read()
                except TriggerTimeoutError as exc:
                    with self._cond:
                        self._read_started_ns = 0
                        self._counts["trigger_timeouts"] += 1
                        if self._state == "stalled":  # alive, only untriggered: no reopen
                            self._state = "running"
                    waiting_for_trigger += 1
                    if waiting_for_trigger == 1:
                        self._report("trigger_timeout", f"{exc}; still waiting")
                    continue
                except Exception as exc:
                    with self._cond:
                        self._read_started_ns = 0
                        if self._state != "stopped":
                            self._state = "reopening"
                    self._record_error(exc)
                    self._report("error", f"read failed: {exc}; reopening")
                    need_reopen = True
                    continue
                with self._cond:
                    self._read_started_ns = 0
                    stalled = self._stall_declared
                    if frame is None:
                        self._source_ended = True
                        if self._state != "stopped":
                            self._state = "ended"
                        self._cond.notify_all()
                    else:
                        if self._slot is not None:
                            self._counts["dropped"] += 1
                        self._slot = frame
                        self._counts["read"] += 1
                        self._cond.notify()
                    if self.wakeup is not None:
                        self.wakeup.set()
                if frame is None:
                    self._report("ended", "end of stream")
                    break
                if waiting_for_trigger:
                    self._report(
                        "trigger_resumed",
                        f"triggers resumed after {waiting_for_trigger} trigger timeout(s)",
                    )
                    waiting_for_trigger = 0
                if stalled:
                    need_reopen = True
                    continue
                attempt = 0
        finally:
            self._close_quietly()
            with self._cond:
                self._cond.notify_all()
            if self.wakeup is not None:
                self.wakeup.set()  # the end (or a give-up) is news for a group's waiter too

    def _give_up(self, attempts: int) -> None:
        with self._cond:
            self.failure = (
                f"{self.source.source_id}: gave up after {attempts} reopen(s); last error: "
                f"{self._last_error}"
            )
            self._source_ended = True
            if self._state != "stopped":
                self._state = "ended"
            self._cond.notify_all()
        self._report("ended", self.failure)

    def _record_error(self, exc: BaseException) -> None:
        with self._cond:
            self._counts["errors"] += 1
            self._last_error = f"{type(exc).__name__}: {exc}"
        if not isinstance(exc, SourceError):
            log.exception("%s: unexpected error from the source", self.source.source_id)

    def _close_quietly(self) -> None:
        try:
            self.source.close()
        except Exception:
            log.exception("%s: close failed", self.source.source_id)

    def _watch(self) -> None:
        period_s = min(0.1, self.stall_timeout_s / 4)
        timeout_ns = round(self.stall_timeout_s * 1e9)
        while not self._stop.wait(period_s):
            with self._cond:
                if self._source_ended:
                    return
                started = self._read_started_ns
                if (
                    self._state != "running"
                    or started == 0
                    or self._stall_declared
                    or time.monotonic_ns() - started < timeout_ns
                ):
                    continue
                self._stall_declared = True
                self._state = "stalled"
                self._counts["stalls"] += 1
            self._report(
                "stalled",
                f"no frame for {self.stall_timeout_s:.1f} s; will reopen when the read returns",
            )
