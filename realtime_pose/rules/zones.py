"""Zone geometry: signed distances from a point to a zone's border, in frame pixels.

Pure functions on Python floats (a rule looks at one point per frame; NumPy's per-call overhead
would dominate). The sign convention is positive inside, negative outside, zero on the border, so
"inside a zone grown by h" is ``d > -h`` and "inside a zone shrunk by h" is ``d >= h``: the
hysteresis of :class:`~realtime_pose.rules.conditions.ZoneCondition` is two comparisons.
"""

from __future__ import annotations

import math
from collections.abc import Sequence


def rectangle_signed_distance(
    x: float, y: float, x0: float, y0: float, x1: float, y1: float
) -> float:
    """Signed distance from ``(x, y)`` to the border of the axis-aligned rectangle.

    Parameters
    ----------
    x, y
        The point, frame pixels.
    x0, y0, x1, y1
        The rectangle's corners, ``x0 < x1`` and ``y0 < y1``.

    Returns
    -------
    float
        Distance to the nearest edge inside (positive), Euclidean distance to the rectangle
        outside (negative), 0 on the border.
    """
    dx = max(x0 - x, x - x1)
    dy = max(y0 - y, y - y1)
    if dx <= 0.0 and dy <= 0.0:
        return -max(dx, dy)
    return -math.hypot(max(dx, 0.0), max(dy, 0.0))


def circle_signed_distance(x: float, y: float, cx: float, cy: float, r: float) -> float:
    """Signed distance from ``(x, y)`` to the circle of centre ``(cx, cy)`` and radius ``r``."""
    return r - math.hypot(x - cx, y - cy)


def point_in_polygon(x: float, y: float, vertices: Sequence[tuple[float, float]]) -> bool:
    """Even-odd test: whether ``(x, y)`` is inside the polygon (border points are unspecified)."""
    inside = False
    n = len(vertices)
    xj, yj = vertices[n - 1]
    for i in range(n):
        xi, yi = vertices[i]
        if (yi > y) != (yj > y) and x < (xj - xi) * (y - yi) / (yj - yi) + xi:
            inside = not inside
        xj, yj = xi, yi
    return inside


def polygon_signed_distance(x: float, y: float, vertices: Sequence[tuple[float, float]]) -> float:
    """Signed distance from ``(x, y)`` to the border of a simple polygon (any winding).

    Parameters
    ----------
    x, y
        The point, frame pixels.
    vertices
        At least 3 ``(x, y)`` vertices; the last connects back to the first.

    Returns
    -------
    float
        Distance to the nearest edge, positive inside, negative outside (even-odd rule).
    """
    best_sq = math.inf
    n = len(vertices)
    ax, ay = vertices[n - 1]
    for i in range(n):
        bx, by = vertices[i]
        ex, ey = bx - ax, by - ay
        px, py = x - ax, y - ay
        len_sq = ex * ex + ey * ey
        t = 0.0 if len_sq == 0.0 else min(1.0, max(0.0, (px * ex + py * ey) / len_sq))
        qx, qy = px - t * ex, py - t * ey
        d_sq = qx * qx + qy * qy
        if d_sq < best_sq:
            best_sq = d_sq
        ax, ay = bx, by
    d = math.sqrt(best_sq)
    return d if point_in_polygon(x, y, vertices) else -d
