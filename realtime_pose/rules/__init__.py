"""Declarative closed-loop rules: conditions on the pose that fire output actions.

Write rules under ``rules:`` in the run config (see ``docs/rules.md``), parse them with
:func:`parse_rules`, check names with :func:`validate_rules`, and evaluate them every frame with
:class:`RuleEngine`, which returns :class:`RuleEvent` records whose :class:`Action` s the live loop
hands to the output dispatcher. Rules whose conditions are 3D (``zone3d``, ``height``,
``distance3d``, ``speed3d``: millimetres on the triangulated pose of a calibrated multi-camera
session) are evaluated in the same call, on its ``pose3d=``.
"""

from realtime_pose.rules.config import (
    ActionConfig,
    ConditionConfig,
    RuleConfig,
    RuleList,
    parse_rules,
    validate_rules,
)
from realtime_pose.rules.engine import Action, RuleEngine, RuleEvent

__all__ = [
    "Action",
    "ActionConfig",
    "ConditionConfig",
    "RuleConfig",
    "RuleEngine",
    "RuleEvent",
    "RuleList",
    "parse_rules",
    "validate_rules",
]
