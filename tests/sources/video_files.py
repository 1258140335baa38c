"""Small real video files whose frames can be identified after decoding."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

FRAME_W, FRAME_H = 64, 48


def frame_value(index: int) -> int:
    """Grey level written into frame ``index`` (recoverable after MJPEG compression)."""
    return (index * 10) % 250


def write_video(path: Path, n_frames: int, fps: float = 50.0) -> Path:
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), fps, (FRAME_W, FRAME_H))
    assert writer.isOpened(), "OpenCV cannot write MJPG .avi here"
    for i in range(n_frames):
        writer.write(np.full((FRAME_H, FRAME_W, 3), frame_value(i), np.uint8))
    writer.release()
    return path


def decoded_index(image: np.ndarray) -> int:
    """Which frame of :func:`write_video` this image is."""
    return round(float(image.mean()) / 10)
