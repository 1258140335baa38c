"""Live triangulation: every camera's 2D keypoints of one frame set → one 3D pose.

Pure Numba kernels on arrays and one thin class, :class:`Triangulator`, that owns the rig's
arrays and the work buffers. The maths is aniposelib's ``CameraGroup.triangulate(points,
undistort=True)``, so a live 3D pose is the one anipose would compute offline:

1. each view's pixel ``(u, v)`` is undistorted to normalised image coordinates ``(x, y)`` by
   OpenCV's fixed-point iteration (:func:`undistort_pixel`, the five iterations
   ``cv2.undistortPoints`` runs, so the same answer where five are not enough: far from the
   centre of a strongly distorted lens);
2. every view that sees the keypoint (likelihood ≥ ``min_likelihood``, finite pixel) adds the
   rows ``x P[2] - P[0]`` and ``y P[2] - P[1]`` of ``P = [R | t]`` to ``A``;
3. the point is the right singular vector of ``A`` with the smallest singular value,
   dehomogenised (DLT). :func:`smallest_right_singular_vector` finds it without allocating and
   as accurately as LAPACK's SVD: Householder QR to a 4×4 ``R``, inverse iteration on it, and a
   one-sided Jacobi SVD where inverse iteration would converge slowly.

Outlier views (a swapped or misdetected keypoint in one camera) are rejected by an exhaustive
RANSAC over view pairs. When the DLT over every seeing view reprojects within ``outlier_px`` in
each of them, there is nothing to reject (the largest possible consensus) and it is kept as it
is; otherwise each pair of seeing views is triangulated, every seeing view whose
reprojection error is below ``outlier_px`` joins that pair's consensus set, and the largest
consensus set is re-triangulated (equally large sets: the one whose re-triangulation reprojects
best). With ``C`` cameras that is ``C (C - 1) / 2`` two-view DLTs per keypoint (28 for eight
cameras): deterministic, and cheap enough to try every pair. When no two views agree within
``outlier_px``, every seeing view is used and the error column says how bad the point is.

Each keypoint's row of the result is ``x, y, z`` (the calibration's unit, mm by convention), the
mean reprojection error in pixels over the views used, and the number of views used; a keypoint
seen by fewer than two views is NaN with 0 views.

The kernels use NumPy's error model: a degenerate view set (rays that meet only at infinity)
gives NaN or inf, never an exception in the live loop.
"""

from __future__ import annotations

import math
import numbers

import numba
import numpy as np

from realtime_pose.calibration import CameraRig

COLUMNS = ("x", "y", "z", "reprojection_error_px", "views")
"""The columns of a triangulated pose ``[K, 5]``."""

UNDISTORT_ITERATIONS = 5
"""OpenCV's fixed iteration count in ``cv2.undistortPoints`` (no convergence test), kept so the
normalised coordinates, and the 3D points, are aniposelib's."""

_JACOBI_SWEEPS = 30
_JACOBI_EPS = 1e-15
_INVERSE_ITERATIONS = 12
_INVERSE_TOLERANCE = 1e-14


@numba.njit(cache=True, nogil=True, error_model="numpy")
def undistort_pixel(
    u: float, v: float, intrinsics: np.ndarray, distortions: np.ndarray
) -> tuple[float, float]:
    """One pixel → normalised, undistorted image coordinates, as ``cv2.undistortPoints``.

    Parameters
    ----------
    u, v
        Pixel coordinates.
    intrinsics
        ``[fx, fy, cx, cy]`` (OpenCV ignores the matrix's skew here, and so does this).
    distortions
        ``[k1, k2, p1, p2, k3]``.

    Returns
    -------
    tuple of float
        ``(x, y)`` with ``x_cam = (x, y, 1) z``.
    """
    ifx = 1.0 / intrinsics[0]
    ify = 1.0 / intrinsics[1]
    cx = intrinsics[2]
    cy = intrinsics[3]
    k1 = distortions[0]
    k2 = distortions[1]
    p1 = distortions[2]
    p2 = distortions[3]
    k3 = distortions[4]
    x0 = (u - cx) * ifx
    y0 = (v - cy) * ify
    x = x0
    y = y0
    for _ in range(UNDISTORT_ITERATIONS):
        r2 = x * x + y * y
        icdist = 1.0 / (1.0 + ((k3 * r2 + k2) * r2 + k1) * r2)
        if icdist < 0.0:
            # OpenCV gives up on a point the model folds over and returns it undistorted.
            return x0, y0
        delta_x = 2.0 * p1 * x * y + p2 * (r2 + 2.0 * x * x)
        delta_y = p1 * (r2 + 2.0 * y * y) + 2.0 * p2 * x * y
        x = (x0 - delta_x) * icdist
        y = (y0 - delta_y) * icdist
    return x, y


