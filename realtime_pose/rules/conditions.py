"""Compiled conditions: small classes evaluated once per frame on one pose.

:func:`compile_condition` turns a validated condition tree from :mod:`.config` into these objects
with keypoint names resolved to indices, so the per-frame work is a few float comparisons with no
pydantic, no dict look-ups and no allocation.

A pose is handed over as rows ``[x, y, likelihood]`` of Python floats (``ndarray.tolist()``, done
once per frame by the engine): scalar arithmetic on floats is several times faster than indexing
NumPy arrays element by element.

A keypoint is *visible* for a condition when its likelihood is at least the cutoff and its
coordinates are not NaN; every position condition (zone, speed, distance, angle) is false when a
keypoint it needs is not visible.

3D conditions (zone3d, height, distance3d, speed3d) are evaluated the same way on rows of the
triangulated pose, ``[x, y, z, reprojection_px, n_views]`` in millimetres: a keypoint counts
when x, y and z are not NaN and it was seen by at least ``min_views`` cameras, and a condition
that needs a keypoint that does not count is false.

Stateful conditions (a zone's hysteresis state, the previous position for a speed) must see every
frame, so ``all``/``any`` evaluate every child and never short-circuit.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence

from realtime_pose.rules import zones, zones3d
from realtime_pose.rules.config import (
    AllConfig,
    AngleConfig,
    AnyConfig,
    ConditionConfig,
    Distance3DConfig,
    DistanceConfig,
    HeightConfig,
    LikelihoodConfig,
    NotConfig,
    Speed3DConfig,
    SpeedConfig,
    Zone3DConfig,
    ZoneConfig,
)

PoseRows = Sequence[Sequence[float]]
"""One animal's pose as rows ``[x, y, likelihood]`` in frame pixels, or, for 3D conditions,
rows ``[x, y, z, reprojection_px, n_views]`` in millimetres."""


class Condition(ABC):
    """One node of a compiled condition tree."""

    @abstractmethod
    def evaluate(self, pose: PoseRows, t_ns: int) -> bool:
        """Whether the condition holds for this frame's ``pose`` taken at ``t_ns``."""

    def reset(self) -> None:  # noqa: B027 - stateless conditions have nothing to reset
        """Forget any state carried from earlier frames."""


def _visible(row: Sequence[float], min_likelihood: float) -> bool:
    x, y, likelihood = row[0], row[1], row[2]
    # NaN fails every comparison: a NaN likelihood is not >= cutoff, and x == x is False for NaN.
    return likelihood >= min_likelihood and x == x and y == y


class ZoneCondition(Condition):
    """A keypoint inside (``inside=True``) or outside a zone, with Schmitt-trigger hysteresis.

    Parameters
    ----------
    keypoint
        Index of the keypoint in the pose.
    signed_distance
        ``f(x, y) -> float``, positive inside the zone (see :mod:`.zones`).
    inside
        True: the condition holds while the point is in the zone; False: while it is out.
    hysteresis_px
        Entering needs ``d >= hysteresis_px``, leaving needs ``d < -hysteresis_px``.
    min_likelihood
        Visibility cutoff.
    """

    def __init__(
        self,
        keypoint: int,
        signed_distance: Callable[[float, float], float],
        inside: bool = True,
        hysteresis_px: float = 0.0,
        min_likelihood: float = 0.5,
    ) -> None:
        self.keypoint = keypoint
        self.signed_distance = signed_distance
        self.inside = inside
        self.hysteresis_px = hysteresis_px
        self.min_likelihood = min_likelihood
        self._in: bool | None = None

    def evaluate(self, pose: PoseRows, t_ns: int) -> bool:
        row = pose[self.keypoint]
        if not _visible(row, self.min_likelihood):
            # The hysteresis state is kept: a brief dropout does not reset the Schmitt trigger.
            return False
        d = self.signed_distance(row[0], row[1])
        if self._in is None:
            now_in = d >= 0.0
        elif self._in:
            now_in = d >= -self.hysteresis_px
        else:
            now_in = d >= self.hysteresis_px
        self._in = now_in
        return now_in is self.inside

    def reset(self) -> None:
        self._in = None


