"""What a user writes under ``rules:`` in the run config, validated at the edge.

Everything here is pydantic (v2, ``extra="forbid"``): a typo in a field name, a negative duration
or a polygon with two points is refused when the config is loaded, with pydantic's message naming
the field. Names that can only be checked against the running rig (keypoints of the model, outputs
of the hardware section) are checked by :func:`validate_rules`.

A rule's conditions are all 2D (the pose in frame pixels: ``zone``, ``speed``, ``distance``,
``angle``, ``likelihood``) or all 3D (the triangulated pose in millimetres: ``zone3d``,
``height``, ``distance3d``, ``speed3d``); :attr:`RuleConfig.space` says which, and
:func:`validate_rules` (``space=``) refuses rules the session has no pose for.

Example (YAML)::

    rules:
      - name: laser_in_zone
        source: predicted
        condition:
          type: zone
          keypoint: snout
          circle: [320, 240, 40]
          hysteresis_px: 4
        on: enter
        refractory_s: 0.5
        actions:
          - {output: laser, action: pulse, duration_ms: 5}

PyYAML reads a bare ``on`` key as the boolean ``true`` and the values ``on``/``off`` as booleans;
the models accept both spellings, so ``on: enter`` and ``action: off`` work unquoted.
"""

from __future__ import annotations

import difflib
import math
from collections import Counter
from collections.abc import Collection, Iterator, Sequence
from typing import Annotated, Any, ClassVar, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    FiniteFloat,
    TypeAdapter,
    ValidationError,
    field_validator,
    model_validator,
)

from realtime_pose.bundle import animal_layout

