"""CPU affinity: planning, per-thread pinning, and a run with the loop pinned."""

import os
import sys
import threading

import numpy as np
import pytest

from realtime_pose.live.affinity import allowed_cpus, plan_cpus, set_thread_cpus
from realtime_pose.live.processors import ProcessorChain
from realtime_pose.live.run_config import ConfigError, parse_config
from realtime_pose.live.session import LiveSession
from realtime_pose.recording import read_log
from tests.live.conftest import base_config, expected_pose

linux_only = pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="per-thread affinity is Linux-only"
)


def test_plan_splits_the_cpus_and_refuses_missing_ones():
    plan = plan_cpus([1], allowed=[0, 1, 2])
    assert plan.loop == {1} and plan.others == {0, 2}
    assert plan_cpus([0, 1], allowed=[0, 1]).others == {0, 1}  # nothing left: share
    with pytest.raises(ValueError, match=r"\[7\] are not available"):
        plan_cpus([1, 7], allowed=[0, 1])
    with pytest.raises(ValueError, match="at least one"):
        plan_cpus([], allowed=[0, 1])


@linux_only
def test_pinning_acts_on_the_calling_thread_only():
    before = allowed_cpus()
    target = min(before)
    seen = {}

    def worker():
        seen["ok"] = set_thread_cpus({target})
        seen["worker"] = os.sched_getaffinity(0)

    thread = threading.Thread(target=worker)
    thread.start()
    thread.join()
    assert seen["ok"] and seen["worker"] == {target}
    assert allowed_cpus() == before


def test_config_names_the_field_of_a_missing_cpu(marker_bundle, tmp_path):
    source = {"kind": "synthetic", "width": 80, "height": 64}
    data = base_config(marker_bundle, tmp_path, source, loop_cpus=[max(allowed_cpus()) + 5])
    with pytest.raises(ConfigError, match=r"test: field 'loop_cpus'.*not available"):
        parse_config(data, "test")


@linux_only
def test_a_pinned_loop_runs_on_its_cpu_and_still_tracks(marker_bundle, marker_video, tmp_path):
    cpu = max(allowed_cpus())
    source = {"kind": "video", "path": str(marker_video), "realtime": True}
    config = parse_config(base_config(marker_bundle, tmp_path, source, loop_cpus=[cpu]), "test")
    before = allowed_cpus()
    seen = []

    class Probe:
        def process(self, pose, **kwargs):
            seen.append(os.sched_getaffinity(0))
            return pose

    with LiveSession(config) as session:
        session.pipeline.processors = ProcessorChain([Probe()])
        if len(before) > 1:  # threads started while building run on the other CPUs
            assert cpu not in allowed_cpus()
        session.run(duration_s=10)
        log_path = session.pipeline.recorder.path
    assert seen and all(s == {cpu} for s in seen)
    assert allowed_cpus() == before  # restored after the run and on close
    rec = read_log(log_path)
    assert len(rec.poses) >= 60
    for pose, i in zip(rec.poses[:, 0], rec.frame_indices, strict=True):
        np.testing.assert_allclose(pose[:, :2], expected_pose(int(i)), atol=1e-3)
