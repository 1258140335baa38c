"""Animals moved apart: a multi-animal training frame with each animal cut out, turned and put
somewhere else in the frame, its keypoints moved with it.

A network with one score map per animal and bodypart (identity channels) names the animals by
whatever tells them apart in its training frames. Where the animals hardly move (the flies
clip's frames 0–959: a median 0.05 px per frame, the two always side by side), the cheapest cue
is *where* each one sits, and the network learns "the left fly" instead of "the female"; on
frames where they walk apart it puts both animals' maps on one fly. Moving every animal to a
random place and heading, independently, removes that cue and shows configurations the labels
never had, leaving appearance as the only way to tell who is who.

Each animal's region is the convex hull of its visible keypoints grown by ``margin_px``; the
regions are filled with the surrounding background (a normalised blur of the frame outside
them), then each animal's patch is rotated about its centre and pasted at a random place where
it overlaps no animal placed before it (else it stays where it was). Everything works on small
patches, so a 1024×1024 frame costs a few milliseconds.

:func:`rearrange_animals` is the pure kernel; the trainer calls it before the usual affine warp
(:func:`trainers.augment.augment`) with probability ``AugmentConfig.rearrange_probability``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import cv2
import numpy as np

#: Directions around each keypoint that grow the hull by the margin (a 16-gon: within 2 %).
_ANGLES = np.linspace(0, 2 * np.pi, 16, endpoint=False)
_RING = np.stack([np.cos(_ANGLES), np.sin(_ANGLES)], axis=1)


def animal_region(points: np.ndarray, margin_px: float) -> np.ndarray | None:
    """The convex hull (``[N, 2]`` float32) of ``points`` ``[B, 2]`` (NaN = not visible) grown by
    ``margin_px``; ``None`` with fewer than two visible points."""
    visible = points[np.isfinite(points).all(axis=1)]
    if len(visible) < 2:
        return None
    grown = (visible[:, None, :] + margin_px * _RING[None]).reshape(-1, 2).astype(np.float32)
    return cv2.convexHull(grown).reshape(-1, 2)


def fill_regions(image: np.ndarray, mask: np.ndarray, kernel_px: int = 61) -> np.ndarray:
    """``image`` with the pixels under ``mask`` (uint8, nonzero = fill) replaced by a normalised
    blur of the pixels around them (computed at a quarter of the size, in the masked pixels'
    bounding box grown by the kernel)."""
    out = image.copy()
    ys, xs = np.nonzero(mask)
    if len(ys) == 0:
        return out
    h, w = mask.shape
    y0, y1 = max(0, ys.min() - kernel_px), min(h, ys.max() + kernel_px + 1)
    x0, x1 = max(0, xs.min() - kernel_px), min(w, xs.max() + kernel_px + 1)
    window, window_mask = image[y0:y1, x0:x1], mask[y0:y1, x0:x1]
    wh, ww = window_mask.shape
    small = (max(1, ww // 4), max(1, wh // 4))
    keep = cv2.resize((window_mask == 0).astype(np.float32), small, interpolation=cv2.INTER_AREA)
    pixels = cv2.resize(window.astype(np.float32), small, interpolation=cv2.INTER_AREA)
    pixels = pixels.reshape(small[1], small[0], -1)
    k = max(3, kernel_px // 4) | 1
    weight = cv2.blur(keep, (k, k))[..., None]
    total = cv2.blur(pixels * keep[..., None], (k, k)).reshape(pixels.shape)
    mean = pixels.reshape(-1, pixels.shape[-1]).mean(axis=0)  # where nothing is near: the mean
    fill = np.where(weight > 1e-3, total / np.maximum(weight, 1e-3), mean).astype(np.float32)
    fill = cv2.resize(fill, (ww, wh), interpolation=cv2.INTER_LINEAR).reshape(window.shape)
    under = window_mask > 0
    out[y0:y1, x0:x1][under] = np.clip(fill[under], 0, 255).astype(image.dtype)
    return out


def _region_mask(shape: tuple[int, int], polygons: Sequence[np.ndarray]) -> np.ndarray:
    mask = np.zeros(shape, np.uint8)
    for polygon in polygons:
        cv2.fillConvexPoly(mask, np.round(polygon).astype(np.int32), 255)
    return mask


def _turned_patch(
    image: np.ndarray, polygon: np.ndarray, angle_deg: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The animal's patch and mask turned by ``angle_deg`` in a square canvas that holds any
    turn, and the 2×3 map from frame to canvas pixels."""
    h, w = image.shape[:2]
    x0, y0 = np.floor(polygon.min(axis=0)).astype(int)
    x1, y1 = np.ceil(polygon.max(axis=0)).astype(int) + 1
    x0, y0, x1, y1 = max(x0, 0), max(y0, 0), min(x1, w), min(y1, h)
    patch = image[y0:y1, x0:x1]
    mask = _region_mask(patch.shape[:2], [polygon - (x0, y0)])
    side = int(math.ceil(math.hypot(x1 - x0, y1 - y0))) + 2
    centre = ((x0 + x1) / 2, (y0 + y1) / 2)
    turn = cv2.getRotationMatrix2D((side / 2, side / 2), angle_deg, 1.0)
    to_canvas = turn.copy()  # frame → canvas: move the patch centre to the canvas centre, turn
    to_canvas[:, 2] += turn[:, :2] @ (np.array([side / 2, side / 2]) - centre)
    shift = to_canvas.copy()
    shift[:, 2] += to_canvas[:, :2] @ (x0, y0)  # patch pixels → canvas
    turned = cv2.warpAffine(patch, shift, (side, side), flags=cv2.INTER_LINEAR)
    turned_mask = cv2.warpAffine(mask, shift, (side, side), flags=cv2.INTER_NEAREST)
    return turned, turned_mask, to_canvas


