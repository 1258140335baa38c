"""Far-end timestamping helpers: pty pairs, links, FarEndReader/PtyFarEnd."""

from __future__ import annotations

import os
import time

import serial

from realtime_pose.hardware.dispatcher import OutputDispatcher
from realtime_pose.hardware.serial import SerialDevice
from realtime_pose.hardware.testing.loopback import FarEndReader, PtyFarEnd, open_pty_pair
from tests.hardware.conftest import WAIT_S


def test_pty_pair_link_points_at_the_device_and_is_removed_on_close(tmp_path):
    link = tmp_path / "port"
    pair = open_pty_pair(link)
    assert os.readlink(link) == pair.device_path and pair.host_path == str(link)
    pair.close()
    pair.close()  # idempotent: must not close a reused descriptor number
    assert not os.path.lexists(link)


def test_link_of_a_newer_pair_survives_closing_the_older_one(tmp_path):
    link = tmp_path / "port"
    old = open_pty_pair(link)
    new = open_pty_pair(link)
    old.close()
    assert os.readlink(link) == new.device_path
    new.close()


def test_reader_stamps_each_line_when_it_arrives_and_can_reply():
    with PtyFarEnd() as far:
        port = serial.serial_for_url(far.host_path, timeout=5)
        try:
            t_before = time.monotonic_ns()
            port.write(b"first\nsecond")
            t_first, line = far.wait_for_line(lambda s: s == "first", timeout_s=WAIT_S)
            assert line == "first" and t_first >= t_before
            assert far.wait_for_line(lambda s: s == "second", timeout_s=0.2) is None  # incomplete
            t_mid = time.monotonic_ns()
            port.write(b" half\n")
            t_second, _ = far.wait_for_line(lambda s: s == "second half", timeout_s=WAIT_S)
            assert t_second >= t_mid  # stamped when its last byte arrived
            far.write(b"E 1\n")
            assert port.readline() == b"E 1\n"
        finally:
            port.close()


def test_frame_to_byte_latency_through_the_dispatcher():
    """The path the latency test measures: submit (frame ready) -> bytes at the far end."""
    with PtyFarEnd() as far:
        dev = SerialDevice(far.host_path, 1, configure_board=False, watchdog_ms=0)
        with OutputDispatcher({"laser": (dev, 0)}, register_atexit=False) as disp:
            stamps = []
            for frame in range(5):
                t_frame_ns = time.monotonic_ns()
                disp.submit("laser", "pulse", 0.001, frame_index=frame, t_frame_ns=t_frame_ns)
                t_rx, _ = far.wait_for_line(
                    lambda s, f=frame: s == f"P 0 1 {f + 1}", timeout_s=WAIT_S
                )
                stamps.append(t_rx - t_frame_ns)
        assert all(dt > 0 for dt in stamps)
        frames = [r["frame_index"] for r in disp.action_log.records("dispatch")]
        assert frames == [0, 1, 2, 3, 4]


def test_far_end_reader_stops_on_a_closed_descriptor():
    r, w = os.pipe()
    reader = FarEndReader(r)
    os.write(w, b"x\n")
    assert reader.wait_for(1)[0][1] == "x"
    os.close(w)  # EOF ends the thread
    reader._thread.join(timeout=5)
    assert not reader._thread.is_alive()
    os.close(r)


def test_far_end_process_stamps_lines_in_another_process():
    from realtime_pose.hardware.testing.far_end import FarEndProcess

    with open_pty_pair() as pty:
        reader = FarEndProcess(pty.far_fd)
        before = time.monotonic_ns()
        os.write(pty.device_fd, b"P 0 5 1\n")
        time.sleep(0.05)
        os.write(pty.device_fd, b"P 0 5 2\nL 0 ")  # the unfinished line is not reported
        time.sleep(0.05)
        after = time.monotonic_ns()
        lines = reader.stop()
    assert [line for _, line in lines] == ["P 0 5 1", "P 0 5 2"]
    stamps = [t for t, _ in lines]
    assert before <= stamps[0] < stamps[1] <= after
    assert reader.lines == lines