@numba.njit(cache=True, nogil=True, error_model="numpy")
def project_point(
    px: float,
    py: float,
    pz: float,
    extrinsics: np.ndarray,
    intrinsics: np.ndarray,
    distortions: np.ndarray,
) -> tuple[float, float]:
    """One world point → pixel (with distortion), as ``cv2.projectPoints``.

    Parameters
    ----------
    px, py, pz
        The world point.
    extrinsics
        ``[3, 4]`` world → camera ``[R | t]``.
    intrinsics, distortions
        ``[fx, fy, cx, cy]`` and ``[k1, k2, p1, p2, k3]``.
    """
    x = extrinsics[0, 0] * px + extrinsics[0, 1] * py + extrinsics[0, 2] * pz + extrinsics[0, 3]
    y = extrinsics[1, 0] * px + extrinsics[1, 1] * py + extrinsics[1, 2] * pz + extrinsics[1, 3]
    z = extrinsics[2, 0] * px + extrinsics[2, 1] * py + extrinsics[2, 2] * pz + extrinsics[2, 3]
    z = 1.0 / z if z != 0.0 else 1.0
    x *= z
    y *= z
    k1 = distortions[0]
    k2 = distortions[1]
    p1 = distortions[2]
    p2 = distortions[3]
    k3 = distortions[4]
    r2 = x * x + y * y
    r4 = r2 * r2
    cdist = 1.0 + k1 * r2 + k2 * r4 + k3 * r4 * r2
    a1 = 2.0 * x * y
    xd = x * cdist + p1 * a1 + p2 * (r2 + 2.0 * x * x)
    yd = y * cdist + p1 * (r2 + 2.0 * y * y) + p2 * a1
    return xd * intrinsics[0] + intrinsics[2], yd * intrinsics[1] + intrinsics[3]


@numba.njit(cache=True, nogil=True, error_model="numpy")
def undistort_points(
    pixels: np.ndarray, intrinsics: np.ndarray, distortions: np.ndarray, out: np.ndarray
) -> np.ndarray:
    """Pixels ``[N, 2]`` → normalised coordinates ``[N, 2]`` in ``out`` (see
    :func:`undistort_pixel`)."""
    for i in range(pixels.shape[0]):
        out[i, 0], out[i, 1] = undistort_pixel(pixels[i, 0], pixels[i, 1], intrinsics, distortions)
    return out


