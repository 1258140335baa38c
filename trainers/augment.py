"""Augmentation: one affine warp per sample (image and keypoints together) plus photometric noise.

The warp scales, rotates, optionally mirrors and translates the frame into a fixed-size training
crop in one ``cv2.warpAffine``. The crop is placed so that the labelled animal is in view at a
random position inside it: the network is fully convolutional, and seeing the animal everywhere
in the crop is what lets it find the animal anywhere in a full frame, even where no labelled
frame showed it.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np


@dataclass(frozen=True)
class AugmentConfig:
    """Augmentation ranges (DeepLabCut's recipe, which works from scratch; on the openfield frames
    a scale range of 0.75-1.25 instead of 0.5-1.25 fitted the training frames better but was
    0.2 px worse on held-out frames after 30 minutes)."""

    scale_min: float = 0.5
    scale_max: float = 1.25
    rotation_deg: float = 25.0
    flip_probability: float = 0.5
    keep_animal_probability: float = 0.9  # else the crop lands anywhere (negatives, partial views)
    margin_px: float = 8.0
    brightness: float = 0.25  # ± fraction of 255 added
    contrast: float = 0.3  # ± fraction of gain
    blur_probability: float = 0.2
    noise_probability: float = 0.3
    noise_sigma_max: float = 8.0
    grayscale_probability: float = 0.1
    rearrange_probability: float = 0.0  # several animals: move them apart first (rearrange.py)


_SIDE_WORDS = (("left", "right"), ("Left", "Right"), ("LEFT", "RIGHT"))
_SIDE_TOKENS = {"L": "R", "l": "r", "R": "L", "r": "l"}


def _mirror_name(name: str) -> str | None:
    """``name`` with its side swapped, or ``None`` when it names no side."""
    for left, right in _SIDE_WORDS:
        if left in name:
            return name.replace(left, right)
        if right in name:
            return name.replace(right, left)
    parts = re.split(r"([_\-. ])", name)
    for i, part in enumerate(parts):
        if part in _SIDE_TOKENS:
            return "".join([*parts[:i], _SIDE_TOKENS[part], *parts[i + 1 :]])
    return None


def flip_permutation(
    bodyparts: Sequence[str], pairs: Sequence[tuple[str, str]] | None = None
) -> np.ndarray | None:
    """Channel permutation applied when an image is mirrored (left/right bodyparts swap).

    Parameters
    ----------
    bodyparts
        Keypoint names.
    pairs
        Explicit ``(left, right)`` pairs; by default inferred from names that differ only by
        their side: ``leftear``/``rightear``, ``Lpaw``... as words (``left``, ``Right``) or as
        separate tokens (``paw_L``/``paw_R``).

    Returns
    -------
    numpy.ndarray or None
        The permutation, or ``None`` when a name looks sided but has no partner: mirroring
        would then teach the network the wrong side, so it must stay off.
    """
    names = list(bodyparts)
    perm = np.arange(len(names))
    if pairs is None:
        pairs = []
        for name in names:
            other = _mirror_name(name)
            if other is None and name[:1] in _SIDE_TOKENS:  # Lpaw / Rpaw
                candidate = _SIDE_TOKENS[name[0]] + name[1:]
                other = candidate if candidate in names else None
            if other is None:
                continue
            if other not in names:
                return None
            if (other, name) not in pairs:
                pairs.append((name, other))
    for a, b in pairs:
        if a not in names or b not in names:
            raise ValueError(f"flip pair ({a!r}, {b!r}) names bodyparts not in {names}")
        ia, ib = names.index(a), names.index(b)
        perm[ia], perm[ib] = ib, ia
    return perm


def sample_affine(
    rng: np.random.Generator,
    keypoints: np.ndarray,
    image_size: tuple[int, int],
    crop_size: tuple[int, int],
    config: AugmentConfig,
) -> tuple[np.ndarray, bool]:
    """A random 2×3 affine from frame pixels to crop pixels, and whether it mirrors.

    Parameters
    ----------
    keypoints
        ``[K, 2]`` frame-pixel keypoints (NaN = not visible); the crop keeps the visible ones
        in view with probability ``config.keep_animal_probability``.
    image_size, crop_size
        ``(height, width)``.
    """
    h, w = image_size
    ch, cw = crop_size
    scale = rng.uniform(config.scale_min, config.scale_max)
    angle = math.radians(rng.uniform(-config.rotation_deg, config.rotation_deg))
    flip = bool(rng.random() < config.flip_probability)
    cos, sin = math.cos(angle) * scale, math.sin(angle) * scale
    linear = np.array([[cos, -sin], [sin, cos]])
    if flip:
        linear = linear @ np.array([[-1.0, 0.0], [0.0, 1.0]])
    visible = keypoints[np.isfinite(keypoints).all(axis=1)]
    if len(visible) and rng.random() < config.keep_animal_probability:
        pts = visible @ linear.T
        lo = pts.min(axis=0)
        hi = pts.max(axis=0)
        m = config.margin_px
        t_lo = np.array([m, m]) - lo
        t_hi = np.array([cw - m, ch - m]) - hi
        centre = np.array([cw, ch]) / 2 - (lo + hi) / 2
        t = np.where(
            t_hi >= t_lo, rng.uniform(np.minimum(t_lo, t_hi), np.maximum(t_lo, t_hi)), centre
        )
    else:
        corners = np.array([[0, 0], [w, 0], [0, h], [w, h]], float) @ linear.T
        lo, hi = corners.min(axis=0), corners.max(axis=0)
        # any placement where the crop overlaps the warped frame
        t = rng.uniform(np.array([cw, ch]) * 0.5 - hi, np.array([cw, ch]) * 0.5 - lo)
    matrix = np.concatenate([linear, t[:, None]], axis=1)
    return matrix.astype(np.float64), flip


def warp(
    image: np.ndarray,
    keypoints: np.ndarray,
    matrix: np.ndarray,
    crop_size: tuple[int, int],
    flip_perm: np.ndarray | None = None,
    border_value: tuple[float, float, float] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Apply a 2×3 affine to an image and its keypoints (frame px → crop px).

    With ``flip_perm`` the keypoint channels are permuted (the matrix mirrors the image, so
    the animal's left becomes its right).
    """
    ch, cw = crop_size
    if border_value is None:
        border_value = tuple(float(v) for v in cv2.mean(image)[:3])
    out = cv2.warpAffine(
        image,
        matrix,
        (cw, ch),
        flags=cv2.INTER_LINEAR,
        borderMode=cv2.BORDER_CONSTANT,
        borderValue=border_value,
    )
    kp = keypoints @ matrix[:, :2].T + matrix[:, 2]
    if flip_perm is not None:
        kp = kp[flip_perm]
    return out, kp.astype(np.float32)


