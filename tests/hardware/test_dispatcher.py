"""OutputDispatcher: routing, stall watchdog, all-off on close/signals/exit, build_dispatcher."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from realtime_pose.hardware import build_dispatcher
from realtime_pose.hardware.action_log import ActionLog
from realtime_pose.hardware.base import DeviceUnavailableError
from realtime_pose.hardware.dispatcher import OutputDispatcher
from realtime_pose.hardware.log import LogOnlyDevice
from tests.hardware.conftest import WAIT_S, wait_until

ROOT = Path(__file__).resolve().parents[2]


def _dispatcher(**kwargs) -> tuple[OutputDispatcher, LogOnlyDevice]:
    dev = LogOnlyDevice({"laser": 0, "valve": 1, "spare": 2}, max_on_s=30.0)
    outputs = {"laser": (dev, "laser"), "valve": (dev, "valve")}
    return OutputDispatcher(outputs, register_atexit=False, **kwargs), dev


def test_submit_routes_actions_and_records_the_frame():
    disp, dev = _dispatcher()
    with disp:
        rec = disp.submit("laser", "on", frame_index=12, t_frame_ns=345)
        assert dev.line_state("laser")
        assert rec["output"] == "laser" and rec["frame_index"] == 12 and rec["t_frame_ns"] == 345
        assert rec["t_done_ns"] >= rec["t_ns"]
        disp.submit("laser", "toggle")
        assert not dev.line_state("laser")
        disp.submit("valve", "toggle")
        assert dev.line_state("valve")
        disp.submit("valve", "off")
        disp.submit("laser", "pulse", duration_s=0.02)
        wait_until(lambda: len(dev.edges("laser")) == 4)
    assert [e[2] for e in dev.edges("laser")] == [True, False, True, False]
    assert disp.health()["submitted"] == 5
    assert disp.submit("laser", "on")["event"] == "dispatch_rejected"  # after close
    assert not dev.line_state("laser")


@pytest.mark.parametrize(
    ("args", "match"),
    [
        (("lazer", "on"), "unknown output 'lazer'"),
        (("laser", "blink"), "unknown action 'blink'"),
        (("laser", "pulse"), "needs duration_s"),
        (("laser", "pulse", -0.1), "needs duration_s"),
    ],
)
def test_submit_refuses_bad_requests(args, match):
    disp, _ = _dispatcher()
    with disp, pytest.raises(ValueError, match=match):
        disp.submit(*args)


def test_watchdog_switches_everything_off_when_kicks_stop():
    disp, dev = _dispatcher(stall_timeout_s=0.5)
    with disp:
        disp.submit("laser", "on")
        disp.submit("valve", "on")
        dev.set("spare", True)
        for _ in range(30):  # the loop is alive: 0.6 s of kicks every 20 ms
            disp.kick()
            time.sleep(0.02)
        assert dev.line_state("laser") and dev.line_state("valve")
        wait_until(lambda: disp.stalled)  # the loop stalls
        assert not any(dev.line_state(c) for c in ("laser", "valve", "spare"))
        assert disp.health()["watchdog_trips"] == 1
        (trip,) = disp.action_log.records("watchdog_all_off")
        assert trip["since_kick_ns"] >= 500_000_000
        disp.kick()  # alive again: outputs work and the watchdog re-arms
        assert not disp.stalled
        disp.submit("laser", "on")
        assert dev.line_state("laser")
        wait_until(lambda: disp.health()["watchdog_trips"] == 2)


def test_watchdog_sends_all_off_to_the_board(emulator):
    config = {"laser": {"kind": "serial", "port": emulator.path, "channel": 2}}
    with build_dispatcher(config, stall_timeout_s=0.3, register_atexit=False) as disp:
        disp.submit("laser", "on")
        wait_until(lambda: emulator.emulator.edges(2))
        wait_until(lambda: len(emulator.emulator.edges(2)) == 2)
    assert emulator.emulator.edges(2)[1]["cause"] == "Z"


def test_signal_handler_switches_off_and_chains_to_the_previous_handler():
    seen = []
    previous = signal.signal(signal.SIGUSR1, lambda sig, frame: seen.append(sig))
    try:
        disp, dev = _dispatcher()
        with disp:
            disp.install_signal_handler(signal.SIGUSR1)
            disp.submit("laser", "on")
            os.kill(os.getpid(), signal.SIGUSR1)
            wait_until(lambda: seen)
            assert not dev.line_state("laser")
            assert seen == [signal.SIGUSR1]
        # close() put the previous handler back: it alone runs now
        os.kill(os.getpid(), signal.SIGUSR1)
        wait_until(lambda: len(seen) == 2)
    finally:
        signal.signal(signal.SIGUSR1, previous)


_HOST = """
import sys, time
from realtime_pose.hardware import build_dispatcher
disp = build_dispatcher(
    {"laser": {"kind": "serial", "port": sys.argv[1], "channel": 1, "max_on_ms": 30000}}
)
if sys.argv[2] == "sigterm":
    disp.install_signal_handler()
