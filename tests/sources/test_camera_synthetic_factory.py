"""CameraSource (without a camera), SyntheticSource and make_source."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from realtime_pose.sources import SOURCES, FrameSource, SourceError, make_source
from realtime_pose.sources.camera import CameraSource
from realtime_pose.sources.synthetic import SyntheticSource
from realtime_pose.sources.synthetic_scene import SyntheticScene
from tests.sources.video_files import decoded_index


def test_a_camera_that_cannot_be_opened_is_named():
    source = CameraSource(97)
    with pytest.raises(SourceError, match=r"camera 97 \(/dev/video97"):
        source.open()
    with pytest.raises(SourceError, match="not open"):
        source.read()
    source.close()


def test_camera_device_strings():
    assert CameraSource("2").device == 2
    assert CameraSource("2").source_id == "camera2"
    pipeline = "videotestsrc ! videoconvert ! appsink"
    assert CameraSource(pipeline).backend == cv2.CAP_GSTREAMER
    assert CameraSource("rtsp://10.0.0.2/stream").backend == cv2.CAP_ANY
    with pytest.raises(ValueError, match="fourcc"):
        CameraSource(0, fourcc="MJPEG")


def test_a_stream_that_refuses_the_connection_is_named():
    with pytest.raises(SourceError, match=r"camera stream 'rtsp://127.0.0.1:9/none'"):
        CameraSource("rtsp://127.0.0.1:9/none", open_timeout_s=2.0).open()


def test_a_pipeline_that_cannot_be_opened_says_what_to_check():
    with pytest.raises(SourceError, match="GStreamer pipeline"):
        CameraSource("nosuchelement ! appsink").open()


def test_synthetic_frames_match_the_scene_and_carry_ground_truth():
    scene = SyntheticScene(width=96, height=64, seed=4, fps=100.0)
    with SyntheticSource(width=96, height=64, seed=4, realtime=False, max_frames=5) as source:
        frames = []
        while (frame := source.read()) is not None:
            frames.append(frame)
    assert source.size == (96, 64) and source.fps == 100.0
    assert source.keypoints == scene.keypoints
    assert [f.frame_index for f in frames] == [0, 1, 2, 3, 4]
    for frame in frames:
        image, keypoints = scene.frame(frame.frame_index)
        np.testing.assert_array_equal(frame.image, image)
        np.testing.assert_array_equal(frame.ground_truth, keypoints)
        assert frame.source_id == "synthetic4"


def test_synthetic_realtime_is_paced_at_fps():
    with SyntheticSource(width=64, height=48, fps=50.0, max_frames=8) as source:
        frames = [source.read() for _ in range(8)]
    periods_ns = np.diff([f.t_capture_ns for f in frames])
    # Stamped when handed over: the due time plus the timer's overshoot.
    assert np.median(periods_ns) == pytest.approx(20_000_000, abs=2_000_000)
    assert frames[-1].t_capture_ns - frames[0].t_capture_ns >= 7 * 20_000_000 - 2_000_000


def test_synthetic_fail_after_raises_once_then_continues():
    source = SyntheticSource(width=64, height=48, realtime=False, fail_after=3)
    source.open()
    assert [source.read().frame_index for _ in range(3)] == [0, 1, 2]
    with pytest.raises(SourceError, match="frame 3"):
        source.read()
    source.close()
    source.open()
    assert source.read().frame_index == 3
    source.close()


def test_synthetic_stall_blocks_once():
    source = SyntheticSource(width=64, height=48, realtime=False, stall_after=1, stall_s=0.3)
    source.open()
    source.read()
    t0 = cv2.getTickCount()
    assert source.read().frame_index == 1
    stalled_s = (cv2.getTickCount() - t0) / cv2.getTickFrequency()
    assert stalled_s >= 0.25
    assert source.read().frame_index == 2
    source.close()


def test_make_source_builds_each_kind(tmp_path):
    assert {"camera", "video", "synthetic"} <= set(SOURCES.names())
    synthetic = make_source("synthetic", width=64, height=48, max_frames=3)
    assert isinstance(synthetic, SyntheticSource) and synthetic.size == (64, 48)
    video = make_source("video", path=tmp_path / "x.avi", realtime=False)
    assert isinstance(video, FrameSource) and video.source_id == "x.avi"
    camera = make_source("camera", device="1", width=640)
    assert isinstance(camera, CameraSource) and camera.device == 1


def test_make_source_refuses_unknown_kinds_and_options():
    with pytest.raises(
        ValueError, match=r"unknown source 'webcam'; available: aravis, basler, camera"
    ):
        make_source("webcam")
    with pytest.raises(ValueError, match=r"colour\n +Extra inputs are not permitted"):
        make_source("synthetic", colour="red")
    with pytest.raises(ValueError, match=r"width\n +Input should be greater than or equal to 32"):
        make_source("synthetic", width=8)


def test_camera_read_path_on_a_stream_opened_by_url(video_20, caplog):
    """OpenCV opens a file path like a stream URL: the camera code runs end to end."""
    source = CameraSource(str(video_20), width=320, fps=50.0)
    with caplog.at_level("WARNING"), source:
        assert source.size == (64, 48)  # the 'camera' refused 320 wide and says so
        assert "asked for width=320, the camera gives 64" in caplog.text
        assert "fps" not in caplog.text  # 50 fps was what it gives
        frames = [source.read() for _ in range(20)]
        assert [f.frame_index for f in frames] == list(range(20))
        assert [decoded_index(f.image) for f in frames] == list(range(20))
        assert all(f.source_id == source.source_id for f in frames)
        assert len(source.source_id) <= 60
        with pytest.raises(SourceError, match="returned no frame"):
            source.read()  # a camera has no end: running dry is a failure
