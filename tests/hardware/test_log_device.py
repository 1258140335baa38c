"""The OutputDevice contract on the log-only device: channels, host-side max on-time, pulses."""

from __future__ import annotations

import time

import pytest

from realtime_pose.hardware import open_device
from realtime_pose.hardware.log import LogOnlyDevice
from tests.hardware.conftest import wait_until


def test_set_on_is_cut_at_max_on_time_without_an_off():
    with LogOnlyDevice({"laser": 0, "valve": 1}, max_on_s={"laser": 0.05}) as dev:
        dev.set("laser", True)
        assert dev.is_on("laser") and dev.line_state("laser")
        wait_until(lambda: not dev.line_state("laser"))
        (_, _, on), (t_off, _, off) = dev.edges("laser")
        assert on and not off
        assert t_off - dev.action_log.records("set")[0]["t_ns"] >= 50_000_000
        assert dev.health().auto_offs == 1
        assert dev.max_on_s("valve") == LogOnlyDevice.default_max_on_s


def test_pulse_is_clamped_to_max_on_time_and_ends_by_itself():
    with LogOnlyDevice(2, max_on_s=0.03) as dev:
        dev.pulse(1, 10.0)
        wait_until(lambda: len(dev.edges("1")) == 2)
        t_off = dev.edges("1")[1][0]
        assert t_off - dev.action_log.records("pulse")[0]["t_ns"] >= 30_000_000
        assert [r["duration_s"] for r in dev.action_log.records("pulse")] == [0.03]
        assert dev.health().auto_offs == 0  # a clamped pulse ends as a pulse, not a cut


def test_a_later_off_cancels_the_pending_cut():
    with LogOnlyDevice(1, max_on_s=0.05) as dev:
        dev.set(0, True)
        dev.set(0, False)
        dev.set(0, True)
        dev.set(0, False)
        wait_until(lambda: dev._timer.pending() == 0)
        assert [on for _, _, on in dev.edges()] == [True, False, True, False]
        assert dev.health().auto_offs == 0


def test_close_switches_everything_off():
    dev = LogOnlyDevice(3, max_on_s=5.0).open()
    dev.set(0, True)
    dev.set(2, True)
    dev.close()
    assert not dev.line_state(0) and not dev.line_state(2)
    dev.set(1, True)  # after close: counted, not raised
    assert dev.health().failed == 1 and not dev.line_state(1)


@pytest.mark.parametrize("duration", [0, -1.0, float("nan"), float("inf"), "5"])
def test_bad_pulse_duration_is_refused(duration):
    with LogOnlyDevice(1) as dev, pytest.raises(ValueError, match="positive number"):
        dev.pulse(0, duration)


def test_errors_name_what_is_wrong():
    with pytest.raises(ValueError, match=r"no channel 'lazer'.*laser"):
        LogOnlyDevice({"laser": 0}).set("lazer", True)
    with pytest.raises(ValueError, match="unknown channel"):
        LogOnlyDevice({"laser": 0}, max_on_s={"valve": 1.0})
    with pytest.raises(ValueError, match="max_on_s for channel 'laser'"):
        LogOnlyDevice({"laser": 0}, max_on_s=0)
    with pytest.raises(ValueError, match="same device line"):
        LogOnlyDevice({"a": 0, "b": 0})


def test_open_device_factory():
    dev = open_device("log", channels=2)
    try:
        assert dev.is_open and dev.channel_names == ["0", "1"]
    finally:
        dev.close()
    with pytest.raises(ValueError, match="unknown output device 'lazer'"):
        open_device("lazer")


def test_re_sending_on_does_not_extend_the_max_on_time():
    with LogOnlyDevice(1, max_on_s=0.5) as dev:
        dev.set(0, True)
        time.sleep(0.05)
        dev.set(0, True)  # a loop re-sending "on" every frame
        dev.pulse(0, 10.0)  # and a long pulse on the channel that is already on
        first, again = dev.action_log.records("set")
        assert again["off_at_ns"] == first["off_at_ns"] == first["t_ns"] + 500_000_000
        (pulse,) = dev.action_log.records("pulse")
        assert pulse["t_ns"] + pulse["duration_s"] * 1e9 <= first["off_at_ns"] + 1
        wait_until(lambda: not dev.line_state(0))
        assert [on for _, _, on in dev.edges()] == [True, False]  # one on-period, one edge each
        dev.set(0, True)  # after the off edge, a new on-period gets the full limit again
        latest = dev.action_log.records("set")[-1]
        assert latest["off_at_ns"] == latest["t_ns"] + 500_000_000
