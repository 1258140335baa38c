"""`realtime-pose run` as a process: SIGTERM stops it cleanly; SIGKILL loses no recorded pose."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import yaml

from realtime_pose.recording import read_log
from tests.live.conftest import base_config

REPO = Path(__file__).resolve().parents[2]


def _start(tmp_path, marker_bundle):
    config = base_config(
        marker_bundle, tmp_path, {"kind": "synthetic", "width": 80, "height": 64, "fps": 200}
    )
    config["recording"]["fsync_interval_s"] = 5.0  # crash safety must not depend on fsync
    path = tmp_path / "rig.yaml"
    path.write_text(yaml.safe_dump(config))
    env = dict(os.environ, PYTHONPATH=str(REPO))
    proc = subprocess.Popen(
        [sys.executable, "-m", "realtime_pose", "run", str(path), "--quiet"],
        cwd=tmp_path,
        env=env,
        stderr=subprocess.PIPE,
        text=True,
    )
    return proc


def _wait_for_poses(tmp_path, n, timeout_s=60.0):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        logs = list((tmp_path / "rec").glob("*.poselog"))
        if logs and logs[0].stat().st_size > 0:
            try:
                if len(read_log(logs[0]).poses) >= n:
                    return logs[0]
            except Exception:
                pass
        time.sleep(0.1)
    raise AssertionError("the run never recorded enough poses")


def test_sigkill_keeps_every_recorded_pose(tmp_path, marker_bundle):
    proc = _start(tmp_path, marker_bundle)
    try:
        log_path = _wait_for_poses(tmp_path, 50)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
    rec = read_log(log_path)
    assert not rec.closed_cleanly
    assert len(rec.poses) >= 50
    assert np.array_equal(rec.seq, np.arange(rec.seq[0], rec.seq[0] + len(rec.seq)))
    assert np.isfinite(rec.poses[:, 0, :, :2]).all()


def test_sigterm_stops_cleanly_and_converts(tmp_path, marker_bundle):
    proc = _start(tmp_path, marker_bundle)
    try:
        log_path = _wait_for_poses(tmp_path, 20)
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    assert read_log(log_path).closed_cleanly
    assert log_path.with_suffix(".h5").is_file()


def test_bad_config_file_is_refused_naming_file_and_field(tmp_path, marker_bundle):
    path = tmp_path / "rig.yaml"
    path.write_text(yaml.safe_dump({"bundle": str(marker_bundle), "crop": {"width": "wide"}}))
    env = dict(os.environ, PYTHONPATH=str(REPO))
    out = subprocess.run(
        [sys.executable, "-m", "realtime_pose", "run", str(path)],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 2
    assert "rig.yaml: field 'crop.width'" in out.stderr
