"""Peak finding: from score maps (+ location refinement) to keypoints in network pixels.

Pure Numba kernels on arrays; the batch axis is dropped by the caller. For keypoint ``j``::

    (iy, ix) = argmax S[j]                      # first maximum in raster order, like np.argmax
    x = ix * stride + stride / 2 + locref_stdev * L[2j,   iy, ix]
    y = iy * stride + stride / 2 + locref_stdev * L[2j+1, iy, ix]
    likelihood = S[j, iy, ix]

which is DeepLabCut's pose math. Layouts: NCHW maps are ``S[K, H, W]`` and ``L[2K, H, W]``;
NHWC maps are ``S[H, W, K]`` and ``L[H, W, 2K]``. NCHW is the fast path: each keypoint's map is
contiguous, so the max search is one vectorised ``argmax`` per map; NHWC uses one Numba pass over
the pixels that updates every keypoint's running maximum.
"""

from __future__ import annotations

import numba
import numpy as np

_EMPTY_LOCREF = np.zeros((0, 0, 0), dtype=np.float32)


@numba.njit(cache=True, nogil=True, inline="always")
def cell_xy_nchw(
    cell: int, k: int, width: int, stride: float, locref: np.ndarray, locref_stdev: float
) -> tuple[float, float]:
    """The pose math for keypoint ``k`` at flat score-map cell ``cell``: the cell's centre in
    network pixels plus its location refinement (NCHW ``locref[2K, H, W]``; ``shape[0] == 0``
    for none). Shared by the single-animal peaks and the part-affinity candidates."""
    iy = cell // width
    ix = cell - iy * width
    half = stride * 0.5
    x = ix * stride + half
    y = iy * stride + half
    if locref.shape[0] > 0:
        x += locref_stdev * locref[2 * k, iy, ix]
        y += locref_stdev * locref[2 * k + 1, iy, ix]
    return x, y


@numba.njit(cache=True, nogil=True)
def refine_peaks_nchw(
    scmap_flat: np.ndarray,
    locref: np.ndarray,
    argmax: np.ndarray,
    width: int,
    stride: float,
    locref_stdev: float,
    out: np.ndarray,
) -> np.ndarray:
    """Turn per-keypoint argmax indices into refined keypoints (NCHW maps).

    Parameters
    ----------
    scmap_flat
        Score maps ``[K, H*W]``.
    locref
        Location refinement ``[2K, H, W]``, or an array with ``shape[0] == 0`` for none.
    argmax
        ``[K]`` flat index of each keypoint's maximum.
    width
        Score-map width ``W``.
    stride, locref_stdev
        Network pixels per cell, and the locref scale.
    out
        ``[K, 3]`` array receiving ``x, y, likelihood`` in network-input pixels.
    """
    for k in range(scmap_flat.shape[0]):
        idx = argmax[k]
        x, y = cell_xy_nchw(idx, k, width, stride, locref, locref_stdev)
        out[k, 0] = x
        out[k, 1] = y
        out[k, 2] = scmap_flat[k, idx]
    return out


def argmax_peaks_nchw(
    scmap: np.ndarray,
    locref: np.ndarray,
    stride: float,
    locref_stdev: float,
    out: np.ndarray,
) -> np.ndarray:
    """Single-animal peaks from C-contiguous NCHW maps ``S[K, H, W]``, ``L[2K, H, W]``.

    The maximum search is NumPy's ``argmax`` over each contiguous map, which is SIMD-vectorised;
    a Numba loop over float maxima is not (LLVM keeps NaN-ordered compares scalar), and measured
    3-6x slower here. The gather and the pose math run in :func:`refine_peaks_nchw`.
    """
    k_count, _, width = scmap.shape
    flat = scmap.reshape(k_count, -1)
    return refine_peaks_nchw(flat, locref, flat.argmax(axis=1), width, stride, locref_stdev, out)


