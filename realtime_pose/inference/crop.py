"""Dynamic cropping: run the network on a fixed-size window around the animal.

A small window around the last confident pose is cheaper to run than the full frame and keeps more
pixels on the animal. The window's size never changes, so an engine (TensorRT in particular)
keeps one input shape; when the animal is lost the window falls back to the full frame until it
is found again. :meth:`CropWindow.transform` gives the
:class:`~realtime_pose.geometry.FrameTransform` that maps the
network's keypoints back to full-frame pixels.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numba
import numpy as np

from realtime_pose.geometry import FrameTransform, Size


@numba.njit(cache=True, nogil=True)
def confident_bbox_centre(pose: np.ndarray, min_likelihood: float) -> tuple[float, float]:
    """Centre of the bounding box of keypoints with likelihood >= ``min_likelihood``.

    ``pose`` is ``[K, 3]`` (x, y, likelihood); keypoints with non-finite coordinates are ignored.
    Returns ``(nan, nan)`` when no keypoint qualifies.
    """
    x_min = y_min = np.inf
    x_max = y_max = -np.inf
    for k in range(pose.shape[0]):
        x, y = pose[k, 0], pose[k, 1]
        if pose[k, 2] >= min_likelihood and np.isfinite(x) and np.isfinite(y):
            x_min, x_max = min(x_min, x), max(x_max, x)
            y_min, y_max = min(y_min, y), max(y_max, y)
    if x_min > x_max:
        return np.nan, np.nan
    return (x_min + x_max) / 2.0, (y_min + y_max) / 2.0


def crop_window(center_xy: tuple[float, float], crop: Size, frame: Size) -> tuple[int, int]:
    """Top-left corner ``(x0, y0)`` of a ``crop``-sized window centred on ``center_xy``.

    The window is shifted (never shrunk) to lie inside the frame, so near a border the centre
    is off the middle of the window.

    Parameters
    ----------
    center_xy
        Desired centre in frame pixels.
    crop
        Window size in pixels; must not exceed the frame.
    frame
        Frame size in pixels.

    Returns
    -------
    tuple of int
        ``(x0, y0)`` with ``0 <= x0 <= frame_w - crop_w`` and likewise for ``y0``.
    """
    (cx, cy), (cw, ch), (fw, fh) = center_xy, crop, frame
    if cw > fw or ch > fh:
        raise ValueError(f"crop {cw}x{ch} does not fit in frame {fw}x{fh}")
    # Pixel centres: a window [x0, x0 + cw) is centred on x0 + (cw - 1) / 2.
    x0 = round(cx - (cw - 1) / 2)
    y0 = round(cy - (ch - 1) / 2)
    return min(max(x0, 0), fw - cw), min(max(y0, 0), fh - ch)


@dataclass(frozen=True, slots=True)
class CropWindow:
    """The part of the frame to run the network on.

    Attributes
    ----------
    x0, y0
        Top-left corner in frame pixels.
    width, height
        Size in pixels (the frame's size when ``full_frame``).
    full_frame
        True when the window is the whole frame (no pose to follow).
    """

    x0: int
    y0: int
    width: int
    height: int
    full_frame: bool

    def crop(self, image: np.ndarray) -> np.ndarray:
        """A view of ``image`` (``[H, W, ...]``) inside the window; no copy."""
        return image[self.y0 : self.y0 + self.height, self.x0 : self.x0 + self.width]

    @property
    def size(self) -> Size:
        """The window's size."""
        return Size(self.width, self.height)

    def transform(self, network: Size) -> FrameTransform:
        """The frame ↔ network mapping when the window is resized to the ``network`` input."""
        return FrameTransform.for_crop_resize(
            self.x0, self.y0, self.width, self.height, network.width, network.height
        )


class DynamicCropper:
    """Follow the animal with a fixed-size window; full frame while it is lost.

    Call :meth:`window` before running the network on a frame and :meth:`update` with the pose
    found in it (full-frame pixels). Feeding a forward-predicted pose instead of the measured one
    centres the window where the animal will be.

    Parameters
    ----------
    frame
        Frame size in pixels.
    crop
        Window size in pixels (at most the frame size).
    min_likelihood
        Keypoints at or above this likelihood place the window.
    lost_after_frames
        After this many consecutive poses without a confident keypoint the window returns to the
        full frame.
    """

    def __init__(
        self,
        frame: Size,
        crop: Size,
        min_likelihood: float = 0.5,
        lost_after_frames: int = 3,
    ) -> None:
        frame, crop = Size(*map(int, frame)), Size(*map(int, crop))
        if min(*frame, *crop) <= 0:
            raise ValueError("frame and crop sizes must be positive")
        if crop.width > frame.width or crop.height > frame.height:
            raise ValueError(
                f"crop {crop} is larger than the frame {frame}; use a smaller crop or no cropping"
            )
        if lost_after_frames < 1:
            raise ValueError(f"lost_after_frames must be at least 1, got {lost_after_frames}")
        self.frame = frame
        self.crop = crop
        self.min_likelihood = float(min_likelihood)
        self.lost_after_frames = int(lost_after_frames)
        self._full = CropWindow(0, 0, frame.width, frame.height, True)
        self._window = self._full
        self._frames_without_pose = self.lost_after_frames

    @property
    def lost(self) -> bool:
        """True while the window is the full frame for want of a confident pose."""
        return self._frames_without_pose >= self.lost_after_frames

    def reset(self) -> None:
        """Back to the full frame."""
        self._window = self._full
        self._frames_without_pose = self.lost_after_frames

    def window(self) -> CropWindow:
        """The window to use for the next frame."""
        return self._full if self.lost else self._window

    def update(self, pose_frame_px: np.ndarray) -> None:
        """Place the next window on the bounding-box centre of the confident keypoints.

        ``pose_frame_px`` is ``[K, 3]`` (x, y, likelihood) in full-frame pixels.
        """
        cx, cy = confident_bbox_centre(pose_frame_px, self.min_likelihood)
        if math.isnan(cx):
            self._frames_without_pose += 1
            return
        x0, y0 = crop_window((cx, cy), self.crop, self.frame)
        if (x0, y0) != (self._window.x0, self._window.y0) or self._window.full_frame:
            self._window = CropWindow(x0, y0, self.crop.width, self.crop.height, False)
        self._frames_without_pose = 0
