"""SerialDevice against the board emulator on a real pty; the emulator's own limits and log."""

from __future__ import annotations

import os
import tty
from collections.abc import Iterator

import pytest

from realtime_pose.hardware.action_log import ActionLog
from realtime_pose.hardware.serial import SerialDevice
from realtime_pose.hardware.testing.emulator import EmulatorThread, read_log
from realtime_pose.hardware.testing.loopback import FarEndReader
from tests.hardware.conftest import WAIT_S, wait_until

MS = 1_000_000


@pytest.fixture
def raw_host(emulator: EmulatorThread) -> Iterator[tuple[int, FarEndReader]]:
    """The host end opened by hand: write any bytes, read the board's replies."""
    fd = os.open(emulator.path, os.O_RDWR | os.O_NOCTTY)
    tty.setraw(fd)
    reader = FarEndReader(fd)
    yield fd, reader
    reader.stop()
    os.close(fd)


def test_pulse_lands_and_ends_after_its_duration(emulator, action_log):
    with SerialDevice(emulator.path, 4, action_log=action_log) as dev:
        dev.pulse(2, 0.03)
        wait_until(lambda: len(emulator.emulator.edges(2)) == 2)
    on, off = emulator.emulator.edges(2)
    assert (on["on"], on["cause"]) == (True, "P")
    assert (off["on"], off["cause"]) == (False, "pulse_end")
    assert off["t_ns"] - on["t_ns"] >= 30 * MS
    sent = action_log.records("sent")[0]
    assert sent["line"] == "P 2 30 1"
    assert sent["t_ns"] - sent["queued_ns"] <= on["t_ns"]  # submitted before it landed


def test_stuck_on_is_cut_by_the_host_and_the_board(emulator, action_log):
    with SerialDevice(emulator.path, 4, max_on_s=0.05, action_log=action_log) as dev:
        dev.set(1, True)
        wait_until(lambda: len(emulator.emulator.edges(1)) == 2)
        _on, off = emulator.emulator.edges(1)
        t_set = action_log.records("set")[0]["t_ns"]
        assert off["t_ns"] - t_set >= 50 * MS
        assert off["cause"] in ("L", "max_on")  # whichever of the two limits acted first
        assert dev.health().auto_offs == 1
    assert "M 1 50" in [r["line"] for r in emulator.emulator.records("rx")]


def test_board_max_on_time_cuts_an_on_the_host_never_ends(emulator, raw_host):
    fd, reader = raw_host
    os.write(fd, b"W 0\nM 3 40\nH 3\n")
    wait_until(lambda: len(emulator.emulator.edges(3)) == 2)
    on, off = emulator.emulator.edges(3)
    assert off["cause"] == "max_on" and off["t_ns"] - on["t_ns"] >= 40 * MS
    assert reader.wait_for_line(lambda line: line == "X 3 MAX", timeout_s=WAIT_S) is not None


def test_echo_and_acknowledgements_carry_sequence_numbers(emulator, action_log):
    with SerialDevice(emulator.path, 4, confirm=True, action_log=action_log) as dev:
        rtt_ns = dev.echo(timeout_s=5.0)
        assert rtt_ns is not None and rtt_ns > 0
        dev.pulse(0, 0.01)
        dev.set(1, True)
        dev.set(1, False)
        wait_until(lambda: len([r for r in action_log.records("ack") if r["seq"]]) == 3)
        assert dev.version(timeout_s=5.0) == "V RPIO 1 4"
        assert dev.query(1, timeout_s=5.0) == {"on": False, "remaining_ms": 0, "max_on_ms": 1000}
    sent = {r["line"].split()[-1]: r["line"][0] for r in action_log.records("sent")}
    acks = [r for r in action_log.records("ack") if r["seq"]]
    acks = [r for r in acks if r["reply"].split()[2] in "PHL"]  # closing's Z may be acked too
    assert [(str(r["seq"]), r["reply"].split()[2]) for r in acks][:3] == [
        (seq, op) for seq, op in sent.items() if op in "PHL"
    ][:3]
    assert all(r["rtt_ns"] > 0 for r in acks)


