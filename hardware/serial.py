"""A serial output device speaking the realtime-pose line protocol (:mod:`.protocol`).

``set``/``pulse`` write the line from the caller's thread when the port takes it at once (a
non-blocking write with nothing queued ahead of it: no hand-off to another thread in the firing
path), and otherwise put it on a queue; a dedicated writer thread owns everything that can block
(a full buffer, reconnection, heartbeats), so the caller (the live loop) never waits on a USB
stack. A reader thread parses
the board's replies (acknowledgements, echoes, max on-time and watchdog events, ``!ERR``).

When the port disappears or a write fails, the writer closes it and re-opens it with exponential
backoff. Commands issued while disconnected are logged and counted as failed, never kept to fire
late; likewise a switch-on or pulse that waited longer than ``stale_after_s`` in the queue is
dropped (a switch-off is always sent: it is never harmful late). After a reconnection the board is
re-configured (maximum on-times, minimum off-times, duty-cycle limits, watchdog,
acknowledgements) and every channel is considered off.

Any pyserial URL works: ``/dev/ttyACM0``, ``COM3``, a pty path, ``loop://``.
"""

from __future__ import annotations

import collections
import contextlib
import io
import itertools
import logging
import os
import queue
import select
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import serial as pyserial
from pydantic import Field

from realtime_pose.hardware import protocol
from realtime_pose.hardware.action_log import ActionLog
from realtime_pose.hardware.base import (
    ChannelSpec,
    DeviceUnavailableError,
    OutputDevice,
    OutputOptions,
)
from realtime_pose.hardware.limits import HOLD_DUTY, HOLD_MIN_OFF
from realtime_pose.plugins import OUTPUTS
from realtime_pose.util.supervision import SupervisedThread

log = logging.getLogger(__name__)

_IO_ERRORS = (pyserial.SerialException, OSError, ValueError, TypeError, AttributeError)
"""What a vanished port raises from pyserial (closed fd → TypeError/AttributeError inside it)."""


@dataclass(slots=True)
class _Command:
    data: bytes
    event: str
    t_submit_ns: int
    index: int | None = None
    droppable: bool = False
    seq: int | None = None


_STOP = object()
_WAKE = object()


class _Waiter:
    __slots__ = ("event", "reply", "t_rx_ns", "t_tx_ns")

    def __init__(self) -> None:
        self.event = threading.Event()
        self.reply: protocol.Reply | None = None
        self.t_rx_ns = 0
        self.t_tx_ns = 0


class SerialOptions(OutputOptions):
    """``outputs: {NAME: {kind: serial, port: ..., channel: N}}``: a realtime-pose board."""

    port: str = Field(
        min_length=1, description="serial port or pyserial URL, e.g. /dev/ttyACM0, COM3"
    )
    channel: int = Field(default=0, ge=0, description="the board's output number")
    baudrate: int = Field(default=115_200, gt=0, description="UART adapters only")
    watchdog_ms: int = Field(
        default=protocol.DEFAULT_WATCHDOG_MS,
        ge=0,
        le=protocol.MAX_WATCHDOG_MS,
        description="the board switches everything off after this long without the host (0: off)",
    )
    confirm: bool = Field(default=False, description="ask the board to acknowledge each command")
    sequence: bool = Field(default=True, description="number every command")
    stale_after_s: float = Field(
        default=0.1, gt=0, description="drop a switch-on still queued after this long"
    )
    write_timeout_s: float = Field(
        default=0.5, gt=0, description="a write blocked this long reopens the port"
    )
    reconnect_initial_s: float = Field(default=0.05, gt=0, description="first reopen delay")
    reconnect_max_s: float = Field(default=2.0, gt=0, description="largest reopen delay")
    configure_board: bool = Field(default=True, description="send C/M/R/D/W on every connection")
    direct_write: bool = Field(
        default=True,
        description="write a line from the caller's thread when the port takes it at once "
        "(no hand-off to the writer thread); false: always through the writer thread",
    )


