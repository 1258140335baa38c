"""The control path of a running session under trouble: a recording whose video cannot start, a
command the busy loop does not take in time, a slow conversion. Real sessions, real sockets."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from realtime_pose.recording import read_log
from realtime_pose.stream import ControlClient
from tests.view.sessions import RunningSession, StreamLog, marker_config


def _fsync_threads() -> int:
    return sum(t.name == "pose-log-fsync" and t.is_alive() for t in threading.enumerate())


def _open_fds_to(path: Path) -> list[str]:
    fds = Path("/proc/self/fd")
    if not fds.is_dir():
        pytest.skip("needs /proc to see the open files")
    opened = []
    for fd in fds.iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target == str(path) or target.startswith(f"{path} "):  # "... (deleted)"
            opened.append(target)
    return opened


def _wait_for(predicate, timeout_s: float = 20.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return predicate()


def test_a_video_that_cannot_start_leaves_no_pose_log_open(tmp_path):
    rec = tmp_path / "rec"
    rec.mkdir()
    (rec / "trial.avi").mkdir()  # where the video would go: the writer cannot start
    with (
        RunningSession(marker_config(tmp_path), tmp_path) as run,
        ControlClient(run.control, 5000) as client,
    ):
        threads_before = _fsync_threads()
        reply = client.request("record_start", path="trial.poselog", video=True)
        assert not reply["ok"]
        assert "trial.avi" in reply["error"] and "video" in reply["error"]
        assert run.session.pipeline.recorder is None
        assert _wait_for(lambda: _fsync_threads() == threads_before, 5), "fsync thread left"
        assert not _open_fds_to(rec / "trial.poselog"), "the pose log is still open"
        # nothing was recorded, and the same name is free once the video can start
        (rec / "trial.avi").rmdir()
        again = client.request("record_start", path="trial.poselog", video=True)
        assert again["ok"], again
        time.sleep(0.3)
        assert client.request("record_stop")["ok"]
    assert len(read_log(rec / "trial.poselog").poses) > 5


def test_a_command_the_busy_loop_did_not_take_in_time_never_runs(tmp_path):
    with (
        RunningSession(marker_config(tmp_path), tmp_path) as run,
        ControlClient(run.control, 8000) as client,
    ):
        pipe = run.session.pipeline
        assert client.request("record_start", path="kept.poselog")["ok"]
        gate = threading.Event()
        blocker = threading.Thread(  # holds the loop thread between two frames
            target=pipe.call_in_loop, args=(lambda: gate.wait(8),), kwargs={"timeout_s": 20}
        )
        blocker.start()
        try:
            late = []
            with pytest.raises(TimeoutError, match="nothing was done"):
                pipe.call_in_loop(lambda: late.append(1), timeout_s=0.3)
            refused = client.request("record_stop")  # waits the handlers' 2 s, then gives up
            assert not refused["ok"] and "nothing was done" in refused["error"]
        finally:
            gate.set()
            blocker.join(10)
        frames = pipe.frames
        assert _wait_for(lambda: pipe.frames > frames + 10), "the loop goes on"
        assert late == [], "a timed-out command ran after its caller gave up"
        assert pipe.recorder is not None, "a 'failed' record_stop detached the recording"
        assert client.request("status")["status"]["recording"].endswith("kept.poselog")
        stopped = client.request("record_stop")
        assert stopped["ok"] and stopped["path"].endswith("kept.poselog")


def test_a_command_already_running_when_the_wait_ends_is_waited_for(tmp_path):
    with RunningSession(marker_config(tmp_path), tmp_path) as run:
        pipe = run.session.pipeline
        assert _wait_for(lambda: pipe.frames > 5)
        started = threading.Event()

        def slow() -> str:
            started.set()
            time.sleep(1.0)
            return "done"

        assert pipe.call_in_loop(slow, timeout_s=0.2) == "done"  # truthful: it did run
        assert started.is_set()


def test_a_slow_conversion_does_not_hold_up_other_requests(tmp_path):
    with (
        RunningSession(marker_config(tmp_path), tmp_path) as run,
        ControlClient(run.control, 10000) as client,
        ControlClient(run.control, 10000) as other,
    ):
        events = StreamLog(run.stream, (b"event",))
        try:
            pipe = run.session.pipeline
            started = client.request("record_start", path="long.poselog")
            assert started["ok"], started
            kp = np.full((3, 3), 5.0)

            def fill() -> None:  # an hour of poses at 14 fps: a conversion of seconds
                for i in range(50_000):
                    pipe.recorder.write_pose(10**7 + i, 10**7 + i, i, kp)

            pipe.call_in_loop(fill, timeout_s=60)
            log_path = Path(started["path"])
            tables = [log_path.with_suffix(".h5"), log_path.with_suffix(".csv")]
            stopped = client.request("record_stop")
            assert stopped["ok"], stopped
            assert stopped["path"] == str(log_path) and stopped["converting"] is True
            pong = other.request("ping")
            assert pong["ok"]
            assert not any(t.exists() for t in tables), "ping answered only after converting"
            assert client.request("status")["ok"]

            def finished() -> list[dict]:
                return [
                    e
                    for e in events.of(b"event")
                    if e["kind"] == "recording" and e.get("state") == "stopped"
                ]

            assert _wait_for(lambda: finished(), 60), "no event said the conversion ended"
            (done,) = finished()
            assert done["name"] == str(log_path)
            assert set(map(str, tables)) <= set(done["tables"])  # and the predicted poses'.
            assert done["poses"] >= 50_000 and "conversion_error" not in done
            assert all(t.exists() for t in tables)
        finally:
            events.close()