Likelihood = Annotated[float, Field(ge=0.0, le=1.0)]
KeypointName = Annotated[str, Field(min_length=1)]
MinViews = Annotated[int, Field(ge=2)]
"""Fewest camera views a triangulated keypoint needs to count (a point needs two)."""
Vector3 = tuple[FiniteFloat, FiniteFloat, FiniteFloat]
Space = Literal["2d", "3d"]
"""Which pose a condition looks at: ``2d`` rows ``[x, y, likelihood]`` in frame pixels, or
``3d`` rows ``[x, y, z, reprojection_px, n_views]`` in millimetres (triangulated)."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# --------------------------------------------------------------------------------------------
# Conditions
# --------------------------------------------------------------------------------------------


MAX_POLYGON_VERTICES = 256
"""A zone's polygon is tested every frame (a point-in-polygon pass over its edges): 20,000
vertices cost ~17 ms a frame, 256 a few microseconds."""


class ZoneConfig(_Strict):
    """A keypoint inside (or outside) a zone in frame pixels.

    Give exactly one of ``rectangle`` ``[x0, y0, x1, y1]``, ``circle`` ``[cx, cy, r]`` or
    ``polygon`` ``[[x, y], ...]`` (3 to :data:`MAX_POLYGON_VERTICES` vertices, any winding, may
    be concave). Every number is finite (no NaN or infinity).

    ``hysteresis_px`` makes the zone a Schmitt trigger: a point outside must come
    ``hysteresis_px`` *inside* the border to count as in, and a point inside must go
    ``hysteresis_px`` *beyond* the border to count as out, so a point jittering on the border
    does not toggle the condition every frame.
    """

    type: Literal["zone"] = "zone"
    space: ClassVar[Space] = "2d"
    keypoint: KeypointName
    rectangle: tuple[FiniteFloat, FiniteFloat, FiniteFloat, FiniteFloat] | None = None
    circle: tuple[FiniteFloat, FiniteFloat, FiniteFloat] | None = None
    polygon: list[tuple[FiniteFloat, FiniteFloat]] | None = Field(
        default=None, max_length=MAX_POLYGON_VERTICES
    )
    inside: bool = True
    hysteresis_px: FiniteFloat = Field(default=0.0, ge=0.0)
    min_likelihood: Likelihood | None = Field(
        default=None, description="likelihood cutoff; None takes the rule's min_likelihood"
    )

    @model_validator(mode="after")
    def _one_shape(self) -> ZoneConfig:
        given = [n for n in ("rectangle", "circle", "polygon") if getattr(self, n) is not None]
        if len(given) != 1:
            raise ValueError(
                "a zone needs exactly one of rectangle: [x0, y0, x1, y1], circle: [cx, cy, r] "
                f"or polygon: [[x, y], ...]; got {given or 'none'}"
            )
        if self.rectangle is not None:
            x0, y0, x1, y1 = self.rectangle
            if not (x1 > x0 and y1 > y0):
                raise ValueError(
                    f"rectangle must be [x0, y0, x1, y1] with x1 > x0 and y1 > y0, "
                    f"got {list(self.rectangle)}"
                )
        if self.circle is not None and not self.circle[2] > 0:
            raise ValueError(f"circle must be [cx, cy, r] with r > 0, got {list(self.circle)}")
        if self.polygon is not None and len(self.polygon) < 3:
            raise ValueError(f"polygon needs at least 3 vertices [[x, y], ...], got {self.polygon}")
        return self


def _check_band(low: float | None, high: float | None, low_name: str, high_name: str) -> None:
    if low is None and high is None:
        raise ValueError(f"give {low_name}, {high_name} or both")
    if low is not None and high is not None and not low < high:
        raise ValueError(f"{low_name} ({low}) must be less than {high_name} ({high})")


class SpeedConfig(_Strict):
    """A keypoint's speed in px/s, from consecutive poses and their timestamps.

    True when the speed is above ``above`` and/or below ``below`` (both: inside the band).
    False on the first frame and whenever the keypoint was below its likelihood cutoff in this or
    the previous frame (the speed is unknown then).
    """

    type: Literal["speed"] = "speed"
    space: ClassVar[Space] = "2d"
    keypoint: KeypointName
    above: float | None = Field(default=None, ge=0.0, description="px/s")
    below: float | None = Field(default=None, gt=0.0, description="px/s")
    min_likelihood: Likelihood | None = None

    @model_validator(mode="after")
    def _band(self) -> SpeedConfig:
        _check_band(self.above, self.below, "above", "below")
        return self


class DistanceConfig(_Strict):
    """The distance between two keypoints, in px, above and/or below a threshold."""

    type: Literal["distance"] = "distance"
    space: ClassVar[Space] = "2d"
    keypoints: tuple[KeypointName, KeypointName]
    above: float | None = Field(default=None, ge=0.0, description="px")
    below: float | None = Field(default=None, gt=0.0, description="px")
    min_likelihood: Likelihood | None = None

    @model_validator(mode="after")
    def _band(self) -> DistanceConfig:
        _check_band(self.above, self.below, "above", "below")
        return self


class AngleConfig(_Strict):
    """An angle within ``[min_deg, max_deg]``.

    With two keypoints ``[a, b]``: the direction of the vector a→b, ``atan2(yb - ya, xb - xa)``
    in degrees in image coordinates (0° = +x to the right, 90° = +y, i.e. *down* in the image),
    in (-180, 180]. The range is read counter-clockwise from ``min_deg`` to ``max_deg`` (in
    those coordinates) and may wrap: ``min_deg: 150, max_deg: -150`` is the 60° around 180°.

    With three keypoints ``[a, b, c]``: the joint angle at ``b`` between b→a and b→c, in
    [0, 180]; then ``0 <= min_deg <= max_deg <= 180``.
    """

    type: Literal["angle"] = "angle"
    space: ClassVar[Space] = "2d"
    keypoints: list[KeypointName] = Field(min_length=2, max_length=3)
    min_deg: float = Field(ge=-360.0, le=360.0)
    max_deg: float = Field(ge=-360.0, le=360.0)
    min_likelihood: Likelihood | None = None

    @model_validator(mode="after")
    def _range(self) -> AngleConfig:
        if len(self.keypoints) == 3 and not (0.0 <= self.min_deg <= self.max_deg <= 180.0):
            raise ValueError(
                "a joint angle [a, b, c] lies in [0, 180]: need 0 <= min_deg <= max_deg <= 180, "
                f"got min_deg={self.min_deg}, max_deg={self.max_deg}"
            )
        if len(self.keypoints) == 2 and (self.min_deg - self.max_deg) % 360.0 == 0.0:
            raise ValueError(
                f"min_deg ({self.min_deg}) and max_deg ({self.max_deg}) are the same direction; "
                "for any direction, leave the angle condition out"
            )
        return self


class LikelihoodConfig(_Strict):
    """A likelihood gate: true when the keypoint's likelihood is at least ``at_least``."""

    type: Literal["likelihood"] = "likelihood"
    space: ClassVar[Space] = "2d"
    keypoint: KeypointName
    at_least: Likelihood


# 3D conditions look at the triangulated pose: millimetres in the calibration's world frame. A
# keypoint counts when x, y, z are numbers and at least ``min_views`` cameras saw it; the
# condition is false otherwise (as a 2D condition is for a keypoint below its likelihood cutoff).