@numba.njit(cache=True, nogil=True, error_model="numpy")
def project_points(
    points: np.ndarray,
    extrinsics: np.ndarray,
    intrinsics: np.ndarray,
    distortions: np.ndarray,
    out: np.ndarray,
) -> np.ndarray:
    """World points ``[N, 3]`` → pixels in every camera ``[C, N, 2]`` in ``out``.

    ``extrinsics [C, 3, 4]``, ``intrinsics [C, 4]``, ``distortions [C, 5]``; a non-finite point
    gives NaN pixels.
    """
    for c in range(extrinsics.shape[0]):
        for i in range(points.shape[0]):
            px = points[i, 0]
            py = points[i, 1]
            pz = points[i, 2]
            if not (np.isfinite(px) and np.isfinite(py) and np.isfinite(pz)):
                out[c, i, 0] = np.nan
                out[c, i, 1] = np.nan
                continue
            out[c, i, 0], out[c, i, 1] = project_point(
                px, py, pz, extrinsics[c], intrinsics[c], distortions[c]
            )
    return out


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _householder_r(a: np.ndarray, rows: int) -> None:
    """Householder QR of ``a[:rows, :4]`` in place, keeping only ``R`` (in ``a[:4]``).

    The remaining columns are updated in one pass over the rows: independent sums the CPU
    overlaps, where column-by-column loops would wait on each addition.
    """
    dots = (0.0, 0.0, 0.0, 0.0)
    for j in range(4):
        norm2 = 0.0
        for i in range(j, rows):
            norm2 += a[i, j] * a[i, j]
        if norm2 == 0.0:
            continue
        norm = math.sqrt(norm2)
        x0 = a[j, j]
        alpha = -math.copysign(norm, x0)
        v0 = x0 - alpha
        scale = 2.0 / (2.0 * (norm2 + abs(x0) * norm))
        d1 = v0 * a[j, 1]
        d2 = v0 * a[j, 2]
        d3 = v0 * a[j, 3]
        for i in range(j + 1, rows):
            h = a[i, j]
            d1 += h * a[i, 1]
            d2 += h * a[i, 2]
            d3 += h * a[i, 3]
        dots = (0.0, d1 * scale, d2 * scale, d3 * scale)
        for col in range(j + 1, 4):
            a[j, col] -= dots[col] * v0
        for i in range(j + 1, rows):
            h = a[i, j]
            for col in range(j + 1, 4):
                a[i, col] -= dots[col] * h
            a[i, j] = 0.0
        a[j, j] = alpha


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _jacobi_svd(a: np.ndarray, rows: int, v: np.ndarray) -> int:
    """One-sided Jacobi SVD of ``a[:rows, :4]``: ``a`` becomes ``U Σ``, ``v`` becomes ``V``;
    returns the column with the smallest singular value."""
    n = 4
    for i in range(n):
        for j in range(n):
            v[i, j] = 1.0 if i == j else 0.0
    for _ in range(_JACOBI_SWEEPS):
        rotated = False
        for p in range(n - 1):
            for q in range(p + 1, n):
                alpha = 0.0
                beta = 0.0
                gamma = 0.0
                for i in range(rows):
                    ap = a[i, p]
                    aq = a[i, q]
                    alpha += ap * ap
                    beta += aq * aq
                    gamma += ap * aq
                if gamma * gamma <= _JACOBI_EPS * _JACOBI_EPS * alpha * beta:
                    continue
                rotated = True
                zeta = (beta - alpha) / (2.0 * gamma)
                t = math.copysign(1.0, zeta) / (abs(zeta) + math.sqrt(1.0 + zeta * zeta))
                c = 1.0 / math.sqrt(1.0 + t * t)
                s = c * t
                for i in range(rows):
                    ap = a[i, p]
                    aq = a[i, q]
                    a[i, p] = c * ap - s * aq
                    a[i, q] = s * ap + c * aq
                for i in range(n):
                    vp = v[i, p]
                    vq = v[i, q]
                    v[i, p] = c * vp - s * vq
                    v[i, q] = s * vp + c * vq
        if not rotated:
            break
    best = 0
    best_norm = np.inf
    for j in range(n):
        norm = 0.0
        for i in range(rows):
            norm += a[i, j] * a[i, j]
        if norm < best_norm:
            best_norm = norm
            best = j
    return best


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _inverse_iteration(r: np.ndarray, v: np.ndarray) -> bool:
    """Smallest right singular vector of the upper-triangular ``r[:4, :4]`` by inverse iteration
    on ``RᵀR`` (two triangular solves a step, ``RᵀR`` never formed) into ``v[:, 0]``.

    Starts from the inhomogeneous solution (``x₃ = 1``), which a DLT's answer is close to, so it
    converges in a few steps when the smallest singular value is well below the next; returns
    ``False`` when it has not converged (then the caller runs Jacobi).
    """
    scale = 0.0
    for i in range(4):
        for j in range(i, 4):
            scale = max(scale, abs(r[i, j]))
    if scale == 0.0:
        return False
    # A zero pivot (noise-free views: R is singular) is nudged, as inverse iteration does.
    tiny = scale * 2.220446049250313e-16
    i0 = 1.0 / (r[0, 0] if abs(r[0, 0]) > tiny else tiny)
    i1 = 1.0 / (r[1, 1] if abs(r[1, 1]) > tiny else tiny)
    i2 = 1.0 / (r[2, 2] if abs(r[2, 2]) > tiny else tiny)
    i3 = 1.0 / (r[3, 3] if abs(r[3, 3]) > tiny else tiny)
    r01 = r[0, 1]
    r02 = r[0, 2]
    r03 = r[0, 3]
    r12 = r[1, 2]
    r13 = r[1, 3]
    r23 = r[2, 3]
    x3 = 1.0
    x2 = -r23 * i2
    x1 = -(r12 * x2 + r13) * i1
    x0 = -(r01 * x1 + r02 * x2 + r03) * i0
    norm = math.sqrt(x0 * x0 + x1 * x1 + x2 * x2 + x3 * x3)
    x0 /= norm
    x1 /= norm
    x2 /= norm
    x3 /= norm
    for _ in range(_INVERSE_ITERATIONS):
        y0 = x0 * i0
        y1 = (x1 - r01 * y0) * i1
        y2 = (x2 - r02 * y0 - r12 * y1) * i2
        y3 = (x3 - r03 * y0 - r13 * y1 - r23 * y2) * i3
        z3 = y3 * i3
        z2 = (y2 - r23 * z3) * i2
        z1 = (y1 - r12 * z2 - r13 * z3) * i1
        z0 = (y0 - r01 * z1 - r02 * z2 - r03 * z3) * i0
        inv_norm = 1.0 / math.sqrt(z0 * z0 + z1 * z1 + z2 * z2 + z3 * z3)
        if z0 * x0 + z1 * x1 + z2 * x2 + z3 * x3 < 0.0:
            inv_norm = -inv_norm
        z0 *= inv_norm
        z1 *= inv_norm
        z2 *= inv_norm
        z3 *= inv_norm
        change = abs(z0 - x0) + abs(z1 - x1) + abs(z2 - x2) + abs(z3 - x3)
        x0 = z0
        x1 = z1
        x2 = z2
        x3 = z3
        if change <= _INVERSE_TOLERANCE:
            v[0, 0] = x0
            v[1, 0] = x1
            v[2, 0] = x2
            v[3, 0] = x3
            return True
    return False