def test_board_watchdog_switches_off_when_the_host_goes_silent(emulator, raw_host):
    fd, reader = raw_host
    os.write(fd, b"W 150\nM 0 10000\nH 0\nH 1\n")
    wait_until(lambda: len(emulator.emulator.edges()) == 4)
    t_last_rx = emulator.emulator.records("rx")[-1]["t_ns"]
    offs = [e for e in emulator.emulator.edges() if not e["on"]]
    assert {(e["channel"], e["cause"]) for e in offs} == {(0, "watchdog"), (1, "watchdog")}
    assert all(e["t_ns"] - t_last_rx >= 150 * MS for e in offs)
    assert reader.wait_for_line(lambda line: line == "X * WDG", timeout_s=WAIT_S) is not None


def test_heartbeats_keep_the_board_watchdog_quiet_while_the_host_lives(emulator, action_log):
    with SerialDevice(
        emulator.path, 4, max_on_s=1.5, watchdog_ms=400, action_log=action_log
    ) as dev:
        dev.set(0, True)
        wait_until(lambda: len(emulator.emulator.edges(0)) == 2)
    off = emulator.emulator.edges(0)[1]
    assert off["cause"] in ("L", "max_on")  # not "watchdog": heartbeats fed it for 1.5 s
    assert off["t_ns"] - action_log.records("set")[0]["t_ns"] >= 1500 * MS
    assert "K" in [r["line"] for r in emulator.emulator.records("rx")]


def test_malformed_lines_get_errors_and_the_board_keeps_serving(emulator, raw_host):
    fd, reader = raw_host
    os.write(fd, b"hello\nP 9 5\n" + b"P" * 100 + b"\n\x00\xff\nP 1 abc 4\nE 7\n")
    assert reader.wait_for_line(lambda line: line == "E 7", timeout_s=WAIT_S) is not None
    errors = [line.split()[1] for _, line in reader.lines if line.startswith("!ERR")]
    assert errors == ["CMD", "CH", "LONG", "CMD", "ARG"]
    os.write(fd, b"P 1 5\n")
    wait_until(lambda: len(emulator.emulator.edges(1)) == 2)


def test_device_counts_the_boards_error_replies(emulator, action_log):
    with SerialDevice(emulator.path, {"ok": 0, "missing": 7}, action_log=action_log) as dev:
        dev.set("missing", True)
        wait_until(lambda: dev.health().device_errors >= 2)  # "M 7 .." at connect, then "H 7"
        assert dev.health().failed == 0
    errors = [r["error"] for r in action_log.records("device_error")]
    assert any(e.startswith("!ERR CH H 7") for e in errors)


def test_emulator_log_file_matches_what_happened(link, tmp_path):
    log_path = tmp_path / "board.jsonl"
    with EmulatorThread(link=link, n_channels=2, log_path=log_path) as emu:
        with SerialDevice(link, 2) as dev:
            dev.pulse(1, 0.02)
            wait_until(lambda: len(emu.emulator.edges(1)) == 2)
        on_disk = read_log(log_path)  # written before the emulator stops
        assert [r for r in on_disk if r["event"] == "edge"] == emu.emulator.edges()
    assert [r["event"] for r in read_log(log_path)][:2] == ["start", "tx"]
    assert "P 1 20 1" in [r["line"] for r in read_log(log_path) if r["event"] == "rx"]


def test_action_log_jsonl_survives_reading_while_open(emulator, tmp_path):
    path = tmp_path / "actions.jsonl"
    log = ActionLog(path)
    with SerialDevice(emulator.path, 4, action_log=log) as dev:
        dev.pulse(0, 0.01)
        wait_until(lambda: log.records("sent"))
        lines = path.read_text().splitlines()
        assert any('"event": "sent"' in line for line in lines)
    log.close()