def rearrange_animals(
    rng: np.random.Generator,
    image: np.ndarray,
    keypoints: np.ndarray,
    n_animals: int,
    *,
    margin_px: float = 12.0,
    max_turn_deg: float = 180.0,
    attempts: int = 12,
) -> tuple[np.ndarray, np.ndarray]:
    """Move each animal of a frame to a random place and heading.

    Parameters
    ----------
    image
        uint8 ``[H, W, 3]`` (or ``[H, W]``).
    keypoints
        ``[A * B, 2]`` frame px in animal-major order (all of animal 0's bodyparts first, as
        :func:`realtime_pose.bundle.animal_keypoint_names` lays them out); NaN = not visible.
    n_animals
        ``A``.

    Returns
    -------
    tuple
        The new frame and keypoints (float32, same layout). Frames with an animal of fewer than
        two visible keypoints come back unchanged (copies); an animal with no free place after
        ``attempts`` tries stays where it was.
    """
    h, w = image.shape[:2]
    kp = np.asarray(keypoints, np.float32).reshape(n_animals, -1, 2)
    regions = [animal_region(kp[a], margin_px) for a in range(n_animals)]
    if any(r is None for r in regions):
        return image.copy(), kp.reshape(-1, 2).copy()
    out = fill_regions(image, _region_mask((h, w), regions))  # type: ignore[arg-type]
    moved = kp.copy()
    taken = np.zeros((h, w), bool)
    for a in rng.permutation(n_animals):
        region = regions[a]
        turned, mask, to_canvas = _turned_patch(
            image, region, rng.uniform(-max_turn_deg, max_turn_deg)
        )
        side = turned.shape[0]
        placed = None
        if side < min(h, w):
            for _ in range(attempts):
                x, y = int(rng.integers(0, w - side + 1)), int(rng.integers(0, h - side + 1))
                if not (taken[y : y + side, x : x + side] & (mask > 0)).any():
                    placed = (x, y)
                    break
        if placed is None:  # no room: the animal stays, turned by 0
            turned, mask, to_canvas = _turned_patch(image, region, 0.0)
            side = turned.shape[0]
            cx, cy = to_canvas[:, 2]
            placed = (-int(round(cx)), -int(round(cy)))
        x, y = placed
        _paste(out, turned, mask, x, y)
        _mark(taken, mask, x, y)
        visible = np.isfinite(kp[a]).all(axis=1)
        canvas = kp[a][visible] @ to_canvas[:, :2].T + to_canvas[:, 2]
        moved[a][visible] = canvas + np.array([x, y], np.float32)
    return out, moved.reshape(-1, 2)


def _window(shape: tuple[int, ...], side: int, x: int, y: int) -> tuple[slice, slice, slice, slice]:
    """Frame and canvas slices of a ``side``-square canvas placed at ``(x, y)``, clipped."""
    h, w = shape[:2]
    fx0, fy0, fx1, fy1 = max(x, 0), max(y, 0), min(x + side, w), min(y + side, h)
    return (
        slice(fy0, fy1),
        slice(fx0, fx1),
        slice(fy0 - y, fy1 - y),
        slice(fx0 - x, fx1 - x),
    )


def _paste(out: np.ndarray, patch: np.ndarray, mask: np.ndarray, x: int, y: int) -> None:
    fy, fx, cy, cx = _window(out.shape, patch.shape[0], x, y)
    under = mask[cy, cx] > 0
    out[fy, fx][under] = patch[cy, cx][under]


def _mark(taken: np.ndarray, mask: np.ndarray, x: int, y: int) -> None:
    fy, fx, cy, cx = _window(taken.shape, mask.shape[0], x, y)
    taken[fy, fx] |= mask[cy, cx] > 0


__all__ = ["animal_region", "fill_regions", "rearrange_animals"]