@numba.njit(cache=True, nogil=True, error_model="numpy")
def smallest_right_singular_vector(a: np.ndarray, rows: int, v: np.ndarray) -> int:
    """The right singular vector of ``a[:rows, :4]`` with the smallest singular value.

    Returns the column of ``v [4, 4]`` that holds it; ``a`` is overwritten. ``a`` is reduced to
    its ``R`` (Householder QR: same right singular vectors), then inverse iteration finds the
    vector; where the two smallest singular values are too close for it to converge quickly, a
    one-sided Jacobi SVD of ``R`` does. Both keep the small singular vector to high relative
    accuracy whatever the columns' scales (the translation column is hundreds of times the
    others), and neither allocates.
    """
    _householder_r(a, rows)
    if _inverse_iteration(a, v):
        return 0
    return _jacobi_svd(a, 4, v)


@numba.njit(cache=True, nogil=True, error_model="numpy")
def triangulate_dlt(
    normalised: np.ndarray,
    use: np.ndarray,
    extrinsics: np.ndarray,
    a: np.ndarray,
    v: np.ndarray,
) -> tuple[float, float, float]:
    """DLT of one keypoint over the views flagged in ``use`` (aniposelib's
    ``triangulate_simple``).

    Parameters
    ----------
    normalised
        ``[C, 2]`` undistorted, normalised coordinates (rows not in ``use`` are ignored).
    use
        ``[C]`` bool: the views to triangulate from (at least two).
    extrinsics
        ``[C, 3, 4]`` world → camera ``[R | t]``.
    a, v
        Work buffers ``[2C, 4]`` and ``[4, 4]``.

    Returns
    -------
    tuple of float
        The world point ``(x, y, z)``.
    """
    rows = 0
    for c in range(use.shape[0]):
        if not use[c]:
            continue
        x = normalised[c, 0]
        y = normalised[c, 1]
        for j in range(4):
            a[rows, j] = x * extrinsics[c, 2, j] - extrinsics[c, 0, j]
            a[rows + 1, j] = y * extrinsics[c, 2, j] - extrinsics[c, 1, j]
        rows += 2
    col = smallest_right_singular_vector(a, rows, v)
    w = v[3, col]
    if w == 0.0:  # the rays meet at infinity
        return np.nan, np.nan, np.nan
    return v[0, col] / w, v[1, col] / w, v[2, col] / w


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _reprojection_px(
    point: tuple[float, float, float],
    pose_k: np.ndarray,
    use: np.ndarray,
    intrinsics: np.ndarray,
    distortions: np.ndarray,
    extrinsics: np.ndarray,
) -> tuple[float, float]:
    """Mean and largest reprojection error (px) of ``point`` over the views in ``use``."""
    total = 0.0
    worst = 0.0
    count = 0
    for c in range(use.shape[0]):
        if use[c]:
            u, w = project_point(
                point[0], point[1], point[2], extrinsics[c], intrinsics[c], distortions[c]
            )
            error = math.hypot(u - pose_k[c, 0], w - pose_k[c, 1])
            total += error
            if not error <= worst:  # NaN propagates
                worst = error
            count += 1
    return total / count, worst


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _largest_consensus(
    normalised: np.ndarray,
    pose_k: np.ndarray,
    seen: np.ndarray,
    intrinsics: np.ndarray,
    distortions: np.ndarray,
    extrinsics: np.ndarray,
    outlier_px: float,
    trial: np.ndarray,
    best: np.ndarray,
    pair: np.ndarray,
    a: np.ndarray,
    v: np.ndarray,
) -> tuple[int, float, tuple[float, float, float]]:
    """RANSAC over every pair of seeing views (see the module docstring).

    Returns the size of the largest consensus set (0 when no pair gathers two views), the mean
    reprojection error of its re-triangulation and that point; ``best`` flags its views.
    """
    n_cams = seen.shape[0]
    best_count = 0
    best_error = np.inf
    best_point = (np.nan, np.nan, np.nan)
    for c in range(n_cams):
        pair[c] = False
    for i in range(n_cams - 1):
        if not seen[i]:
            continue
        pair[i] = True
        for j in range(i + 1, n_cams):
            if not seen[j]:
                continue
            pair[j] = True
            hypothesis = triangulate_dlt(normalised, pair, extrinsics, a, v)
            pair[j] = False
            count = 0
            same = True
            for c in range(n_cams):
                trial[c] = False
                if seen[c]:
                    u, w = project_point(
                        hypothesis[0],
                        hypothesis[1],
                        hypothesis[2],
                        extrinsics[c],
                        intrinsics[c],
                        distortions[c],
                    )
                    if math.hypot(u - pose_k[c, 0], w - pose_k[c, 1]) < outlier_px:
                        trial[c] = True
                        count += 1
                if trial[c] != best[c]:
                    same = False
            if count < 2 or count < best_count or (count == best_count and same):
                continue
            point = triangulate_dlt(normalised, trial, extrinsics, a, v)
            error = _reprojection_px(point, pose_k, trial, intrinsics, distortions, extrinsics)[0]
            if count > best_count or error < best_error:
                best_count = count
                best_error = error
                best_point = point
                for c in range(n_cams):
                    best[c] = trial[c]
        pair[i] = False
    return best_count, best_error, best_point