class SpeedCondition(Condition):
    """A keypoint's speed (px/s) strictly above ``above_px_s`` and below ``below_px_s``.

    The speed is the displacement since the previous frame divided by the time between the two
    frames' timestamps; it is unknown (condition false) on the first frame, after a frame where
    the keypoint was not visible, and when the timestamps do not increase.
    """

    def __init__(
        self,
        keypoint: int,
        above_px_s: float = -math.inf,
        below_px_s: float = math.inf,
        min_likelihood: float = 0.5,
    ) -> None:
        self.keypoint = keypoint
        self.above_px_s = above_px_s
        self.below_px_s = below_px_s
        self.min_likelihood = min_likelihood
        self._prev: tuple[float, float, int] | None = None
        self.speed_px_s = math.nan  # last computed speed, for inspection

    def evaluate(self, pose: PoseRows, t_ns: int) -> bool:
        row = pose[self.keypoint]
        if not _visible(row, self.min_likelihood):
            self._prev = None
            self.speed_px_s = math.nan
            return False
        x, y = row[0], row[1]
        prev = self._prev
        self._prev = (x, y, t_ns)
        if prev is None or t_ns <= prev[2]:
            self.speed_px_s = math.nan
            return False
        speed = math.hypot(x - prev[0], y - prev[1]) * 1e9 / (t_ns - prev[2])
        self.speed_px_s = speed
        return self.above_px_s < speed < self.below_px_s

    def reset(self) -> None:
        self._prev = None
        self.speed_px_s = math.nan


class DistanceCondition(Condition):
    """Distance (px) between two keypoints, strictly above ``above_px`` and below ``below_px``."""

    def __init__(
        self,
        keypoint_a: int,
        keypoint_b: int,
        above_px: float = -math.inf,
        below_px: float = math.inf,
        min_likelihood: float = 0.5,
    ) -> None:
        self.keypoint_a = keypoint_a
        self.keypoint_b = keypoint_b
        self.above_px = above_px
        self.below_px = below_px
        self.min_likelihood = min_likelihood

    def evaluate(self, pose: PoseRows, t_ns: int) -> bool:
        a = pose[self.keypoint_a]
        b = pose[self.keypoint_b]
        if not (_visible(a, self.min_likelihood) and _visible(b, self.min_likelihood)):
            return False
        return self.above_px < math.hypot(b[0] - a[0], b[1] - a[1]) < self.below_px


def vector_angle_deg(xa: float, ya: float, xb: float, yb: float) -> float:
    """Direction of a→b in degrees, ``atan2(yb - ya, xb - xa)``, in image coordinates (y down)."""
    return math.degrees(math.atan2(yb - ya, xb - xa))


def joint_angle_deg(xa: float, ya: float, xb: float, yb: float, xc: float, yc: float) -> float:
    """Angle at ``b`` between b→a and b→c, in [0, 180]; NaN when a or c coincides with b."""
    ux, uy = xa - xb, ya - yb
    vx, vy = xc - xb, yc - yb
    if (ux == 0.0 and uy == 0.0) or (vx == 0.0 and vy == 0.0):
        return math.nan
    return math.degrees(math.atan2(abs(ux * vy - uy * vx), ux * vx + uy * vy))


class VectorAngleCondition(Condition):
    """The direction of keypoint a → keypoint b within ``[min_deg, max_deg]`` (may wrap at ±180)."""

    def __init__(
        self,
        keypoint_a: int,
        keypoint_b: int,
        min_deg: float,
        max_deg: float,
        min_likelihood: float = 0.5,
    ) -> None:
        self.keypoint_a = keypoint_a
        self.keypoint_b = keypoint_b
        self.min_deg = min_deg
        self.width_deg = (max_deg - min_deg) % 360.0
        self.min_likelihood = min_likelihood

    def evaluate(self, pose: PoseRows, t_ns: int) -> bool:
        a = pose[self.keypoint_a]
        b = pose[self.keypoint_b]
        if not (_visible(a, self.min_likelihood) and _visible(b, self.min_likelihood)):
            return False
        if a[0] == b[0] and a[1] == b[1]:
            return False  # no direction
        angle = vector_angle_deg(a[0], a[1], b[0], b[1])
        return (angle - self.min_deg) % 360.0 <= self.width_deg


