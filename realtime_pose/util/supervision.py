"""Threads that serve requests or move data, and what happens when one dies anyway.

Every such thread of ours (control server, grabber, recorder sync, video writer, output
writers and watchdogs) already turns a bad input into a logged, counted error and goes on. A
:class:`SupervisedThread` is the net under that rule: should its loop still raise (a bug, an
input nobody thought of), the death is logged with its traceback, recorded in :data:`REGISTRY`
(the status stream reports it, the pipeline turns it into an ``event``), and, where restarting
is safe, the loop is started again after a back-off, on the same thread object, so ``join`` and
``is_alive`` keep their meaning for the owner.

Standard library only: the output devices (:mod:`realtime_pose.hardware`) use it too.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass

log = logging.getLogger(__name__)


@dataclass
class ThreadRecord:
    """What is known of one supervised thread (one per name; a later thread of the same name
    takes the record over)."""

    name: str
    alive: bool = True
    deaths: int = 0
    restarts: int = 0
    last_error: str | None = None
    t_last_death_ns: int | None = None


class ThreadRegistry:
    """The supervised threads of this process and their deaths, for status and events."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._records: dict[str, ThreadRecord] = {}
        self._deaths: list[ThreadRecord] = []

    def started(self, name: str) -> ThreadRecord:
        with self._lock:
            record = self._records.get(name)
            if record is None:
                record = self._records[name] = ThreadRecord(name)
            record.alive = True
            return record

    def died(self, record: ThreadRecord, error: str) -> None:
        with self._lock:
            record.deaths += 1
            record.last_error = error
            record.t_last_death_ns = time.monotonic_ns()
            self._deaths.append(ThreadRecord(**asdict(record)))

    def ended(self, record: ThreadRecord) -> None:
        with self._lock:
            record.alive = False

    @property
    def death_count(self) -> int:
        """Deaths so far (a mark for :meth:`deaths_since`)."""
        with self._lock:
            return len(self._deaths)

    def deaths_since(self, mark: int) -> list[ThreadRecord]:
        """Snapshots taken at each death after ``mark`` (see :attr:`death_count`)."""
        with self._lock:
            return list(self._deaths[mark:])

    def report(self) -> dict[str, dict]:
        """``{name: {alive, deaths, restarts, last_error}}`` of threads that ever died."""
        with self._lock:
            return {
                name: {
                    "alive": r.alive,
                    "deaths": r.deaths,
                    "restarts": r.restarts,
                    "last_error": r.last_error,
                }
                for name, r in self._records.items()
                if r.deaths
            }


REGISTRY = ThreadRegistry()
"""The process's supervised threads."""


class SupervisedThread(threading.Thread):
    """A thread running ``target()`` that survives the target's death where that is safe.

    Parameters
    ----------
    target
        The thread's loop; returning ends the thread normally.
    name
        Thread name, also the key in :data:`REGISTRY`.
    restart
        Start ``target`` again after it raised (``False``: the thread ends, recorded as dead).
    backoff_s
        Waits before successive restarts; the last value repeats.
    max_restarts
        Give up after this many restarts (``None``: never).
    should_stop
        Checked before a restart: ``True`` means the owner is shutting down, do not restart.
    """

    def __init__(
        self,
        target: Callable[[], object],
        name: str,
        *,
        restart: bool = True,
        backoff_s: Sequence[float] = (0.05, 0.2, 1.0),
        max_restarts: int | None = None,
        should_stop: Callable[[], bool] | None = None,
        daemon: bool = True,
        registry: ThreadRegistry = REGISTRY,
    ) -> None:
        super().__init__(name=name, daemon=daemon)
        self._loop = target
        self._restart = restart
        self._backoff_s = tuple(backoff_s) or (0.0,)
        self._max_restarts = max_restarts
        self._should_stop = should_stop or (lambda: False)
        self._registry = registry
        self.record = registry.started(name)

    def run(self) -> None:
        attempt = 0
        try:
            while True:
                try:
                    self._loop()
                    return
                except Exception as exc:
                    error = f"{type(exc).__name__}: {exc}"
                    log.exception("thread %s died: %s", self.name, error)
                    self._registry.died(self.record, error)
                    if not self._restart or self._should_stop():
                        return
                    if self._max_restarts is not None and attempt >= self._max_restarts:
                        log.error(
                            "thread %s: not restarted again (%d restarts)", self.name, attempt
                        )
                        return
                    time.sleep(self._backoff_s[min(attempt, len(self._backoff_s) - 1)])
                    if self._should_stop():
                        return
                    attempt += 1
                    self.record.restarts += 1
                    log.warning("thread %s restarted (%d)", self.name, attempt)
        finally:
            self._registry.ended(self.record)
