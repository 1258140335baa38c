"""NI-DAQmx digital output lines (the optional ``daq`` extra: ``pip install 'realtime-pose[daq]'``).

Each channel is one digital line, named the NI way (``"Dev1/port0/line0"``). The DAQmx tasks
are created and started once, in :meth:`DaqDevice.open`, and held until :meth:`~DaqDevice.close`:
creating a task per pulse costs milliseconds and would put that on every action. Lines of one
device share a task (one channel per line); a change of any line writes that task's whole state.

``set``/``pulse`` never touch the driver on the caller's thread: they update the wanted line
levels and hand a snapshot to a writer thread (a USB DAQ write takes about a millisecond).
Pulses and the maximum on-time are timed by the host (:class:`~.base.OutputDevice`'s
deadline thread), so unlike the serial board a DAQ line stays on if this process is killed
while it is high: use the serial board where that matters, or a hardware one-shot.

When a write fails (a USB DAQ unplugged), the failure is logged and counted, the tasks are
closed and re-created with exponential backoff; commands issued while disconnected are counted
as failed, never replayed, and after a reconnection every line is driven low.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
from pydantic import Field

from realtime_pose.hardware.action_log import ActionLog
from realtime_pose.hardware.base import (
    ChannelSpec,
    DeviceUnavailableError,
    OutputDevice,
    OutputOptions,
)
from realtime_pose.plugins import OUTPUTS
from realtime_pose.util.supervision import SupervisedThread

log = logging.getLogger(__name__)

INSTALL_HINT = (
    "install the Python package with `pip install 'realtime-pose[daq]'` (nidaqmx) and the NI-DAQmx "
    "driver from ni.com, or use the 'serial' or 'log' output device"
)


@dataclass(frozen=True, slots=True)
class _Write:
    """One task's wanted line levels, as queued for the writer thread."""

    t_submit_ns: int
    group: str
    levels: tuple[bool, ...]


_STOP = object()


def _import_nidaqmx() -> tuple[Any, Any, Any]:
    """``(nidaqmx, LineGrouping, DigitalMultiChannelWriter)``, or a DeviceUnavailableError."""
    try:
        import nidaqmx
        from nidaqmx.constants import LineGrouping
        from nidaqmx.stream_writers import DigitalMultiChannelWriter
    except ImportError as err:
        raise DeviceUnavailableError(
            f"the 'daq' output device needs the nidaqmx package, which is not importable "
            f"({err}); {INSTALL_HINT}"
        ) from err
    return nidaqmx, LineGrouping, DigitalMultiChannelWriter


def _device_of(line: str) -> str:
    return line.strip("/").split("/", 1)[0]


class DaqOptions(OutputOptions):
    """``outputs: {NAME: {kind: daq, channel: Dev1/port0/line0}}``: an NI-DAQmx line."""

    channel: str = Field(
        pattern=r"^/?[^/\s]+/[^\s]+$", description="the DAQmx line, e.g. Dev1/port0/line0"
    )
    active_high: bool = Field(default=True, description="on drives the line high")
    stale_after_s: float = Field(
        default=0.1, gt=0, description="drop a switch-on still queued after this long"
    )
    write_timeout_s: float = Field(default=1.0, gt=0, description="timeout of each DAQmx write")
    reconnect_initial_s: float = Field(default=0.1, gt=0, description="first retry delay")
    reconnect_max_s: float = Field(default=5.0, gt=0, description="largest retry delay")