class JointAngleCondition(Condition):
    """The angle at keypoint b between b→a and b→c within ``[min_deg, max_deg]`` (0–180)."""

    def __init__(
        self,
        keypoint_a: int,
        keypoint_b: int,
        keypoint_c: int,
        min_deg: float,
        max_deg: float,
        min_likelihood: float = 0.5,
    ) -> None:
        self.keypoints = (keypoint_a, keypoint_b, keypoint_c)
        self.min_deg = min_deg
        self.max_deg = max_deg
        self.min_likelihood = min_likelihood

    def evaluate(self, pose: PoseRows, t_ns: int) -> bool:
        ia, ib, ic = self.keypoints
        a, b, c = pose[ia], pose[ib], pose[ic]
        cutoff = self.min_likelihood
        if not (_visible(a, cutoff) and _visible(b, cutoff) and _visible(c, cutoff)):
            return False
        angle = joint_angle_deg(a[0], a[1], b[0], b[1], c[0], c[1])
        return self.min_deg <= angle <= self.max_deg  # NaN: False


class LikelihoodCondition(Condition):
    """A keypoint's likelihood at least ``at_least`` (NaN: false)."""

    def __init__(self, keypoint: int, at_least: float) -> None:
        self.keypoint = keypoint
        self.at_least = at_least

    def evaluate(self, pose: PoseRows, t_ns: int) -> bool:
        return pose[self.keypoint][2] >= self.at_least


def _triangulated(row: Sequence[float], min_views: float) -> bool:
    x, y, z = row[0], row[1], row[2]
    # NaN fails every comparison: a NaN view count is not >= min_views.
    return row[4] >= min_views and x == x and y == y and z == z


class SignedDistance3DCondition(Condition):
    """A keypoint of the 3D pose on the positive side of a signed distance (inside a 3D zone,
    within a height band), with Schmitt-trigger hysteresis as :class:`ZoneCondition`.

    Parameters
    ----------
    keypoint
        Index of the keypoint in the 3D pose.
    signed_distance
        ``f(x, y, z) -> float`` in mm, positive inside (see :mod:`.zones3d`).
    inside
        True: the condition holds while the point is inside; False: while it is out.
    hysteresis_mm
        Entering needs ``d >= hysteresis_mm``, leaving needs ``d < -hysteresis_mm``.
    min_views
        Fewest camera views for the keypoint to count.
    """

    def __init__(
        self,
        keypoint: int,
        signed_distance: Callable[[float, float, float], float],
        inside: bool = True,
        hysteresis_mm: float = 0.0,
        min_views: int = 2,
    ) -> None:
        self.keypoint = keypoint
        self.signed_distance = signed_distance
        self.inside = inside
        self.hysteresis_mm = hysteresis_mm
        self.min_views = min_views
        self._in: bool | None = None

    def evaluate(self, pose: PoseRows, t_ns: int) -> bool:
        row = pose[self.keypoint]
        if not _triangulated(row, self.min_views):
            return False  # the Schmitt trigger keeps its state over a dropout
        d = self.signed_distance(row[0], row[1], row[2])
        if self._in is None:
            now_in = d >= 0.0
        elif self._in:
            now_in = d >= -self.hysteresis_mm
        else:
            now_in = d >= self.hysteresis_mm
        self._in = now_in
        return now_in is self.inside

    def reset(self) -> None:
        self._in = None


class Distance3DCondition(Condition):
    """3D distance (mm) between two keypoints, strictly above ``above_mm`` and below
    ``below_mm``."""

    def __init__(
        self,
        keypoint_a: int,
        keypoint_b: int,
        above_mm: float = -math.inf,
        below_mm: float = math.inf,
        min_views: int = 2,
    ) -> None:
        self.keypoint_a = keypoint_a
        self.keypoint_b = keypoint_b
        self.above_mm = above_mm
        self.below_mm = below_mm
        self.min_views = min_views

    def evaluate(self, pose: PoseRows, t_ns: int) -> bool:
        a = pose[self.keypoint_a]
        b = pose[self.keypoint_b]
        if not (_triangulated(a, self.min_views) and _triangulated(b, self.min_views)):
            return False
        distance = math.sqrt((b[0] - a[0]) ** 2 + (b[1] - a[1]) ** 2 + (b[2] - a[2]) ** 2)
        return self.above_mm < distance < self.below_mm


