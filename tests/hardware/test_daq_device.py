"""The NI-DAQmx output device.

No NI driver or device exists here, so most tests put a small stand-in for the third-party
``nidaqmx`` package in ``sys.modules`` (a fake of NI's API, not of our code): it records every
task created and every write with its time, and can be "unplugged". The real ``DaqDevice`` runs
unchanged against it. The missing-package test uses this machine as it is (no ``nidaqmx``), and
the hardware test runs only on a rig that sets ``REALTIME_POSE_DAQ_LINE``.
"""

from __future__ import annotations

import importlib.util
import os
import sys
import threading
import time
import types
from typing import Any

import numpy as np
import pytest

from realtime_pose.hardware import open_device
from realtime_pose.hardware.action_log import ActionLog
from realtime_pose.hardware.base import DeviceUnavailableError
from realtime_pose.hardware.daq import DaqDevice

HAVE_NIDAQMX = importlib.util.find_spec("nidaqmx") is not None


class FakeDaqError(Exception):
    """What the stand-in raises, like nidaqmx.errors.DaqError."""


class FakeNidaqmx:
    """The subset of nidaqmx (1.x) that DaqDevice uses: Task, do_channels.add_do_chan, start,
    close, and stream_writers.DigitalMultiChannelWriter.write_one_sample_one_line.

    ``writes`` holds ``(monotonic_ns, task lines, line levels as a tuple of bools)``.
    """

    def __init__(self) -> None:
        self.tasks: list[Any] = []
        self.writes: list[tuple[int, tuple[str, ...], tuple[bool, ...]]] = []
        self.unplugged = False
        self.known_devices = {"Dev1", "Dev2"}
        self.write_gate: threading.Event | None = None
        self.cond = threading.Condition()

    def module(self) -> types.ModuleType:
        fake = self

        class Task:
            def __init__(self, new_task_name: str = "") -> None:
                if fake.unplugged:
                    raise FakeDaqError("Device identifier is invalid (device removed)")
                self.name = new_task_name
                self.lines: list[str] = []
                self.started = False
                self.closed = False
                self.do_channels = types.SimpleNamespace(add_do_chan=self._add_do_chan)
                self.out_stream = types.SimpleNamespace(_task=self)
                fake.tasks.append(self)

            def _add_do_chan(self, lines: str, line_grouping: Any = None) -> None:
                assert line_grouping == "chan_per_line"
                if lines.split("/")[0] not in fake.known_devices:
                    raise FakeDaqError(f"Device identifier is invalid: {lines}")
                self.lines.append(lines)

            def start(self) -> None:
                self.started = True

            def close(self) -> None:
                self.closed = True

        class DigitalMultiChannelWriter:
            def __init__(self, task_out_stream: Any, auto_start: Any = None) -> None:
                assert auto_start is False, "the task is started once; writes must not start it"
                self.task = task_out_stream._task
                self.verify_array_shape = True

            def write_one_sample_one_line(self, data: np.ndarray, timeout: float = 10) -> None:
                if fake.write_gate is not None:
                    fake.write_gate.wait(10)
                if fake.unplugged:
                    raise FakeDaqError("The device was removed (-201003)")
                task = self.task
                assert task.started and not task.closed
                assert data.dtype == bool and data.shape == (len(task.lines),)
                with fake.cond:
                    levels = tuple(bool(x) for x in data)
                    fake.writes.append((time.monotonic_ns(), tuple(task.lines), levels))
                    fake.cond.notify_all()

        mod = types.ModuleType("nidaqmx")
        mod.Task = Task  # type: ignore[attr-defined]
        constants = types.ModuleType("nidaqmx.constants")
        constants.LineGrouping = types.SimpleNamespace(  # type: ignore[attr-defined]
            CHAN_PER_LINE="chan_per_line", CHAN_FOR_ALL_LINES="chan_for_all_lines"
        )
        mod.constants = constants  # type: ignore[attr-defined]
        writers = types.ModuleType("nidaqmx.stream_writers")
        writers.DigitalMultiChannelWriter = DigitalMultiChannelWriter  # type: ignore[attr-defined]
        mod.stream_writers = writers  # type: ignore[attr-defined]
        return mod

    def wait_writes(self, n: int, timeout_s: float = 5.0) -> list[tuple[int, tuple[str, ...], Any]]:
        deadline = time.monotonic() + timeout_s
        with self.cond:
            while len(self.writes) < n and time.monotonic() < deadline:
                self.cond.wait(0.05)
            return list(self.writes)


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> FakeNidaqmx:
    driver = FakeNidaqmx()
    mod = driver.module()
    monkeypatch.setitem(sys.modules, "nidaqmx", mod)
    monkeypatch.setitem(sys.modules, "nidaqmx.constants", mod.constants)
    monkeypatch.setitem(sys.modules, "nidaqmx.stream_writers", mod.stream_writers)
    return driver


