"""Training targets for DeepLabCut-style heads: score maps and location refinement.

Cell ``(iy, ix)`` of a stride-``s`` map is centred on input pixel ``(ix*s + s/2, iy*s + s/2)``.
A keypoint's score target is 1 on every cell whose centre lies within ``pos_dist_thresh`` of it
(DeepLabCut's disk), or a Gaussian of that width; its location-refinement target on those cells
is the offset from the cell centre to the keypoint divided by ``locref_stdev``, so that the
decoder's ``x = ix*s + s/2 + locref_stdev*dx`` recovers the keypoint exactly.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

STRIDE = 8
POS_DIST_THRESH = 17.0
LOCREF_STDEV = 7.2801


@dataclass(frozen=True)
class Targets:
    """Targets for a batch.

    Attributes
    ----------
    scmap
        float32 ``[B, h, w, K]`` in [0, 1].
    locref
        float32 ``[B, h, w, 2K]``; channel ``2j`` is dx, ``2j+1`` dy of keypoint ``j``.
    locref_mask
        float32 ``[B, h, w, 2K]``: 1 where the locref target applies.
    """

    scmap: np.ndarray
    locref: np.ndarray
    locref_mask: np.ndarray


def cell_centres(n: int, stride: float = STRIDE) -> np.ndarray:
    """Input-pixel coordinates of the centres of ``n`` cells along one axis."""
    return np.arange(n, dtype=np.float32) * stride + stride / 2


def make_targets(
    keypoints: np.ndarray,
    map_size: tuple[int, int],
    *,
    stride: float = STRIDE,
    pos_dist_thresh: float = POS_DIST_THRESH,
    locref_stdev: float = LOCREF_STDEV,
    kind: Literal["disk", "gaussian"] = "disk",
) -> Targets:
    """Score-map and location-refinement targets for a batch of keypoints.

    Parameters
    ----------
    keypoints
        ``[B, K, 2]`` (or ``[K, 2]``) input-pixel ``x, y``; NaN for not visible (all-zero maps).
    map_size
        ``(h, w)`` of the network's output maps.
    stride
        Input pixels per map cell.
    pos_dist_thresh
        Disk radius in input pixels (also the Gaussian's 3-sigma extent and the locref area).
    locref_stdev
        Scale of the location-refinement targets.
    kind
        ``"disk"`` (DeepLabCut: 1 inside the radius, 0 outside) or ``"gaussian"``.

    Returns
    -------
    Targets
        With a batch axis even when ``keypoints`` had none.
    """
    kp = np.asarray(keypoints, dtype=np.float32)
    if kp.ndim == 2:
        kp = kp[None]
    if kp.ndim != 3 or kp.shape[2] != 2:
        raise ValueError(f"keypoints must be [B, K, 2] or [K, 2], got {list(np.shape(keypoints))}")
    h, w = map_size
    b, k = kp.shape[:2]
    visible = np.isfinite(kp).all(axis=2)  # [B, K]
    kx = np.where(visible, kp[..., 0], -1e6)[:, None, None, :]  # [B, 1, 1, K]
    ky = np.where(visible, kp[..., 1], -1e6)[:, None, None, :]
    dx = kx - cell_centres(w, stride)[None, None, :, None]  # [B, 1, w, K]
    dy = ky - cell_centres(h, stride)[None, :, None, None]  # [B, h, 1, K]
    dist2 = dx * dx + dy * dy  # [B, h, w, K]
    inside = dist2 <= pos_dist_thresh * pos_dist_thresh
    if kind == "disk":
        scmap = inside.astype(np.float32)
    elif kind == "gaussian":
        sigma = pos_dist_thresh / 3.0
        scmap = np.exp(-dist2 / (2 * sigma * sigma)).astype(np.float32)
    else:
        raise ValueError(f"kind must be 'disk' or 'gaussian', got {kind!r}")
    locref = np.zeros((b, h, w, 2 * k), np.float32)
    locref[..., 0::2] = np.broadcast_to(dx, (b, h, w, k)) / locref_stdev
    locref[..., 1::2] = np.broadcast_to(dy, (b, h, w, k)) / locref_stdev
    mask = np.repeat(inside.astype(np.float32), 2, axis=3)
    locref *= mask
    return Targets(scmap=scmap, locref=locref, locref_mask=mask)


__all__: Sequence[str] = (
    "LOCREF_STDEV",
    "POS_DIST_THRESH",
    "STRIDE",
    "Targets",
    "cell_centres",
    "make_targets",
)
