"""A live session from a YAML config through pylon's emulator playing the openfield frames: its
poses equal offline analysis of the same frames, and every record carries the camera's ids."""

from __future__ import annotations

import threading
import time

import cv2
import numpy as np
import pytest
import yaml
import zmq

from tests.sources.camera_fixtures import openfield_frames, openfield_paths

pytest.importorskip("pypylon", reason="the basler extra (pypylon) is not installed")

from realtime_pose.bundle import load_bundle
from realtime_pose.engines import open_engine
from realtime_pose.geometry import Size
from realtime_pose.inference.estimator import PoseEstimator
from realtime_pose.live.run_config import load_config
from realtime_pose.live.session import LiveSession
from realtime_pose.offline.analysis import analyze_video
from realtime_pose.recording import read_log
from realtime_pose.stream import messages
from realtime_pose.util.paths import DEMO_BUNDLE

INPUT = [320, 240]


def offline_poses(tmp_path) -> np.ndarray:
    """`analyze` on the same 96 frames (a lossless FFV1 video of the PNGs)."""
    video = tmp_path / "openfield.mkv"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"FFV1"), 30.0, (640, 480))
    for path in openfield_paths():
        writer.write(cv2.imread(str(path)))
    writer.release()
    bundle = load_bundle(DEMO_BUNDLE)
    engine = open_engine(bundle, {"threads": 1, "spinning": False}, [Size(*INPUT)])
    result = analyze_video(
        video, bundle, PoseEstimator(bundle, engine, Size(*INPUT)), tmp_path, progress=None
    )
    import pandas as pd

    [h5] = [path for path in result.files if path.suffix == ".h5"]
    table = pd.read_hdf(h5)
    return table.to_numpy().reshape(len(table), -1, 3)


def test_live_session_through_the_emulator_matches_analyze(tmp_path):
    config = {
        "source": {
            "kind": "basler",
            "device_class": "BaslerCamEmu",
            "image_folder": str(openfield_frames()),
            "pixel_format": "BGR8",
            "width": 640,
            "height": 480,
            "fps": 30,
        },
        "bundle": str(DEMO_BUNDLE),
        "engine": {"threads": 1, "spinning": False, "warmup_runs": 1},
        "input_size": INPUT,
        "crop": {"enabled": False},
        "prediction": {"enabled": False},
        "stream": {"address": "tcp://127.0.0.1:*", "control_address": None},
        "recording": {"enabled": True, "directory": str(tmp_path / "rec")},
        "status_interval_s": 0.3,
    }
    path = tmp_path / "rig.yaml"
    path.write_text(yaml.safe_dump(config))
    statuses = []
    with LiveSession(load_config(path)) as session:
        ctx = zmq.Context.instance()
        sub = ctx.socket(zmq.SUB)
        sub.setsockopt(zmq.SUBSCRIBE, b"pose")
        sub.connect(session.publisher.bound_address)
        received = []

        def listen():
            sub.setsockopt(zmq.RCVTIMEO, 200)
            while len(received) < 20:
                try:
                    received.append(messages.decode(sub.recv_multipart()[1]))
                except zmq.Again:
                    if session.stop_event.is_set():
                        return

        listener = threading.Thread(target=listen)
        listener.start()
        time.sleep(0.2)
        session.run(4.0, statuses.append)
        listener.join(5)
        sub.close(0)
    rec = read_log(next((tmp_path / "rec").glob("*.poselog")))
    assert len(rec.poses) >= 40
    assert rec.header["meta"]["source"] == "basler:0815-0000"
    camera = rec.header["meta"]["camera"]
    assert camera["clock"] == "host_monotonic" and camera["trigger"] == "off"
    # every pose carries the camera's frame id and exposure-end time; gaps in frame_indices
    # are grabber drops, gaps in camera_frame_id camera drops (none here)
    assert np.all(rec.camera_frame_id >= 0) and np.all(rec.camera_dropped == 0)
    assert np.all(rec.t_arrival_ns >= rec.t_capture_ns)
    frames_behind = np.diff(rec.camera_frame_id) - np.diff(rec.frame_indices)
    assert np.all(frames_behind == 0)  # the emulator lost nothing: both advance together
    offline = offline_poses(tmp_path)
    live = rec.poses[:, 0]
    expected = offline[rec.camera_frame_id % len(offline)]
    np.testing.assert_allclose(live, expected, atol=1e-3)
    assert received and all("camera_frame_id" in m and "t_camera_ns" in m for m in received)
    assert statuses and statuses[-1]["camera_dropped"] == 0
    assert statuses[-1]["camera_drops"]["incomplete"] == 0


def test_run_refuses_an_option_outside_the_cameras_limits_at_start(tmp_path, caplog):
    from realtime_pose.cli import main

    config = {
        "source": {"kind": "basler", "device_class": "BaslerCamEmu", "exposure_us": 20_000_000},
        "bundle": str(DEMO_BUNDLE),
        "stream": {"enabled": False},
    }
    path = tmp_path / "rig.yaml"
    path.write_text(yaml.safe_dump(config))
    assert main(["run", str(path), "--seconds", "1", "--quiet"]) == 2
    assert "option 'exposure_us' = 20000000 is outside the camera's ExposureTime" in caplog.text
