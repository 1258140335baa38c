"""The serial device vanishing mid-run: logged, counted, never raised, reconnected with backoff."""

from __future__ import annotations

from realtime_pose.hardware.serial import SerialDevice
from realtime_pose.hardware.testing.emulator import EmulatorThread
from realtime_pose.hardware.testing.loopback import FarEndReader, open_pty_pair
from tests.hardware.conftest import WAIT_S, fill_pty, wait_until


def test_device_vanishes_and_comes_back(link, action_log):
    first = EmulatorThread(link=link, n_channels=2)
    dev = SerialDevice(
        link, 2, reconnect_initial_s=0.02, reconnect_max_s=0.16, action_log=action_log
    ).open()
    second = None
    try:
        dev.pulse(0, 0.01)
        wait_until(lambda: first.emulator.edges(0))

        first.stop()  # the board is unplugged: pty closed, link removed
        wait_until(lambda: not dev.health().connected)
        assert action_log.records("disconnected")

        dev.set(1, True)  # while disconnected: must not raise, must not be kept
        dev.pulse(0, 0.01)
        assert dev.health().failed >= 2
        assert not dev.is_on(1)

        wait_until(lambda: len(action_log.records("reconnect_failed")) >= 6)
        delays = [r["delay_s"] for r in action_log.records("reconnect_failed")][:6]
        assert delays == [0.02, 0.04, 0.08, 0.16, 0.16, 0.16]  # exponential backoff, capped

        second = EmulatorThread(link=link, n_channels=2)  # plugged in again
        wait_until(lambda: dev.health().reconnects == 1)
        assert dev.health().connected
        dev.pulse(1, 0.01)
        wait_until(lambda: second.emulator.edges(1))
    finally:
        dev.close()
        first.stop()
        if second is not None:
            second.stop()
    rx = [r["line"] for r in second.emulator.records("rx")]
    assert rx[:8] == [  # re-configured on reconnect
        "C 0",
        "M 0 1000",
        "R 0 0",
        "D 0 1000 1000",
        "M 1 1000",
        "R 1 0",
        "D 1 1000 1000",
        "W 1000",
    ]
    assert not any(line.startswith("H 1") for line in rx)  # the stale "on" never fired late
    failed = action_log.records("failed")
    assert any(r.get("channel") == "1" and r["cmd"] == "write_on" for r in failed)


def test_a_write_that_times_out_is_counted_and_the_port_reopened(action_log):
    pair = open_pty_pair()  # a "board" that stops reading: its input buffer fills up
    dev = SerialDevice(
        pair.device_path, 1, watchdog_ms=0, write_timeout_s=0.2, reconnect_initial_s=0.02,
        action_log=action_log,
    ).open()  # fmt: skip
    reader = None
    try:
        wait_until(lambda: action_log.records("configured"))
        fill_pty(pair.device_fd)
        dev.set(0, False)
        wait_until(lambda: action_log.records("disconnected"))
        assert "write failed" in action_log.records("disconnected")[0]["error"]
        assert any(r["cmd"] == "write_off" for r in action_log.records("failed"))
        reader = FarEndReader(pair.far_fd)  # the board reads again
        wait_until(lambda: dev.health().reconnects == 1)
        dev.set(0, False)
        assert (
            reader.wait_for_line(lambda line: line.startswith("L 0"), timeout_s=WAIT_S) is not None
        )
    finally:
        if reader is not None:
            reader.stop()
        dev.close()
        pair.close()
