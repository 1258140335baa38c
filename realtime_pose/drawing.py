"""Drawing poses onto frames: keypoints above a likelihood cut-off and the skeleton between them."""

from __future__ import annotations

import cv2
import numpy as np


def keypoint_colors(n: int) -> np.ndarray:
    """``n`` distinct BGR colours (a hue wheel, like DeepLabCut's jet-ish maps), ``[n, 3]``."""
    hues = np.linspace(0, 179, n, endpoint=False).astype(np.uint8)
    hsv = np.stack([hues, np.full(n, 255, np.uint8), np.full(n, 255, np.uint8)], 1)[None]
    return cv2.cvtColor(hsv, cv2.COLOR_HSV2BGR)[0]


def draw_pose(
    frame: np.ndarray,
    pose: np.ndarray,
    edges: list[tuple[int, int]],
    pcutoff: float,
    colors: np.ndarray,
) -> np.ndarray:
    """Draw keypoints above ``pcutoff`` (and skeleton edges between them) onto ``frame``.

    ``pose`` is ``[K, 3]`` (x, y, likelihood) in frame pixels; ``edges`` are keypoint index
    pairs; ``frame`` is drawn on in place and returned.
    """
    radius = max(2, frame.shape[1] // 160)
    for a, b in edges:
        if pose[a, 2] >= pcutoff and pose[b, 2] >= pcutoff:
            pa = (int(round(pose[a, 0])), int(round(pose[a, 1])))
            pb = (int(round(pose[b, 0])), int(round(pose[b, 1])))
            cv2.line(frame, pa, pb, (200, 200, 200), 1, cv2.LINE_AA)
    for k, (x, y, p) in enumerate(pose):
        if p >= pcutoff and np.isfinite(x) and np.isfinite(y):
            color = tuple(int(c) for c in colors[k])
            cv2.circle(frame, (int(round(x)), int(round(y))), radius, color, -1, cv2.LINE_AA)
    return frame