def _nonzero(vector: Vector3, what: str) -> None:
    if not math.hypot(*vector) > 0.0:
        raise ValueError(f"{what} must be a non-zero vector [x, y, z], got {list(vector)}")


class CylinderConfig(_Strict):
    """A closed cylinder: ``base`` is the centre of its bottom disc, ``axis`` points from there
    to the top disc (any length; default straight up, +z), ``height`` is measured along it."""

    base: Vector3
    axis: Vector3 = (0.0, 0.0, 1.0)
    radius: FiniteFloat = Field(gt=0.0, description="mm")
    height: FiniteFloat = Field(gt=0.0, description="mm")

    @model_validator(mode="after")
    def _axis(self) -> CylinderConfig:
        _nonzero(self.axis, "the cylinder's axis")
        return self


class Zone3DConfig(_Strict):
    """A keypoint of the 3D pose inside (or outside) a zone in millimetres.

    Give exactly one of ``box`` ``[x0, y0, z0, x1, y1, z1]`` (axis-aligned in the calibration's
    world frame), ``cylinder`` ``{base: [x, y, z], axis: [ax, ay, az], radius, height}`` (see
    :class:`CylinderConfig`) or ``sphere`` ``[cx, cy, cz, r]``. Every number is finite.

    ``hysteresis_mm`` is the Schmitt trigger of the 2D zone's ``hysteresis_px``, on the signed
    distance to the zone's surface: in once ``hysteresis_mm`` inside it, out once
    ``hysteresis_mm`` beyond it. It must be less than the zone's depth (the farthest a point
    inside can be from the surface), or the keypoint could never count as inside.
    """

    type: Literal["zone3d"] = "zone3d"
    space: ClassVar[Space] = "3d"
    keypoint: KeypointName
    box: (
        tuple[FiniteFloat, FiniteFloat, FiniteFloat, FiniteFloat, FiniteFloat, FiniteFloat] | None
    ) = None
    cylinder: CylinderConfig | None = None
    sphere: tuple[FiniteFloat, FiniteFloat, FiniteFloat, FiniteFloat] | None = None
    inside: bool = True
    hysteresis_mm: FiniteFloat = Field(default=0.0, ge=0.0)
    min_views: MinViews | None = Field(
        default=None, description="fewest views; None takes the rule's min_views"
    )

    @model_validator(mode="after")
    def _one_shape(self) -> Zone3DConfig:
        given = [n for n in ("box", "cylinder", "sphere") if getattr(self, n) is not None]
        if len(given) != 1:
            raise ValueError(
                "a zone3d needs exactly one of box: [x0, y0, z0, x1, y1, z1], "
                "cylinder: {base: [x, y, z], radius: r, height: h} or sphere: [cx, cy, cz, r]; "
                f"got {given or 'none'}"
            )
        if self.box is not None:
            x0, y0, z0, x1, y1, z1 = self.box
            if not (x1 > x0 and y1 > y0 and z1 > z0):
                raise ValueError(
                    "box must be [x0, y0, z0, x1, y1, z1] with x1 > x0, y1 > y0 and z1 > z0, "
                    f"got {list(self.box)}"
                )
            depth = min(x1 - x0, y1 - y0, z1 - z0) / 2.0
        elif self.sphere is not None:
            if not self.sphere[3] > 0:
                raise ValueError(
                    f"sphere must be [cx, cy, cz, r] with r > 0, got {list(self.sphere)}"
                )
            depth = self.sphere[3]
        else:
            assert self.cylinder is not None
            depth = min(self.cylinder.radius, self.cylinder.height / 2.0)
        if not self.hysteresis_mm < depth:
            raise ValueError(
                f"hysteresis_mm ({self.hysteresis_mm:g}) must be less than the {given[0]}'s "
                f"depth ({depth:g} mm, the farthest a point inside is from its surface), or the "
                "keypoint could never count as inside"
            )
        return self


