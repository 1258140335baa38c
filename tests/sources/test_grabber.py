"""The newest-frame grabber with real sources and real threads."""

from __future__ import annotations

import itertools
import threading
import time

import pytest

from realtime_pose.live.grabber import Grabber
from realtime_pose.sources import SourceError
from realtime_pose.sources.camera import CameraSource
from realtime_pose.sources.synthetic import SyntheticSource
from realtime_pose.sources.video import VideoSource
from tests.sources.video_files import decoded_index


class Events:
    """Collects ``on_status`` reports (called from the grabber's threads)."""

    def __init__(self) -> None:
        self.reports: list[dict] = []
        self._lock = threading.Lock()

    def __call__(self, status: dict) -> None:
        with self._lock:
            self.reports.append(status)

    def names(self) -> list[str]:
        with self._lock:
            return [r["event"] for r in self.reports]


def drain(grabber: Grabber, consume_s: float = 0.0, limit_s: float = 20.0) -> list:
    frames = []
    deadline = time.monotonic() + limit_s
    while not grabber.ended and time.monotonic() < deadline:
        frame = grabber.get(timeout_s=0.5)
        if frame is not None:
            frames.append(frame)
            time.sleep(consume_s)
    return frames


def test_every_frame_is_delivered_to_a_fast_consumer(video_20):
    events = Events()
    # 100 ms per frame: a consumer that keeps up gets every frame, even on a busy machine.
    source = VideoSource(video_20, realtime=True, fps=10.0, max_frames=10)
    with Grabber(source, on_status=events) as grabber:
        frames = drain(grabber)
        stats = grabber.stats()
    assert [f.frame_index for f in frames] == list(range(10))
    assert stats["read"] == 10 and stats["delivered"] == 10 and stats["dropped"] == 0
    assert stats["state"] == "ended" and stats["errors"] == 0
    assert events.names() == ["ended"]
    assert grabber.ended
    assert grabber.get(timeout_s=5.0) is None  # returns at once after the end


def test_newest_frame_wins_with_a_slow_consumer():
    source = SyntheticSource(width=64, height=48, fps=200.0, max_frames=60)
    with Grabber(source) as grabber:
        frames = drain(grabber, consume_s=0.03)  # ~33 Hz consumer, 200 Hz source
        stats = grabber.stats()
    indices = [f.frame_index for f in frames]
    assert indices == sorted(set(indices))  # never an older or repeated frame
    assert indices[-1] == 59  # the last frame is not lost
    assert len(frames) < 40  # most frames were overwritten, not queued
    assert stats["read"] == 60
    assert stats["delivered"] == len(frames)
    assert stats["dropped"] == 60 - len(frames)
    gaps = [b - a for a, b in itertools.pairwise(indices)]
    assert max(gaps) >= 3


def test_a_free_running_source_is_read_in_lockstep_with_a_slow_consumer():
    source = SyntheticSource(width=64, height=48, realtime=False, max_frames=30)
    with Grabber(source) as grabber:
        assert grabber.lockstep
        frames = drain(grabber, consume_s=0.01)
        stats = grabber.stats()
    assert [f.frame_index for f in frames] == list(range(30))  # nothing dropped or repeated
    assert stats["read"] == stats["delivered"] == 30 and stats["dropped"] == 0


def test_lockstep_reads_ahead_by_one_frame_only():
    source = SyntheticSource(width=64, height=48, realtime=False, max_frames=100)
    with Grabber(source) as grabber:
        first = grabber.get(timeout_s=2.0)
        time.sleep(0.2)  # a newest-frame reader would have made ~all 100 frames by now
        read = grabber.stats()["read"]
        second = grabber.get(timeout_s=2.0)
    assert first is not None and second is not None
    assert (first.frame_index, second.frame_index) == (0, 1)
    assert read == 2  # the one taken and the one waiting in the slot


def test_a_free_running_source_can_still_be_read_newest_first():
    source = SyntheticSource(width=64, height=48, realtime=False, max_frames=200)
    with Grabber(source, lockstep=False) as grabber:
        first = grabber.get(timeout_s=2.0)
        time.sleep(0.2)
        second = grabber.get(timeout_s=2.0)
    assert first is not None and second is not None
    assert second.frame_index - first.frame_index > 1


def test_the_frame_handed_out_is_the_newest_read():
    source = SyntheticSource(width=64, height=48, fps=100.0, max_frames=40)
    with Grabber(source) as grabber:
        first = grabber.get(timeout_s=2.0)
        time.sleep(0.15)  # ~15 frames arrive meanwhile
        frame = grabber.get(timeout_s=2.0)
        read_so_far = grabber.stats()["read"]
    assert first is not None and frame is not None
    assert frame.frame_index >= read_so_far - 2  # within a frame or two of the newest read
    assert frame.frame_index - first.frame_index >= 5


def test_get_times_out_when_no_new_frame_arrives():
    source = SyntheticSource(width=64, height=48, fps=2.0)  # one frame every 500 ms
    with Grabber(source, stall_timeout_s=5.0) as grabber:
        assert grabber.get(timeout_s=2.0) is not None
        t0 = time.monotonic()
        assert grabber.get(timeout_s=0.1) is None
        waited = time.monotonic() - t0
        assert not grabber.ended
    assert 0.09 <= waited < 0.45


def test_a_polling_wait_hands_over_each_new_frame_and_still_times_out():
    source = SyntheticSource(width=64, height=48, fps=4.0)  # one frame every 250 ms
    with Grabber(source, stall_timeout_s=5.0) as grabber:
        first = grabber.get(timeout_s=2.0, poll_s=0.001)
        assert first is not None
        assert grabber.get(timeout_s=0.05, poll_s=0.001) is None  # ~50 wake-ups, no frame
        second = grabber.get(timeout_s=2.0, poll_s=0.001)
        assert second is not None and second.frame_index == first.frame_index + 1
        assert grabber.stats()["dropped"] == 0


