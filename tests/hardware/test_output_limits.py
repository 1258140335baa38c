"""Outputs that cannot be held on: the host's minimum off-time and duty-cycle limit (log-only
device, serial device on the board emulator), the board's own (the emulator on a real pty,
driven by hand), and the ``outputs:`` options that set them."""

from __future__ import annotations

import itertools
import os
import time
import tty
from collections.abc import Iterator

import pytest

from realtime_pose.hardware import OUTPUTS, build_dispatcher
from realtime_pose.hardware.log import LogOnlyDevice
from realtime_pose.hardware.serial import SerialDevice
from realtime_pose.hardware.testing.emulator import EmulatorThread
from realtime_pose.hardware.testing.loopback import FarEndReader, PtyFarEnd
from tests.hardware.conftest import WAIT_S, wait_until

MS = 1_000_000


def _sleep_until(t_ns: int) -> None:
    time.sleep(max(0.0, (t_ns - time.monotonic_ns()) / 1e9))


def _periods(edges: list[tuple[int, str, bool]]) -> list[tuple[int, int]]:
    out, t_on = [], None
    for t_ns, _, on in edges:
        if on and t_on is None:
            t_on = t_ns
        elif not on and t_on is not None:
            out.append((t_on, t_ns))
            t_on = None
    return out


# ---------------------------------------------------------------------------- the host


def test_host_holds_off_a_switch_on_within_the_minimum_off_time():
    with LogOnlyDevice({"laser": 0}, max_on_s=1.0) as dev:
        dev.set_limits("laser", min_off_s=0.3)
        assert dev.pulse("laser", 0.01) is None
        wait_until(lambda: len(dev.edges("laser")) == 2)
        t_off = dev.edges("laser")[1][0]
        assert dev.pulse("laser", 0.01) == "min_off"
        assert dev.set("laser", True) == "min_off"
        assert len(dev.edges("laser")) == 2 and not dev.is_on("laser")  # nothing was driven
        assert dev.hold_offs("laser") == {
            "min_off": 2,
            "duty": 0,
            "duty_cuts": 0,
            "last_cause": "min_off",
        }
        assert dev.health().held_off == 2
        assert [r["action"] for r in dev.action_log.records("held_off")] == ["pulse", "set"]
        assert "min_off_ms" in dev.hold_off_reason("laser", 0.01)
        _sleep_until(t_off + 300 * MS)
        assert dev.pulse("laser", 0.01) is None  # deferred? no: refused, then allowed anew
        wait_until(lambda: len(dev.edges("laser")) == 4)
    (_, off), (on, _) = _periods(dev.edges("laser"))
    assert on - off >= 300 * MS


def test_host_cuts_an_on_at_the_duty_budget_and_refuses_the_next():
    with LogOnlyDevice({"laser": 0}, max_on_s=1.0) as dev:
        dev.set_limits("laser", max_duty=0.1, duty_window_s=1.0)  # 100 ms in any second
        t_set = time.monotonic_ns()
        assert dev.set("laser", True) is None
        wait_until(lambda: len(dev.edges("laser")) == 2)
        ((_, t_off),) = _periods(dev.edges("laser"))
        assert t_off - t_set >= 100 * MS
        assert [r["cause"] for r in dev.action_log.records("auto_off")] == ["duty"]
        assert dev.set("laser", True) == "duty" and dev.pulse("laser", 0.005) == "duty"
        assert dev.hold_offs("laser") == {
            "min_off": 0,
            "duty": 2,
            "duty_cuts": 1,
            "last_cause": "duty",
        }
        assert dev.health().duty_cuts == 1 and dev.health().auto_offs == 0
        assert "used up its duty-cycle budget" in dev.hold_off_reason("laser")


def test_host_clamps_a_pulse_to_what_is_left_of_the_duty_budget():
    with LogOnlyDevice({"laser": 0}, max_on_s=1.0) as dev:
        dev.set_limits("laser", max_duty=0.1, duty_window_s=1.0)
        dev.pulse("laser", 0.06)
        wait_until(lambda: len(dev.edges("laser")) == 2)
        reason = dev.hold_off_reason("laser", 0.06)
        assert reason is not None and "a 60 ms pulse would be cut" in reason
        dev.pulse("laser", 0.06)
        wait_until(lambda: len(dev.edges("laser")) == 4)
        first, second = (r["duration_s"] for r in dev.action_log.records("pulse"))
        assert first == 0.06 and 0 < second <= 0.04
        assert dev.hold_offs("laser")["duty_cuts"] == 1
    assert sum(b - a for a, b in _periods(dev.edges("laser"))) >= 100 * MS  # as driven


