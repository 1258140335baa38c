"""What the camera-backend tests share: the emulators' environment and the openfield frames."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

# pylon's camera emulator: two cameras (0815-0000, 0815-0001). Set before pypylon loads; the tests
# reach them only through the emulator transport layer (no GigE Vision discovery broadcast).
os.environ.setdefault("PYLON_CAMEMU", "2")

OPENFIELD = Path("/work/shared/datasets/openfield-Pranav-2018-10-30")
OPENFIELD_FRAMES = OPENFIELD / "labeled-data" / "m4s1"


def openfield_frames() -> Path:
    """The 96 labelled openfield PNGs (640×480), or skip the test."""
    if not OPENFIELD_FRAMES.is_dir():
        pytest.skip(f"the openfield dataset is not at {OPENFIELD_FRAMES}")
    return OPENFIELD_FRAMES


def openfield_paths() -> list[Path]:
    """The PNG files in the order the emulator plays them (sorted by name)."""
    return sorted(openfield_frames().glob("*.png"))