def wait_until(predicate, timeout_s: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.01)
    return predicate()


@pytest.mark.skipif(HAVE_NIDAQMX, reason="nidaqmx is installed here; this checks its absence")
def test_missing_nidaqmx_is_one_clear_error() -> None:
    with pytest.raises(DeviceUnavailableError) as info:
        open_device("daq", channels={"laser": "Dev1/port0/line0"})
    message = str(info.value)
    assert "nidaqmx" in message and "realtime-pose[daq]" in message and "ni.com" in message
    assert "\n" not in message


def _driver_present() -> bool:
    try:
        import nidaqmx.system

        nidaqmx.system.System.local().driver_version  # noqa: B018 - raises without a driver
    except Exception:
        return False
    return True


@pytest.mark.skipif(not HAVE_NIDAQMX, reason="needs the nidaqmx package (the 'daq' extra)")
def test_missing_driver_is_one_clear_error() -> None:
    if _driver_present():
        pytest.skip("the NI-DAQmx driver is installed here")
    with pytest.raises(DeviceUnavailableError) as info:
        open_device("daq", channels={"laser": "Dev1/port0/line0"})
    message = str(info.value)
    assert "NI-DAQmx driver" in message and "ni.com" in message and "\n" not in message


def test_lines_must_be_daq_line_names() -> None:
    with pytest.raises(ValueError, match="Dev1/port0/line0"):
        DaqDevice({"laser": 3})
    with pytest.raises(ValueError, match="needs `channels`"):
        DaqDevice()


def test_unknown_device_at_open_names_the_lines_and_closes_tasks(fake: FakeNidaqmx) -> None:
    dev = DaqDevice({"ok": "Dev1/port0/line0", "bad": "Dev9/port0/line1"})
    with pytest.raises(DeviceUnavailableError, match=r"Dev9/port0/line1.*NI MAX"):
        dev.open()
    assert fake.tasks and all(t.closed for t in fake.tasks)
    assert not dev.is_open


def test_tasks_are_created_once_and_pulses_are_timed_by_the_host(fake: FakeNidaqmx) -> None:
    dev = DaqDevice({"laser": "Dev1/port0/line0", "valve": "Dev1/port0/line1"}, max_on_s=5.0)
    with dev:
        assert len(fake.tasks) == 1 and fake.tasks[0].started
        assert fake.tasks[0].lines == ["Dev1/port0/line0", "Dev1/port0/line1"]
        assert fake.wait_writes(1)[0][2] == (False, False)  # driven low at open
        for _ in range(20):
            dev.pulse("valve", 0.002)
            time.sleep(0.005)
        dev.pulse("laser", 0.08)
        writes = fake.wait_writes(1 + 40 + 2)
        assert len(fake.tasks) == 1, "a task must not be created per pulse"
        on = next(w for w in writes if w[2] == (True, False))
        off = next(w for w in writes if w[0] > on[0] and w[2] == (False, False))
        assert (off[0] - on[0]) / 1e9 >= 0.08 * 0.95  # never shorter than asked
        assert (off[0] - on[0]) / 1e9 < 0.08 + 1.0  # generous: a noisy shared machine
        assert dev.health().sent == len(writes)
    assert fake.tasks[0].closed
    assert fake.writes[-1][2] == (False, False)


