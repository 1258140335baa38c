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
from collections.abc import Callable
from dataclasses import dataclass

LOOP_URL = "loop://"
"""pyserial's in-process loopback: every byte written comes back on ``read``."""


@dataclass
class PtyPair:
    """A pseudo-terminal pair in raw mode.

    ``device_path`` (the slave, e.g. ``/dev/pts/3``) is what the host opens as its serial port;
    ``far_fd`` (the master) is the "board" end. ``link``, when set, is a symlink to
    ``device_path`` (a stable name such as ``/tmp/rig-laser``), removed by :meth:`close`.
    Close with :meth:`close`.
    """

    far_fd: int
    device_fd: int
    device_path: str
    link: str | None = None

    @property
    def host_path(self) -> str:
        """The path a host should open: ``link`` when there is one, else ``device_path``."""
        return self.link or self.device_path

    def make_link(self, path: str | os.PathLike[str]) -> str:
        """Point the symlink ``path`` at ``device_path`` (atomically replacing an old link)."""
        path = os.fspath(path)
        tmp = f"{path}.{os.getpid()}.tmp"
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        os.symlink(self.device_path, tmp)
        os.replace(tmp, path)
        self.link = path
        return path

    def remove_link(self) -> None:
        """Remove ``link`` if it still points at this pair (a newer pair may own the name)."""
        if self.link is None:
            return
        with contextlib.suppress(OSError):
            if os.readlink(self.link) == self.device_path:
                os.unlink(self.link)
        self.link = None

    def close(self) -> None:
        """Remove the link and close both ends (the host side then sees EIO: a vanished device).

        Idempotent: descriptors are closed once, so a later call cannot close a reused number.
        """
        self.remove_link()
        for attr in ("far_fd", "device_fd"):
            fd = getattr(self, attr)
            if fd >= 0:
                setattr(self, attr, -1)
                with contextlib.suppress(OSError):
                    os.close(fd)

    def __enter__(self) -> PtyPair:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def open_pty_pair(link: str | os.PathLike[str] | None = None) -> PtyPair:
    """Create a raw (no echo, no line editing) pseudo-terminal pair.

    The device end stays open in this process so the pty keeps its settings and does not report a
    hang-up while the host has it closed.

    Parameters
    ----------
    link
        Optional symlink to create to the device end (see :meth:`PtyPair.make_link`).
    """
    far_fd, device_fd = os.openpty()
    tty.setraw(device_fd)
    tty.setraw(far_fd)
    pair = PtyPair(far_fd=far_fd, device_fd=device_fd, device_path=os.ttyname(device_fd))
    if link is not None:
        pair.make_link(link)
    return pair


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
        """Every complete line so far as ``(monotonic_ns at arrival, line)``."""
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


class PtyFarEnd:
    """A pty pair whose far end is read by a :class:`FarEndReader`: a timestamping "board".

    The host opens :attr:`host_path` as its serial port; every line it writes lands in
    :attr:`lines` as ``(monotonic_ns at arrival, line)``. Nothing is answered (write replies with
    :meth:`write`). For a board that also executes the protocol, use
    :class:`realtime_pose.hardware.emulator.EmulatorThread` (its ``rx`` records carry the same stamps).

    Parameters
    ----------
    link
        Optional symlink to create to the host end.

    Examples
    --------
    >>> with PtyFarEnd() as far:  # doctest: +SKIP
    ...     dev = SerialDevice(far.host_path, configure_board=False).open()
    ...     t0 = time.monotonic_ns(); dev.pulse(0, 0.001)
    ...     t_rx, line = far.wait_for_line(lambda s: s.startswith("P "))
    """

    def __init__(self, link: str | os.PathLike[str] | None = None) -> None:
        self.pty = open_pty_pair(link)
        self.reader = FarEndReader(self.pty.far_fd)

    @property
    def host_path(self) -> str:
        """The serial port path for the host."""
        return self.pty.host_path

    @property
    def lines(self) -> list[tuple[int, str]]:
        """Lines received so far as ``(monotonic_ns, line)``."""
        return self.reader.lines

    def wait_for_line(
        self, predicate: Callable[[str], bool], timeout_s: float = 5.0, start: int = 0
    ) -> tuple[int, str] | None:
        """See :meth:`FarEndReader.wait_for_line`."""
        return self.reader.wait_for_line(predicate, timeout_s, start)

    def write(self, data: bytes) -> None:
        """Send bytes to the host."""
        self.reader.write(data)

    def close(self) -> None:
        """Stop the reader, close the pty and remove the link."""
        self.reader.stop()
        self.pty.close()

    def __enter__(self) -> PtyFarEnd:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
