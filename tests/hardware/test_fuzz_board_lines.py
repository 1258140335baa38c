"""Fuzzing the line protocol from the board: whatever a board (or line noise) sends, the host's
reader parses or ignores it, counts the board's complaints, and keeps driving the outputs."""

from __future__ import annotations

import contextlib
import os

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from realtime_pose.hardware import protocol
from realtime_pose.hardware.serial import SerialDevice
from realtime_pose.hardware.testing.loopback import FarEndReader, open_pty_pair

KINDS = ["A", "E", "S", "V", "X", "!ERR", "RPIO", ""]
board_line = st.one_of(
    st.binary(max_size=80),
    st.tuples(
        st.sampled_from(KINDS),
        st.lists(st.integers(-5, 2**70).map(str) | st.text(max_size=6), max_size=6),
    ).map(lambda t: (" ".join([t[0], *t[1]]) + "\n").encode("utf-8", "replace")),
)


@settings(max_examples=500, deadline=None)
@given(line=st.text(max_size=80))
def test_any_text_parses_to_a_reply(line):
    reply = protocol.parse_reply(line)
    assert reply.line == line and (reply.seq is None or reply.seq >= 0)


@pytest.fixture(scope="module")
def board():
    pty = open_pty_pair()
    far = FarEndReader(pty.far_fd)
    device = SerialDevice(pty.host_path, 2, configure_board=False, watchdog_ms=0)
    device.open()
    yield device, far, pty
    device.close()
    far.stop()
    pty.close()


@settings(max_examples=120, deadline=None, suppress_health_check=list(HealthCheck))
@given(noise=st.lists(board_line, min_size=1, max_size=5))
def test_line_noise_from_the_board_never_stops_the_host(board, noise):
    device, far, pty = board
    for chunk in noise:
        with contextlib.suppress(BlockingIOError):
            os.write(pty.far_fd, chunk)
    start = len(far.lines)
    device.pulse(0, 0.001)
    assert far.wait_for_line(lambda s: s.startswith("P 0 "), timeout_s=5, start=start)
    assert device.health().connected
    assert device._reader.is_alive() and device._reader.record.deaths == 0
