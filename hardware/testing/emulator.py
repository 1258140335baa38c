"""A Python stand-in for the realtime-pose output board, on the far end of a pseudo-terminal.

It runs the protocol's device-side state machine (:class:`..protocol.BoardState`: pulses,
firmware-side maximum on-time, minimum off-time and duty-cycle limit, host-silence watchdog,
echo, acknowledgements, ``!ERR`` replies)
against a real pty, and logs every received line, every reply and every output edge with
``time.monotonic_ns()`` to a JSONL file written with one ``write`` per record, so the log is
complete even when the host (or the emulator) is SIGKILLed.

Command line (a rig without a board, or a test in another process)::

    python -m realtime_pose.hardware.testing.emulator \
        --link /tmp/rig-laser --log /tmp/rig-laser.jsonl

creates a pty pair, points ``/tmp/rig-laser`` at its host end (open it as the serial port), prints
``ready <link> <pty>`` and runs until SIGTERM or Ctrl-C.

Log records: ``{"t_ns", "event": "start"|"rx"|"tx"|"edge"|"tx_dropped"|"stop", ...}``; ``edge``
records carry ``channel``, ``on`` and ``cause`` (the command letter, ``pulse_end``, ``max_on``,
``duty`` or ``watchdog``), and those a timer ended (``pulse_end``, ``max_on``, ``duty``) also
``due_ns``, when the board was due to end them. A switch-on the board's limits refuse makes no
edge: its ``X <ch> HELD MINOFF|DUTY`` reply is in the ``tx`` records.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import select
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from realtime_pose.hardware import protocol
from realtime_pose.hardware.testing.loopback import PtyPair, open_pty_pair

_POLL_S = 0.05
_TIMED = (protocol.CAUSE_PULSE_END, protocol.CAUSE_MAX_ON, protocol.CAUSE_DUTY)


def _printable(raw: bytes) -> str:
    """Bytes as ASCII text, anything unprintable as ``?`` (what the sketch echoes in ``!ERR``)."""
    return "".join(chr(b) if 32 <= b < 127 or b in (9, 13) else "?" for b in raw)


class Emulator:
    """The board's behaviour on one file descriptor (a pty master).

    Parameters
    ----------
    fd
        The far end of the link; set non-blocking (replies the host does not read are dropped and
        logged as ``tx_dropped`` rather than stalling the timers).
    n_channels, max_on_ms, watchdog_ms
        Initial board settings (the host normally overrides the last two with ``M`` and ``W``).
    log_path
        Optional JSONL log (appended to).
    banner
        Send the boot banner ``V RPIO 1 <n>`` at start, like the sketch.
    """

    def __init__(
        self,
        fd: int,
        *,
        n_channels: int = 8,
        max_on_ms: float = protocol.DEFAULT_MAX_ON_MS,
        watchdog_ms: int = protocol.DEFAULT_WATCHDOG_MS,
        log_path: str | os.PathLike[str] | None = None,
        banner: bool = True,
    ) -> None:
        if not 1 <= n_channels <= 64:
            raise ValueError(f"n_channels must be 1..64, got {n_channels}")
        self.fd = fd
        self.state = protocol.BoardState(
            n_channels=n_channels, max_on_ms=max_on_ms, watchdog_ms=watchdog_ms
        )
        self.banner = banner
        self.log_path = Path(log_path) if log_path is not None else None
        self._log_fd = (
            os.open(self.log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
            if self.log_path is not None
            else -1
        )
        self._records: list[dict[str, Any]] = []
        self._cond = threading.Condition()
        self._stop = threading.Event()

    # ------------------------------------------------------------------ records
    def _log(self, event: str, t_ns: int, **fields: Any) -> None:
        rec = {"t_ns": t_ns, "event": event, **fields}
        if self._log_fd >= 0:
            os.write(self._log_fd, (json.dumps(rec) + "\n").encode())
        with self._cond:
            self._records.append(rec)
            if len(self._records) > 100_000:
                del self._records[:50_000]
            self._cond.notify_all()

    def records(self, event: str | None = None) -> list[dict[str, Any]]:
        """In-memory copy of the log records, optionally only one event kind."""
        with self._cond:
            return [r for r in self._records if event is None or r["event"] == event]

    def edges(self, channel: int | None = None) -> list[dict[str, Any]]:
        """Output edges so far (``{"t_ns", "channel", "on", "cause"}`` records)."""
        return [r for r in self.records("edge") if channel is None or r["channel"] == channel]

    def wait_for(
        self, predicate: Callable[[dict[str, Any]], bool], timeout_s: float = 5.0
    ) -> dict[str, Any] | None:
        """Block until a record satisfies ``predicate``; return it, or ``None`` on timeout."""
        deadline = time.monotonic() + timeout_s
        i = 0
        with self._cond:
            while True:
                while i < len(self._records):
                    if predicate(self._records[i]):
                        return self._records[i]
                    i += 1
                left = deadline - time.monotonic()
                if left <= 0:
                    return None
                self._cond.wait(left)

    # ------------------------------------------------------------------ the loop
    def stop(self) -> None:
        """Ask :meth:`run` to return (within about 50 ms)."""
        self._stop.set()

    def _send(self, lines: list[str], t_ns: int) -> None:
        for line in lines:
            try:
                os.write(self.fd, (line + "\n").encode("ascii", "replace"))
            except BlockingIOError:
                self._log("tx_dropped", t_ns, line=line, error="host is not reading")
                continue
            self._log("tx", t_ns, line=line)

    def _emit(self, replies: list[str], edges: list[protocol.Edge], t_ns: int) -> None:
        for e in edges:
            if e.cause in _TIMED:  # when it was due: how late this process's timer ran
                due_ns = self.state.off_at_ns[e.channel]
                self._log("edge", t_ns, channel=e.channel, on=e.state, cause=e.cause, due_ns=due_ns)
            else:
                self._log("edge", t_ns, channel=e.channel, on=e.state, cause=e.cause)
        self._send(replies, t_ns)

    def run(self) -> None:
        """Serve the link until :meth:`stop` is called or the descriptor fails."""
        os.set_blocking(self.fd, False)
        st = self.state
        now = time.monotonic_ns()
        st.feed(now)
        self._log(
            "start",
            now,
            pid=os.getpid(),
            n_channels=st.n_channels,
            max_on_ms=st.max_on_ms,
            watchdog_ms=st.watchdog_ms,
        )
        if self.banner:
            self._send([st.banner()], now)
        buf = b""
        discarding = False
        try:
            while not self._stop.is_set():
                now = time.monotonic_ns()
                self._emit(*st.tick(now), now)
                deadline = st.next_deadline_ns()
                timeout = _POLL_S if deadline is None else (deadline - now) / 1e9
                timeout = min(max(timeout, 0.0), _POLL_S)
                ready, _, _ = select.select([self.fd], [], [], timeout)
                if not ready:
                    continue
                try:
                    chunk = os.read(self.fd, 4096)
                except BlockingIOError:
                    continue
                t_rx = time.monotonic_ns()
                if not chunk:
                    self._log("link_closed", t_rx)
                    return
                st.feed(t_rx)
                self._emit(*st.tick(t_rx), t_rx)  # timers due before these bytes came first
                buf += chunk
                while True:
                    nl = buf.find(b"\n")
                    if nl < 0:
                        if len(buf) >= protocol.MAX_LINE_BYTES and not discarding:
                            err = protocol.ProtocolError(protocol.ERR_LONG, _printable(buf[:24]))
                            self._log("rx", t_rx, line=_printable(buf), error="LONG")
                            self._send([err.reply()], t_rx)
                            discarding = True
                        if discarding:
                            buf = b""
                        break
                    raw, buf = buf[:nl], buf[nl + 1 :]
                    if discarding:
                        discarding = False
                        continue
                    line = _printable(raw).strip()  # an empty line gets !ERR ARG, as on the board
                    self._log("rx", t_rx, line=line)
                    self._emit(*st.handle_line(line, t_rx), t_rx)
        except OSError as err:
            self._log("link_error", time.monotonic_ns(), error=str(err))
        finally:
            self._log("stop", time.monotonic_ns())

    def close(self) -> None:
        """Close the JSONL log."""
        if self._log_fd >= 0:
            fd, self._log_fd = self._log_fd, -1
            os.close(fd)


def read_log(path: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """Read an emulator JSONL log, ignoring a torn last line (the writer was killed mid-write)."""
    out = []
    for raw in Path(path).read_text(encoding="utf-8").splitlines():
        with contextlib.suppress(json.JSONDecodeError):
            out.append(json.loads(raw))
    return out


class EmulatorThread:
    """An emulator on a fresh pty pair, served by a thread of this process (for tests).

    Parameters
    ----------
    link
        Optional symlink to the host end (a stable port name that survives re-creation).
    log_path, n_channels, max_on_ms, watchdog_ms, banner
        As for :class:`Emulator`.

    Attributes
    ----------
    path
        What the host opens: ``link`` or the pty's device path.
    emulator
        The :class:`Emulator` (records, edges, wait_for).
    """

    def __init__(self, link: str | os.PathLike[str] | None = None, **emulator_options: Any) -> None:
        self.pty: PtyPair = open_pty_pair(link)
        self.path = self.pty.host_path
        self.emulator = Emulator(self.pty.far_fd, **emulator_options)
        self._thread = threading.Thread(target=self.emulator.run, name="emulator", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop serving, close the pty (the host sees the device vanish) and remove the link."""
        self.emulator.stop()
        self._thread.join(timeout=2.0)
        self.pty.close()
        self.emulator.close()

    def __enter__(self) -> EmulatorThread:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


