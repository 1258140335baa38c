"""Helpers for tests and benchmarks: pseudo-terminal pairs, ``loop://`` ports, timed far-end reads.

These build *real* serial endpoints (a kernel pty pair, pyserial's in-process loopback) so the
adapters can be exercised end to end without a board.
"""

from __future__ import annotations

import contextlib
import os
import tty
from collections.abc import Callable
from dataclasses import dataclass

from realtime_pose.hardware.testing.far_end import FarEndReader

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


class PtyFarEnd:
    """A pty pair whose far end is read by a :class:`FarEndReader`: a timestamping "board".

    The host opens :attr:`host_path` as its serial port; every line it writes lands in
    :attr:`lines` as ``(monotonic_ns at arrival, line)``. Nothing is answered (write replies with
    :meth:`write`). For a board that also executes the protocol, use
    :class:`.emulator.EmulatorThread` (its ``rx`` records carry the same stamps).

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
