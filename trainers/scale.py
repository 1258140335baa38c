"""The scale a network sees the animals at, chosen from the labels.

A network of stride 8 learns fastest when the animal fills a training crop of a few hundred
pixels and its body parts lie a few score-map cells apart. Projects differ by an order of
magnitude in how large the animal is in the frame (a 123-px mouse in openfield, a hand over
most of an 832×747 frame), so :func:`choose_scale` picks the factor frames are resized by, for
training and for every later use of the model (the bundle's ``input.scale``; analysis, the live
loop and evaluation resize by it and report keypoints in the original frame's pixels):

- **shrink** until the animal, at the largest augmentation scale, fits a crop of at most
  ``crop_max_px`` (its 90th-percentile extent, plus a margin); a small animal is never enlarged
  (scale 1: openfield is unchanged);
- but **not so far** that neighbouring body parts come closer than ``min_part_distance_strides``
  score-map cells (the median, over frames, of each frame's smallest distance between two
  labelled keypoints): below that the maps of two parts merge.

When the two bounds conflict, the part distance wins (a crop larger than ``crop_max_px`` is
slower, merged parts are wrong).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np

CROP_MAX_PX = 320
"""The largest training crop side the scale aims for (256-320 px trains at ~0.2-0.3 s/step on
2 cores; 512-px crops took 1.25 s/step)."""
CROP_MARGIN_PX = 32.0
MIN_PART_DISTANCE_STRIDES = 2.0


@dataclass(frozen=True)
class ScaleChoice:
    """The chosen scale and what it was chosen from (recorded in ``train_config.json``)."""

    scale: float
    animal_extent_px: float
    nearest_parts_px: float | None
    scale_for_crop: float
    scale_floor_for_parts: float

    def as_dict(self) -> dict[str, float | None]:
        """Fields as a JSON-ready map."""
        return asdict(self)


def animal_extent_px(keypoints: np.ndarray, percentile: float = 90.0) -> float:
    """The ``percentile`` of the labelled frames' extents (largest side of the keypoints' box)."""
    extents = []
    for pose in keypoints:
        visible = pose[np.isfinite(pose).all(axis=1)]
        if len(visible) >= 2:
            extents.append(float(np.ptp(visible, axis=0).max()))
    return float(np.percentile(extents, percentile)) if extents else 0.0


def nearest_parts_px(keypoints: np.ndarray) -> float | None:
    """Median over frames of the smallest distance between two labelled keypoints (``None``
    with fewer than two keypoints anywhere); coincident points (distance 0) are ignored."""
    nearest = []
    for pose in keypoints:
        visible = pose[np.isfinite(pose).all(axis=1)]
        if len(visible) < 2:
            continue
        d = np.hypot(*(visible[:, None, :] - visible[None, :, :]).transpose(2, 0, 1))
        d = d[np.triu_indices(len(visible), 1)]
        d = d[d > 0]
        if d.size:
            nearest.append(float(d.min()))
    return float(np.median(nearest)) if nearest else None


def choose_scale(
    keypoints: np.ndarray,
    scale_max: float = 1.25,
    stride: float = 8.0,
    crop_max_px: float = CROP_MAX_PX,
    min_part_distance_strides: float = MIN_PART_DISTANCE_STRIDES,
) -> ScaleChoice:
    """The factor (≤ 1, two decimals) to resize frames by for labels ``[N, K, 2]`` (frame px).

    ``scale_max`` is the augmentation's largest scale (the animal is trained up to that size).
    """
    extent = animal_extent_px(keypoints)
    nearest = nearest_parts_px(keypoints)
    for_crop = 1.0
    if extent > 0:
        for_crop = min(1.0, (crop_max_px - CROP_MARGIN_PX) / (scale_max * extent))
    floor = 0.0
    if nearest is not None:
        floor = min(1.0, min_part_distance_strides * stride / nearest)
    scale = max(for_crop, floor)
    scale = min(1.0, math.floor(scale * 100 + 1e-9) / 100) if scale < 1.0 else 1.0
    return ScaleChoice(scale, extent, nearest, for_crop, floor)