def test_a_source_that_dies_mid_run_is_reopened():
    events = Events()
    source = SyntheticSource(width=64, height=48, fps=200.0, max_frames=40, fail_after=10)
    grabber = Grabber(source, reopen_backoff_s=(0.05,), on_status=events)
    grabber.start()
    frames = drain(grabber)
    grabber.stop()
    stats = grabber.stats()
    assert events.names() == ["error", "reopened", "ended"]
    error = events.reports[0]
    assert error["state"] == "reopening" and "frame 10" in error["message"]
    assert stats["errors"] == 1 and stats["reopens"] == 1 and stats["read"] == 40
    assert "simulated failure at frame 10" in stats["last_error"]
    assert frames[-1].frame_index == 39
    assert 10 in [f.frame_index for f in frames] or stats["dropped"] > 0


def test_a_stalled_source_is_reported_and_reopened():
    events = Events()
    source = SyntheticSource(width=64, height=48, fps=100.0, stall_after=5, stall_s=1.0)
    grabber = Grabber(source, stall_timeout_s=0.3, reopen_backoff_s=(0.05,), on_status=events)
    grabber.start()
    try:
        assert grabber.get(timeout_s=2.0) is not None
        deadline = time.monotonic() + 5.0
        while "stalled" not in events.names() and time.monotonic() < deadline:
            time.sleep(0.02)
        assert grabber.stats()["state"] == "stalled"
        stalled = next(r for r in events.reports if r["event"] == "stalled")
        assert stalled["stalls"] == 1
        while "reopened" not in events.names() and time.monotonic() < deadline:
            time.sleep(0.02)
        assert events.names() == ["stalled", "reopened"]
        frame = grabber.get(timeout_s=2.0)
        frame = grabber.get(timeout_s=2.0)
        assert frame is not None and frame.frame_index > 5  # frames flow again
        assert grabber.stats()["state"] == "running"
    finally:
        grabber.stop()
    assert grabber.stats()["state"] == "stopped"


class FlakyVideo(VideoSource):
    """A real video source whose device 'disappears' for its first ``failures`` reopens."""

    def __init__(self, *args, failures: int, fail_read_at: int, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.failures = failures
        self.fail_read_at = fail_read_at
        self.opens = 0

    def open(self) -> None:
        self.opens += 1
        if 1 < self.opens <= 1 + self.failures:
            raise SourceError(f"{self.source_id}: gone (open {self.opens})")
        super().open()

    def read(self):
        frame = super().read()
        if frame is not None and frame.frame_index == self.fail_read_at:
            self.fail_read_at = -1
            raise SourceError(f"{self.source_id}: unplugged")
        return frame


def test_failed_reopens_back_off_and_retry(video_20):
    events = Events()
    source = FlakyVideo(video_20, realtime=False, failures=2, fail_read_at=4)
    grabber = Grabber(source, reopen_backoff_s=(0.01, 0.2), on_status=events)
    grabber.start()
    t0 = time.monotonic()
    frames = drain(grabber)
    elapsed = time.monotonic() - t0
    grabber.stop()
    assert events.names() == ["error", "reopen_failed", "reopen_failed", "reopened", "ended"]
    assert [r["reopens"] for r in events.reports] == [0, 0, 0, 1, 1]
    stats = grabber.stats()
    assert stats["errors"] == 3
    assert elapsed >= 0.01 + 0.2 + 0.2  # the last backoff value repeats
    assert frames[-1].frame_index == 19 and decoded_index(frames[-1].image) == 19


def test_a_failing_status_callback_does_not_stop_the_grabber(video_20):
    def broken(status: dict) -> None:
        raise RuntimeError("subscriber bug")

    source = SyntheticSource(width=64, height=48, fps=200.0, max_frames=20, fail_after=3)
    with Grabber(source, reopen_backoff_s=(0.01,), on_status=broken) as grabber:
        frames = drain(grabber)
    assert frames[-1].frame_index == 19


def test_start_fails_clearly_when_the_source_cannot_be_opened():
    grabber = Grabber(CameraSource(97))
    with pytest.raises(SourceError, match="camera 97"):
        grabber.start()
    grabber.stop()


def test_stop_wakes_a_waiting_consumer():
    source = SyntheticSource(width=64, height=48, fps=2.0)  # one frame every 500 ms
    grabber = Grabber(source, stall_timeout_s=10.0)
    grabber.start()
    assert grabber.get(timeout_s=2.0) is not None
    result = {}

    def consumer() -> None:
        t0 = time.monotonic()
        result["frame"] = grabber.get(timeout_s=10.0)
        result["waited"] = time.monotonic() - t0

    thread = threading.Thread(target=consumer)
    thread.start()
    time.sleep(0.1)
    grabber.stop()
    thread.join(5.0)
    assert result["frame"] is None and result["waited"] < 3.0
    assert grabber.stats()["state"] == "stopped"


def test_a_grabber_starts_once():
    source = SyntheticSource(width=64, height=48, realtime=False, max_frames=2)
    with Grabber(source) as grabber, pytest.raises(RuntimeError, match="already started"):
        grabber.start()


def test_a_truncated_file_ends_the_grabber_cleanly(truncated_video):
    events = Events()
    source = VideoSource(truncated_video, realtime=False)
    with Grabber(source, on_status=events) as grabber:
        frames = drain(grabber)
        stats = grabber.stats()
    assert source.truncated
    assert 0 < stats["read"] < 30 and stats["errors"] == 0
    assert frames[-1].frame_index == stats["read"] - 1  # the last decodable frame arrives
    assert events.names() == ["ended"] and grabber.ended