def test_re_sending_on_every_frame_cannot_hold_an_output_on():
    """The issue's case: a loop re-sending "on" every 10 ms for 1.5 s. Without limits the
    output is off for one frame after each max on-time cut; with them, never less than
    min_off and never more than the duty budget in any window."""
    with LogOnlyDevice({"laser": 0}, max_on_s=0.1) as dev:
        dev.set_limits("laser", min_off_s=0.05, max_duty=0.3, duty_window_s=0.5)
        t_end = time.monotonic_ns() + 1500 * MS
        while time.monotonic_ns() < t_end:
            dev.set("laser", True)
            time.sleep(0.01)
        dev.set("laser", False)
    periods = _periods(dev.edges("laser"))
    assert len(periods) >= 4
    gaps = [b[0] - a[1] for a, b in itertools.pairwise(periods)]
    assert min(gaps) >= 50 * MS
    assert max(b - a for a, b in periods) <= 100 * MS + 20 * MS  # the timer thread's latency
    held = dev.hold_offs("laser")
    assert held["min_off"] > 0 and held["duty"] > 0


def test_limits_are_checked_where_they_are_set():
    dev = LogOnlyDevice({"laser": 0})
    for kwargs in (
        {"min_off_s": -1},
        {"min_off_s": float("nan")},
        {"max_duty": 0},
        {"max_duty": 1.5},
        {"duty_window_s": 0},
        {"max_duty": 1e-7, "duty_window_s": 1.0},
    ):
        with pytest.raises(ValueError, match="laser"):
            dev.set_limits("laser", **kwargs)


# ---------------------------------------------------------------------------- the board


@pytest.fixture
def raw_host(emulator: EmulatorThread) -> Iterator[tuple[int, FarEndReader]]:
    """The emulator's host end opened by hand: write any line, read the board's replies."""
    fd = os.open(emulator.path, os.O_RDWR | os.O_NOCTTY)
    tty.setraw(fd)
    reader = FarEndReader(fd)
    yield fd, reader
    reader.stop()
    os.close(fd)


def test_board_refuses_a_switch_on_within_its_minimum_off_time(emulator, raw_host):
    fd, reader = raw_host
    os.write(fd, b"W 0\nR 2 200\nP 2 5\n")
    wait_until(lambda: len(emulator.emulator.edges(2)) == 2)
    os.write(fd, b"P 2 5 9\n")
    assert reader.wait_for_line(lambda s: s == "X 2 HELD MINOFF 9", timeout_s=WAIT_S)
    off = emulator.emulator.edges(2)[1]
    _sleep_until(off["t_ns"] + 210 * MS)
    os.write(fd, b"P 2 5\n")
    wait_until(lambda: len(emulator.emulator.edges(2)) == 4)
    on_again = emulator.emulator.edges(2)[2]
    assert on_again["t_ns"] - off["t_ns"] >= 200 * MS


def test_board_cuts_at_its_duty_budget_and_refuses_until_it_returns(emulator, raw_host):
    fd, reader = raw_host
    os.write(fd, b"W 0\nD 1 30 100\nH 1\n")
    wait_until(lambda: len(emulator.emulator.edges(1)) == 2)
    on, off = emulator.emulator.edges(1)
    assert off["cause"] == "duty" and off["t_ns"] - on["t_ns"] >= 30 * MS
    assert reader.wait_for_line(lambda s: s == "X 1 DUTY", timeout_s=WAIT_S)
    os.write(fd, b"H 1 4\n")
    assert reader.wait_for_line(lambda s: s == "X 1 HELD DUTY 4", timeout_s=WAIT_S)
    assert len(emulator.emulator.edges(1)) == 2


def test_serial_device_sends_its_limits_and_holds_off_before_the_board_has_to(emulator):
    dev = SerialDevice(emulator.path, {"laser": 0, "led": 1}, watchdog_ms=0)
    dev.set_limits("laser", min_off_s=0.5, max_duty=0.25, duty_window_s=0.2)
    with dev:
        wait_until(lambda: "D 0 50 200" in [r["line"] for r in emulator.emulator.records("rx")])
        assert dev.pulse("laser", 0.01) is None
        assert dev.pulse("laser", 0.01) is None  # on already: no new edge, no hold
        _sleep_until(time.monotonic_ns() + 30 * MS)
        assert dev.pulse("laser", 0.01) == "min_off"
        n_rx = len(emulator.emulator.records("rx"))
        time.sleep(0.05)
    rx = [r["line"] for r in emulator.emulator.records("rx")]
    assert "R 0 500" in rx and "R 1 0" in rx and "D 1 1000 1000" in rx
    assert not [line for line in rx[n_rx:] if line.startswith("P ")], "a held pulse was sent"
    assert not [r for r in emulator.emulator.records("tx") if "HELD" in r["line"]]


