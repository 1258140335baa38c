"""Small videos cut from the openfield video for the distributed-analysis tests."""

from __future__ import annotations

from pathlib import Path

import cv2
import pytest

OPENFIELD = Path(__file__).resolve().parents[4] / (
    "shared/datasets/openfield-Pranav-2018-10-30/videos/m3v1mp4.mp4"
)
needs_openfield = pytest.mark.skipif(
    not OPENFIELD.is_file(), reason="shared openfield dataset not present"
)


def openfield_clips(folder: Path, lengths: list[int], size: tuple[int, int] = (320, 240)) -> list:
    """Consecutive pieces of the openfield video, ``lengths`` frames each, re-encoded as MPEG-4
    part 2 (``mp4v``: I and P frames, so chunk boundaries fall between keyframes)."""
    capture = cv2.VideoCapture(str(OPENFIELD))
    paths = []
    for i, n in enumerate(lengths):
        path = folder / f"openfield_part{i}.mp4"
        writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 30.0, size)
        for _ in range(n):
            ok, image = capture.read()
            assert ok
            writer.write(cv2.resize(image, size, interpolation=cv2.INTER_AREA))
        writer.release()
        paths.append(path)
    capture.release()
    return paths


def corrupt_video(path: Path) -> Path:
    """An ``.mp4`` that is not one (a header and noise)."""
    path.write_bytes(b"\x00\x00\x00\x18ftypmp42" + bytes(range(256)) * 40)
    return path
