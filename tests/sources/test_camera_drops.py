"""Frame-id gaps (with 16-bit wrap-around) and drop counts by cause."""

import pytest

from realtime_pose.sources.camera_drops import CameraDrops, FrameIdGaps


def test_consecutive_ids_have_no_gap():
    gaps = FrameIdGaps()
    assert [gaps.gap(i) for i in range(5, 10)] == [0] * 5 and gaps.missing == 0


def test_gaps_are_counted():
    gaps = FrameIdGaps()
    assert [gaps.gap(i) for i in (1, 2, 5, 6, 10)] == [0, 0, 2, 0, 3]
    assert gaps.missing == 5


def test_16_bit_wrap_skipping_zero():
    gaps = FrameIdGaps(bits=16, skip_zero=True)
    assert [gaps.gap(i) for i in (65534, 65535, 1, 2)] == [0, 0, 0, 0]
    assert gaps.missing == 0 and gaps.restarts == 0


def test_16_bit_wrap_with_a_lost_frame():
    gaps = FrameIdGaps(bits=16, skip_zero=True, max_gap=100)
    assert [gaps.gap(i) for i in (65533, 65535, 2)] == [0, 1, 1]
    assert gaps.missing == 2 and gaps.restarts == 0


def test_16_bit_wrap_keeping_zero():
    gaps = FrameIdGaps(bits=16)
    assert [gaps.gap(i) for i in (65535, 0, 1, 3)] == [0, 0, 0, 1]


def test_a_counter_restart_is_not_a_drop():
    gaps = FrameIdGaps(max_gap=1000)
    assert [gaps.gap(i) for i in (500, 501, 0, 1, 100_000)] == [0, 0, 0, 0, 0]
    assert gaps.restarts == 2 and gaps.missing == 0


def test_counts_by_cause():
    drops = CameraDrops()
    drops.add("skipped", 3)
    drops.add("failed")
    drops.add("trigger_timeout")
    assert drops.total == 4
    assert drops.snapshot()["skipped"] == 3 and drops.snapshot()["trigger_timeout"] == 1
    with pytest.raises(ValueError, match="unknown drop cause"):
        drops.add("gremlins")


def test_a_late_frame_takes_back_its_skip():
    gaps = FrameIdGaps(bits=16, skip_zero=True)
    assert [gaps.gap(i) for i in (10, 12, 11, 13)] == [0, 1, -1, 0]
    assert gaps.missing == 0 and gaps.restarts == 0 and gaps.last == 13
    assert [gaps.gap(i) for i in (65535, 2, 1, 3)] == [0, 1, -1, 0]  # across the wrap