@OUTPUTS.register("daq")
class DaqDevice(OutputDevice):
    """Digital output lines of National Instruments DAQ devices (NI-DAQmx).

    Parameters
    ----------
    channels
        ``{name: "Dev1/port0/line0", ...}`` or a list of line names (each named after itself).
        Lines may be on several devices; each device gets one task.
    max_on_s
        Maximum on-time (seconds, one value or ``{channel: seconds}``), enforced by the host.
    active_high
        ``True``: a channel that is on drives its line high. ``False`` for active-low drivers.
    stale_after_s
        A snapshot that switches something on and waited longer than this for the writer thread
        is dropped and counted as failed (a switch-off is always written).
    write_timeout_s
        Timeout passed to each DAQmx write.
    reconnect_initial_s, reconnect_max_s
        First and largest delay between attempts to re-create the tasks after a failure.
    name, action_log
        As for :class:`~.base.OutputDevice`.

    Examples
    --------
    >>> laser = DaqDevice({"laser": "Dev1/port0/line0"}, max_on_s=2.0)  # doctest: +SKIP
    >>> with laser:  # doctest: +SKIP
    ...     laser.pulse("laser", 0.010)
    """

    Options = DaqOptions
    default_max_on_s = 1.0
    host_timed_pulses = True

    def __init__(
        self,
        channels: ChannelSpec = None,
        *,
        max_on_s: float | Mapping[str, float] | None = None,
        active_high: bool = True,
        stale_after_s: float = 0.1,
        write_timeout_s: float = 1.0,
        reconnect_initial_s: float = 0.1,
        reconnect_max_s: float = 5.0,
        name: str | None = None,
        action_log: ActionLog | None = None,
    ) -> None:
        super().__init__(channels, max_on_s=max_on_s, name=name, action_log=action_log)
        for nm, line in zip(self._names, self._lines, strict=True):
            if not isinstance(line, str) or "/" not in line:
                raise ValueError(
                    f"DAQ channel {nm!r} must be mapped to a line name such as "
                    f"'Dev1/port0/line0', got {line!r}"
                )
        if not (stale_after_s > 0 and write_timeout_s > 0):
            raise ValueError("stale_after_s and write_timeout_s must be positive seconds")
        if not 0 < reconnect_initial_s <= reconnect_max_s:
            raise ValueError("need 0 < reconnect_initial_s <= reconnect_max_s")
        self.active_high = bool(active_high)
        self.stale_after_s = float(stale_after_s)
        self.write_timeout_s = float(write_timeout_s)
        self.reconnect_initial_s = float(reconnect_initial_s)
        self.reconnect_max_s = float(reconnect_max_s)
        # Channel indices per DAQ device, in line order; each group is one task.
        self._groups: dict[str, list[int]] = {}
        for i, line in enumerate(self._lines):
            self._groups.setdefault(_device_of(str(line)), []).append(i)
        self._group_of = {i: g for g, members in self._groups.items() for i in members}
        self._levels = [False] * len(self._names)
        self._tasks: dict[str, Any] = {}
        self._writers: dict[str, Any] = {}
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._writer: threading.Thread | None = None
        self._connected = False
        self._nidaqmx: Any = None
        self._line_grouping: Any = None
        self._writer_class: Any = None

    def _default_channels(self) -> ChannelSpec:
        raise ValueError(
            "the 'daq' device needs `channels`, e.g. {'laser': 'Dev1/port0/line0'} "
            "(line names as NI MAX shows them)"
        )

    # ------------------------------------------------------------------ lifecycle
    def _open(self) -> None:
        self._nidaqmx, self._line_grouping, self._writer_class = _import_nidaqmx()
        self._create_tasks()  # the first open is loud: a wrong line name must stop the start
        self._levels = [False] * len(self._names)
        self._drive_all_low()
        self._connected = True
        self._writer = SupervisedThread(self._run, f"{self.name}-writer")
        self._writer.start()

    def _close(self) -> None:
        writer, self._writer = self._writer, None
        if writer is not None:
            self._queue.put(_STOP)
            writer.join(timeout=max(2.0, 2 * self.write_timeout_s))
        self._close_tasks()
        self._connected = False

    def _create_tasks(self) -> None:
        """Create, configure and start one task per DAQ device; raise DeviceUnavailableError."""
        nidaqmx, grouping = self._nidaqmx, self._line_grouping
        tasks: dict[str, Any] = {}
        writers: dict[str, Any] = {}
        try:
            for group, members in self._groups.items():
                try:
                    task = nidaqmx.Task(f"{self.name}-{group}-{time.monotonic_ns()}")
                except Exception as err:  # DaqNotFoundError, OSError: driver missing
                    raise DeviceUnavailableError(
                        f"cannot create an NI-DAQmx task for device {group!r}: "
                        f"{str(err).rstrip('. ')}. The nidaqmx package is installed; install "
                        f"the NI-DAQmx driver from ni.com, or use the 'serial' or 'log' "
                        f"output device"
                    ) from err
                tasks[group] = task
                lines = [str(self._lines[i]) for i in members]
                try:
                    for line in lines:
                        task.do_channels.add_do_chan(line, line_grouping=grouping.CHAN_PER_LINE)
                    task.start()
                    # A stream writer skips the per-write channel queries of Task.write.
                    writer = self._writer_class(task.out_stream, auto_start=False)
                    writer.verify_array_shape = False
                    writers[group] = writer
                except Exception as err:  # DaqError: unknown device or line, line reserved
                    raise DeviceUnavailableError(
                        f"cannot open DAQ line(s) {lines} of device {self.name!r}: {err}. "
                        f"Check the device and line names in NI MAX (e.g. 'Dev1/port0/line0') "
                        f"and that no other program holds the lines."
                    ) from err
        except BaseException:
            for task in tasks.values():
                with contextlib.suppress(Exception):
                    task.close()
            raise
        self._tasks = tasks
        self._writers = writers

    def _close_tasks(self) -> None:
        tasks, self._tasks = self._tasks, {}
        self._writers = {}
        for group, task in tasks.items():
            try:
                task.close()
            except Exception as err:  # closing a task on a vanished device may fail
                log.debug("%s: closing the task of %s failed: %s", self.name, group, err)

    # ------------------------------------------------------------------ actions (caller thread)
    def _write_set(self, index: int, on: bool) -> None:
        # Runs under the base class lock, so snapshots are queued in the order levels changed.
        self._levels[index] = on
        group = self._group_of[index]
        levels = tuple(self._levels[i] for i in self._groups[group])
        self._queue.put(_Write(time.monotonic_ns(), group, levels))

    def _write_all_off(self) -> None:
        t_ns = time.monotonic_ns()
        self._levels = [False] * len(self._names)
        for group, members in self._groups.items():
            self._queue.put(_Write(t_ns, group, tuple(False for _ in members)))

    def _is_connected(self) -> bool:
        return self._connected

    def _pending(self) -> int:
        return self._queue.qsize()

    def line_levels(self) -> dict[str, bool]:
        """The levels the host wants on each channel now (``True`` = on)."""
        with self._lock:
            return dict(zip(self._names, self._levels, strict=True))

    # ------------------------------------------------------------------ writer thread
    def _write_group(self, group: str, levels: tuple[bool, ...]) -> None:
        data = np.fromiter((lvl == self.active_high for lvl in levels), bool, len(levels))
        self._writers[group].write_one_sample_one_line(data, timeout=self.write_timeout_s)

    def _drive_all_low(self) -> None:
        for group, members in self._groups.items():
            self._write_group(group, tuple(False for _ in members))
            self._note_sent()

    def _run(self) -> None:
        backoff_s = self.reconnect_initial_s
        next_attempt = 0.0
        while True:
            timeout = None if self._connected else max(0.0, next_attempt - time.monotonic())
            try:
                item = self._queue.get(timeout=timeout)
            except queue.Empty:
                item = None
            if item is _STOP:
                return
            if not self._connected and time.monotonic() >= next_attempt:
                if self._reconnect():
                    backoff_s = self.reconnect_initial_s
                    if item is not None and any(item.levels):
                        # Issued while the device was gone: never fire it late.
                        self._note_failure(
                            f"command for {item.group} issued while the DAQ was disconnected",
                            group=item.group,
                        )
                    continue
                next_attempt = time.monotonic() + backoff_s
                backoff_s = min(2 * backoff_s, self.reconnect_max_s)
            if item is None:
                continue
            if not self._connected:
                wait_s = max(0.0, next_attempt - time.monotonic())
                self._note_failure(
                    f"DAQ {item.group} is disconnected; command dropped "
                    f"(next reconnection attempt in {wait_s:.2f} s)",
                    group=item.group,
                )
                continue
            age_s = (time.monotonic_ns() - item.t_submit_ns) / 1e9
            if any(item.levels) and age_s > self.stale_after_s:
                self._note_failure(
                    f"dropped a stale command for {item.group}: it waited {age_s * 1e3:.1f} ms "
                    f"(stale_after_s={self.stale_after_s})",
                    group=item.group,
                )
                continue
            try:
                self._write_group(item.group, item.levels)
            except Exception as err:
                self._connected = False
                self._note_failure(
                    f"write to DAQ {item.group} failed: {err}; closing its tasks and retrying "
                    f"with backoff",
                    group=item.group,
                )
                self._close_tasks()
                next_attempt = time.monotonic() + backoff_s
                backoff_s = min(2 * backoff_s, self.reconnect_max_s)
                continue
            self._note_sent()
            self._record("write", group=item.group, levels=list(item.levels))

    def _reconnect(self) -> bool:
        try:
            self._create_tasks()
            self._drive_all_low()
        except Exception as err:
            self._close_tasks()
            self._note_error("reconnect_failed", f"re-creating the DAQ tasks failed: {err}")
            return False
        with self._lock:
            self._levels = [False] * len(self._names)
        self._forget_state()
        self._note_reconnect()
        self._connected = True
        log.info("%s: DAQ tasks re-created; every line driven low", self.name)
        self._record("reconnected")
        return True