class HeightConfig(_Strict):
    """A keypoint's height in mm above a plane: ``above`` and/or ``below`` a threshold.

    The height is ``dot(p - origin, up / |up|)``: by default ``z`` above ``z = 0``; give
    ``up`` (any length, not zero) and ``origin`` (a point of the plane) when the calibration's
    floor is another plane. Negative below the plane. True while the height is at least
    ``above`` and at most ``below`` (both: inside the band). ``hysteresis_mm`` is a Schmitt
    trigger on the thresholds: true once ``hysteresis_mm`` past them, false once
    ``hysteresis_mm`` back beyond them.
    """

    type: Literal["height"] = "height"
    space: ClassVar[Space] = "3d"
    keypoint: KeypointName
    above: FiniteFloat | None = Field(default=None, description="mm")
    below: FiniteFloat | None = Field(default=None, description="mm")
    up: Vector3 = (0.0, 0.0, 1.0)
    origin: Vector3 = (0.0, 0.0, 0.0)
    hysteresis_mm: FiniteFloat = Field(default=0.0, ge=0.0)
    min_views: MinViews | None = None

    @model_validator(mode="after")
    def _band(self) -> HeightConfig:
        _check_band(self.above, self.below, "above", "below")
        _nonzero(self.up, "up")
        low, high = self.above, self.below
        if low is not None and high is not None and not high - low > 2.0 * self.hysteresis_mm:
            raise ValueError(
                f"the band from above ({low:g}) to below ({high:g}) must be wider than twice "
                f"hysteresis_mm ({self.hysteresis_mm:g}), or the keypoint could never count as "
                "inside it"
            )
        return self


class Distance3DConfig(_Strict):
    """The 3D distance between two keypoints, in mm, above and/or below a threshold (as
    :class:`DistanceConfig`, on the triangulated pose)."""

    type: Literal["distance3d"] = "distance3d"
    space: ClassVar[Space] = "3d"
    keypoints: tuple[KeypointName, KeypointName]
    above: FiniteFloat | None = Field(default=None, ge=0.0, description="mm")
    below: FiniteFloat | None = Field(default=None, gt=0.0, description="mm")
    min_views: MinViews | None = None

    @model_validator(mode="after")
    def _band(self) -> Distance3DConfig:
        _check_band(self.above, self.below, "above", "below")
        return self


class Speed3DConfig(_Strict):
    """A keypoint's 3D speed in mm/s (as :class:`SpeedConfig`, on the triangulated pose): false
    on the first frame and after a frame where the keypoint was not triangulated."""

    type: Literal["speed3d"] = "speed3d"
    space: ClassVar[Space] = "3d"
    keypoint: KeypointName
    above: FiniteFloat | None = Field(default=None, ge=0.0, description="mm/s")
    below: FiniteFloat | None = Field(default=None, gt=0.0, description="mm/s")
    min_views: MinViews | None = None

    @model_validator(mode="after")
    def _band(self) -> Speed3DConfig:
        _check_band(self.above, self.below, "above", "below")
        return self


class AllConfig(_Strict):
    """True when every sub-condition is true."""

    type: Literal["all"] = "all"
    conditions: list[ConditionConfig] = Field(min_length=1)


class AnyConfig(_Strict):
    """True when at least one sub-condition is true."""

    type: Literal["any"] = "any"
    conditions: list[ConditionConfig] = Field(min_length=1)


class NotConfig(_Strict):
    """True when the sub-condition is false (a lost keypoint makes ``not zone`` true)."""

    type: Literal["not"] = "not"
    condition: ConditionConfig


ConditionConfig = Annotated[
    ZoneConfig
    | SpeedConfig
    | DistanceConfig
    | AngleConfig
    | LikelihoodConfig
    | Zone3DConfig
    | HeightConfig
    | Distance3DConfig
    | Speed3DConfig
    | AllConfig
    | AnyConfig
    | NotConfig,
    Field(discriminator="type"),
]

for _model in (AllConfig, AnyConfig, NotConfig):
    _model.model_rebuild()


# --------------------------------------------------------------------------------------------
# Actions and rules
# --------------------------------------------------------------------------------------------

ActionName = Literal["pulse", "on", "off", "toggle"]


class ActionConfig(_Strict):
    """One output action: ``{output: laser, action: pulse, duration_ms: 5}``.

    ``duration_ms`` is required for ``pulse`` and refused for the other actions.
    """

    output: str = Field(min_length=1)
    action: ActionName
    duration_ms: float | None = Field(default=None, gt=0.0)

    @field_validator("action", mode="before")
    @classmethod
    def _yaml_booleans(cls, value: Any) -> Any:
        # PyYAML turns unquoted on/off into True/False.
        if value is True:
            return "on"
        if value is False:
            return "off"
        return value

    @model_validator(mode="after")
    def _duration(self) -> ActionConfig:
        if self.action == "pulse" and self.duration_ms is None:
            raise ValueError(f"output {self.output!r}: a pulse needs duration_ms (> 0)")
        if self.action != "pulse" and self.duration_ms is not None:
            raise ValueError(
                f"output {self.output!r}: duration_ms only applies to pulse, not "
                f"{self.action!r}; for a timed 'on' use the rule's max_on_s"
            )
        return self