def photometric(rng: np.random.Generator, image: np.ndarray, config: AugmentConfig) -> np.ndarray:
    """Random brightness, contrast, grey conversion, blur and noise (uint8 in, uint8 out)."""
    gain = 1.0 + rng.uniform(-config.contrast, config.contrast)
    mean = float(np.mean(cv2.mean(image)[:3]))
    offset = rng.uniform(-config.brightness, config.brightness) * 255 + mean * (1 - gain)
    out = cv2.convertScaleAbs(image, alpha=gain, beta=offset)
    if rng.random() < config.grayscale_probability:
        gray = cv2.cvtColor(out, cv2.COLOR_RGB2GRAY)
        out = cv2.cvtColor(gray, cv2.COLOR_GRAY2RGB)
    if rng.random() < config.blur_probability:
        sigma = rng.uniform(0.5, 1.5)
        out = cv2.GaussianBlur(out, (0, 0), sigma)
    if rng.random() < config.noise_probability:
        sigma = rng.uniform(1.0, config.noise_sigma_max)
        noise = rng.standard_normal(size=out.shape, dtype=np.float32)
        noise *= sigma
        noise += out
        out = np.clip(noise, 0, 255, out=noise).astype(np.uint8)
    return out


def augment(
    rng: np.random.Generator,
    image: np.ndarray,
    keypoints: np.ndarray,
    crop_size: tuple[int, int],
    config: AugmentConfig | None = None,
    flip_perm: np.ndarray | None = None,
    focus: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """One augmented training crop.

    Parameters
    ----------
    image
        uint8 ``[H, W, 3]``.
    keypoints
        ``[K, 2]`` frame px, NaN = not visible.
    crop_size
        ``(height, width)`` of the output.
    flip_perm
        From :func:`flip_permutation`; without it, mirroring is disabled.
    focus
        The keypoints the crop keeps in view (default: all of them), e.g. one animal's where
        several are too far apart for one crop.

    Returns
    -------
    tuple
        ``(crop uint8 [h, w, 3], keypoints float32 [K, 2] in crop px)``; keypoints outside the
        crop keep their coordinates (their target disks are simply clipped).
    """
    config = config or AugmentConfig()
    if flip_perm is None and config.flip_probability > 0:
        config = AugmentConfig(**{**config.__dict__, "flip_probability": 0.0})
    in_view = keypoints if focus is None else focus
    matrix, flipped = sample_affine(rng, in_view, image.shape[:2], crop_size, config)
    crop, kp = warp(image, keypoints, matrix, crop_size, flip_perm if flipped else None)
    return photometric(rng, crop, config), kp


__all__: Sequence[str] = (
    "AugmentConfig",
    "augment",
    "flip_permutation",
    "photometric",
    "sample_affine",
    "warp",
)
