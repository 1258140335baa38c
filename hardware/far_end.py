"""A timestamping "board" in its own process: the far end of a pty pair, read by another program.

:class:`~realtime_pose.hardware.loopback.FarEndReader` stamps arrivals on a thread of the process under test,
so each stamp waits for that process's GIL (up to its switch interval) and the thread competes
with the loop it measures. A real board is another device; :class:`FarEndProcess` comes closer:
a child Python process (standard library only, started by path so it imports nothing of ours)
inherits the pty's far-end descriptor, stamps each line with ``time.monotonic_ns()`` (the same
system-wide clock as the host's) as soon as ``read`` returns, and hands every stamped line back
when stopped.

Run as a script it is that child: ``python far_end.py FD``; it writes
``t_ns<TAB>line`` lines to stdout when it receives SIGTERM or its descriptor closes.
"""

from __future__ import annotations

import os
import select
import signal
import subprocess
import sys
import time


class FarEndProcess:
    """Reads lines arriving on ``fd`` in a child process; :meth:`stop` returns them stamped.

    Parameters
    ----------
    fd
        The far-end descriptor (a pty master); the child inherits it, the caller keeps it open.
    ready_timeout_s
        How long :meth:`__init__` waits for the child to report that it is reading.
    """

    def __init__(self, fd: int, ready_timeout_s: float = 10.0) -> None:
        self.fd = fd
        self.lines: list[tuple[int, str]] = []
        """Every complete line as ``(monotonic_ns at arrival, line)``; filled by :meth:`stop`."""
        self._proc = subprocess.Popen(
            [sys.executable, "-S", os.path.abspath(__file__), str(fd)],
            pass_fds=(fd,),
            stdout=subprocess.PIPE,
            stdin=subprocess.DEVNULL,
            text=True,
        )
        assert self._proc.stdout is not None
        ready, _, _ = select.select([self._proc.stdout], [], [], ready_timeout_s)
        first = self._proc.stdout.readline() if ready else ""
        if first.strip() != "ready":
            self._proc.kill()
            raise RuntimeError(f"the far-end reader process did not start (said {first!r})")

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


def _child(fd: int) -> None:
    """The child's loop: read, stamp, keep; print everything on SIGTERM or end of input."""
    stamped: list[tuple[int, bytes]] = []
    stop = False

    def on_term(signum: int, frame: object) -> None:
        nonlocal stop
        stop = True

    signal.signal(signal.SIGTERM, on_term)
    print("ready", flush=True)
    buf = b""
    while not stop:
        try:
            ready, _, _ = select.select([fd], [], [], 0.05)
            if not ready:
                continue
            chunk = os.read(fd, 4096)
        except InterruptedError:
            continue
        except OSError:
            break
        t_ns = time.monotonic_ns()
        if not chunk:
            break
        buf += chunk
        *complete, buf = buf.split(b"\n")
        stamped.extend((t_ns, raw) for raw in complete)
    out = sys.stdout
    for t_ns, raw in stamped:
        line = raw.decode("ascii", "replace").rstrip("\r").replace("\t", " ")
        out.write(f"{t_ns}\t{line}\n")
    out.flush()


if __name__ == "__main__":
    _child(int(sys.argv[1]))