class RuleConfig(_Strict):
    """One rule: when ``condition`` changes (``on``), perform ``actions``.

    Attributes
    ----------
    name
        Unique name; the control socket enables/disables rules by it.
    enabled
        Whether the rule runs from the start.
    source
        ``measured`` pose, or the forward-``predicted`` pose (falls back to measured on frames
        without a prediction). A 3D rule uses the predicted 3D pose.
    condition
        The condition tree: 2D conditions (on the pose in frame pixels) or 3D conditions
        (``zone3d``, ``height``, ``distance3d``, ``speed3d``, on the triangulated pose in
        millimetres), not both; :attr:`space` says which.
    on
        ``enter``: fire when the condition becomes true; ``exit``: when it becomes false (only
        after it has been true); ``while``: every frame while it is true (rate-limited by
        ``refractory_s``).
    min_likelihood
        Default likelihood cutoff for the position conditions of a 2D rule; a keypoint below it
        makes them false.
    min_views
        Default for the 3D conditions of a 3D rule: a keypoint triangulated from fewer camera
        views (or not at all, NaN) makes them false.
    min_dwell_s
        The edge must hold this long before the rule fires.
    refractory_s
        No firing within this time after the previous firing; an ``enter``/``exit`` edge that
        comes due inside it is dropped, not deferred.
    max_on_s
        Longest an ``on`` action of this rule may hold its output: the engine emits ``off`` once
        it has been on this long, even if the condition still holds, and the rule does not fire
        again until the condition has been released.
    off_on_release
        Switch off this rule's ``on`` outputs when the condition is released (default true, so
        ``on: enter`` + ``action: on`` means "on while the condition holds").
    actions
        What to do when the rule fires.
    animal
        Several animals (a model whose keypoints are ``animal/bodypart``): which animal a bare
        bodypart name in ``condition`` means: an animal's name (``female``), ``any`` (the
        condition holds for at least one animal) or ``all`` (for every animal). Names written
        in full (``male/thorax``) keep their animal, so ``animal: female`` with
        ``distance: {keypoints: [thorax, male/thorax], below: 30}`` is a social condition.
        ``other/<bodypart>`` means that bodypart of any *other* animal: ``animal: any`` with
        ``distance: {keypoints: [thorax, other/thorax], below: 30}`` holds when some two
        animals are that close (animals that look alike have slots, not names, so this is
        how a social rule between any two of them is written).
    """

    name: str = Field(min_length=1)
    enabled: bool = True
    animal: str | None = Field(default=None, min_length=1)
    source: Literal["measured", "predicted"] = "measured"
    condition: ConditionConfig
    on: Literal["enter", "exit", "while"] = "enter"
    min_likelihood: Likelihood = 0.5
    min_views: MinViews = 2
    min_dwell_s: float = Field(default=0.0, ge=0.0)
    refractory_s: float = Field(default=0.0, ge=0.0)
    max_on_s: float | None = Field(default=None, gt=0.0)
    off_on_release: bool = True
    actions: list[ActionConfig] = Field(min_length=1)

    @model_validator(mode="before")
    @classmethod
    def _yaml_on_key(cls, data: Any) -> Any:
        # PyYAML reads the key ``on`` as the boolean True.
        if isinstance(data, dict) and True in data:
            data = dict(data)
            if "on" in data:
                raise ValueError("'on' is given twice (once as the YAML boolean key on/yes/true)")
            data["on"] = data.pop(True)
        return data

    @model_validator(mode="after")
    def _max_on_needs_on(self) -> RuleConfig:
        if self.max_on_s is not None and not any(a.action == "on" for a in self.actions):
            raise ValueError(
                f"rule {self.name!r}: max_on_s is set but no action is 'on'; "
                "remove max_on_s or add an {action: on} action"
            )
        return self

    @model_validator(mode="after")
    def _one_space(self) -> RuleConfig:
        found: dict[str, list[str]] = {"2d": [], "3d": []}
        for path, leaf in iter_leaves(self.condition):
            found[leaf.space].append(f"{leaf.type} at {path}")
        if found["2d"] and found["3d"]:
            raise ValueError(
                f"rule {self.name!r} mixes 2D conditions ({', '.join(found['2d'])}: frame "
                f"pixels) with 3D conditions ({', '.join(found['3d'])}: millimetres on the "
                "triangulated pose); a rule looks at one of the two poses: split it into a 2D "
                "rule and a 3D rule"
            )
        if found["3d"] and "min_likelihood" in self.model_fields_set:
            raise ValueError(
                f"rule {self.name!r}: min_likelihood applies to 2D conditions and this is a 3D "
                "rule; use min_views (fewest camera views of a triangulated keypoint)"
            )
        if found["2d"] and "min_views" in self.model_fields_set:
            raise ValueError(
                f"rule {self.name!r}: min_views applies to 3D conditions and this is a 2D rule; "
                "use min_likelihood"
            )
        return self

    @property
    def space(self) -> Space:
        """``"3d"`` when the condition looks at the triangulated pose, else ``"2d"``."""
        return condition_space(self.condition)


