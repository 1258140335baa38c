"""Two cameras at once: `realtime-pose run a.yaml b.yaml` runs one session per camera (pylon's
two emulated cameras), each with its own stream, control port and recording, on one clock."""

from __future__ import annotations

import numpy as np
import pytest
import yaml

from realtime_pose.cli import main
from realtime_pose.recording import read_log
from tests.live.conftest import base_config
from tests.sources import camera_fixtures  # noqa: F401  (sets PYLON_CAMEMU before pypylon)

pytest.importorskip("pypylon", reason="the basler extra (pypylon) is not installed")


def test_two_emulated_cameras_side_by_side(tmp_path, marker_bundle):
    paths = []
    for serial in ("0815-0000", "0815-0001"):
        source = {
            "kind": "basler",
            "device_class": "BaslerCamEmu",
            "device": serial,
            "pixel_format": "Mono8",
            "width": 80,
            "height": 64,
            "fps": 40,
        }
        config = base_config(marker_bundle, tmp_path / serial, source)
        path = tmp_path / f"{serial}.yaml"
        path.write_text(yaml.safe_dump(config))
        paths.append(path)
    assert main(["run", *map(str, paths), "--seconds", "3", "--quiet"]) == 0
    logs = [
        read_log(next((tmp_path / s / "rec").glob("*.poselog"))) for s in ("0815-0000", "0815-0001")
    ]
    assert [log.header["meta"]["source"] for log in logs] == [
        "basler:0815-0000",
        "basler:0815-0001",
    ]
    for log in logs:
        assert len(log.poses) >= 40 and log.closed_cleanly
        assert np.all(np.diff(log.camera_frame_id) >= 1)
    # both on the host's monotonic clock: each frame of one camera has a partner of the other
    # within a frame period (free-running emulators; a shared hardware trigger would also
    # make their frame ids advance together)
    a, b = logs[0].t_capture_ns, logs[1].t_capture_ns
    overlap = a[(a > b[0]) & (a < b[-1])]
    nearest = np.abs(b[np.searchsorted(b, overlap).clip(1, len(b) - 1) - 1] - overlap)
    nearest = np.minimum(
        nearest, np.abs(b[np.searchsorted(b, overlap).clip(0, len(b) - 1)] - overlap)
    )
    assert len(overlap) >= 30 and np.median(nearest) < 25_000_000
