"""Garbage collection between frames: while the loop runs the interpreter never collects on its
own (so never inside a frame); the loop collects after frames, on CPython's schedule by count;
afterwards the interpreter collects as before."""

import gc
import threading

from realtime_pose.live.garbage import LoopCollector
from realtime_pose.live.run_config import parse_config
from realtime_pose.live.session import LiveSession
from tests.live.conftest import base_config


def test_the_collector_takes_collection_over_and_gives_it_back():
    assert gc.isenabled()
    collector = LoopCollector(young_threshold=50, middle_every=2, old_every=2)
    collector.start()
    try:
        assert not gc.isenabled() and gc.get_freeze_count() > 0
        for _ in range(8):
            junk = [[] for _ in range(200)]  # net allocations past the threshold
            collector.after_frame()
            del junk
        assert collector.collections[0] >= 4 and collector.collections[1] >= 1
        assert collector.collections[2] >= 1
        assert gc.get_count()[0] < 250  # what frames left behind was collected
    finally:
        collector.stop()
    assert gc.isenabled() and gc.get_freeze_count() == 0


def test_a_live_session_collects_between_frames_and_restores_the_interpreter(
    tmp_path, marker_bundle, marker_video
):
    source = {"kind": "video", "path": str(marker_video), "realtime": False}
    data = base_config(marker_bundle, tmp_path, source, recording={"enabled": False})
    session = LiveSession(parse_config(data, "rig.yaml"))
    seen_enabled: list[bool] = []
    try:
        runner = threading.Thread(target=session.run, daemon=True)
        runner.start()
        while runner.is_alive():
            seen_enabled.append(gc.isenabled())
            runner.join(0.005)
    finally:
        session.close()
    assert session.collector is not None
    assert False in seen_enabled  # off while the loop ran (80 frames leave < 700 objects: the
    # loop allocates little, so it rarely has anything to collect)
    assert gc.isenabled()  # and back after


def test_the_run_config_can_leave_collection_to_the_interpreter(tmp_path, marker_bundle):
    data = base_config(marker_bundle, tmp_path, {"kind": "synthetic"}, gc_between_frames=False)
    assert parse_config(data).gc_between_frames is False
