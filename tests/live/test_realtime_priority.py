"""The loop thread under SCHED_FIFO where the OS allows it, back to normal after; where it does
not, one log line and the loop runs as before."""

import os
import threading
import time

import pytest

from realtime_pose.live.affinity import restore_thread_policy, set_thread_realtime
from realtime_pose.live.run_config import parse_config
from realtime_pose.live.session import LiveSession
from tests.live.conftest import base_config

pytestmark = pytest.mark.skipif(
    not hasattr(os, "sched_setscheduler"), reason="needs Linux's sched_setscheduler"
)


def _may_use_fifo() -> bool:
    try:
        os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(1))
    except OSError:
        return False
    os.sched_setscheduler(0, os.SCHED_OTHER, os.sched_param(0))
    return True


def test_a_refused_policy_is_one_line_and_changes_nothing(caplog):
    before = os.sched_getscheduler(0)
    assert set_thread_realtime(0) is None  # FIFO priority 0 is invalid: the kernel refuses
    assert "could not run the loop thread under SCHED_FIFO 0" in caplog.text
    assert os.sched_getscheduler(0) == before


@pytest.mark.skipif(not _may_use_fifo(), reason="this user may not use SCHED_FIFO")
def test_the_loop_thread_runs_under_fifo_and_returns_to_normal(
    tmp_path, marker_bundle, marker_video
):
    source = {"kind": "video", "path": str(marker_video), "realtime": True}
    data = base_config(marker_bundle, tmp_path, source, realtime_priority=10)
    session = LiveSession(parse_config(data, "rig.yaml"))
    policies: list[int] = []
    try:
        runner = threading.Thread(target=session.run, kwargs={"duration_s": 0.6}, daemon=True)
        runner.start()
        while runner.is_alive():
            try:
                policies.append(os.sched_getscheduler(runner.native_id))
            except OSError:  # the thread ended between the check and the call
                break
            time.sleep(0.02)
        runner.join(5)
    finally:
        session.close()
    assert os.SCHED_FIFO in policies
    assert os.sched_getscheduler(0) == os.SCHED_OTHER  # the test's own thread never changed
    previous = set_thread_realtime(5)
    assert previous is not None and os.sched_getscheduler(0) == os.SCHED_FIFO
    restore_thread_policy(previous)
    assert os.sched_getscheduler(0) == previous[0]