class Speed3DCondition(Condition):
    """A keypoint's 3D speed (mm/s) strictly above ``above_mm_s`` and below ``below_mm_s``;
    unknown (false) as for :class:`SpeedCondition`: on the first frame, after a frame where the
    keypoint was not triangulated, and when the timestamps do not increase."""

    def __init__(
        self,
        keypoint: int,
        above_mm_s: float = -math.inf,
        below_mm_s: float = math.inf,
        min_views: int = 2,
    ) -> None:
        self.keypoint = keypoint
        self.above_mm_s = above_mm_s
        self.below_mm_s = below_mm_s
        self.min_views = min_views
        self._prev: tuple[float, float, float, int] | None = None
        self.speed_mm_s = math.nan  # last computed speed, for inspection

    def evaluate(self, pose: PoseRows, t_ns: int) -> bool:
        row = pose[self.keypoint]
        if not _triangulated(row, self.min_views):
            self._prev = None
            self.speed_mm_s = math.nan
            return False
        x, y, z = row[0], row[1], row[2]
        prev = self._prev
        self._prev = (x, y, z, t_ns)
        if prev is None or t_ns <= prev[3]:
            self.speed_mm_s = math.nan
            return False
        step = math.sqrt((x - prev[0]) ** 2 + (y - prev[1]) ** 2 + (z - prev[2]) ** 2)
        speed = step * 1e9 / (t_ns - prev[3])
        self.speed_mm_s = speed
        return self.above_mm_s < speed < self.below_mm_s

    def reset(self) -> None:
        self._prev = None
        self.speed_mm_s = math.nan


class AllCondition(Condition):
    """True when every child is true (every child is evaluated, see the module docstring)."""

    def __init__(self, children: Sequence[Condition]) -> None:
        self.children = tuple(children)

    def evaluate(self, pose: PoseRows, t_ns: int) -> bool:
        result = True
        for child in self.children:
            if not child.evaluate(pose, t_ns):
                result = False
        return result

    def reset(self) -> None:
        for child in self.children:
            child.reset()


class AnyCondition(Condition):
    """True when at least one child is true (every child is evaluated)."""

    def __init__(self, children: Sequence[Condition]) -> None:
        self.children = tuple(children)

    def evaluate(self, pose: PoseRows, t_ns: int) -> bool:
        result = False
        for child in self.children:
            if child.evaluate(pose, t_ns):
                result = True
        return result

    def reset(self) -> None:
        for child in self.children:
            child.reset()


class NotCondition(Condition):
    """The negation of its child."""

    def __init__(self, child: Condition) -> None:
        self.child = child

    def evaluate(self, pose: PoseRows, t_ns: int) -> bool:
        return not self.child.evaluate(pose, t_ns)

    def reset(self) -> None:
        self.child.reset()


def _zone_distance(cfg: ZoneConfig) -> Callable[[float, float], float]:
    if cfg.rectangle is not None:
        x0, y0, x1, y1 = cfg.rectangle
        return lambda x, y: zones.rectangle_signed_distance(x, y, x0, y0, x1, y1)
    if cfg.circle is not None:
        cx, cy, r = cfg.circle
        return lambda x, y: zones.circle_signed_distance(x, y, cx, cy, r)
    assert cfg.polygon is not None  # guaranteed by ZoneConfig's validator
    vertices = tuple((float(vx), float(vy)) for vx, vy in cfg.polygon)
    return lambda x, y: zones.polygon_signed_distance(x, y, vertices)


def _zone3d_distance(cfg: Zone3DConfig) -> Callable[[float, float, float], float]:
    if cfg.box is not None:
        x0, y0, z0, x1, y1, z1 = cfg.box
        return lambda x, y, z: zones3d.box_signed_distance(x, y, z, x0, y0, z0, x1, y1, z1)
    if cfg.sphere is not None:
        cx, cy, cz, r = cfg.sphere
        return lambda x, y, z: zones3d.sphere_signed_distance(x, y, z, cx, cy, cz, r)
    cyl = cfg.cylinder
    assert cyl is not None  # guaranteed by Zone3DConfig's validator
    base, axis, radius, height = cyl.base, zones3d.unit(cyl.axis), cyl.radius, cyl.height
    return lambda x, y, z: zones3d.cylinder_signed_distance(x, y, z, base, axis, radius, height)


def _height_band_distance(cfg: HeightConfig) -> Callable[[float, float, float], float]:
    """Signed distance to the band ``[above, below]`` of heights: positive inside it."""
    origin, up = cfg.origin, zones3d.unit(cfg.up)
    low = -math.inf if cfg.above is None else cfg.above
    high = math.inf if cfg.below is None else cfg.below

    def band(x: float, y: float, z: float) -> float:
        h = zones3d.height_above_plane(x, y, z, origin, up)
        return min(h - low, high - h)

    return band