def test_max_on_time_cuts_a_line_left_on(fake: FakeNidaqmx) -> None:
    with DaqDevice({"laser": "Dev1/port0/line0"}, max_on_s=0.15) as dev:
        dev.set("laser", True)
        writes = fake.wait_writes(3)  # low at open, high, low at max on-time
        assert [w[2] for w in writes[:3]] == [(False,), (True,), (False,)]
        assert (writes[2][0] - writes[1][0]) / 1e9 >= 0.15 * 0.95
        assert dev.health().auto_offs == 1
        assert not dev.is_on("laser")


def test_active_low_and_one_task_per_device(fake: FakeNidaqmx) -> None:
    channels = {"a": "Dev1/port0/line0", "b": "Dev2/port1/line3"}
    with DaqDevice(channels, active_high=False) as dev:
        assert sorted(t.lines[0] for t in fake.tasks) == sorted(channels.values())
        fake.wait_writes(2)
        dev.set("b", True)
        writes = fake.wait_writes(3)
        assert writes[2][1] == ("Dev2/port1/line3",) and writes[2][2] == (False,)  # on = low
        assert dev.line_levels() == {"a": False, "b": True}


def test_set_does_not_wait_for_the_driver(fake: FakeNidaqmx) -> None:
    with DaqDevice({"laser": "Dev1/port0/line0"}) as dev:
        fake.wait_writes(1)
        fake.write_gate = threading.Event()  # every driver write now blocks until released
        dev.set("laser", True)
        dev.set("laser", False)  # both calls returned although no write has completed
        assert len(fake.writes) == 1
        assert dev.health().pending >= 1
        fake.write_gate.set()
        assert [w[2] for w in fake.wait_writes(3)] == [(False,), (True,), (False,)]


def test_unplugged_daq_is_counted_and_reconnected(fake: FakeNidaqmx) -> None:
    actions = ActionLog()
    dev = DaqDevice(
        {"laser": "Dev1/port0/line0"},
        reconnect_initial_s=0.05,
        reconnect_max_s=0.2,
        action_log=actions,
    ).open()
    try:
        fake.wait_writes(1)
        fake.unplugged = True
        dev.pulse("laser", 0.01)  # the write fails on the writer thread, never here
        assert wait_until(lambda: not dev.health().connected)
        failed_before = dev.health().failed
        assert failed_before >= 1
        first = actions.records("failed")[0]["error"]
        assert "write to DAQ Dev1 failed" in first and "device was removed" in first
        dev.set("laser", True)  # while disconnected: dropped and counted, not queued
        assert wait_until(lambda: dev.health().failed > failed_before)
        n_tasks = len(fake.tasks)
        time.sleep(0.3)  # backoff attempts fail while unplugged
        assert len(fake.tasks) == n_tasks and dev.health().reconnects == 0
        n_writes = len(fake.writes)
        fake.unplugged = False
        assert wait_until(lambda: dev.health().reconnects == 1)
        assert dev.health().connected
        assert fake.writes[n_writes][2] == (False,)  # every line driven low after reconnecting
        assert not any(w[2] == (True,) for w in fake.writes[n_writes:]), "an old 'on' fired late"
        dev.pulse("laser", 0.01)
        assert any(w[2] == (True,) for w in fake.wait_writes(len(fake.writes) + 1))
    finally:
        dev.close()
    assert fake.writes[-1][2] == (False,)


@pytest.mark.skipif(
    not (HAVE_NIDAQMX and os.environ.get("REALTIME_POSE_DAQ_LINE")),
    reason="needs nidaqmx, an NI device and REALTIME_POSE_DAQ_LINE=Dev1/port0/line0 (rig only)",
)
def test_real_daq_line_pulses() -> None:  # pragma: no cover - rig only
    line = os.environ["REALTIME_POSE_DAQ_LINE"]
    with DaqDevice({"out": line}, max_on_s=0.5) as dev:
        dev.pulse("out", 0.01)
        time.sleep(0.1)
        dev.set("out", True)
        time.sleep(0.7)
        health = dev.health()
    assert health.connected and health.failed == 0 and health.auto_offs == 1
