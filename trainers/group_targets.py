"""Training targets for bottom-up multi-animal heads: shared score maps and part-affinity fields.

All animals share one score map per bodypart: the maximum of each animal's disk (or Gaussian)
from :func:`~realtime_pose.trainers.targets.make_targets`. A cell's location-refinement target
points to the nearest of the keypoints whose disk covers it, so the decoder's
``x = ix*s + s/2 + locref_stdev*dx`` lands on that keypoint.

The part-affinity field (OpenPose, Cao et al. 2017) of edge ``l = (a, b)`` is, on channels
``2l`` (x) and ``2l + 1`` (y), the unit vector from ``a`` to ``b`` on every cell whose centre
lies within ``paf_width_px`` of the segment ``a → b`` and projects onto it, averaged where
several animals' limbs cover a cell, and 0 elsewhere. Where an animal has one end of a limb
labelled and not the other, the field near the labelled end is unknown: ``paf_mask`` is 0 there
(a disk around the labelled end, as large as the longest labelled limb of that edge in the
batch plus ``paf_width_px``; the whole channel pair of the image when no such limb is labelled
anywhere in the batch). A limb with neither end labelled counts as not visible, like a score
map's NaN keypoint: target 0, mask 1.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

from realtime_pose.trainers.targets import (
    LOCREF_STDEV,
    POS_DIST_THRESH,
    STRIDE,
    cell_centres,
    make_targets,
)

PAF_WIDTH_PX = 8.0
"""Half-width of a limb's field, in input pixels: one stride-8 cell, as in OpenPose. It must be
at least half a cell's diagonal (5.7 px at stride 8) so that every cell containing a point of
the limb is painted (the decoder reads the cell under each sample point); any wider and the
limbs of animals lying side by side start sharing cells, where their vectors are averaged. Two
parallel limbs more than ``2 * 8 = 16`` px apart never share a cell."""


@dataclass(frozen=True)
class GroupTargets:
    """Bottom-up targets for a batch, float32 NHWC.

    Attributes
    ----------
    scmap
        ``[B, h, w, K]``: the maximum over animals of each animal's score target.
    locref
        ``[B, h, w, 2K]``: offset to the nearest covering keypoint over ``locref_stdev``;
        channel ``2j`` is dx and ``2j + 1`` dy of bodypart ``j``.
    locref_mask
        ``[B, h, w, 2K]``: 1 where some animal's keypoint disk covers the cell.
    paf
        ``[B, h, w, 2L]``: channel ``2l`` x and ``2l + 1`` y of edge ``l``'s field.
    paf_mask
        ``[B, h, w, 2L]``: 1 where the field's target is known.
    """

    scmap: np.ndarray
    locref: np.ndarray
    locref_mask: np.ndarray
    paf: np.ndarray
    paf_mask: np.ndarray


def make_group_targets(
    keypoints: np.ndarray,
    map_size: tuple[int, int],
    edges: Sequence[tuple[int, int]],
    *,
    stride: float = STRIDE,
    pos_dist_thresh: float = POS_DIST_THRESH,
    locref_stdev: float = LOCREF_STDEV,
    paf_width_px: float = PAF_WIDTH_PX,
    kind: Literal["disk", "gaussian"] = "disk",
) -> GroupTargets:
    """Score-map, location-refinement and part-affinity targets for a batch of animals.

    Parameters
    ----------
    keypoints
        ``[B, A, K, 2]`` (or ``[A, K, 2]`` for one image) input-pixel ``x, y`` of ``A`` animal
        slots; NaN for a keypoint not labelled (an all-NaN animal is an empty slot).
    map_size
        ``(h, w)`` of the network's output maps.
    edges
        ``L`` ``(a, b)`` bodypart indices (e.g.
        :func:`realtime_pose.inference.assembly.paf_graph`): the field points from ``a`` to
        ``b``.
    stride, pos_dist_thresh, locref_stdev, kind
        As for :func:`~realtime_pose.trainers.targets.make_targets`.
    paf_width_px
        Largest distance, in input pixels, from a cell centre to the limb for the cell to carry
        the limb's vector (see :data:`PAF_WIDTH_PX` for the default's reason).

    Returns
    -------
    GroupTargets
        With a batch axis even when ``keypoints`` had none.

    Raises
    ------
    ValueError
        For keypoints of the wrong shape or an edge outside ``0..K-1``.
    """
    kp = np.asarray(keypoints, dtype=np.float32)
    if kp.ndim == 3:
        kp = kp[None]
    if kp.ndim != 4 or kp.shape[3] != 2:
        raise ValueError(
            f"keypoints must be [B, A, K, 2] or [A, K, 2], got {list(np.shape(keypoints))}"
        )
    if not paf_width_px > 0:
        raise ValueError(f"paf_width_px must be positive, got {paf_width_px!r}")
    b, a, k = kp.shape[:3]
    edge_list = [(int(p), int(c)) for p, c in edges]
    for i, (p, c) in enumerate(edge_list):
        if not (0 <= p < k and 0 <= c < k) or p == c:
            raise ValueError(
                f"edge {i} = ({p}, {c}) must join two different bodyparts in 0..{k - 1}"
            )
    h, w = map_size

    # one animal at a time through make_targets, then combined across animals
    per_animal = make_targets(
        kp.reshape(b * a, k, 2),
        map_size,
        stride=stride,
        pos_dist_thresh=pos_dist_thresh,
        locref_stdev=locref_stdev,
        kind=kind,
    )
    scmap = per_animal.scmap.reshape(b, a, h, w, k).max(axis=1, initial=0.0)
    offsets = per_animal.locref.reshape(b, a, h, w, k, 2)
    covers = per_animal.locref_mask.reshape(b, a, h, w, k, 2)[..., 0] > 0
    dist2 = np.where(covers, (offsets * offsets).sum(axis=-1), np.inf)
    if a:
        nearest = dist2.argmin(axis=1)[:, None, ..., None]  # [B, 1, h, w, K, 1]
        locref = np.take_along_axis(offsets, nearest, axis=1)[:, 0].reshape(b, h, w, 2 * k)
        locref_mask = np.repeat(covers.any(axis=1), 2, axis=3).astype(np.float32)
    else:
        locref = np.zeros((b, h, w, 2 * k), np.float32)
        locref_mask = np.zeros((b, h, w, 2 * k), np.float32)

    paf, paf_mask = _paf_targets(kp, h, w, edge_list, stride, paf_width_px)
    return GroupTargets(
        scmap=scmap.astype(np.float32),
        locref=np.ascontiguousarray(locref, dtype=np.float32),
        locref_mask=locref_mask,
        paf=paf,
        paf_mask=paf_mask,
    )


def _paf_targets(
    kp: np.ndarray,
    h: int,
    w: int,
    edges: list[tuple[int, int]],
    stride: float,
    width_px: float,
) -> tuple[np.ndarray, np.ndarray]:
    """PAF targets and mask ``[B, h, w, 2L]`` for keypoints ``[B, A, K, 2]``."""
    b, a = kp.shape[:2]
    n_edges = len(edges)
    cx = cell_centres(w, stride).astype(np.float64)[None, :]  # [1, w]
    cy = cell_centres(h, stride).astype(np.float64)[:, None]  # [h, 1]
    paf = np.zeros((b, h, w, 2 * n_edges), np.float64)
    count = np.zeros((b, h, w, n_edges), np.float64)
    known = np.ones((b, h, w, n_edges), bool)
    labelled = np.isfinite(kp).all(axis=3)  # [B, A, K]
    for e, (pa, pb) in enumerate(edges):
        both = labelled[:, :, pa] & labelled[:, :, pb]
        limbs = kp[:, :, pb][both] - kp[:, :, pa][both]
        # the longest labelled limb bounds how far an unlabelled end's field can reach
        reach = float(np.hypot(limbs[:, 0], limbs[:, 1]).max()) + width_px if len(limbs) else None
        for bi in range(b):
            for ai in range(a):
                has_a, has_b = labelled[bi, ai, pa], labelled[bi, ai, pb]
                if has_a and has_b:
                    start = kp[bi, ai, pa].astype(np.float64)
                    vec = kp[bi, ai, pb].astype(np.float64) - start
                    length = float(np.hypot(*vec))
                    if length < 1e-6:
                        continue  # two parts on one pixel: no direction to learn
                    ux, uy = vec / length
                    rx, ry = cx - start[0], cy - start[1]
                    along = rx * ux + ry * uy
                    across = np.abs(rx * uy - ry * ux)
                    on = (along >= 0) & (along <= length) & (across <= width_px)
                    paf[bi, :, :, 2 * e][on] += ux
                    paf[bi, :, :, 2 * e + 1][on] += uy
                    count[bi, :, :, e] += on
                elif has_a or has_b:
                    if reach is None:
                        known[bi, :, :, e] = False
                        continue
                    end = kp[bi, ai, pa if has_a else pb]
                    near = (cx - end[0]) ** 2 + (cy - end[1]) ** 2 <= reach * reach
                    known[bi, :, :, e] &= ~near
    paf /= np.repeat(np.maximum(count, 1.0), 2, axis=3)
    paf_mask = np.repeat(known, 2, axis=3).astype(np.float32)
    return paf.astype(np.float32), paf_mask


__all__: Sequence[str] = ("PAF_WIDTH_PX", "GroupTargets", "make_group_targets")
