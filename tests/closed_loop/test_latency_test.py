"""The latency self-test end to end on a real pty, and its sequence matching."""

import numpy as np

from realtime_pose.latency_test import match_by_sequence, run_latency_test
from tests.builders import write_marker_bundle


def test_match_by_sequence_skips_lost_pulses():
    dispatches = [{"t_frame_ns": t} for t in (0, 100, 200)]
    writes = [{"line": f"P 0 1 {s}"} for s in (7, 8, 9)]
    arrivals = [(15, "P 0 1 7"), (240, "P 0 1 9"), (250, "L 0 10")]  # seq 8 was dropped
    lat, missing = match_by_sequence(dispatches, writes, arrivals)
    assert lat.tolist() == [15, 40] and missing == 1


def test_latency_test_measures_every_firing(tmp_path):
    bundle = write_marker_bundle(tmp_path / "b")
    result = run_latency_test(bundle, seconds=1.5, fps=100, size=(80, 64), refractory_ms=20)
    summary = result.summary()
    assert summary["n"] >= 20 and result.unmatched == 0
    assert (result.latencies_ns > 0).all()  # a byte cannot arrive before its frame was ready
    assert summary["p50_ms"] <= summary["p99_ms"] <= summary["max_ms"]
    assert np.isfinite(summary["engine_p50_ms"])
    assert {"grab", "inference", "process", "total"} <= set(summary["stages_ms"])
