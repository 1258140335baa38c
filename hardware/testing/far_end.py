"""The far end of a serial link that only listens: every line that arrives, stamped.

One reading loop (:func:`stamp_lines`) serves two hosts:

- :class:`FarEndReader` runs it on a thread of the calling process (tests that wait for a line);
- :class:`FarEndProcess` runs it in a child Python process, as a real board is another device:
  a stamp taken on a thread of the process under test waits for that process's GIL (up to its
  switch interval) and competes with the loop it measures. The child is started by path with
  ``-S``, imports nothing of ours but this module (standard library only), inherits the pty's
  far-end descriptor and hands every stamped line back when stopped.

Stamps are ``time.monotonic_ns()``, the same system-wide clock as the host's, taken when the
``read`` returning a line's last byte comes back. Run as a script this module is the child:
``python far_end.py FD [PRIORITY]`` writes ``t_ns<TAB>line`` lines to stdout on SIGTERM or end of
input (under ``SCHED_FIFO`` at ``PRIORITY`` where permitted).
"""

from __future__ import annotations

import os
import select
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable


def stamp_lines(
    fd: int, should_stop: Callable[[], bool], on_lines: Callable[[int, list[str]], None]
) -> None:
    """Read ``fd`` until ``should_stop()`` or end of input; call ``on_lines(t_ns, lines)`` with
    the complete lines of each read and the time the read returned."""
    buf = b""
    while not should_stop():
        try:
            ready, _, _ = select.select([fd], [], [], 0.05)
            if not ready:
                continue
            chunk = os.read(fd, 4096)
        except InterruptedError:
            continue
        except OSError:
            return
        t_ns = time.monotonic_ns()
        if not chunk:
            return
        buf += chunk
        *complete, buf = buf.split(b"\n")
        if complete:
            on_lines(t_ns, [raw.decode("ascii", "replace").rstrip("\r") for raw in complete])


class FarEndReader:
    """Reads lines arriving at a file descriptor on a thread; stamps each with ``monotonic_ns``.

    Parameters
    ----------
    fd
        File descriptor to read (a pty master, a pipe).
    """

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self.lines: list[tuple[int, str]] = []
        """Every complete line so far as ``(monotonic_ns at arrival, line)``."""
        self._cond = threading.Condition()
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=stamp_lines,
            args=(fd, self._stop.is_set, self._add),
            name="far-end-reader",
            daemon=True,
        )
        self._thread.start()

    def _add(self, t_ns: int, lines: list[str]) -> None:
        with self._cond:
            self.lines.extend((t_ns, line) for line in lines)
            self._cond.notify_all()

    def wait_for(self, n_lines: int, timeout_s: float = 5.0) -> list[tuple[int, str]]:
        """Block until at least ``n_lines`` lines arrived (or the timeout); return a copy."""
        deadline = time.monotonic() + timeout_s
        with self._cond:
            while len(self.lines) < n_lines:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self._cond.wait(left)
            return list(self.lines)

    def wait_for_line(
        self, predicate: Callable[[str], bool], timeout_s: float = 5.0, start: int = 0
    ) -> tuple[int, str] | None:
        """Block until a line (at index ``start`` or later) satisfies ``predicate``.

        Returns
        -------
        tuple or None
            ``(monotonic_ns, line)`` of the first match, or ``None`` after ``timeout_s``.
        """
        deadline = time.monotonic() + timeout_s
        i = start
        with self._cond:
            while True:
                while i < len(self.lines):
                    if predicate(self.lines[i][1]):
                        return self.lines[i]
                    i += 1
                left = deadline - time.monotonic()
                if left <= 0:
                    return None
                self._cond.wait(left)

    def write(self, data: bytes) -> None:
        """Write bytes back to the host (as a board's reply would be)."""
        os.write(self.fd, data)

    def stop(self) -> None:
        """Stop the reader thread (the descriptor is not closed)."""
        self._stop.set()
        self._thread.join(timeout=1.0)

    def __enter__(self) -> FarEndReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


class FarEndProcess:
    """Reads lines arriving on ``fd`` in a child process; :meth:`stop` returns them stamped.

    Parameters
    ----------
    fd
        The far-end descriptor (a pty master); the child inherits it, the caller keeps it open.
    ready_timeout_s
        How long :meth:`__init__` waits for the child to report that it is reading.
    realtime_priority
        Run the child under ``SCHED_FIFO`` at this priority (Linux), as a board's own
        microcontroller never waits for the host's scheduler; where the OS refuses, the child
        runs normally and :attr:`realtime` says so. ``None``: a normal process.
    """

    def __init__(
        self, fd: int, ready_timeout_s: float = 10.0, realtime_priority: int | None = None
    ) -> None:
        self.fd = fd
        self.lines: list[tuple[int, str]] = []
        """Every complete line as ``(monotonic_ns at arrival, line)``; filled by :meth:`stop`."""
        self.realtime: str | None = None
        """``None`` (not asked), ``"fifo N"``, or why the OS refused it."""
        priority = [] if realtime_priority is None else [str(int(realtime_priority))]
        self._proc = subprocess.Popen(
            [sys.executable, "-S", os.path.abspath(__file__), str(fd), *priority],
            pass_fds=(fd,),
            stdout=subprocess.PIPE,
            stdin=subprocess.DEVNULL,
            text=True,
        )
        assert self._proc.stdout is not None
        ready, _, _ = select.select([self._proc.stdout], [], [], ready_timeout_s)
        first = self._proc.stdout.readline() if ready else ""
        said, _, realtime = first.strip().partition(" ")
        if said != "ready":
            self._proc.kill()
            raise RuntimeError(f"the far-end reader process did not start (said {first!r})")
        self.realtime = realtime or None

    def stop(self, timeout_s: float = 5.0) -> list[tuple[int, str]]:
        """Stop the child and return (and keep in :attr:`lines`) every stamped line."""
        if self._proc.poll() is None:
            self._proc.send_signal(signal.SIGTERM)
        try:
            out, _ = self._proc.communicate(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            out, _ = self._proc.communicate()
        lines = []
        for row in out.splitlines():
            stamp, _, line = row.partition("\t")
            if stamp.isdigit():
                lines.append((int(stamp), line))
        self.lines = lines
        return lines

    def __enter__(self) -> FarEndProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _realtime(priority: int | None) -> str:
    """Put this process under ``SCHED_FIFO`` at ``priority``; say what happened."""
    if priority is None:
        return ""
    try:
        os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(priority))
    except (AttributeError, OSError) as exc:
        return f"refused: {exc}"
    return f"fifo {priority}"


def _child(fd: int, priority: int | None = None) -> None:
    """The child: stamp lines until SIGTERM or end of input, then print them all."""
    stamped: list[tuple[int, str]] = []
    stop = False

    def on_term(signum: int, frame: object) -> None:
        nonlocal stop
        stop = True

    signal.signal(signal.SIGTERM, on_term)
    print(f"ready {_realtime(priority)}".rstrip(), flush=True)
    stamp_lines(fd, lambda: stop, lambda t_ns, lines: stamped.extend((t_ns, x) for x in lines))
    out = sys.stdout
    for t_ns, line in stamped:
        out.write(f"{t_ns}\t{line.replace(chr(9), ' ')}\n")
    out.flush()


if __name__ == "__main__":
    _child(int(sys.argv[1]), int(sys.argv[2]) if len(sys.argv) > 2 else None)
