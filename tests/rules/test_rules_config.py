"""The rules section of the run config: parsing, pydantic checks and name validation."""

import copy

import pytest
import yaml
from pydantic import ValidationError

from realtime_pose.rules.config import (
    AllConfig,
    NotConfig,
    ZoneConfig,
    parse_rules,
    validate_rules,
)

KEYPOINTS = ["snout", "leftear", "rightear", "tailbase"]
OUTPUTS = ["laser", "valve"]

GOOD = {
    "name": "laser_in_zone",
    "condition": {"type": "zone", "keypoint": "snout", "rectangle": [0, 0, 100, 100]},
    "actions": [{"output": "laser", "action": "pulse", "duration_ms": 5}],
}


def test_yaml_with_unquoted_on_and_off():
    text = """
    - name: laser_while_in_zone
      source: predicted
      condition:
        type: all
        conditions:
          - {type: zone, keypoint: snout, polygon: [[0, 0], [100, 0], [50, 80]]}
          - type: not
            condition: {type: likelihood, keypoint: tailbase, at_least: 0.9}
      on: exit
      max_on_s: 2
      actions:
        - {output: laser, action: on}
        - {output: valve, action: off}
    """
    data = yaml.safe_load(text)
    assert True in data[0]  # PyYAML really does turn the key into a boolean
    (rule,) = parse_rules(data)
    assert rule.on == "exit"
    assert [a.action for a in rule.actions] == ["on", "off"]
    assert rule.source == "predicted"
    assert isinstance(rule.condition, AllConfig)
    assert isinstance(rule.condition.conditions[0], ZoneConfig)
    assert isinstance(rule.condition.conditions[1], NotConfig)
    validate_rules([rule], KEYPOINTS, OUTPUTS)


def test_defaults():
    (rule,) = parse_rules([GOOD])
    assert rule.enabled and rule.on == "enter" and rule.source == "measured"
    assert rule.min_likelihood == 0.5 and rule.min_dwell_s == 0 and rule.refractory_s == 0
    assert rule.max_on_s is None and rule.off_on_release
    assert parse_rules(None) == []


def _with(path: str, value):
    """GOOD with the field at a dotted path replaced (``DELETE`` removes it)."""
    data = copy.deepcopy(GOOD)
    *parents, last = path.split(".")
    node = data
    for key in parents:
        node = node[int(key)] if key.isdigit() else node[key]
    if value == "DELETE":
        del node[last]
    else:
        node[int(last) if last.isdigit() else last] = value
    return data


ZONE = GOOD["condition"]