def _unique_names(rules: list[RuleConfig]) -> list[RuleConfig]:
    dupes = sorted(n for n, c in Counter(r.name for r in rules).items() if c > 1)
    if dupes:
        raise ValueError(f"rule names must be unique; repeated: {', '.join(dupes)}")
    return rules


RuleList = Annotated[list[RuleConfig], AfterValidator(_unique_names)]
"""The type of the run config's ``rules:`` field (a list with unique names)."""

_RULE_LIST = TypeAdapter(RuleList)


def parse_rules(data: Any) -> list[RuleConfig]:
    """Validate the ``rules:`` section of a run config.

    Parameters
    ----------
    data
        The parsed YAML/JSON: a list of rule mappings (``None`` means no rules).

    Returns
    -------
    list of RuleConfig

    Raises
    ------
    pydantic.ValidationError
        A ``ValueError`` listing every problem at its place, e.g. ``rules.0.actions.1.output``.
    """
    try:
        return _RULE_LIST.validate_python([] if data is None else data)
    except ValidationError as exc:
        errors = exc.errors()
        for error in errors:
            error["loc"] = ("rules", *error["loc"])
        raise ValidationError.from_exception_data("the run config", errors) from None


# --------------------------------------------------------------------------------------------
# Checks against the rig
# --------------------------------------------------------------------------------------------


def iter_leaves(
    condition: ConditionConfig, path: str = "condition"
) -> Iterator[tuple[str, ConditionConfig]]:
    """Yield ``(field_path, leaf)`` for every condition that is not ``all``/``any``/``not``;
    paths as the config spells them (``condition.conditions.1``)."""
    if isinstance(condition, (AllConfig, AnyConfig)):
        for i, child in enumerate(condition.conditions):
            yield from iter_leaves(child, f"{path}.conditions.{i}")
    elif isinstance(condition, NotConfig):
        yield from iter_leaves(condition.condition, f"{path}.condition")
    else:
        yield path, condition


def condition_space(condition: ConditionConfig) -> Space:
    """Which pose a condition tree looks at (``"2d"`` or ``"3d"``); a tree that mixes them is
    refused by :class:`RuleConfig`, and counts as ``"3d"`` here."""
    return "3d" if any(leaf.space == "3d" for _, leaf in iter_leaves(condition)) else "2d"


_MULTI_KEYPOINT = (DistanceConfig, AngleConfig, Distance3DConfig)


def iter_keypoint_refs(
    condition: ConditionConfig, path: str = "condition"
) -> Iterator[tuple[str, str]]:
    """Yield ``(field_path, keypoint_name)`` for every keypoint a condition tree names."""
    for leaf_path, leaf in iter_leaves(condition, path):
        if isinstance(leaf, _MULTI_KEYPOINT):
            for i, name in enumerate(leaf.keypoints):
                yield f"{leaf_path}.keypoints.{i}", name
        else:
            yield f"{leaf_path}.keypoint", leaf.keypoint


def animals_of(keypoints: Sequence[str]) -> list[str]:
    """The animals of a multi-animal model's ``animal/bodypart`` keypoints, in order (none for
    a single-animal model)."""
    layout = animal_layout(keypoints)
    return [] if layout is None else layout[0]


OTHER_ANIMAL = "other"
"""``other/<bodypart>`` in a scoped rule: that bodypart of any animal but the scoped one."""


