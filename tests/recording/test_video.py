"""The video recorder: a readable file, a sidecar that aligns it, and drops instead of waits."""

from __future__ import annotations

import csv

import cv2
import numpy as np
import pytest

from realtime_pose.recording import VideoRecorder
from realtime_pose.recording.video import sidecar_path


def _frame(i: int, size=(64, 48)) -> np.ndarray:
    return np.full((size[1], size[0], 3), (i * 8) % 256, dtype=np.uint8)


def _sidecar_rows(path):
    with open(sidecar_path(path)) as f:
        return [
            (int(r["video_frame"]), int(r["frame_index"]), int(r["t_capture_ns"]))
            for r in csv.DictReader(f)
        ]


def test_writes_a_readable_video_with_sidecar(tmp_path):
    path = tmp_path / "cam.avi"
    with VideoRecorder(path, fps=30, size=(64, 48), queue_size=100) as video:
        for i in range(25):
            assert video.write(_frame(i), frame_index=100 + 2 * i, t_capture_ns=10 * i)
    assert video.submitted == video.written == 25 and video.dropped == 0
    capture = cv2.VideoCapture(str(path))
    means = []
    while True:
        ok, frame = capture.read()
        if not ok:
            break
        means.append(frame.mean())
    capture.release()
    assert len(means) == 25
    np.testing.assert_allclose(means, [(i * 8) % 256 for i in range(25)], atol=3)
    assert _sidecar_rows(path) == [(i, 100 + 2 * i, 10 * i) for i in range(25)]


def test_drops_rather_than_blocks_when_the_encoder_is_behind(tmp_path):
    path = tmp_path / "big.avi"
    size = (1280, 960)
    frame = np.random.default_rng(0).integers(0, 255, (size[1], size[0], 3), dtype=np.uint8)
    video = VideoRecorder(path, fps=100, size=size, queue_size=1, copy=False)
    accepted = [video.write(frame, i, i) for i in range(60)]
    video.close()
    assert video.dropped > 0  # a blocking write would have waited instead
    assert video.submitted == 60 == video.written + video.dropped
    assert sum(accepted) == video.written
    rows = _sidecar_rows(path)
    assert [r[0] for r in rows] == list(range(video.written))
    assert [r[1] for r in rows] == [i for i, ok in enumerate(accepted) if ok]
    capture = cv2.VideoCapture(str(path))
    assert int(capture.get(cv2.CAP_PROP_FRAME_COUNT)) == video.written
    capture.release()


def test_refusals(tmp_path, caplog):
    (tmp_path / "taken.avi").write_bytes(b"x")
    with pytest.raises(FileExistsError):
        VideoRecorder(tmp_path / "taken.avi", 30, (64, 48))
    with pytest.raises(ValueError, match="fps must be > 0"):
        VideoRecorder(tmp_path / "a.avi", 0, (64, 48))
    with VideoRecorder(tmp_path / "gray.avi", 30, (64, 48), color=False) as video:
        assert video.write(_frame(0), 0, 0) is False  # colour frame into a gray video
        assert video.write(np.zeros((40, 64), np.uint8), 1, 0) is False
        assert video.write(np.zeros((48, 64), np.uint8), 2, 0)
    assert video.rejected == 2 and video.written == 1 and video.submitted == 3
    assert "frame 0 has shape [48, 64, 3], the recorder expects [48, 64]" in caplog.text
    assert _sidecar_rows(tmp_path / "gray.avi") == [(0, 2, 0)]
    with pytest.raises(RuntimeError, match="closed"):
        video.write(np.zeros((48, 64), np.uint8), 1, 1)


def test_sidecar_keeps_the_camera_ids_and_times(tmp_path):
    path = tmp_path / "cam.avi"
    with VideoRecorder(path, fps=30, size=(64, 48)) as video:
        video.write(_frame(0), 0, 1000)  # a source without camera fields
        camera = {"camera_frame_id": 65535, "t_camera_ns": 7, "t_arrival_ns": 1200}
        video.write(_frame(1), 1, 1100, {**camera, "camera_dropped": 2})
    with open(sidecar_path(path)) as f:
        rows = list(csv.DictReader(f))
    assert [r["camera_frame_id"] for r in rows] == ["-1", "65535"]
    assert rows[1]["t_camera_ns"] == "7" and rows[1]["t_arrival_ns"] == "1200"
