"""Helpers for tests and benchmarks: pseudo-terminal pairs, ``loop://`` ports, timed far-end reads.

These build *real* serial endpoints (a kernel pty pair, pyserial's in-process loopback) so the
adapters can be exercised end to end without a board.
"""

from __future__ import annotations

import contextlib
import os
import select
import threading
import time
import tty
from dataclasses import dataclass

LOOP_URL = "loop://"
"""pyserial's in-process loopback: every byte written comes back on ``read``."""


@dataclass
class PtyPair:
    """A pseudo-terminal pair in raw mode.

    ``device_path`` (the slave, e.g. ``/dev/pts/3``) is what the host opens as its serial port;
    ``far_fd`` (the master) is the "board" end. Close with :meth:`close`.
    """

    far_fd: int
    device_fd: int
    device_path: str

    def close(self) -> None:
        """Close both ends (the host side then sees EIO / a vanished device)."""
        for fd in (self.far_fd, self.device_fd):
            with contextlib.suppress(OSError):
                os.close(fd)

    def __enter__(self) -> PtyPair:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def open_pty_pair() -> PtyPair:
    """Create a raw (no echo, no line editing) pseudo-terminal pair.

    The device end stays open in this process so the pty keeps its settings and does not report a
    hang-up while the host has it closed.
    """
    far_fd, device_fd = os.openpty()
    tty.setraw(device_fd)
    return PtyPair(far_fd=far_fd, device_fd=device_fd, device_path=os.ttyname(device_fd))


class FarEndReader:
    """Reads lines arriving at a file descriptor on a thread; stamps each with ``monotonic_ns``.

    The stamp is taken when the ``read`` returning the line's last byte comes back, i.e. as soon as
    the kernel hands the bytes over.

    Parameters
    ----------
    fd
        File descriptor to read (a pty master, a pipe).
    """

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self.lines: list[tuple[int, str]] = []
        self._cond = threading.Condition()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="far-end-reader", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        buf = b""
        while not self._stop.is_set():
            try:
                ready, _, _ = select.select([self.fd], [], [], 0.05)
                if not ready:
                    continue
                chunk = os.read(self.fd, 4096)
            except OSError:
                return
            t_ns = time.monotonic_ns()
            if not chunk:
                return
            buf += chunk
            *complete, buf = buf.split(b"\n")
            if complete:
                with self._cond:
                    for raw in complete:
                        self.lines.append((t_ns, raw.decode("ascii", "replace").rstrip("\r")))
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

    def stop(self) -> None:
        """Stop the reader thread (the descriptor is not closed)."""
        self._stop.set()
        self._thread.join(timeout=1.0)