def qualify_condition(
    condition: ConditionConfig, animal: str, other: str | None = None
) -> ConditionConfig:
    """``condition`` with every bare keypoint name ``b`` replaced by ``animal/b`` (and every
    ``other/b`` by ``<other>/b``)."""

    def name(n: str) -> str:
        if other is not None and n.startswith(OTHER_ANIMAL + "/"):
            return f"{other}/{n.split('/', 1)[1]}"
        return n if "/" in n else f"{animal}/{n}"

    if isinstance(condition, (AllConfig, AnyConfig)):
        children = [qualify_condition(c, animal, other) for c in condition.conditions]
        return condition.model_copy(update={"conditions": children})
    if isinstance(condition, NotConfig):
        return condition.model_copy(
            update={"condition": qualify_condition(condition.condition, animal, other)}
        )
    if isinstance(condition, _MULTI_KEYPOINT):
        names = [name(n) for n in condition.keypoints]
        keypoints = names if isinstance(condition, AngleConfig) else tuple(names)
        return condition.model_copy(update={"keypoints": keypoints})
    return condition.model_copy(update={"keypoint": name(condition.keypoint)})


def scoped_condition(rule: RuleConfig, keypoints: Sequence[str]) -> ConditionConfig:
    """The rule's condition with its ``animal`` scope applied (see :class:`RuleConfig`).

    Raises
    ------
    ValueError
        ``animal`` is set on a single-animal model, or names no animal of the model.
    """
    if rule.animal is None:
        return rule.condition
    animals = animals_of(keypoints)
    if not animals:
        raise ValueError(
            f"{rule.animal!r} is set but the model tracks one animal "
            "(its keypoints are not animal/bodypart)"
        )
    if OTHER_ANIMAL in animals:
        raise ValueError(f"the model names an animal {OTHER_ANIMAL!r}, which rules reserve")
    if rule.animal not in ("any", "all") and rule.animal not in animals:
        raise ValueError(_unknown("animal", rule.animal, [*animals, "any", "all"]))
    scoped = animals if rule.animal in ("any", "all") else [rule.animal]
    if not _names_other(rule.condition):
        copies = [qualify_condition(rule.condition, a) for a in scoped]
    else:  # a social condition: every (animal, other animal) pair
        if len(animals) < 2:
            raise ValueError(f"'{OTHER_ANIMAL}/' needs two animals; the model has {animals}")
        copies = []
        for a in scoped:
            pairs = [qualify_condition(rule.condition, a, b) for b in animals if b != a]
            copies.append(pairs[0] if len(pairs) == 1 else AnyConfig(conditions=pairs))
    if rule.animal != "all" and len(copies) == 1:
        return copies[0]
    return AllConfig(conditions=copies) if rule.animal == "all" else AnyConfig(conditions=copies)


def _names_other(condition: ConditionConfig) -> bool:
    """Whether a condition names ``other/<bodypart>``."""
    return any(name.startswith(OTHER_ANIMAL + "/") for _, name in iter_keypoint_refs(condition))


def iter_zones(
    condition: ConditionConfig, path: str = "condition"
) -> Iterator[tuple[str, ZoneConfig]]:
    """Yield ``(field_path, zone)`` for every 2D zone condition in a condition tree (3D zones,
    in millimetres, are not zones of the image)."""
    for leaf_path, leaf in iter_leaves(condition, path):
        if isinstance(leaf, ZoneConfig):
            yield leaf_path, leaf


def zone_bounds(zone: ZoneConfig) -> tuple[float, float, float, float]:
    """The zone's bounding box ``(x0, y0, x1, y1)`` in frame pixels."""
    if zone.rectangle is not None:
        return zone.rectangle
    if zone.circle is not None:
        cx, cy, r = zone.circle
        return cx - r, cy - r, cx + r, cy + r
    xs, ys = zip(*zone.polygon, strict=True)  # type: ignore[arg-type]
    return min(xs), min(ys), max(xs), max(ys)


def validate_zones(
    rules: Sequence[RuleConfig], frame_width: int, frame_height: int, where: str = "rules"
) -> None:
    """Refuse zones that lie wholly outside the frame (a typo, or a zone drawn for another
    camera): they could never fire. Raises ``ValueError`` naming ``where`` (the file the
    rules came from), each such rule and field."""
    problems = []
    for i, rule in enumerate(rules):
        for field, zone in iter_zones(rule.condition):
            x0, y0, x1, y1 = zone_bounds(zone)
            if x1 < 0 or y1 < 0 or x0 > frame_width or y0 > frame_height:
                kind = next(n for n in ("rectangle", "circle", "polygon") if getattr(zone, n))
                problems.append(
                    f"rules[{i}] {rule.name!r}: {field}.{kind}: lies outside the "
                    f"{frame_width}x{frame_height} frame (bounds {x0:g}, {y0:g} to {x1:g}, {y1:g})"
                )
    if problems:
        raise ValueError(f"{where}: " + "; ".join(problems))


