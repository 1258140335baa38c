"""Shared fixtures: a marker bundle, a marker video, and a run config on free loopback ports."""

from pathlib import Path

import cv2
import pytest

from tests.builders import draw_markers, write_marker_bundle

W, H = 80, 64
LOCREF_SHIFT = 7.2801 * 0.25


def cells(i: int) -> list[tuple[int, int]]:
    """Marker cells (ix, iy) of red, green, blue in frame i of the marker video."""
    return [(1 + i % 8, 2), (4, 1 + i % 5), (9 - i % 6, 6)]


def expected_pose(i: int) -> list[list[float]]:
    return [[ix * 8 + 4 + LOCREF_SHIFT, iy * 8 + 4 + LOCREF_SHIFT] for ix, iy in cells(i)]


@pytest.fixture
def marker_bundle(tmp_path) -> Path:
    return write_marker_bundle(tmp_path / "bundle")


@pytest.fixture
def marker_video(tmp_path) -> Path:
    path = tmp_path / "markers.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 100.0, (W, H))
    for i in range(80):
        writer.write(draw_markers(H, W, cells(i)))
    writer.release()
    return path


def base_config(bundle: Path, tmp_path: Path, source: dict, **extra) -> dict:
    config = {
        "source": source,
        "bundle": str(bundle),
        "engine": {"threads": 1, "spinning": False, "warmup_runs": 1},
        "stream": {"address": "tcp://127.0.0.1:*", "control_address": "tcp://127.0.0.1:*"},
        "recording": {"enabled": True, "directory": str(tmp_path / "rec")},
        "status_interval_s": 0.2,
    }
    config.update(extra)
    return config


def curve_config(bundle: Path, video: Path, tmp_path: Path, keys: Path) -> dict:
    """A run config: the marker video looping in real time, stream and control with CURVE
    (keys from ``realtime-pose keys``: ``rig.key_secret`` and ``clients/``), no recording."""
    source = {"kind": "video", "path": str(video), "realtime": True, "loop": True}
    config = base_config(bundle, tmp_path, source, recording={"enabled": False})
    config["stream"]["curve"] = {
        "secret_key": str(keys / "rig.key_secret"),
        "authorized_clients": str(keys / "clients"),
    }
    return config
