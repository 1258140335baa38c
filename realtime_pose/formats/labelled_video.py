"""Drawing poses onto frames: keypoints above a likelihood cut-off and the skeleton between them."""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np

from realtime_pose.bundle import animal_layout
from realtime_pose.util.safe_write import writing


def keypoint_colors(n: int) -> np.ndarray:
    """``n`` distinct BGR colours (a hue wheel, like DeepLabCut's jet-ish maps), ``[n, 3]``."""
    hues = np.linspace(0, 179, n, endpoint=False).astype(np.uint8)
    hsv = np.stack([hues, np.full(n, 255, np.uint8), np.full(n, 255, np.uint8)], 1)[None]
    return cv2.cvtColor(hsv, cv2.COLOR_HSV2BGR)[0]


def pose_colors(keypoints: Sequence[str]) -> np.ndarray:
    """A BGR colour per keypoint ``[K, 3]``: one per keypoint, or, for a multi-animal model
    (``animal/bodypart`` names), one per animal, so each animal is drawn in its own colour."""
    layout = animal_layout(keypoints)
    if layout is None:
        return keypoint_colors(len(keypoints))
    animals, bodyparts = layout
    return np.repeat(keypoint_colors(len(animals)), len(bodyparts), axis=0)


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


class LabeledVideoWriter:
    """Frames with their poses drawn, encoded to an ``.mp4`` through
    :mod:`realtime_pose.util.safe_write` (published only when closed without an error).

    Use as a context manager; :meth:`write` one frame and its ``[K, 3]`` pose at a time.
    ``keypoints``: the names (colours by :func:`pose_colors`) or just their number.
    """

    def __init__(
        self,
        path: Path,
        fps: float,
        edges: list[tuple[int, int]],
        keypoints: int | Sequence[str],
        pcutoff: float = 0.6,
        overwrite: bool = False,
    ) -> None:
        self.path, self.fps, self.edges, self.pcutoff = Path(path), fps, edges, pcutoff
        self.overwrite = overwrite
        if isinstance(keypoints, int):
            self.colors = keypoint_colors(keypoints)
        else:
            self.colors = pose_colors(list(keypoints))
        self.frames = 0
        self._stack = contextlib.ExitStack()
        self._writer: cv2.VideoWriter | None = None
        self._tmp: Path | None = None

    def __enter__(self) -> LabeledVideoWriter:
        self._tmp = self._stack.enter_context(writing(self.path, self.overwrite))
        return self

    def write(self, image: np.ndarray, pose: np.ndarray) -> None:
        """Draw ``pose`` on a copy of ``image`` and encode it."""
        if self._writer is None:
            h, w = image.shape[:2]
            fourcc = cv2.VideoWriter_fourcc(*"mp4v")
            self._writer = cv2.VideoWriter(str(self._tmp), fourcc, self.fps, (w, h))
        self._writer.write(draw_pose(image.copy(), pose, self.edges, self.pcutoff, self.colors))
        self.frames += 1

    def __exit__(self, *exc_info: object) -> None:
        if self._writer is not None:
            self._writer.release()
        self._stack.__exit__(*exc_info)
