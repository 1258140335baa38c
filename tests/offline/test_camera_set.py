"""`realtime-pose analyze --calibration`: three cameras' videos → anipose's 3D table and a 3D NWB
file that movement loads, per-camera 2D tables, and the 3D points near the scene's truth."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from realtime_pose.sources.synthetic_views import SyntheticViews, virtual_rig
from realtime_pose.util.paths import DEMO_BUNDLE

REPO = Path(__file__).resolve().parents[2]
FRAMES, FPS = 30, 30.0
pytestmark = pytest.mark.skipif(
    not (DEMO_BUNDLE / "model.onnx").is_file(), reason="demo bundle not built"
)


def write_videos(folder: Path) -> SyntheticViews:
    scene = SyntheticViews(virtual_rig(3), seed=4, fps=FPS)
    for camera in ("cam0", "cam1", "cam2"):
        writer = cv2.VideoWriter(
            str(folder / f"session_{camera}.avi"), cv2.VideoWriter_fourcc(*"FFV1"), FPS, (320, 240)
        )
        for i in range(FRAMES):
            writer.write(scene.render(i, camera)[0])
        writer.release()
    return scene


def analyze(*args: str) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "realtime_pose", "analyze", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=300, cwd=REPO)


def test_a_camera_set_is_triangulated_into_files_movement_loads(tmp_path):
    from movement.io import load_poses

    scene = write_videos(tmp_path)
    virtual_rig(3).save(tmp_path / "calibration.toml")
    videos = [str(tmp_path / f"session_{c}.avi") for c in ("cam2", "cam0", "cam1")]
    out = analyze(
        *videos,
        "--bundle",
        str(DEMO_BUNDLE),
        "--calibration",
        str(tmp_path / "calibration.toml"),
        "--format",
        "dlc,nwb",
        "--output-dir",
        str(tmp_path / "out"),
        "--threads",
        "1",
    )
    assert out.returncode == 0, out.stderr
    name = "session_cam2-session_cam0-session_cam1"
    csv, nwb = tmp_path / "out" / f"{name}_3d.csv", tmp_path / "out" / f"{name}_3d.nwb"
    assert all((tmp_path / "out" / f"{name}_{c}.h5").is_file() for c in ("cam0", "cam1", "cam2"))

    from_csv = load_poses.from_anipose_file(csv, fps=FPS)
    position = from_csv.position.values  # [time, space, keypoints, individuals]
    assert position.shape == (FRAMES, 3, 4, 1)
    order = [list(from_csv.keypoints.values).index(k) for k in scene.keypoints]  # movement sorts
    truth = np.stack([scene.truth3d(i) for i in range(FRAMES)])  # [T, K, 3]
    error = np.linalg.norm(position[:, :, order, 0].transpose(0, 2, 1) - truth, axis=-1)
    assert np.nanmedian(error) < 4.0, f"median 3D error {np.nanmedian(error):.2f} mm"

    from_nwb = load_poses.from_nwb_file(nwb, pose_estimation_key="PoseEstimation3D")
    assert from_nwb.position.shape[:3] == (FRAMES, 3, 4)
    np.testing.assert_allclose(
        np.sort(from_nwb.position.values.ravel()), np.sort(position.ravel()), equal_nan=True
    )

    again = analyze(
        *videos,
        "--bundle",
        str(DEMO_BUNDLE),
        "--calibration",
        str(tmp_path / "calibration.toml"),
        "--output-dir",
        str(tmp_path / "out"),
    )
    assert again.returncode == 2 and "exists" in again.stderr, "never over a file unasked"


def test_a_video_whose_camera_cannot_be_told_is_refused(tmp_path):
    virtual_rig(3).save(tmp_path / "calibration.toml")
    (tmp_path / "mystery.avi").write_bytes(b"")
    (tmp_path / "session_cam0.avi").write_bytes(b"")
    out = analyze(
        str(tmp_path / "session_cam0.avi"),
        str(tmp_path / "mystery.avi"),
        "--bundle",
        str(DEMO_BUNDLE),
        "--calibration",
        str(tmp_path / "calibration.toml"),
    )
    assert out.returncode == 2
    assert "mystery.avi: cannot tell which camera" in out.stderr
