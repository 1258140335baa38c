"""Fixtures for the source and grabber tests: small real video files."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.sources.video_files import write_video


@pytest.fixture
def video_20(tmp_path: Path) -> Path:
    """20 frames at 50 fps."""
    return write_video(tmp_path / "twenty.avi", 20)


@pytest.fixture
def truncated_video(tmp_path: Path) -> Path:
    """A 30-frame .avi cut to 70 % of its bytes (its header still announces 30 frames)."""
    full = write_video(tmp_path / "full.avi", 30)
    data = full.read_bytes()
    cut = tmp_path / "truncated.avi"
    cut.write_bytes(data[: int(len(data) * 0.7)])
    return cut
