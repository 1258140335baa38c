"""Host and board in separate processes: a SIGKILLed host cannot leave an output on."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from realtime_pose.hardware.testing.emulator import start_emulator_process
from tests.hardware.conftest import WAIT_S, wait_until

ROOT = Path(__file__).resolve().parents[2]
MS = 1_000_000

_HOST = """
import sys, time
from realtime_pose.hardware.serial import SerialDevice
dev = SerialDevice(
    sys.argv[1], 2, max_on_s=float(sys.argv[2]), watchdog_ms=int(sys.argv[3])
).open()
dev.set(0, True)
print("on", flush=True)
time.sleep(60)
"""


def _start_host(port: str, max_on_s: float, watchdog_ms: int) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(_HOST), port, str(max_on_s), str(watchdog_ms)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )


def _kill_host_after_on(host: subprocess.Popen, emu) -> int:
    """Wait until the board switched channel 0 on, SIGKILL the host; return the kill time."""
    try:
        assert host.stdout.readline().strip() == "on", host.stderr.read()
        wait_until(lambda: [r for r in emu.records("edge") if r["on"]])
    finally:
        t_kill_ns = time.monotonic_ns()
        host.send_signal(signal.SIGKILL)
        host.communicate(timeout=WAIT_S)
    assert host.returncode == -signal.SIGKILL
    return t_kill_ns


@pytest.mark.timeout(60)
def test_board_max_on_time_switches_off_after_the_host_is_killed(tmp_path):
    log = tmp_path / "board.jsonl"
    with start_emulator_process(tmp_path / "rig-laser", log, n_channels=2) as emu:
        host = _start_host(emu.link, max_on_s=0.4, watchdog_ms=0)
        t_kill_ns = _kill_host_after_on(host, emu)
        wait_until(lambda: len(emu.records("edge")) == 2)
        on, off = emu.records("edge")
    assert (on["channel"], on["on"], on["cause"]) == (0, True, "H")
    assert (off["channel"], off["on"], off["cause"]) == (0, False, "max_on")
    assert off["t_ns"] - on["t_ns"] >= 400 * MS
    assert off["t_ns"] > t_kill_ns  # the board did it: the host was already dead
    assert any(r["event"] == "tx" and r["line"] == "X 0 MAX" for r in emu.records())


@pytest.mark.timeout(60)
def test_board_watchdog_switches_off_when_the_killed_host_stops_talking(tmp_path):
    log = tmp_path / "board.jsonl"
    with start_emulator_process(tmp_path / "rig-laser", log, n_channels=2) as emu:
        host = _start_host(emu.link, max_on_s=30.0, watchdog_ms=500)
        wait_until(lambda: [r for r in emu.records("edge") if r["on"]])
        time.sleep(1.0)  # while the host lives, its heartbeats keep the watchdog quiet
        assert len(emu.records("edge")) == 1
        t_kill_ns = _kill_host_after_on(host, emu)
        wait_until(lambda: len(emu.records("edge")) == 2)
        off = emu.records("edge")[1]
        last_rx = emu.records("rx")[-1]
    assert (off["channel"], off["on"], off["cause"]) == (0, False, "watchdog")
    assert off["t_ns"] > t_kill_ns and off["t_ns"] - last_rx["t_ns"] >= 500 * MS
    assert last_rx["line"] == "K"


def test_emulator_process_stops_cleanly_and_removes_its_link(tmp_path):
    link = tmp_path / "rig-laser"
    emu = start_emulator_process(link, tmp_path / "board.jsonl")
    assert os.path.islink(link) and os.readlink(link).startswith("/dev/pts/")
    assert emu.stop() == 0
    assert not os.path.lexists(link)
    assert [r["event"] for r in emu.records()][-1] == "stop"