def test_limits_set_after_open_reach_the_board(emulator):
    with SerialDevice(emulator.path, 2, watchdog_ms=0) as dev:
        dev.set_limits(1, min_off_s=0.02)
        wait_until(lambda: emulator.emulator.state.limits[1].min_off_ns == 20 * MS)


def test_the_host_counts_the_boards_own_hold_offs(link, action_log):
    with EmulatorThread(link=link, n_channels=2) as emu:
        emu.emulator.state.limits[0].set_min_off(500 * MS)  # a board configured earlier
        with SerialDevice(
            link, 2, watchdog_ms=0, configure_board=False, action_log=action_log
        ) as dev:
            dev.pulse(0, 0.005)
            wait_until(lambda: len(emu.emulator.edges(0)) == 2)
            assert dev.pulse(0, 0.005) is None  # the host has no minimum off-time ...
            wait_until(lambda: dev.hold_offs(0)["min_off"] == 1)  # ... the board has
            assert dev.health().held_off == 1
    (record,) = action_log.records("device_held_off")
    assert record["cause"] == "min_off" and record["reply"] == "X 0 HELD MINOFF 2"


@pytest.mark.parametrize("limited", [False, True])
def test_a_board_without_the_limit_commands_is_an_error_only_when_limits_are_asked(limited):
    with PtyFarEnd() as far:
        dev = SerialDevice(far.host_path, 1, watchdog_ms=0)
        if limited:
            dev.set_limits(0, min_off_s=0.1)
        with dev:
            far.wait_for_line(lambda s: s.startswith("W "))
            far.write(b"!ERR CMD R 0 100\n!ERR CMD D 0 1000 1000\n" if limited else b"")
            far.write(b"!ERR CMD R 0 0\n!ERR CMD D 0 1000 1000\nE 1\n")
            wait_until(lambda: any(line == "E 1" for _, line in dev.received()))
            errors = dev.health().device_errors
    if limited:
        assert errors == 4
        assert "predates the minimum off-time" in (dev.health().last_error or "")
    else:
        assert errors == 0


# ---------------------------------------------------------------------------- the config


def test_outputs_config_sets_each_outputs_limits_and_they_share_a_device(emulator):
    disp = build_dispatcher(
        {
            "laser": {
                "kind": "serial",
                "port": emulator.path,
                "channel": 0,
                "max_on_ms": 50,
                "min_off_ms": 20,
                "max_duty": 0.5,
                "duty_window_ms": 400,
            },
            "valve": {"kind": "serial", "port": emulator.path, "channel": 3},
        },
        register_atexit=False,
    )
    with disp:
        device, _ = disp.target("laser")
        assert disp.target("valve")[0] is device
        assert device.limits("laser") == {
            "max_on_ms": 50,
            "min_off_ms": 20,
            "max_duty": 0.5,
            "duty_window_ms": 400,
        }
        assert device.limits("valve")["min_off_ms"] == 0 and device.limits("valve")["max_duty"] == 1
        record = disp.submit("laser", "pulse", 0.005)
        assert record["held_off"] is None
        wait_until(lambda: not disp.is_on("laser"))
        record = disp.submit("laser", "pulse", 0.005)
        assert record["held_off"] == "min_off"
        assert disp.hold_off("laser", 0.005).startswith("output 'laser' must stay off 20 ms")
        assert disp.health()["held_off"]["laser"]["last_cause"] == "min_off"
        assert disp.health()["held_off"]["valve"] == {
            "min_off": 0,
            "duty": 0,
            "duty_cuts": 0,
            "last_cause": None,
        }
    rx = [r["line"] for r in emulator.emulator.records("rx")]
    assert {"R 0 20", "D 0 200 400", "R 3 0", "D 3 1000 1000"} <= set(rx)


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"min_off_ms": -1}, "greater than or equal to 0"),
        ({"max_duty": 0}, "greater than 0"),
        ({"max_duty": 1.2}, "less than or equal to 1"),
        ({"duty_window_ms": 0}, "greater than 0"),
        ({"duty_window_ms": 3_600_001}, "less than or equal to 3600000"),
        ({"max_duty": 1e-7, "duty_window_ms": 1}, "under 1 µs"),
    ],
)
def test_outputs_config_refuses_limits_that_cannot_work(fields, message):
    with pytest.raises(ValueError, match=message):
        build_dispatcher({"laser": {"kind": "log", **fields}}, register_atexit=False)


def test_limits_are_output_options_not_device_options():
    options = OUTPUTS.choose(
        {"kind": "serial", "port": "loop://", "min_off_ms": 5, "max_duty": 0.5}
    ).options
    fields = options.device_fields()
    assert "port" in fields
    assert not {"channel", "max_on_ms", "min_off_ms", "max_duty", "duty_window_ms"} & set(fields)
