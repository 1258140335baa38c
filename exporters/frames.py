"""Frames for parity checks and int8 calibration: real images when we have them, else synthetic."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from realtime_pose.bundle import Bundle


#: Frames accepted wherever the exporters take images: paths, or RGB uint8 ``[H, W, 3]`` arrays.
ImagesArg = Sequence["str | Path | np.ndarray"]


def read_rgb(path: str | Path) -> np.ndarray:
    """Read an image file as RGB uint8 ``[H, W, 3]``.

    Raises
    ------
    FileNotFoundError
        When OpenCV cannot read the file.
    """
    import cv2

    bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if bgr is None:
        raise FileNotFoundError(f"{path}: cannot be read as an image")
    return np.ascontiguousarray(bgr[:, :, ::-1])


def read_rgb_frames(paths: Sequence[str | Path], limit: int | None = None) -> list[np.ndarray]:
    """Read up to ``limit`` images (evenly spaced over ``paths``) as RGB uint8 frames."""
    paths = list(paths)
    if limit is not None and len(paths) > limit:
        picks = np.linspace(0, len(paths) - 1, limit).round().astype(int)
        paths = [paths[i] for i in sorted(set(picks.tolist()))]
    return [read_rgb(p) for p in paths]


def synthetic_frames(
    count: int, height: int = 240, width: int = 320, seed: int = 0
) -> list[np.ndarray]:
    """Deterministic RGB uint8 frames: a smooth background with a few bright blobs and noise.

    They exercise the full value range and give score maps distinct peaks, which is what a
    parity check or a calibration needs when no real frames are at hand.
    """
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    frames = []
    for _ in range(count):
        img = np.zeros((height, width, 3), np.float32)
        img += rng.uniform(20, 120, size=3)
        img += (xx / width)[..., None] * rng.uniform(-40, 40, size=3)
        for _ in range(int(rng.integers(2, 6))):
            cx, cy = rng.uniform(0, width), rng.uniform(0, height)
            r = rng.uniform(4, max(5.0, min(height, width) / 6))
            blob = np.exp(-((xx - cx) ** 2 + (yy - cy) ** 2) / (2 * r * r))
            img += blob[..., None] * rng.uniform(60, 200, size=3)
        img += rng.normal(0, 6, size=img.shape)
        frames.append(np.clip(img, 0, 255).astype(np.uint8))
    return frames


def bundle_frames(bundle: Bundle, subset: str, limit: int) -> tuple[list[np.ndarray], str]:
    """Up to ``limit`` frames of the bundle's training project (its ``"train"`` or ``"test"``
    split, as recorded in ``provenance``) when they are reachable from this machine, else
    synthetic frames; with a description of which."""
    prov = bundle.meta.provenance
    project = prov.get("project")
    names = (prov.get("split") or {}).get(subset) or []
    if project and Path(project).is_dir():
        paths = [Path(project) / n for n in names if (Path(project) / n).is_file()]
        if paths:
            return read_rgb_frames(paths, limit), f"project {subset} split"
    return synthetic_frames(min(limit, 16), seed=2), "synthetic"


def load_frames(images: ImagesArg) -> list[np.ndarray]:
    """Frames from paths or arrays (arrays must be RGB uint8 ``[H, W, 3]``)."""
    frames = []
    for item in images:
        if isinstance(item, np.ndarray):
            if item.dtype != np.uint8 or item.ndim != 3 or item.shape[2] != 3:
                raise ValueError(
                    f"parity/calibration frames must be RGB uint8 [H, W, 3]; got {item.dtype} "
                    f"{item.shape}"
                )
            frames.append(item)
        else:
            frames.extend(read_rgb_frames([item]))
    return frames