disp.submit("laser", "on")
print("on", flush=True)
if sys.argv[2] == "sigterm":
    time.sleep(60)
# "exit": leave without close(); the atexit hook must switch the laser off
"""


@pytest.mark.timeout(60)
@pytest.mark.parametrize("how", ["sigterm", "exit"])
def test_host_process_switches_outputs_off_when_terminated_or_exiting(emulator, how):
    proc = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(_HOST), emulator.path, how],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    try:
        assert proc.stdout.readline().strip() == "on", proc.stderr.read()
        wait_until(lambda: emulator.emulator.edges(1))
        if how == "sigterm":
            proc.send_signal(signal.SIGTERM)
        proc.wait(WAIT_S)
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.communicate()
    assert proc.returncode == (-signal.SIGTERM if how == "sigterm" else 0)
    wait_until(lambda: len(emulator.emulator.edges(1)) == 2)
    assert emulator.emulator.edges(1)[1]["cause"] == "Z"


def test_build_dispatcher_shares_devices_by_port(emulator):
    config = {
        "laser": {"kind": "serial", "port": emulator.path, "channel": 0, "max_on_ms": 50},
        "led": {"kind": "serial", "port": emulator.path, "channel": 3},
        "valve": {"kind": "log", "channel": 1, "max_on_ms": 200},
    }
    with build_dispatcher(config, register_atexit=False) as disp:
        laser_dev, _ = disp.target("laser")
        assert disp.target("led")[0] is laser_dev
        assert laser_dev.max_on_s("laser") == 0.05 and laser_dev.max_on_s("led") == 1.0
        assert laser_dev.line_of("led") == 3
        valve_dev, _ = disp.target("valve")
        assert valve_dev.plugin_name == "log" and valve_dev.max_on_s("valve") == 0.2
        disp.submit("laser", "pulse", duration_s=0.01)
        wait_until(lambda: len(emulator.emulator.edges(0)) == 2)
    rx = [r["line"] for r in emulator.emulator.records("rx")]
    assert "M 0 50" in rx and "M 3 1000" in rx


@pytest.mark.parametrize(
    ("config", "match"),
    [
        ({}, "non-empty"),
        ({"laser": 5}, r"outputs\.laser: expected a mapping"),
        ({"laser": {"kind": "usb", "channel": 0}}, r"outputs\.laser\.kind: unknown output"),
        ({"laser": {"kind": 3}}, r"outputs\.laser\.kind: expected a name"),
        ({"laser": {"kind": "serial", "channel": 0}}, r"outputs\.laser\.port: Field required"),
        (
            {"laser": {"kind": "serial", "port": "loop://", "channel": "a"}},
            r"outputs\.laser\.channel: Input should be a valid integer",
        ),
        (
            {"laser": {"kind": "serial", "port": "loop://", "channel": -1}},
            r"outputs\.laser\.channel: Input should be greater than or equal to 0",
        ),
        (
            {"laser": {"kind": "log", "channel": 0, "max_on_ms": 0}},
            r"outputs\.laser\.max_on_ms: Input should be greater than 0",
        ),
        (
            {"laser": {"kind": "log", "channel": 0, "max_on": 5}},
            r"outputs\.laser\.max_on: Extra inputs are not permitted",
        ),
        (
            {"laser": {"kind": "daq", "channel": "port0"}},
            r"outputs\.laser\.channel: String should match pattern",
        ),
        (
            {"a": {"kind": "log", "channel": 0}, "b": {"kind": "log", "channel": 0}},
            r"outputs\.b\.channel: 0 is already used by output 'a'",
        ),
        (
            {
                "a": {"kind": "serial", "port": "loop://", "channel": 0, "baudrate": 9600},
                "b": {"kind": "serial", "port": "loop://", "channel": 1},
            },
            r"outputs\.b: shares its serial device with output 'a' but sets \['baudrate'\]",
        ),
    ],
)
def test_build_dispatcher_names_the_output_and_field_at_fault(config, match):
    with pytest.raises(ValueError, match=match):
        build_dispatcher(config, register_atexit=False)


def test_build_dispatcher_reports_an_unopenable_port_with_the_output_name():
    config = {"laser": {"kind": "serial", "port": "/dev/does-not-exist-rpio", "channel": 0}}
    with pytest.raises(DeviceUnavailableError, match=r"outputs\.laser: cannot open serial port"):
        build_dispatcher(config, register_atexit=False)


def test_the_action_log_keeps_a_bounded_ring_in_memory_and_everything_on_disk(tmp_path):
    log = ActionLog(tmp_path / "actions.jsonl", maxlen=5)
    for i in range(12):
        log.record("pulse", device="laser", i=i)
    assert [r["i"] for r in log.records()] == [7, 8, 9, 10, 11]
    log.keep(8)
    for i in range(12, 15):
        log.record("pulse", device="laser", i=i)
    assert [r["i"] for r in log.records()] == list(range(7, 15))
    log.close()
    assert len((tmp_path / "actions.jsonl").read_text().splitlines()) == 15