@numba.njit(cache=True, nogil=True, error_model="numpy")
def triangulate_frame(
    poses2d: np.ndarray,
    intrinsics: np.ndarray,
    distortions: np.ndarray,
    extrinsics: np.ndarray,
    min_likelihood: float,
    outlier_px: float,
    normalised: np.ndarray,
    views: np.ndarray,
    a: np.ndarray,
    v: np.ndarray,
    out: np.ndarray,
) -> np.ndarray:
    """Triangulate every keypoint of one frame set.

    Parameters
    ----------
    poses2d
        ``[C, K, 3]``: x, y (each camera's frame pixels), likelihood.
    intrinsics, distortions, extrinsics
        The rig: ``[C, 4]`` (fx, fy, cx, cy), ``[C, 5]``, ``[C, 3, 4]``.
    min_likelihood
        A view sees a keypoint where its likelihood is at least this and its pixel is finite.
    outlier_px
        RANSAC inlier threshold in pixels; ``<= 0`` (or NaN) triangulates over every seeing view.
    normalised, views, a, v
        Work buffers ``[C, 2]`` float64, ``[4, C]`` bool, ``[2C, 4]`` and ``[4, 4]`` float64.
    out
        ``[K, 5]`` receiving x, y, z, mean reprojection error (px) and views used.
    """
    n_cams = poses2d.shape[0]
    seen = views[0]
    ransac = outlier_px > 0.0
    for k in range(poses2d.shape[1]):
        pose_k = poses2d[:, k]
        n_seen = 0
        for c in range(n_cams):
            u = pose_k[c, 0]
            w = pose_k[c, 1]
            seen[c] = pose_k[c, 2] >= min_likelihood and np.isfinite(u) and np.isfinite(w)
            if seen[c]:
                normalised[c, 0], normalised[c, 1] = undistort_pixel(
                    u, w, intrinsics[c], distortions[c]
                )
                n_seen += 1
        if n_seen < 2:
            for j in range(4):
                out[k, j] = np.nan
            out[k, 4] = 0.0
            continue
        point = triangulate_dlt(normalised, seen, extrinsics, a, v)
        error, worst = _reprojection_px(point, pose_k, seen, intrinsics, distortions, extrinsics)
        count = n_seen
        if ransac and n_seen > 2 and not worst < outlier_px:
            consensus, consensus_error, consensus_point = _largest_consensus(
                normalised,
                pose_k,
                seen,
                intrinsics,
                distortions,
                extrinsics,
                outlier_px,
                views[1],
                views[2],
                views[3],
                a,
                v,
            )
            if consensus >= 2:
                count = consensus
                error = consensus_error
                point = consensus_point
        out[k, 0] = point[0]
        out[k, 1] = point[1]
        out[k, 2] = point[2]
        out[k, 3] = error
        out[k, 4] = count
    return out


