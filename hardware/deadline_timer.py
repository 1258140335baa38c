"""One thread that calls callbacks at monotonic deadlines (pulse ends, maximum on-time cuts)."""

from __future__ import annotations

import heapq
import itertools
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from realtime_pose.util.supervision import SupervisedThread

log = logging.getLogger(__name__)


class DeadlineTimer:
    """Run ``callback(*args)`` on a private thread once ``time.monotonic_ns()`` reaches a deadline.

    Entries cannot be cancelled; callers make stale entries harmless (the output adapters compare a
    per-channel generation number). Callback exceptions are logged, never propagated.
    """

    def __init__(self, name: str = "deadline-timer") -> None:
        self._heap: list[tuple[int, int, Callable[..., Any], tuple]] = []
        self._counter = itertools.count()
        self._cond = threading.Condition()
        self._stopping = False
        self._thread = SupervisedThread(self._run, name, should_stop=lambda: self._stopping)
        self._thread.start()

    def schedule(self, deadline_ns: int, callback: Callable[..., Any], *args: Any) -> None:
        """Call ``callback(*args)`` at ``deadline_ns`` (``time.monotonic_ns()`` clock)."""
        with self._cond:
            heapq.heappush(self._heap, (deadline_ns, next(self._counter), callback, args))
            if self._heap[0][0] == deadline_ns:
                self._cond.notify()

    def pending(self) -> int:
        """How many entries are waiting."""
        with self._cond:
            return len(self._heap)

    def stop(self) -> None:
        """Stop the thread; pending entries are dropped."""
        with self._cond:
            self._stopping = True
            self._cond.notify()
        if threading.current_thread() is not self._thread:
            self._thread.join(timeout=2.0)

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._stopping:
                    if not self._heap:
                        self._cond.wait()
                        continue
                    wait_ns = self._heap[0][0] - time.monotonic_ns()
                    if wait_ns <= 0:
                        break
                    self._cond.wait(wait_ns / 1e9)
                if self._stopping:
                    return
                _, _, callback, args = heapq.heappop(self._heap)
            try:
                callback(*args)
            except Exception:
                log.exception("deadline callback %r failed", callback)