class EmulatorProcess:
    """``python -m realtime_pose.hardware.testing.emulator`` in a child process (survives the
    death of the host).

    Use :func:`start_emulator_process` to create one.
    """

    def __init__(self, proc: subprocess.Popen[str], link: str, log_path: str | None) -> None:
        self.proc = proc
        self.link = link
        self.log_path = log_path

    def records(self, event: str | None = None) -> list[dict[str, Any]]:
        """The records in the emulator's JSONL log so far."""
        if self.log_path is None:
            raise ValueError("this emulator was started without a log file")
        return [r for r in read_log(self.log_path) if event is None or r["event"] == event]

    def stop(self, timeout_s: float = 5.0) -> int:
        """SIGTERM, wait, and return the exit code (SIGKILL if it does not exit)."""
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout_s)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout_s)
        if self.proc.stdout is not None:
            self.proc.stdout.close()
        return self.proc.returncode

    def __enter__(self) -> EmulatorProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def start_emulator_process(
    link: str | os.PathLike[str],
    log_path: str | os.PathLike[str] | None = None,
    *,
    n_channels: int = 8,
    max_on_ms: float = protocol.DEFAULT_MAX_ON_MS,
    watchdog_ms: int = protocol.DEFAULT_WATCHDOG_MS,
    timeout_s: float = 20.0,
) -> EmulatorProcess:
    """Start the emulator in a child process and wait until its link exists.

    Raises
    ------
    RuntimeError
        The child did not report ready within ``timeout_s`` (its output is in the message).
    """
    link = os.fspath(link)
    cmd = [
        sys.executable,
        "-m",
        "realtime_pose.hardware.testing.emulator",
        "--link",
        link,
        "--channels",
        str(n_channels),
        "--max-on-ms",
        str(max_on_ms),
        "--watchdog-ms",
        str(watchdog_ms),
    ]
    if log_path is not None:
        cmd += ["--log", os.fspath(log_path)]
    root = str(Path(__file__).resolve().parents[2])  # the repository (or site-packages) root
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH")) if p)
    proc = subprocess.Popen(
        cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env, cwd=root
    )
    assert proc.stdout is not None
    ready, _, _ = select.select([proc.stdout], [], [], timeout_s)
    first = proc.stdout.readline() if ready else ""
    if not first.startswith("ready "):
        proc.kill()
        rest = proc.communicate(timeout=5)[0] if proc.stdout else ""
        raise RuntimeError(f"emulator did not start ({' '.join(cmd)}): {first}{rest}")
    return EmulatorProcess(proc, link, None if log_path is None else os.fspath(log_path))


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry point (``python -m realtime_pose.hardware.testing.emulator``)."""
    parser = argparse.ArgumentParser(
        prog="python -m realtime_pose.hardware.testing.emulator",
        description="Emulate a realtime-pose output board on a pseudo-terminal.",
    )
    parser.add_argument("--link", required=True, help="symlink to create to the host end")
    parser.add_argument("--log", help="JSONL log of every line and output edge (appended)")
    parser.add_argument("--channels", type=int, default=8)
    parser.add_argument("--max-on-ms", type=float, default=protocol.DEFAULT_MAX_ON_MS)
    parser.add_argument("--watchdog-ms", type=int, default=protocol.DEFAULT_WATCHDOG_MS)
    parser.add_argument("--no-banner", action="store_true", help="do not send the boot banner")
    args = parser.parse_args(argv)
    try:
        pty = open_pty_pair(args.link)
    except OSError as err:
        print(f"cannot create the link {args.link!r}: {err}", file=sys.stderr)
        return 2
    emu = Emulator(
        pty.far_fd,
        n_channels=args.channels,
        max_on_ms=args.max_on_ms,
        watchdog_ms=args.watchdog_ms,
        log_path=args.log,
        banner=not args.no_banner,
    )

    def _stop(signum: int, frame: object) -> None:
        emu.stop()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    print(f"ready {args.link} {pty.device_path}", flush=True)
    try:
        emu.run()
    finally:
        pty.close()
        emu.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