@numba.njit(cache=True, nogil=True, error_model="numpy")
def triangulate_frames(
    points2d: np.ndarray,
    intrinsics: np.ndarray,
    distortions: np.ndarray,
    extrinsics: np.ndarray,
    min_likelihood: float,
    outlier_px: float,
    out: np.ndarray,
) -> np.ndarray:
    """:func:`triangulate_frame` over ``points2d [C, T, K, 3]`` into ``out [T, K, 5]``."""
    n_cams = points2d.shape[0]
    normalised = np.empty((n_cams, 2))
    views = np.zeros((4, n_cams), dtype=np.bool_)
    a = np.empty((2 * n_cams, 4))
    v = np.empty((4, 4))
    for t in range(points2d.shape[1]):
        triangulate_frame(
            points2d[:, t],
            intrinsics,
            distortions,
            extrinsics,
            min_likelihood,
            outlier_px,
            normalised,
            views,
            a,
            v,
            out[t],
        )
    return out


def rig_arrays(rig: CameraRig) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The kernels' view of a rig: ``intrinsics [C, 4]`` (fx, fy, cx, cy), ``distortions
    [C, 5]`` and ``extrinsics [C, 3, 4]`` (``R`` from OpenCV's Rodrigues, as aniposelib's)."""
    intrinsics = np.array(
        [[c.matrix[0, 0], c.matrix[1, 1], c.matrix[0, 2], c.matrix[1, 2]] for c in rig.cameras]
    )
    distortions = np.stack([c.distortions for c in rig.cameras]).astype(np.float64)
    extrinsics = np.ascontiguousarray(rig.extrinsics(), dtype=np.float64)
    return intrinsics, distortions, extrinsics


def _check_options(rig: CameraRig, min_likelihood: float, outlier_px: float | None) -> float:
    if not isinstance(rig, CameraRig):
        raise ValueError(
            f"rig must be a CameraRig (load_calibration(path)), got {type(rig).__name__}"
        )
    if len(rig) < 2:
        raise ValueError(f"triangulation needs at least two cameras, the rig has {rig.names}")
    if not (isinstance(min_likelihood, numbers.Real) and math.isfinite(min_likelihood)):
        raise ValueError(f"min_likelihood must be a finite number, got {min_likelihood!r}")
    if outlier_px is None:
        return 0.0
    if not (isinstance(outlier_px, numbers.Real) and 0 < outlier_px < math.inf):
        raise ValueError(
            f"outlier_px must be a positive number of pixels, or None to use every view, "
            f"got {outlier_px!r}"
        )
    return float(outlier_px)


def _check_points(points: np.ndarray, n_cams: int, ndim: int, layout: str) -> None:
    if points.ndim != ndim or points.shape[0] != n_cams or points.shape[-1] != 3:
        raise ValueError(f"points must have shape {layout} with C = {n_cams}, got {points.shape}")


class Triangulator:
    """Live triangulation of one animal's keypoints over a calibrated rig.

    Parameters
    ----------
    rig
        The calibrated cameras, in the order of the poses' camera axis
        (``rig.subset(names)`` reorders a calibration).
    min_likelihood
        A camera sees a keypoint where its likelihood is at least this (and its pixel finite).
    outlier_px
        Reprojection error, in pixels, below which a view agrees with a fit (the fit over every
        seeing view, else RANSAC over every pair of views: see the module docstring); ``None``
        triangulates over every seeing view, as aniposelib's ``triangulate``. The default is
        about 3.5 times the median reprojection error of the real four-camera mouse rig
        (5.7 px, ``benchmarks/results/triangulation.json``).

    Notes
    -----
    :meth:`triangulate` allocates nothing when ``out`` is given and accepts float32 or float64
    poses; call :meth:`warmup` before the first frame set.
    """

    def __init__(
        self, rig: CameraRig, min_likelihood: float = 0.5, outlier_px: float | None = 20.0
    ) -> None:
        self._outlier_px = _check_options(rig, min_likelihood, outlier_px)
        self.rig = rig
        self.min_likelihood = float(min_likelihood)
        self.outlier_px = None if outlier_px is None else float(outlier_px)
        self._intrinsics, self._distortions, self._extrinsics = rig_arrays(rig)
        n_cams = len(rig)
        self._normalised = np.empty((n_cams, 2))
        self._views = np.zeros((4, n_cams), dtype=np.bool_)
        self._a = np.empty((2 * n_cams, 4))
        self._v = np.empty((4, 4))

    @property
    def num_cameras(self) -> int:
        """``C``."""
        return len(self.rig)

    def warmup(self, num_keypoints: int = 1) -> None:
        """Compile the kernels for float32 and float64 poses now (Numba compiles on first use,
        ~1 s; less from its on-disk cache), so the first frame set is not late."""
        for dtype in (np.float32, np.float64):
            poses = np.zeros((self.num_cameras, num_keypoints, 3), dtype)
            self.triangulate(poses)
        self.reproject(np.zeros((num_keypoints, 3)))

    def triangulate(self, poses2d: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        """One frame set's 3D pose.

        Parameters
        ----------
        poses2d
            ``[C, K, 3]``: x, y in each camera's frame pixels, likelihood.
        out
            Optional preallocated float64 ``[K, 5]`` (the hot path).

        Returns
        -------
        numpy.ndarray
            ``[K, 5]``: x, y, z (calibration unit, mm), mean reprojection error (px) over the
            views used, number of views used (:data:`COLUMNS`); NaN and 0 views where fewer than
            two cameras see the keypoint.
        """
        if poses2d.ndim != 3 or poses2d.shape[0] != self.num_cameras or poses2d.shape[2] != 3:
            _check_points(poses2d, self.num_cameras, 3, "[C, K, 3]")
        if out is None:
            out = np.empty((poses2d.shape[1], 5))
        return triangulate_frame(
            poses2d,
            self._intrinsics,
            self._distortions,
            self._extrinsics,
            self.min_likelihood,
            self._outlier_px,
            self._normalised,
            self._views,
            self._a,
            self._v,
            out,
        )

    def reproject(self, points3d: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        """World points ``[K, 3]`` → pixels in every camera ``[C, K, 2]`` (NaN for NaN)."""
        points3d = np.asarray(points3d, np.float64)
        if points3d.ndim != 2 or points3d.shape[1] != 3:
            raise ValueError(f"points3d must have shape [K, 3], got {points3d.shape}")
        if out is None:
            out = np.empty((self.num_cameras, points3d.shape[0], 2))
        return project_points(
            points3d[:, :3], self._extrinsics, self._intrinsics, self._distortions, out
        )


def triangulate_sequence(
    rig: CameraRig,
    points2d: np.ndarray,
    min_likelihood: float = 0.5,
    outlier_px: float | None = 20.0,
) -> np.ndarray:
    """Triangulate a whole recording offline (same kernels, same results as :class:`Triangulator`).

    Parameters
    ----------
    rig
        The calibrated cameras, in the order of ``points2d``'s camera axis.
    points2d
        ``[C, T, K, 3]``: x, y (frame pixels), likelihood per camera, frame and keypoint.
    min_likelihood, outlier_px
        As :class:`Triangulator`.

    Returns
    -------
    numpy.ndarray
        ``[T, K, 5]`` (:data:`COLUMNS`).
    """
    threshold = _check_options(rig, min_likelihood, outlier_px)
    points2d = np.asarray(points2d)
    if points2d.dtype not in (np.float32, np.float64):
        points2d = points2d.astype(np.float64)
    _check_points(points2d, len(rig), 4, "[C, T, K, 3]")
    intrinsics, distortions, extrinsics = rig_arrays(rig)
    out = np.empty((points2d.shape[1], points2d.shape[2], 5))
    return triangulate_frames(
        points2d, intrinsics, distortions, extrinsics, float(min_likelihood), threshold, out
    )