def compile_condition(
    cfg: ConditionConfig,
    keypoint_index: Mapping[str, int],
    min_likelihood: float = 0.5,
    min_views: int = 2,
) -> Condition:
    """Build the condition objects for a validated condition tree.

    Parameters
    ----------
    cfg
        A condition from :mod:`.config`.
    keypoint_index
        Keypoint name → row index in the pose (the same for the 2D and the 3D pose).
    min_likelihood
        Cutoff for 2D position conditions that do not set their own ``min_likelihood``.
    min_views
        Fewest camera views for 3D conditions that do not set their own ``min_views``.

    Returns
    -------
    Condition

    Raises
    ------
    KeyError
        For a keypoint name not in ``keypoint_index`` (run :func:`.config.validate_rules` first
        for a message naming the rule and field).
    """

    def cutoff(own: float | None) -> float:
        return min_likelihood if own is None else own

    def views(own: int | None) -> int:
        return min_views if own is None else own

    def child(c: ConditionConfig) -> Condition:
        return compile_condition(c, keypoint_index, min_likelihood, min_views)

    def idx(name: str) -> int:
        try:
            return keypoint_index[name]
        except KeyError:
            raise KeyError(f"keypoint {name!r} is not one of {', '.join(keypoint_index)}") from None

    if isinstance(cfg, ZoneConfig):
        return ZoneCondition(
            idx(cfg.keypoint),
            _zone_distance(cfg),
            cfg.inside,
            cfg.hysteresis_px,
            cutoff(cfg.min_likelihood),
        )
    if isinstance(cfg, SpeedConfig):
        return SpeedCondition(
            idx(cfg.keypoint),
            -math.inf if cfg.above is None else cfg.above,
            math.inf if cfg.below is None else cfg.below,
            cutoff(cfg.min_likelihood),
        )
    if isinstance(cfg, DistanceConfig):
        a, b = cfg.keypoints
        return DistanceCondition(
            idx(a),
            idx(b),
            -math.inf if cfg.above is None else cfg.above,
            math.inf if cfg.below is None else cfg.below,
            cutoff(cfg.min_likelihood),
        )
    if isinstance(cfg, AngleConfig):
        kps = [idx(n) for n in cfg.keypoints]
        if len(kps) == 2:
            return VectorAngleCondition(
                kps[0], kps[1], cfg.min_deg, cfg.max_deg, cutoff(cfg.min_likelihood)
            )
        return JointAngleCondition(
            kps[0], kps[1], kps[2], cfg.min_deg, cfg.max_deg, cutoff(cfg.min_likelihood)
        )
    if isinstance(cfg, LikelihoodConfig):
        return LikelihoodCondition(idx(cfg.keypoint), cfg.at_least)
    if isinstance(cfg, Zone3DConfig):
        return SignedDistance3DCondition(
            idx(cfg.keypoint),
            _zone3d_distance(cfg),
            cfg.inside,
            cfg.hysteresis_mm,
            views(cfg.min_views),
        )
    if isinstance(cfg, HeightConfig):
        return SignedDistance3DCondition(
            idx(cfg.keypoint),
            _height_band_distance(cfg),
            True,
            cfg.hysteresis_mm,
            views(cfg.min_views),
        )
    if isinstance(cfg, Distance3DConfig):
        a, b = cfg.keypoints
        return Distance3DCondition(
            idx(a),
            idx(b),
            -math.inf if cfg.above is None else cfg.above,
            math.inf if cfg.below is None else cfg.below,
            views(cfg.min_views),
        )
    if isinstance(cfg, Speed3DConfig):
        return Speed3DCondition(
            idx(cfg.keypoint),
            -math.inf if cfg.above is None else cfg.above,
            math.inf if cfg.below is None else cfg.below,
            views(cfg.min_views),
        )
    if isinstance(cfg, AllConfig):
        return AllCondition([child(c) for c in cfg.conditions])
    if isinstance(cfg, AnyConfig):
        return AnyCondition([child(c) for c in cfg.conditions])
    if isinstance(cfg, NotConfig):
        return NotCondition(child(cfg.condition))
    raise TypeError(f"unknown condition config {type(cfg).__name__}")
