"""The latency self-test end to end on a real pty, and its sequence matching."""

import os

import numpy as np

from realtime_pose.live.latency_selftest import (
    PATH_SEGMENTS,
    LoopSettings,
    match_by_sequence,
    path_segments,
    run_latency_test,
)
from tests.builders import write_marker_bundle


def test_match_by_sequence_skips_lost_pulses():
    dispatches = [{"t_frame_ns": t} for t in (0, 100, 200)]
    writes = [{"line": f"P 0 1 {s}"} for s in (7, 8, 9)]
    arrivals = [(15, "P 0 1 7"), (240, "P 0 1 9"), (250, "L 0 10")]  # seq 8 was dropped
    lat, missing = match_by_sequence(dispatches, writes, arrivals)
    assert lat.tolist() == [15, 40] and missing == 1


def test_path_segments_split_each_matched_pulse_in_three_legs():
    dispatches = [{"t_frame_ns": 0, "t_ns": 5}, {"t_frame_ns": 100, "t_ns": 104}]
    writes = [
        {"event": "sent", "t_write_ns": 9, "line": "P 0 1 7"},
        {"event": "sent", "t_write_ns": 110, "line": "P 0 1 8"},
    ]
    arrivals = [(15, "P 0 1 7")]  # seq 8 never arrived
    legs = path_segments(dispatches, writes, arrivals)
    assert {k: v.tolist() for k, v in legs.items()} == {
        "frame_to_dispatch": [5],
        "dispatch_to_write": [4],
        "write_to_arrival": [6],
    }


def test_latency_test_measures_every_firing(tmp_path):
    bundle = write_marker_bundle(tmp_path / "b")
    result = run_latency_test(bundle, seconds=1.5, fps=100, size=(80, 64), refractory_ms=20)
    summary = result.summary()
    assert summary["n"] >= 20 and result.unmatched == 0
    assert (result.latencies_ns > 0).all()  # a byte cannot arrive before its frame was ready
    assert summary["p50_ms"] <= summary["p99_ms"] <= summary["max_ms"]
    assert np.isfinite(summary["engine_p50_ms"])
    assert {"grab", "inference", "process", "total"} <= set(summary["stages_ms"])
    legs = result.segments_ns
    assert set(legs) == set(PATH_SEGMENTS) and all(v.size == summary["n"] for v in legs.values())
    assert all((v >= 0).all() for v in legs.values())
    np.testing.assert_array_equal(sum(legs.values()), result.latencies_ns)  # legs add up
    # the part that is ours: each firing minus its own frame's inference time
    beyond = result.beyond_engine_ns
    assert beyond.size == summary["n"] and (beyond > 0).all()
    assert (beyond < result.latencies_ns).all()
    assert summary["beyond_engine_ms"]["p50"] is not None


def test_latency_test_takes_the_loop_settings_and_keeps_each_firings_window(tmp_path):
    bundle = write_marker_bundle(tmp_path / "b")
    loop = LoopSettings(threads=1, spin_after_run=False, far_end_priority=10)
    result = run_latency_test(bundle, seconds=1.0, fps=100, size=(80, 64), loop=loop)
    config = result.summary()["config"]
    assert config["threads"] == 1 and config["spin_after_run"] is False
    # the far end is a real-time process where the OS lets it (CI runs as root), else it says why
    if os.geteuid() == 0:
        assert config["far_end_scheduling"] == "fifo 10"
    else:
        assert config["far_end_scheduling"].startswith(("refused", "fifo"))
    windows = result.windows_ns
    assert windows.shape == (result.beyond_engine_ns.size, 2) and windows.shape[0] >= 10
    spans = windows[:, 1] - windows[:, 0]
    assert (spans > result.beyond_engine_ns).all()  # a window holds its engine time too
    assert (np.diff(windows[:, 0]) > 0).all()  # firings in frame order


def test_a_whole_engine_section_replaces_the_thread_settings(tmp_path):
    bundle = write_marker_bundle(tmp_path / "b")
    section = {"kind": "onnxruntime", "threads": 1, "spinning": False}
    result = run_latency_test(
        bundle, seconds=0.6, fps=100, size=(80, 64), loop=LoopSettings(engine=section)
    )
    assert result.summary()["config"]["engine"] == section and result.latencies_ns.size > 0