def _unknown(kind: str, name: str, known: Collection[str]) -> str:
    close = difflib.get_close_matches(name, list(known), n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    return f"{kind} {name!r} is unknown{hint}; known: {', '.join(sorted(known)) or 'none'}"


_SPACE_NEEDS = {
    "3d": (
        "a 3D rule ({kinds}, millimetres) needs the live 3D pose, and this session has none: "
        "3D rules run in a multi-camera session with a calibration (calibration.toml); use 2D "
        "conditions (zone, speed, distance, angle, likelihood) in frame pixels here"
    ),
    "2d": (
        "a 2D rule ({kinds}, frame pixels) needs a 2D pose, and this session evaluates rules on "
        "the 3D pose only; use 3D conditions (zone3d, height, distance3d, speed3d) in millimetres"
    ),
}


def space_problem(rule: RuleConfig, space: Literal["2d", "3d", "both"]) -> str | None:
    """Why ``rule`` cannot run in a session that evaluates rules on the ``space`` pose(s)
    (``None`` when it can)."""
    rule_space = rule.space
    if space == "both" or space == rule_space:
        return None
    kinds = ", ".join(dict.fromkeys(leaf.type for _, leaf in iter_leaves(rule.condition)))
    return _SPACE_NEEDS[rule_space].format(kinds=kinds)


def validate_rules(
    rules: Sequence[RuleConfig],
    keypoints: Sequence[str],
    outputs: Collection[str] | None = None,
    where: str = "the run config",
    space: Literal["2d", "3d", "both"] = "2d",
) -> None:
    """Check rules against the model's keypoints, the rig's outputs and the session's poses.

    Parameters
    ----------
    rules
        Parsed rules (see :func:`parse_rules`).
    keypoints
        Keypoint names of the model (``BundleMeta.keypoints``).
    outputs
        Names of the configured outputs; ``None`` skips the output check.
    where
        The file the rules came from (a rules file or the run config), for the message.
    space
        Which poses the session evaluates rules on: ``"2d"`` (one camera, or no calibration:
        3D rules are refused), ``"3d"`` (only the triangulated pose: 2D rules are refused) or
        ``"both"``.

    Raises
    ------
    ValueError
        Naming ``where`` and listing every problem as ``rules[i] 'name': field: what is
        wrong``, e.g. an unknown keypoint or output name, a repeated rule name, or a 3D rule
        in a session without a 3D pose (``rules[0] 'rear': condition: a 3D rule (height,
        millimetres) needs the live 3D pose, and this session has none: ...``).
    """
    if space not in ("2d", "3d", "both"):
        raise ValueError(f"space must be '2d', '3d' or 'both', got {space!r}")
    problems: list[str] = []
    known_kp = set(keypoints)
    seen: set[str] = set()
    for i, rule in enumerate(rules):
        rule_at = f"rules[{i}] {rule.name!r}"
        if rule.name in seen:
            problems.append(f"{rule_at}: name: repeated; rule names must be unique")
        seen.add(rule.name)
        mismatch = space_problem(rule, space)
        if mismatch is not None:
            problems.append(f"{rule_at}: condition: {mismatch}")
        try:
            condition = scoped_condition(rule, keypoints)
        except ValueError as exc:
            problems.append(f"{rule_at}: animal: {exc}")
            continue
        for field, name in iter_keypoint_refs(rule.condition):
            if rule.animal is not None and ("/" not in name or name.startswith(OTHER_ANIMAL + "/")):
                continue  # a bodypart of the scoped animal(s): checked below, once qualified
            if name not in known_kp:
                problems.append(f"{rule_at}: {field}: {_unknown('keypoint', name, known_kp)}")
        if rule.animal is not None:
            for field, name in iter_keypoint_refs(condition):
                if name not in known_kp:
                    msg = _unknown("keypoint", name, known_kp)
                    problems.append(f"{rule_at}: {field} (animal {rule.animal!r}): {msg}")
        if outputs is not None:
            for j, action in enumerate(rule.actions):
                if action.output not in outputs:
                    msg = _unknown("output", action.output, outputs)
                    problems.append(f"{rule_at}: actions[{j}].output: {msg}")
    if problems:
        raise ValueError(
            f"{where}: invalid rules:\n  "
            + "\n  ".join(problems)
            + "\nFix these under rules: (keypoints come from the model bundle, outputs from "
            "the outputs section)."
        )