@OUTPUTS.register("serial")
class SerialDevice(OutputDevice):
    """An output board on a serial port (the realtime-pose sketch or the Python emulator).

    Parameters
    ----------
    port
        A pyserial URL or device path (``/dev/ttyACM0``, ``COM3``, ``/tmp/rig-laser``, ``loop://``).
    channels
        As for :class:`~.base.OutputDevice`; lines are the board's output numbers
        (non-negative integers). Default ``8`` (lines 0..7).
    baudrate
        Ignored by USB CDC boards and ptys, used by UART adapters.
    max_on_s
        Maximum on-time (seconds, one value or ``{channel: seconds}``), enforced by the host and
        sent to the board (``M`` command) so the board enforces it too if the host dies.
    watchdog_ms
        Host-silence timeout sent to the board (``W``): the board switches every output off when
        it hears nothing for this long. The writer sends a heartbeat (``K``) every quarter of it
        when idle, so only a dead or frozen host trips it. ``0`` disables it.
    confirm
        Ask the board to acknowledge every command (``C 1``); acknowledgements are recorded with
        their round-trip time.
    sequence
        Append a sequence number to every command (echoed by acknowledgements and ``!ERR``).
    stale_after_s
        A switch-on or pulse still queued after this long is dropped and counted as failed.
    write_timeout_s
        A write blocked this long counts as a failure and the port is re-opened.
    reconnect_initial_s, reconnect_max_s
        First and largest delay between re-open attempts (doubling in between).
    configure_board
        Send ``C``/``M``/``R``/``D``/``W`` on every (re)connection (the limits of
        :meth:`~.base.OutputDevice.set_limits` are the ``R`` and ``D`` lines).
    name, action_log
        As for :class:`~.base.OutputDevice`.
    """

    Options = SerialOptions
    default_max_on_s = 1.0
    host_timed_pulses = False  # the board times pulses (``P <ch> <ms>``) to the microsecond

    def __init__(
        self,
        port: str,
        channels: ChannelSpec = None,
        *,
        baudrate: int = 115_200,
        max_on_s: float | Mapping[str, float] | None = None,
        watchdog_ms: int = protocol.DEFAULT_WATCHDOG_MS,
        confirm: bool = False,
        sequence: bool = True,
        stale_after_s: float = 0.1,
        write_timeout_s: float = 0.5,
        reconnect_initial_s: float = 0.05,
        reconnect_max_s: float = 2.0,
        configure_board: bool = True,
        direct_write: bool = True,
        name: str | None = None,
        action_log: ActionLog | None = None,
    ) -> None:
        if not isinstance(port, str) or not port:
            raise ValueError(f"serial port must be a path or pyserial URL, got {port!r}")
        super().__init__(channels, max_on_s=max_on_s, name=name or port, action_log=action_log)
        for nm, line in zip(self._names, self._lines, strict=True):
            if not isinstance(line, int) or isinstance(line, bool) or line < 0:
                raise ValueError(
                    f"serial channel {nm!r} must map to a board output number (an integer >= 0), "
                    f"got {line!r}"
                )
        if not 0 <= int(watchdog_ms) <= protocol.MAX_WATCHDOG_MS:
            raise ValueError(
                f"watchdog_ms must be 0 (off) .. {protocol.MAX_WATCHDOG_MS}, got {watchdog_ms!r}"
            )
        for label, value in (
            ("stale_after_s", stale_after_s),
            ("write_timeout_s", write_timeout_s),
            ("reconnect_initial_s", reconnect_initial_s),
            ("reconnect_max_s", reconnect_max_s),
        ):
            if not value > 0:
                raise ValueError(f"{label} must be > 0 seconds, got {value!r}")
        self.port = port
        self.baudrate = int(baudrate)
        self.watchdog_ms = int(watchdog_ms)
        self.confirm = bool(confirm)
        self.sequence = bool(sequence)
        self.stale_after_ns = round(stale_after_s * 1e9)
        self.write_timeout_s = float(write_timeout_s)
        self.reconnect_initial_s = float(reconnect_initial_s)
        self.reconnect_max_s = float(reconnect_max_s)
        self.configure_board = bool(configure_board)
        self.direct_write = bool(direct_write)
        self.board_banner: str | None = None
        """The last ``V RPIO <version> <n_channels>`` line the board sent."""

        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._write_lock = threading.Lock()  # one writer at a time: the loop's or the thread's
        self._direct_ok = False  # the board is configured: lines may go out directly
        self._seq = itertools.count(1)
        self._cond = threading.Condition()
        self._port: Any = None  # pyserial.Serial while connected (guarded by _cond)
        self._lost: str | None = None
        self._reader_on: Any = None
        self._stopping = threading.Event()
        self._writer: threading.Thread | None = None
        self._reader: threading.Thread | None = None
        self._waiters: dict[int, _Waiter] = {}
        self._t_written: dict[int, int] = {}
        self._received: collections.deque[tuple[int, str]] = collections.deque(maxlen=10_000)
        self._connect_attempts = 0

    def _default_channels(self) -> ChannelSpec:
        return 8

    # ------------------------------------------------------------------ lifecycle
    def _open(self) -> None:
        try:
            port = self._open_port()
        except _IO_ERRORS as err:
            raise DeviceUnavailableError(
                f"cannot open serial port {self.port!r}: {err}. Is the board plugged in and the "
                "path right (ls /dev/ttyACM* /dev/ttyUSB*)? Is another program using it? "
                "On Linux the user needs to be in the 'dialout' group."
            ) from None
        self._stopping.clear()
        with self._cond:
            self._port = port
            self._lost = None
        stop = self._stopping.is_set
        self._writer = SupervisedThread(self._write_loop, f"{self.name}-writer", should_stop=stop)
        self._reader = SupervisedThread(self._read_loop, f"{self.name}-reader", should_stop=stop)
        self._reader.start()
        self._writer.start()
        self._record("connected", port=self.port)

    def _close(self) -> None:
        self._queue.put(_STOP)
        if self._writer is not None:
            self._writer.join(timeout=self.write_timeout_s + 2.0)
        self._stopping.set()
        with self._cond:
            self._cond.notify_all()
        if self._reader is not None:
            self._reader.join(timeout=2.0)
        with self._cond:
            port, self._port = self._port, None
        if port is not None:  # the writer did not finish in time
            self._close_port(port)

    def _is_connected(self) -> bool:
        return self._port is not None and self._lost is None

    def _pending(self) -> int:
        return self._queue.qsize()

    # ------------------------------------------------------------------ commands
    def _next_seq(self) -> int:
        return (next(self._seq) - 1) % protocol.MAX_SEQ + 1

    def _submit(self, data_for_seq: Any, event: str, index: int | None, droppable: bool) -> None:
        seq = self._next_seq() if self.sequence else None
        cmd = _Command(data_for_seq(seq), event, time.monotonic_ns(), index, droppable, seq)
        if not self._is_connected():
            if index is not None:
                self._forget_on(index)  # nothing reached the board
            self._note_failure(
                f"{event} not sent: serial port {self.port!r} is disconnected (reconnecting)",
                index,
                cmd=event,
                line=cmd.data.decode().strip(),
            )
            return
        if self._try_direct(cmd):
            return
        self._queue.put(cmd)

    def _try_direct(self, cmd: _Command) -> bool:
        """Write ``cmd`` now, from the caller's thread, when that keeps the order of lines (the
        board configured, nothing queued, the writer thread not writing) and the port takes it
        at once; ``False``: queue it for the writer thread."""
        if not (self.direct_write and self._direct_ok and self._queue.empty()):
            return False
        if not self._write_lock.acquire(blocking=False):
            return False
        try:
            return self._direct_ok and self._queue.empty() and self._write_now(cmd)
        finally:
            self._write_lock.release()

    def _write_now(self, cmd: _Command) -> bool:
        """Write ``cmd`` from the caller's thread if the port takes it without waiting; ``True``
        when it is handled (written, or failed and counted), ``False`` to queue it instead.
        Call with the write lock held and nothing queued."""
        port = self._port
        try:
            fd = port.fileno()
        except (NotImplementedError, io.UnsupportedOperation, *_IO_ERRORS):
            return False  # loop:// and other URL handlers, or a port going away: the writer
        if fd is None:
            return False
        self._note_tx(cmd)
        t_write_ns = time.monotonic_ns()
        try:
            written = os.write(fd, cmd.data)
        except (BlockingIOError, InterruptedError):
            return False
        except OSError as err:
            self._fail(cmd, f"write to {self.port!r} failed: {err}")
            self._mark_lost(port, f"write failed: {err}")
            return True
        if written < len(cmd.data):  # the rest goes first in the writer's queue, in order
            self._queue.put(_Command(cmd.data[written:], cmd.event, cmd.t_submit_ns, cmd.index))
            return True
        self._note_written(cmd, t_write_ns, direct=True)
        return True

    def _write_set(self, index: int, on: bool) -> None:
        line = self._lines[index]
        self._submit(
            lambda seq: protocol.encode_set(line, on, seq),
            "write_on" if on else "write_off",
            index,
            droppable=on,
        )

    def _write_pulse(self, index: int, duration_ns: int) -> None:
        line = self._lines[index]
        ms = duration_ns / 1e6
        self._submit(lambda seq: protocol.encode_pulse(line, ms, seq), "write_pulse", index, True)

    def _write_all_off(self) -> None:
        self._submit(protocol.encode_all_off, "write_all_off", None, droppable=False)

    def echo(self, timeout_s: float = 1.0) -> int | None:
        """Round trip to the board: send ``E <seq>``, wait for ``E <seq>``.

        Blocks the caller (a diagnostic, not for the live loop).

        Returns
        -------
        int or None
            Nanoseconds from the write to the reply's arrival, or ``None`` on timeout / when
            disconnected.
        """
        reply = self._request(protocol.encode_echo, timeout_s, "echo")
        return None if reply is None else reply[1]

    def query(self, channel: str | int, timeout_s: float = 1.0) -> dict[str, Any] | None:
        """Ask the board for a channel's state (``Q``).

        Returns
        -------
        dict or None
            ``{"on": bool, "remaining_ms": int, "max_on_ms": float}`` as the board reports it, or
            ``None`` on timeout.
        """
        line = self._lines[self._resolve(channel)]
        reply = self._request(lambda s: protocol.encode_query(line, s), timeout_s, "query")
        if reply is None:
            return None
        f = reply[0].fields
        return {"on": f[1] == "1", "remaining_ms": int(f[2]), "max_on_ms": float(f[3])}

    def version(self, timeout_s: float = 1.0) -> str | None:
        """Ask the board for its banner (``V RPIO <protocol version> <n_channels>``)."""
        reply = self._request(protocol.encode_version, timeout_s, "version")
        return None if reply is None else " ".join(reply[0].line.split()[:4])

    def _request(
        self, encode: Any, timeout_s: float, event: str
    ) -> tuple[protocol.Reply, int] | None:
        if not self.is_open or not self._is_connected():
            return None
        seq = self._next_seq()
        waiter = _Waiter()
        self._waiters[seq] = waiter
        try:
            self._queue.put(_Command(encode(seq), event, time.monotonic_ns(), None, False, seq))
            if not waiter.event.wait(timeout_s) or waiter.reply is None:
                self._record(f"{event}_timeout", seq=seq, timeout_s=timeout_s)
                return None
            rtt_ns = waiter.t_rx_ns - waiter.t_tx_ns
            self._record(event, seq=seq, rtt_ns=rtt_ns, reply=waiter.reply.line)
            return waiter.reply, rtt_ns
        finally:
            self._waiters.pop(seq, None)

    def received(self) -> list[tuple[int, str]]:
        """Lines received from the board so far as ``(monotonic_ns, line)`` (last 10 000)."""
        return list(self._received)

    # ------------------------------------------------------------------ the writer thread
    def _open_port(self) -> Any:
        self._connect_attempts += 1
        return pyserial.serial_for_url(
            self.port, baudrate=self.baudrate, timeout=0.05, write_timeout=self.write_timeout_s
        )

    def _write_all(self, port: Any, data: bytes) -> None:
        """Write every byte or raise; waits in ``select`` (pyserial busy-loops on a full buffer)."""
        try:
            fd = port.fileno()
        except (AttributeError, NotImplementedError, io.UnsupportedOperation):
            port.write(data)  # loop:// and other URL handlers
            return
        if fd is None:
            raise pyserial.PortNotOpenError()
        deadline = time.monotonic() + self.write_timeout_s
        view = memoryview(data)
        while view:
            try:
                view = view[os.write(fd, view) :]
                continue
            except (BlockingIOError, InterruptedError):
                pass
            left = deadline - time.monotonic()
            if left <= 0:
                raise pyserial.SerialTimeoutException(
                    f"write timeout: the device took no data for {self.write_timeout_s} s"
                )
            _, writable, _ = select.select([], [fd], [], left)
            if writable:
                time.sleep(0.0005)  # a pty may report room before it has any; do not spin

    def _limit_lines(self, index: int) -> list[bytes]:
        """``R`` and ``D`` for a channel: its minimum off-time and duty limit, as the board
        takes them (sent even without limits, so a board that kept older ones forgets them)."""
        limits, line = self._limits[index], self._lines[index]
        window_ms = limits.duty_window_ns / 1e6 or 1000.0
        on_ms = limits.duty_on_ns / 1e6 if limits.duty_limited else window_ms
        return [
            protocol.encode_min_off(line, limits.min_off_ns / 1e6),
            protocol.encode_duty(line, on_ms, window_ms),
        ]

    def _limits_changed(self, index: int) -> None:
        if self.is_open and self._is_connected() and self.configure_board:
            for data in self._limit_lines(index):
                self._queue.put(_Command(data, "write_limits", time.monotonic_ns(), index))

    def _configure(self, port: Any) -> None:
        if not self.configure_board:
            return
        lines = [protocol.encode_confirm(self.confirm)]
        for i, line in enumerate(self._lines):
            lines.append(protocol.encode_max_on(line, self._max_on_ns[i] / 1e6))
            lines.extend(self._limit_lines(i))
        lines.append(protocol.encode_watchdog(self.watchdog_ms))
        self._write_all(port, b"".join(lines))
        self._record("configured", lines=[x.decode().strip() for x in lines])

    def _write_loop(self) -> None:
        heartbeat_s = self.watchdog_ms / 4000 if self.watchdog_ms else None
        heartbeat = protocol.encode_heartbeat()
        with self._cond:
            port = self._port
        try:
            with self._write_lock:
                self._configure(port)
                self._direct_ok = True
        except _IO_ERRORS as err:
            self._mark_lost(port, f"configuring the board failed: {err}")
        while True:
            if self._lost is not None:
                with self._write_lock:  # no direct write in flight on the port being dropped
                    self._direct_ok = False
                self._drop_port()
                if not self._reconnect():
                    return
                continue
            try:
                item = self._queue.get(timeout=heartbeat_s)
            except queue.Empty:
                try:
                    with self._write_lock:
                        self._write_all(self._port, heartbeat)
                except _IO_ERRORS as err:
                    self._mark_lost(self._port, f"heartbeat write failed: {err}")
                continue
            if item is _STOP:
                with self._write_lock:
                    self._direct_ok = False
                self._drop_port()
                return
            if item is _WAKE:
                continue
            with self._write_lock:
                self._write_command(item)

    def _write_command(self, cmd: _Command) -> None:
        port = self._port
        if port is None or self._lost is not None:
            self._fail(cmd, f"serial port {self.port!r} is disconnected")
            return
        age_ns = time.monotonic_ns() - cmd.t_submit_ns
        if cmd.droppable and age_ns > self.stale_after_ns:
            self._fail(cmd, f"stale: waited {age_ns / 1e6:.1f} ms in the queue, not sent late")
            return
        self._note_tx(cmd)
        t_write_ns = time.monotonic_ns()
        try:
            self._write_all(port, cmd.data)
        except _IO_ERRORS as err:
            self._fail(cmd, f"write to {self.port!r} failed: {err}")
            self._mark_lost(port, f"write failed: {err}")
            return
        self._note_written(cmd, t_write_ns, direct=False)

    def _note_tx(self, cmd: _Command) -> None:
        """Note when a command numbered for confirmation leaves (for its round trip)."""
        if cmd.seq is None:
            return
        waiter = self._waiters.get(cmd.seq)
        if waiter is not None:
            waiter.t_tx_ns = time.monotonic_ns()
        elif self.confirm:
            if len(self._t_written) > 10_000:
                self._t_written.clear()
            self._t_written[cmd.seq] = time.monotonic_ns()

    def _note_written(self, cmd: _Command, t_write_ns: int, direct: bool) -> None:
        """Count and record a command the port took (``direct``: from the caller's thread)."""
        t_ns = time.monotonic_ns()
        self._note_sent()
        self._record(
            "sent",
            cmd.index,
            t_ns=t_ns,
            cmd=cmd.event,
            line=cmd.data.decode().strip(),
            queued_ns=t_ns - cmd.t_submit_ns,
            t_write_ns=t_write_ns,
            direct=direct,
            thread=threading.current_thread().name,
        )

    def _fail(self, cmd: _Command, message: str) -> None:
        fields: dict[str, Any] = {"cmd": cmd.event, "line": cmd.data.decode().strip()}
        if cmd.index is None:
            self._note_failure(message, **fields)
        else:
            self._note_failure(message, cmd.index, **fields)
        waiter = self._waiters.get(cmd.seq) if cmd.seq is not None else None
        if waiter is not None:
            waiter.event.set()

    def _mark_lost(self, port: Any, message: str) -> None:
        with self._cond:
            if port is None or self._port is not port or self._lost is not None:
                return
            self._lost = message
            self._direct_ok = False
        self._note_error("disconnected", f"lost serial port {self.port!r}: {message}")
        self._queue.put(_WAKE)

    def _drop_port(self) -> None:
        with self._cond:
            port, self._port = self._port, None
            if port is not None:
                cancel = getattr(port, "cancel_read", None)
                if cancel is not None:
                    with contextlib.suppress(_IO_ERRORS):
                        cancel()
                deadline = time.monotonic() + 1.0
                while self._reader_on is port and time.monotonic() < deadline:
                    self._cond.wait(0.1)
        if port is not None:
            self._close_port(port)

    @staticmethod
    def _close_port(port: Any) -> None:
        with contextlib.suppress(_IO_ERRORS):
            port.close()

    def _reconnect(self) -> bool:
        """Re-open the port with exponential backoff; fail queued commands meanwhile."""
        delay = self.reconnect_initial_s
        attempt = 0
        while True:
            deadline = time.monotonic() + delay
            while (left := deadline - time.monotonic()) > 0:
                try:
                    item = self._queue.get(timeout=left)
                except queue.Empty:
                    break
                if item is _STOP:
                    return False
                if isinstance(item, _Command):
                    self._fail(item, f"serial port {self.port!r} is disconnected")
            attempt += 1
            try:
                port = self._open_port()
                self._configure(port)
            except _IO_ERRORS as err:
                self._record("reconnect_failed", attempt=attempt, error=str(err), delay_s=delay)
                log.debug("%s: reconnect attempt %d failed: %s", self.name, attempt, err)
                delay = min(delay * 2, self.reconnect_max_s)
                continue
            self._forget_state()
            with self._cond:
                self._port = port
                self._lost = None
                self._direct_ok = True
                self._cond.notify_all()
            self._note_reconnect()
            log.warning("%s: reconnected to %r after %d attempt(s)", self.name, self.port, attempt)
            self._record("reconnected", attempt=attempt)
            return True

    # ------------------------------------------------------------------ the reader thread
    def _read_loop(self) -> None:
        buf = b""
        current: Any = None
        while not self._stopping.is_set():
            with self._cond:
                port = self._port if self._lost is None else None
                if port is None:
                    self._reader_on = None
                    self._cond.notify_all()
                    self._cond.wait(0.1)
                    continue
                self._reader_on = port
            if port is not current:
                current, buf = port, b""
            try:
                chunk = port.read(max(1, port.in_waiting))
            except _IO_ERRORS as err:
                with self._cond:
                    self._reader_on = None
                    self._cond.notify_all()
                if not self._stopping.is_set():
                    self._mark_lost(port, f"read failed: {err}")
                continue
            with self._cond:
                self._reader_on = None
                self._cond.notify_all()
            if not chunk:
                continue
            t_ns = time.monotonic_ns()
            buf += chunk
            if b"\n" not in buf:
                if len(buf) > 4096:
                    buf = b""
                continue
            *lines, buf = buf.split(b"\n")
            for raw in lines:
                text = raw.decode("ascii", "replace").strip()
                if text:
                    self._received.append((t_ns, text))
                    self._handle_reply(protocol.parse_reply(text), t_ns)

    def _handle_reply(self, reply: protocol.Reply, t_ns: int) -> None:
        kind = reply.kind
        if kind == protocol.REPLY_ERROR:
            self._board_error(reply)
            return
        if kind == protocol.REPLY_EVENT:
            f = reply.fields
            if len(f) >= 2 and f[1] == "WDG":
                self._note_error("device_watchdog", "the board's host-silence watchdog fired")
            elif len(f) >= 3 and f[1] == "HELD" and f[0].isdigit():
                self._board_held(int(f[0]), f[2], reply.line)
            else:
                self._record("device_event", t_ns=t_ns, reply=reply.line)
            return
        seq = reply.seq
        waiter = self._waiters.get(seq) if seq is not None else None
        if waiter is not None:
            waiter.reply, waiter.t_rx_ns = reply, t_ns
            waiter.event.set()
            return
        if kind == protocol.REPLY_ACK:
            t_tx = self._t_written.pop(seq, None) if seq is not None else None
            rtt = None if t_tx is None else t_ns - t_tx
            self._record("ack", t_ns=t_ns, seq=seq, rtt_ns=rtt, reply=reply.line)
        elif kind == protocol.REPLY_VERSION and len(reply.fields) >= 3:
            self.board_banner = " ".join(reply.line.split()[:4])
            self._record("board", t_ns=t_ns, banner=self.board_banner)
        else:
            log.debug("%s: unexpected line from the board: %r", self.name, reply.line)

    def _board_held(self, line: int, why: str, text: str) -> None:
        """``X <ch> HELD MINOFF|DUTY [seq]``: the board refused a switch-on the host allowed
        (their clocks differ by the link's latency); counted with the host's own hold-offs."""
        index = self._index.get(line)
        if index is None or why not in (protocol.HELD_MIN_OFF, protocol.HELD_DUTY):
            self._record("device_event", reply=text)
            return
        cause = HOLD_MIN_OFF if why == protocol.HELD_MIN_OFF else HOLD_DUTY
        self._note_device_hold(index, cause, reply=text)

    def _board_error(self, reply: protocol.Reply) -> None:
        f = reply.fields
        if len(f) >= 2 and f[0] == protocol.ERR_CMD and f[1].upper() in ("R", "D"):
            # A sketch older than the minimum off-time and duty limits: harmless while no
            # output asks for them (the host enforces them anyway), an error otherwise.
            limited = any(lim.min_off_ns or lim.duty_limited for lim in self._limits)
            if not limited:
                self._record("board_lacks_limits", reply=reply.line)
                return
            self._note_device_error(
                f"{reply.line}: the board's sketch predates the minimum off-time and duty-cycle "
                "limits, so only the host enforces them; flash "
                "hardware/firmware/realtime_pose_io/realtime_pose_io.ino from this version"
            )
            return
        self._note_device_error(reply.line)