@numba.njit(cache=True, nogil=True)
def argmax_peaks_nhwc(
    scmap: np.ndarray,
    locref: np.ndarray,
    stride: float,
    locref_stdev: float,
    out: np.ndarray,
) -> np.ndarray:
    """Single-animal peaks from NHWC maps ``S[H, W, K]``, ``L[H, W, 2K]`` (one pass).

    ``locref`` with ``shape[0] == 0`` means no refinement. ``out`` is ``[K, 3]``.
    """
    height, width, k_count = scmap.shape
    best = np.empty(k_count, dtype=np.float32)
    best_idx = np.zeros(k_count, dtype=np.int64)
    for k in range(k_count):
        best[k] = scmap[0, 0, k]
    for iy in range(height):
        for ix in range(width):
            row = scmap[iy, ix]
            for k in range(k_count):
                v = row[k]
                if v > best[k]:
                    best[k] = v
                    best_idx[k] = iy * width + ix
    half = stride * 0.5
    has_locref = locref.shape[0] > 0
    for k in range(k_count):
        iy = best_idx[k] // width
        ix = best_idx[k] - iy * width
        x = ix * stride + half
        y = iy * stride + half
        if has_locref:
            x += locref_stdev * locref[iy, ix, 2 * k]
            y += locref_stdev * locref[iy, ix, 2 * k + 1]
        out[k, 0] = x
        out[k, 1] = y
        out[k, 2] = best[k]
    return out


def find_peaks(
    scmap: np.ndarray,
    locref: np.ndarray | None,
    stride: float,
    locref_stdev: float,
    layout: str = "NCHW",
    out: np.ndarray | None = None,
) -> np.ndarray:
    """Single-animal keypoints ``[K, 3]`` (x, y, likelihood; network pixels) from raw outputs.

    Accepts maps with or without the batch axis (batch 1). ``layout`` is ``"NCHW"`` or
    ``"NHWC"``. Pass a preallocated ``out`` on the hot path.
    """
    if scmap.ndim == 4:
        scmap = scmap[0]
        locref = None if locref is None else locref[0]
    if layout == "NCHW":
        k = scmap.shape[0]
        kernel = argmax_peaks_nchw
    elif layout == "NHWC":
        k = scmap.shape[2]
        kernel = argmax_peaks_nhwc
    else:
        raise ValueError(f"layout must be 'NCHW' or 'NHWC', got {layout!r}")
    if out is None:
        out = np.empty((k, 3), dtype=np.float32)
    if not scmap.flags.c_contiguous:
        scmap = np.ascontiguousarray(scmap)
    if locref is None:
        locref = _EMPTY_LOCREF
    elif not locref.flags.c_contiguous:
        locref = np.ascontiguousarray(locref)
    return kernel(scmap, locref, float(stride), float(locref_stdev), out)


def find_peaks_reference(
    scmap: np.ndarray,
    locref: np.ndarray | None,
    stride: float,
    locref_stdev: float,
    layout: str = "NCHW",
    dtype: type = np.float32,
    likelihood_clip: tuple[float, float] | None = None,
) -> np.ndarray:
    """DeepLabCut's single-animal pose math in plain NumPy: the one reference decode.

    :func:`find_peaks` (the live loop's kernels), the export parity checks and the trainer's
    evaluation are all measured against it. Computed in float64, returned as ``dtype``.

    Parameters
    ----------
    scmap, locref
        Score maps ``[K, h, w]`` (``[h, w, K]`` for NHWC; a leading batch axis is dropped) and
        location refinement (``2K`` channels, ``2j`` = dx and ``2j + 1`` = dy in units of
        ``locref_stdev``) or ``None``.
    stride, locref_stdev
        Network-input pixels per cell and the locref scale.
    likelihood_clip
        ``(low, high)``: clip the likelihoods after the peak search (a bundle's
        ``likelihood_clip``, DeepLabCut 3's ``clip_scores``); ``None`` keeps them as found.

    Returns
    -------
    numpy.ndarray
        ``[K, 3]``: ``x, y`` in network-input pixels and the likelihood (score at the peak).
    """
    if scmap.ndim == 4:
        scmap = scmap[0]
        locref = None if locref is None else locref[0]
    if layout == "NHWC":
        scmap = np.moveaxis(scmap, 2, 0)
        locref = None if locref is None else np.moveaxis(locref, 2, 0)
    k, _, width = scmap.shape
    idx = scmap.reshape(k, -1).argmax(axis=1)
    iy, ix = np.divmod(idx, width)
    x = ix * stride + stride / 2
    y = iy * stride + stride / 2
    if locref is not None:
        kk = np.arange(k)
        x = x + locref_stdev * locref[2 * kk, iy, ix].astype(np.float64)
        y = y + locref_stdev * locref[2 * kk + 1, iy, ix].astype(np.float64)
    scores = scmap[np.arange(k), iy, ix].astype(np.float64)
    if likelihood_clip is not None:
        scores = np.clip(scores, *likelihood_clip)
    return np.stack([x, y, scores], axis=1).astype(dtype)
