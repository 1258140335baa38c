"""SerialDevice over pyserial's ``loop://`` and a raw pty: encoding and the non-blocking writer."""

from __future__ import annotations

import time

import pytest

from realtime_pose.hardware.action_log import ActionLog
from realtime_pose.hardware.base import DeviceUnavailableError
from realtime_pose.hardware.serial import SerialDevice
from realtime_pose.hardware.testing.loopback import LOOP_URL, FarEndReader, open_pty_pair
from tests.hardware.conftest import WAIT_S, fill_pty, wait_until


def _lines(dev: SerialDevice) -> list[str]:
    return [line for _, line in dev.received()]


def test_loop_url_carries_the_configuration_and_commands_in_order():
    dev = SerialDevice(
        LOOP_URL, {"laser": 0, "led": 3}, max_on_s={"laser": 0.05}, watchdog_ms=0
    ).open()
    try:
        dev.pulse("laser", 0.0125)
        dev.set("led", True)
        dev.all_off()
        wait_until(lambda: len(_lines(dev)) >= 11)
    finally:
        dev.close()
    assert _lines(dev)[:11] == [
        "C 0",
        "M 0 50",
        "R 0 0",  # no minimum off-time and no duty limit: said anyway, a board may keep old ones
        "D 0 1000 1000",
        "M 3 1000",
        "R 3 0",
        "D 3 1000 1000",
        "W 0",
        "P 0 12.5 1",
        "H 3 2",
        "Z 3",
    ]
    assert dev.health().sent == 4 and dev.health().failed == 0  # 3 + the all-off of close()


def test_loop_url_without_sequence_numbers_and_pulse_clamped_host_side():
    dev = SerialDevice(LOOP_URL, 1, max_on_s=0.02, sequence=False, configure_board=False)
    with dev:
        dev.pulse(0, 5.0)
        wait_until(lambda: _lines(dev))
    assert _lines(dev)[0] == "P 0 20"


def test_missing_port_fails_at_open_with_advice():
    with pytest.raises(DeviceUnavailableError, match="Is the board plugged in"):
        SerialDevice("/dev/does-not-exist-rpio").open()


def test_channel_lines_must_be_board_output_numbers():
    with pytest.raises(ValueError, match="board output number"):
        SerialDevice(LOOP_URL, {"laser": "Dev1/port0/line0"})


@pytest.mark.timeout(60)
def test_set_returns_while_the_writer_is_blocked_and_stale_ons_are_not_sent_late():
    pair = open_pty_pair()
    log = ActionLog()
    dev = SerialDevice(
        pair.device_path,
        1,
        watchdog_ms=0,
        stale_after_s=0.05,
        write_timeout_s=60.0,
        action_log=log,
    ).open()
    try:
        # Fill the pty's buffer towards the far end so the writer thread's next write blocks.
        fill_pty(pair.device_fd)
        for _ in range(50):
            dev.set(0, True)  # would hang here if set() waited for the port
        dev.set(0, False)
        # Calls returned while commands are still queued behind the blocked write.
        assert dev.health().pending >= 40
        time.sleep(0.2)  # every queued command is now older than stale_after_s
        reader = FarEndReader(pair.far_fd)  # the board wakes up and reads
        try:
            assert (
                reader.wait_for_line(lambda line: line.startswith("L 0"), timeout_s=WAIT_S)
                is not None
            )
            host_lines = [line for _, line in reader.lines if line and line[0] != "#"]
        finally:
            reader.stop()
        health = dev.health()
    finally:
        dev.close()
        pair.close()
    # At most the one "on" that was already inside the blocked write reached the board.
    assert sum(line.startswith("H 0") for line in host_lines) <= 1
    assert health.failed >= 49
    stale = [r for r in log.records("failed") if "stale" in r["error"]]
    assert len(stale) >= 49
    assert all(r["cmd"] == "write_on" for r in stale)  # offs are never dropped


def test_a_line_the_port_takes_at_once_is_written_from_the_callers_thread_in_order():
    """No hand-off in the firing path: with nothing queued, set/pulse write from the caller's
    thread; a full port sends them through the writer thread instead, still in order, and the
    next line once the port drains goes direct again."""
    import threading

    pair = open_pty_pair()
    log = ActionLog()
    dev = SerialDevice(pair.device_path, 1, watchdog_ms=0, write_timeout_s=60.0, action_log=log)
    dev.open()
    reader = FarEndReader(pair.far_fd)
    try:
        wait_until(lambda: log.records("configured"))
        wait_until(lambda: dev._direct_ok)
        dev.pulse(0, 0.001)
        wait_until(lambda: log.records("sent"))
        first = log.records("sent")[-1]
        assert first["direct"] is True and first["thread"] == threading.current_thread().name
        reader.stop()
        fill_pty(pair.device_fd)  # the board stops reading: the port takes nothing more
        for _ in range(5):
            dev.set(0, False)
        assert dev.health().pending >= 4  # queued behind the blocked writer thread
        reader = FarEndReader(pair.far_fd)  # the board reads again
        wait_until(lambda: dev.health().pending == 0 and len(log.records("sent")) >= 6)
        sent = log.records("sent")
        assert [r["direct"] for r in sent[1:6]].count(False) >= 4
        assert all(r["thread"].endswith("-writer") for r in sent[1:6] if not r["direct"])
        dev.pulse(0, 0.001)
        wait_until(lambda: len(log.records("sent")) >= 7)
        assert log.records("sent")[-1]["direct"] is True  # drained: direct again
        lines = reader.wait_for_line(lambda line: line.startswith("P 0"), timeout_s=WAIT_S)
        assert lines is not None
        seqs = [int(line.split()[-1]) for _, line in reader.lines if line[:1] in ("L", "P")]
        assert seqs == sorted(seqs)  # the board saw every line in the order it was given
    finally:
        reader.stop()
        dev.close()
        pair.close()


def test_direct_writes_can_be_turned_off():
    pair = open_pty_pair()
    log = ActionLog()
    dev = SerialDevice(pair.device_path, 1, watchdog_ms=0, direct_write=False, action_log=log)
    reader = FarEndReader(pair.far_fd)
    try:
        with dev:
            for _ in range(3):
                dev.pulse(0, 0.001)
            wait_until(lambda: len(log.records("sent")) >= 3)
        assert [r["direct"] for r in log.records("sent")[:3]] == [False, False, False]
    finally:
        reader.stop()
        pair.close()
