"""Edits to running rules (the live view moves zones), validated as the run config is.

A change is made on the rules as the user wrote them (``model_dump(exclude_unset=True)``), and
the whole list is parsed again with :func:`~realtime_pose.rules.config.parse_rules` and checked
with :func:`~realtime_pose.rules.config.validate_rules` against the model's keypoints and the
configured outputs: exactly what loading the run config does, so a change the config would
refuse is refused here, with the same message.

Only 2D zones (frame pixels, drawn over the image) are edited here. 3D zones (``zone3d``, in
millimetres) are not listed by :func:`zones_of` and an edit of one is refused; they stay in the
rules themselves (the ``rules`` reply lists every rule as written) and are changed in the rules
file.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from typing import Any

from pydantic import ValidationError

from realtime_pose.rules.config import (
    RuleConfig,
    iter_zones,
    parse_rules,
    validate_rules,
)
from realtime_pose.util.validation import format_validation_error

SHAPES = ("rectangle", "circle", "polygon")
"""The fields that give a zone its shape; a zone has exactly one."""


def zones_of(rules: Sequence[RuleConfig]) -> list[dict[str, Any]]:
    """Every 2D zone of every rule as plain maps for the live view: ``rule``, ``path`` and the
    zone's fields (3D zones are not zones of the image and are left out)."""
    return [
        {"rule": rule.name, "path": path, **zone.model_dump(mode="json", exclude_none=True)}
        for rule in rules
        for path, zone in iter_zones(rule.condition)
    ]


def _node(rule: dict[str, Any], path: str) -> dict[str, Any]:
    parts = path.split(".")
    if parts[0] != "condition":
        raise ValueError(f"zone path {path!r} must start with 'condition'")
    node: Any = rule
    for depth, part in enumerate(parts):
        key: str | int = int(part) if part.isdigit() else part
        try:
            node = node[key]
        except (KeyError, IndexError, TypeError):
            where = ".".join(parts[: depth + 1])
            raise ValueError(f"rule {rule['name']!r} has no condition at {where!r}") from None
    kind = node.get("type") if isinstance(node, dict) else type(node).__name__
    if kind == "zone3d":
        raise ValueError(
            f"rule {rule['name']!r}: {path} is a 3D zone (millimetres); the live view edits "
            "zones of the image only: change it in the rules file"
        )
    if kind != "zone":
        raise ValueError(f"rule {rule['name']!r}: {path} is a {kind!r} condition, not a zone")
    return node


def with_zone(
    rules: Sequence[RuleConfig],
    rule_name: str,
    path: str,
    shape: Mapping[str, Any],
    keypoints: Sequence[str],
    outputs: Collection[str] | None,
) -> list[RuleConfig]:
    """The rules with one zone's shape replaced, validated as the run config validates them.

    Parameters
    ----------
    rules
        The rules as they run now.
    rule_name, path
        Which zone: the rule's name and the zone's place in its condition tree.
    shape
        The new shape: exactly one of ``rectangle``, ``circle`` or ``polygon``. The zone's
        other fields (keypoint, inside, hysteresis, likelihood) are kept.
    keypoints, outputs
        The model's keypoints and the configured outputs (``None``: not checked).

    Raises
    ------
    ValueError
        Naming what is wrong: an unknown rule or path, a field that is not a shape, or what
        the config's validation says (``rules.0.condition.zone: rectangle must be ...``).
    """
    names = [r.name for r in rules]
    if rule_name not in names:
        raise ValueError(
            f"no rule named {rule_name!r}; the rules are: {', '.join(names) or 'none'}"
        )
    not_shape = sorted(set(shape) - set(SHAPES))
    if not_shape:
        raise ValueError(
            f"a zone edit gives only its shape ({', '.join(SHAPES)}); got also {not_shape}"
        )
    data = [r.model_dump(mode="json", exclude_unset=True) for r in rules]
    node = _node(data[names.index(rule_name)], path)
    for field in SHAPES:
        node.pop(field, None)
    node.update(shape)
    try:
        edited = parse_rules(data)
    except ValidationError as exc:
        raise ValueError(format_validation_error(exc, "zone refused")) from None
    # A 2D shape does not change which pose a rule looks at: the session checked that at start.
    validate_rules(edited, keypoints, outputs, space="both")
    return edited
