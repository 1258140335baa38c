"""VideoSource on small real files written with cv2.VideoWriter."""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path

import numpy as np
import pytest

from realtime_pose.sources import SourceError
from realtime_pose.sources.video import VideoSource
from tests.sources.video_files import decoded_index, write_video


def read_all(source) -> list:
    frames = []
    while (frame := source.read()) is not None:
        frames.append(frame)
    return frames


def test_reads_every_frame_in_order_then_ends(video_20):
    with VideoSource(video_20, realtime=False) as source:
        assert source.size == (64, 48)
        assert source.fps == pytest.approx(50.0)
        assert source.source_id == "twenty.avi"
        frames = read_all(source)
        assert source.read() is None  # stays ended
    assert [f.frame_index for f in frames] == list(range(20))
    assert [decoded_index(f.image) for f in frames] == list(range(20))
    assert all(f.image.shape == (48, 64, 3) and f.image.dtype == np.uint8 for f in frames)
    assert all(f.source_id == "twenty.avi" and f.ground_truth is None for f in frames)
    stamps = [f.t_capture_ns for f in frames]
    assert stamps == sorted(stamps)
    assert not source.truncated


def test_realtime_is_paced_at_the_file_fps(video_20):
    with VideoSource(video_20, realtime=True) as source:
        start = time.monotonic()
        frames = read_all(source)
        elapsed = time.monotonic() - start
    assert len(frames) == 20
    assert elapsed >= 0.9 * 19 / 50  # 19 periods of 20 ms; free-running decodes in ~2 ms
    periods_ms = np.diff([f.t_capture_ns for f in frames]) / 1e6
    assert np.median(periods_ms) == pytest.approx(20.0, abs=3.0)


def test_fps_override_changes_the_pace(video_20):
    with VideoSource(video_20, realtime=True, fps=200.0, max_frames=10) as source:
        frames = read_all(source)
    assert source.fps == 200.0
    assert len(frames) == 10
    periods_ms = np.diff([f.t_capture_ns for f in frames]) / 1e6
    assert np.median(periods_ms) < 12  # 5 ms nominal; at 50 fps it would be 20


def test_loop_and_max_frames(video_20):
    with VideoSource(video_20, realtime=False, loop=True, max_frames=45) as source:
        frames = read_all(source)
    assert [f.frame_index for f in frames] == list(range(45))
    assert [decoded_index(f.image) for f in frames] == [i % 20 for i in range(45)]


def test_reopen_resumes_after_the_last_delivered_frame(video_20):
    source = VideoSource(video_20, realtime=False)
    source.open()
    for _ in range(7):
        source.read()
    source.close()
    source.close()  # closing twice is harmless
    with pytest.raises(SourceError, match="not open"):
        source.read()
    source.open()
    frame = source.read()
    source.close()
    assert frame.frame_index == 7
    assert decoded_index(frame.image) == 7


def test_missing_file_names_the_file(tmp_path):
    missing = tmp_path / "nope.mp4"
    with pytest.raises(SourceError, match=r"nope\.mp4.*does not exist"):
        VideoSource(missing).open()


def test_garbage_file_names_the_file(tmp_path):
    garbage = tmp_path / "garbage.mp4"
    garbage.write_bytes(os.urandom(4096))
    with pytest.raises(SourceError, match=r"cannot open video file .*garbage\.mp4"):
        VideoSource(garbage).open()


def test_truncated_mp4_cannot_be_opened(tmp_path):
    import cv2

    full = tmp_path / "full.mp4"
    writer = cv2.VideoWriter(str(full), cv2.VideoWriter_fourcc(*"mp4v"), 30, (64, 48))
    for i in range(30):
        writer.write(np.full((48, 64, 3), i, np.uint8))
    writer.release()
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(full.read_bytes()[: full.stat().st_size // 2])  # loses its index (moov)
    with pytest.raises(SourceError, match=r"cut\.mp4"):
        VideoSource(cut).open()


def test_truncated_avi_ends_early_with_a_warning(truncated_video, caplog):
    with caplog.at_level(logging.WARNING), VideoSource(truncated_video, realtime=False) as source:
        frames = read_all(source)
    assert source.frame_count == 30
    assert 0 < len(frames) < 30
    assert [decoded_index(f.image) for f in frames] == list(range(len(frames)))
    assert source.truncated
    assert "truncated" in caplog.text and "truncated.avi" in caplog.text


def test_a_file_without_frame_rate_needs_fps_to_be_paced(tmp_path):
    path = write_video(tmp_path / "v.avi", 3)
    assert VideoSource(path, realtime=True, fps=10.0).fps == 10.0
    with pytest.raises(ValueError, match="fps"):
        VideoSource(path, fps=0.0)
    with pytest.raises(ValueError, match="max_frames"):
        VideoSource(path, max_frames=-1)


OPENFIELD_VIDEO = Path("/work/shared/datasets/openfield-Pranav-2018-10-30/videos/m3v1mp4.mp4")


@pytest.mark.skipif(not OPENFIELD_VIDEO.is_file(), reason="openfield dataset not present")
def test_the_openfield_video_reads_at_its_native_rate():
    with VideoSource(OPENFIELD_VIDEO, realtime=False, max_frames=3) as source:
        frames = read_all(source)
    assert source.fps == pytest.approx(30.0, abs=0.01)
    assert source.size == (640, 480) and source.frame_count == 2330
    assert [f.image.shape for f in frames] == [(480, 640, 3)] * 3