@pytest.mark.parametrize(
    ("data", "field"),
    [
        (_with("actions.0.duration_ms", "DELETE"), "duration_ms"),
        (_with("actions.0.duration_ms", -5), "duration_ms"),
        (_with("actions.0", {"output": "laser", "action": "on", "duration_ms": 5}), "duration_ms"),
        (_with("actions.0.action", "blink"), "action"),
        (_with("actions", []), "actions"),
        (_with("refractory_s", -1), "refractory_s"),
        (_with("min_dwell_s", -0.1), "min_dwell_s"),
        (_with("max_on_s", 0), "max_on_s"),
        (_with("max_on_s", 1.0), "max_on_s"),  # no `on` action to limit
        (_with("min_likelihood", 1.5), "min_likelihood"),
        (_with("refactory_s", 1), "refactory_s"),  # typo: extra fields are refused
        (_with("on", "entre"), "on"),
        (_with("source", "predict"), "source"),
        (_with("name", ""), "name"),
        (_with("condition.rectangle", [10, 0, 5, 100]), "rectangle"),
        (_with("condition.rectangle", "DELETE"), "rectangle"),
        (_with("condition.circle", [0, 0, 5]), "exactly one"),
        (_with("condition", {**ZONE, "rectangle": None, "circle": [1, 1, 0]}), "circle"),
        (_with("condition", {**ZONE, "rectangle": None, "polygon": [[0, 0], [1, 1]]}), "polygon"),
        (_with("condition.hysteresis_px", -2), "hysteresis_px"),
        (_with("condition.hysteresis_px", float("inf")), "hysteresis_px"),
        (_with("condition.rectangle", [0, 0, float("inf"), 10]), "rectangle"),
        (_with("condition", {**ZONE, "rectangle": None, "circle": [1, 1, float("inf")]}), "circle"),
        (
            _with("condition", {**ZONE, "rectangle": None, "polygon": [[0, 0], [1, 1]] * 129}),
            "polygon",
        ),
        (
            _with(
                "condition",
                {**ZONE, "rectangle": None, "polygon": [[0, 0], [9, 0], [0, float("-inf")]]},
            ),
            "polygon",
        ),
        (_with("condition.type", "zoen"), "zoen"),
        (_with("condition", {"type": "speed", "keypoint": "snout"}), "above"),
        (
            _with("condition", {"type": "speed", "keypoint": "snout", "above": 5, "below": 5}),
            "above",
        ),
        (_with("condition", {"type": "distance", "keypoints": ["snout"], "above": 1}), "keypoints"),
        (
            _with(
                "condition",
                {
                    "type": "angle",
                    "keypoints": ["snout", "leftear", "rightear"],
                    "min_deg": 10,
                    "max_deg": 200,
                },
            ),
            "min_deg",
        ),
        (
            _with(
                "condition",
                {"type": "angle", "keypoints": ["snout", "leftear"], "min_deg": 10, "max_deg": 370},
            ),
            "max_deg",
        ),
        (
            _with(
                "condition",
                {
                    "type": "angle",
                    "keypoints": ["snout", "a", "b", "c"],
                    "min_deg": 0,
                    "max_deg": 90,
                },
            ),
            "keypoints",
        ),
        (
            _with("condition", {"type": "likelihood", "keypoint": "snout", "at_least": 2}),
            "at_least",
        ),
        (_with("condition", {"type": "all", "conditions": []}), "conditions"),
        (
            _with("condition", {"type": "not", "condition": {**ZONE, "inside": "sometimes"}}),
            "inside",
        ),
    ],
)
def test_bad_config_is_refused_naming_the_field(data, field):
    with pytest.raises(ValidationError) as excinfo:
        parse_rules([data])
    (error,) = excinfo.value.errors()
    where = ".".join(str(part) for part in error["loc"])
    assert where.startswith("rules.0")
    assert field in where.split(".") or field in error["msg"], (where, error["msg"])
    assert field in str(excinfo.value)


def test_repeated_rule_names_are_refused():
    with pytest.raises(ValidationError, match=r"unique.*laser_in_zone"):
        parse_rules([GOOD, GOOD])


def test_unknown_keypoint_names_rule_field_and_suggestion():
    data = _with(
        "condition",
        {
            "type": "all",
            "conditions": [
                ZONE,
                {"type": "distance", "keypoints": ["snot", "tailbase"], "above": 3},
            ],
        },
    )
    with pytest.raises(ValueError) as excinfo:
        validate_rules(parse_rules([data]), KEYPOINTS, OUTPUTS)
    message = str(excinfo.value)
    assert "rules[0] 'laser_in_zone'" in message
    assert "condition.conditions.1.keypoints.0" in message
    assert "'snot'" in message and "did you mean 'snout'" in message


def test_unknown_output_and_every_problem_listed():
    rules = parse_rules(
        [
            _with("actions.0.output", "lazer"),
            {**_with("condition.keypoint", "tail"), "name": "second"},
        ]
    )
    with pytest.raises(ValueError) as excinfo:
        validate_rules(rules, KEYPOINTS, OUTPUTS)
    message = str(excinfo.value)
    assert "rules[0] 'laser_in_zone': actions[0].output: output 'lazer'" in message
    assert "did you mean 'laser'" in message
    assert "rules[1] 'second': condition.keypoint: keypoint 'tail'" in message


def test_outputs_none_skips_the_output_check():
    validate_rules(parse_rules([_with("actions.0.output", "anything")]), KEYPOINTS, None)
