"""3D zone geometry: signed distances from a point to a zone's surface, in millimetres.

The 3D counterpart of :mod:`.zones`, for rules on the triangulated pose (world frame of the
calibration). Pure functions on Python floats with the same sign convention: positive inside,
negative outside, zero on the surface, so the Schmitt trigger of
:class:`~realtime_pose.rules.conditions.SignedDistanceCondition` is two comparisons. Vectors
that a rule fixes (a cylinder's axis, a plane's normal) are passed unit-length, normalised once
when the rule is compiled.
"""

from __future__ import annotations

import math


def _box_like(outside_a: float, outside_b: float) -> float:
    """Signed distance from per-axis excesses (positive: beyond the face on that axis)."""
    if outside_a <= 0.0 and outside_b <= 0.0:
        return -max(outside_a, outside_b)
    return -math.hypot(max(outside_a, 0.0), max(outside_b, 0.0))


def box_signed_distance(
    x: float,
    y: float,
    z: float,
    x0: float,
    y0: float,
    z0: float,
    x1: float,
    y1: float,
    z1: float,
) -> float:
    """Signed distance from ``(x, y, z)`` to the surface of an axis-aligned box.

    Parameters
    ----------
    x, y, z
        The point, mm.
    x0, y0, z0, x1, y1, z1
        Opposite corners, ``x0 < x1``, ``y0 < y1``, ``z0 < z1``.

    Returns
    -------
    float
        Distance to the nearest face inside (positive), Euclidean distance to the box outside
        (negative), 0 on the surface.
    """
    dx = max(x0 - x, x - x1)
    dy = max(y0 - y, y - y1)
    dz = max(z0 - z, z - z1)
    if dx <= 0.0 and dy <= 0.0 and dz <= 0.0:
        return -max(dx, dy, dz)
    return -math.sqrt(max(dx, 0.0) ** 2 + max(dy, 0.0) ** 2 + max(dz, 0.0) ** 2)


def sphere_signed_distance(
    x: float, y: float, z: float, cx: float, cy: float, cz: float, r: float
) -> float:
    """Signed distance from ``(x, y, z)`` to the sphere of centre ``(cx, cy, cz)``, radius ``r``."""
    return r - math.sqrt((x - cx) ** 2 + (y - cy) ** 2 + (z - cz) ** 2)


def cylinder_signed_distance(
    x: float,
    y: float,
    z: float,
    base: tuple[float, float, float],
    axis: tuple[float, float, float],
    radius: float,
    height: float,
) -> float:
    """Signed distance from ``(x, y, z)`` to the surface of a closed (capped) cylinder.

    Parameters
    ----------
    x, y, z
        The point, mm.
    base
        Centre of the bottom disc.
    axis
        Unit vector from the bottom disc towards the top one.
    radius, height
        Radius and length along ``axis``, both > 0.

    Returns
    -------
    float
        Positive inside (distance to the nearest of side wall, bottom and top), negative outside
        (Euclidean distance to the cylinder), 0 on the surface.
    """
    vx, vy, vz = x - base[0], y - base[1], z - base[2]
    along = vx * axis[0] + vy * axis[1] + vz * axis[2]
    rx, ry, rz = vx - along * axis[0], vy - along * axis[1], vz - along * axis[2]
    radial = math.sqrt(rx * rx + ry * ry + rz * rz)
    return _box_like(radial - radius, max(-along, along - height))


def height_above_plane(
    x: float, y: float, z: float, origin: tuple[float, float, float], up: tuple[float, float, float]
) -> float:
    """Signed height of ``(x, y, z)`` above the plane through ``origin`` with unit normal ``up``
    (negative below it)."""
    return (x - origin[0]) * up[0] + (y - origin[1]) * up[1] + (z - origin[2]) * up[2]


def unit(vector: tuple[float, float, float]) -> tuple[float, float, float]:
    """``vector`` scaled to length 1 (the config refuses a zero vector)."""
    norm = math.sqrt(vector[0] ** 2 + vector[1] ** 2 + vector[2] ** 2)
    return vector[0] / norm, vector[1] / norm, vector[2] / norm
