"""docs/rules.md stays true: every YAML example parses, and the two headline examples behave."""

import re
from pathlib import Path

import numpy as np
import pytest
import yaml

from realtime_pose.rules import Action, RuleEngine, parse_rules, validate_rules

DOC = Path(__file__).resolve().parents[2] / "docs" / "rules.md"
KEYPOINTS = ["snout", "leftear", "rightear", "neck", "tailbase", "leftpaw", "rightpaw"]
OUTPUTS = ["laser", "valve", "light", "ttl", "ttl2"]
FLIES = [f"{a}/{b}" for a in ("female", "male") for b in ("head", "thorax", "abdomen")]
DT_NS = 10_000_000


def yaml_blocks() -> list[dict]:
    blocks = re.findall(r"```yaml\n(.*?)```", DOC.read_text(), flags=re.DOTALL)
    return [yaml.safe_load(block) for block in blocks]


def rules_in_doc(name: str):
    for block in yaml_blocks():
        for rule in parse_rules(block["rules"]):
            if rule.name == name:
                return rule
    raise AssertionError(f"no rule {name!r} in {DOC}")


def test_every_yaml_example_is_a_valid_rules_section():
    blocks = yaml_blocks()
    assert len(blocks) >= 3
    for block in blocks:
        rules = parse_rules(block["rules"])
        several = any(rule.animal for rule in rules)  # the multi-animal example: two flies
        keypoints = FLIES if several else KEYPOINTS
        space = "3d" if any(rule.space == "3d" for rule in rules) else "2d"
        validate_rules(rules, keypoints, OUTPUTS, space=space)
        RuleEngine(rules, keypoints)


def pose(part: str, x: float, y: float) -> np.ndarray:
    p = np.tile([[10.0, 10.0, 1.0]], (len(KEYPOINTS), 1))
    p[KEYPOINTS.index(part)] = (x, y, 1.0)
    return p


def test_laser_example_pulses_5_ms_once_per_entry_from_the_prediction():
    engine = RuleEngine([rules_in_doc("laser_snout_in_zone")], KEYPOINTS)
    outside, inside = pose("snout", 200, 240), pose("snout", 320, 240)
    # Measured outside, predicted inside: the prediction decides.
    (event,) = engine.evaluate(outside, 0, 0, predicted=inside)
    assert event.actions == (Action("laser", "pulse", 0.005),)
    assert event.source == "predicted"
    assert engine.evaluate(inside, DT_NS, 1, predicted=inside) == []


@pytest.mark.parametrize(("up_frames", "fires"), [(4, False), (6, True)])
def test_reward_example_needs_the_paw_up_for_50_ms(up_frames, fires):
    engine = RuleEngine([rules_in_doc("reward_paw_up")], KEYPOINTS)
    ys = [300.0] + [150.0] * up_frames + [300.0]
    fired = []
    for i, y in enumerate(ys):
        fired += [e for e in engine.evaluate(pose("leftpaw", 100, y), i * DT_NS, i) if e.actions]
    assert [e.actions for e in fired] == ([(Action("valve", "pulse", 0.04),)] if fires else [])


def test_reward_example_at_most_once_a_second():
    engine = RuleEngine([rules_in_doc("reward_paw_up")], KEYPOINTS)
    fired = []
    for i in range(300):  # 3 s at 100 fps; the paw goes up for 100 ms every 300 ms
        y = 150.0 if i % 30 < 10 else 300.0
        events = engine.evaluate(pose("leftpaw", 100, y), i * DT_NS, i)
        fired += [e.frame_index for e in events if e.kind == "fired"]
    # Up at frames 0, 30, 60, ...; fires 50 ms in; only entries >= 1 s after the last firing.
    assert fired == [5, 125, 245]
