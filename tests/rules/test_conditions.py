"""Compiled conditions on hand-made poses with known answers."""

import math

import pytest

from realtime_pose.rules.conditions import compile_condition, joint_angle_deg, vector_angle_deg
from realtime_pose.rules.config import parse_rules

KEYPOINTS = ["snout", "leftear", "rightear", "tailbase"]
INDEX = {name: i for i, name in enumerate(KEYPOINTS)}
MS = 1_000_000


def compile_(condition: dict, min_likelihood: float = 0.5):
    (rule,) = parse_rules(
        [{"name": "r", "condition": condition, "actions": [{"output": "o", "action": "on"}]}]
    )
    return compile_condition(rule.condition, INDEX, min_likelihood)


def pose(
    snout=(0.0, 0.0, 1.0),
    leftear=(0.0, 0.0, 1.0),
    rightear=(0.0, 0.0, 1.0),
    tailbase=(0.0, 0.0, 1.0),
):
    return [list(snout), list(leftear), list(rightear), list(tailbase)]


def test_zone_inside_and_outside():
    inside = compile_({"type": "zone", "keypoint": "snout", "rectangle": [0, 0, 10, 10]})
    outside = compile_(
        {"type": "zone", "keypoint": "snout", "rectangle": [0, 0, 10, 10], "inside": False}
    )
    assert inside.evaluate(pose(snout=(5, 5, 1)), 0)
    assert not outside.evaluate(pose(snout=(5, 5, 1)), 0)
    assert not inside.evaluate(pose(snout=(15, 5, 1)), 1)
    assert outside.evaluate(pose(snout=(15, 5, 1)), 1)


@pytest.mark.parametrize("inside", [True, False])
@pytest.mark.parametrize("snout", [(5, 5, 0.2), (math.nan, 5, 0.9), (5, 5, math.nan)])
def test_invisible_keypoint_makes_zone_false_either_way(inside, snout):
    zone = compile_({"type": "zone", "keypoint": "snout", "circle": [5, 5, 3], "inside": inside})
    assert not zone.evaluate(pose(snout=snout), 0)


def test_rule_min_likelihood_is_the_default_and_a_condition_may_override_it():
    default = compile_({"type": "zone", "keypoint": "snout", "circle": [0, 0, 5]}, 0.8)
    own = compile_(
        {"type": "zone", "keypoint": "snout", "circle": [0, 0, 5], "min_likelihood": 0.1}, 0.8
    )
    p = pose(snout=(1, 1, 0.5))
    assert not default.evaluate(p, 0)
    assert own.evaluate(p, 0)


def test_speed_from_consecutive_poses_and_timestamps():
    fast = compile_({"type": "speed", "keypoint": "snout", "above": 100})
    # 3-4-5: 5 px in 10 ms = 500 px/s, then 0.5 px in 10 ms = 50 px/s.
    assert not fast.evaluate(pose(snout=(0, 0, 1)), 0)  # first frame: speed unknown
    assert fast.evaluate(pose(snout=(3, 4, 1)), 10 * MS)
    assert fast.speed_px_s == pytest.approx(500.0)
    assert not fast.evaluate(pose(snout=(3, 4.5, 1)), 20 * MS)
    assert fast.speed_px_s == pytest.approx(50.0)


def test_speed_uses_the_real_time_between_frames():
    fast = compile_({"type": "speed", "keypoint": "snout", "above": 300})
    fast.evaluate(pose(snout=(0, 0, 1)), 0)
    # The same 5 px over a dropped frame (20 ms) is 250 px/s: not above 300.
    assert not fast.evaluate(pose(snout=(3, 4, 1)), 20 * MS)


def test_speed_band_and_unknown_after_dropout():
    band = compile_({"type": "speed", "keypoint": "snout", "above": 100, "below": 1000})
    band.evaluate(pose(snout=(0, 0, 1)), 0)
    assert band.evaluate(pose(snout=(5, 0, 1)), 10 * MS)  # 500 px/s
    assert not band.evaluate(pose(snout=(25, 0, 1)), 20 * MS)  # 2000 px/s
    assert not band.evaluate(pose(snout=(30, 0, 0.1)), 30 * MS)  # not visible
    assert not band.evaluate(pose(snout=(35, 0, 1)), 40 * MS)  # previous unknown
    assert band.evaluate(pose(snout=(40, 0, 1)), 50 * MS)
    assert not band.evaluate(pose(snout=(45, 0, 1)), 50 * MS)  # timestamp did not advance


def test_distance_between_keypoints():
    near = compile_({"type": "distance", "keypoints": ["snout", "tailbase"], "below": 10})
    far = compile_({"type": "distance", "keypoints": ["snout", "tailbase"], "above": 10})
    p = pose(snout=(0, 0, 1), tailbase=(6, 8, 1))  # 10 px: neither strictly
    assert not near.evaluate(p, 0) and not far.evaluate(p, 0)
    p = pose(snout=(0, 0, 1), tailbase=(6, 7, 1))
    assert near.evaluate(p, 0) and not far.evaluate(p, 0)
    p = pose(snout=(0, 0, 1), tailbase=(6, 9, 0.2))
    assert not near.evaluate(p, 0) and not far.evaluate(p, 0)


def test_vector_angle_in_image_coordinates():
    assert vector_angle_deg(0, 0, 1, 0) == pytest.approx(0.0)
    assert vector_angle_deg(0, 0, 0, 1) == pytest.approx(90.0)  # +y is down in the image
    assert vector_angle_deg(0, 0, -1, -1) == pytest.approx(-135.0)


def test_vector_angle_range_including_wrap_around_180():
    pointing_down = compile_(
        {"type": "angle", "keypoints": ["tailbase", "snout"], "min_deg": 60, "max_deg": 120}
    )
    pointing_left = compile_(
        {"type": "angle", "keypoints": ["tailbase", "snout"], "min_deg": 150, "max_deg": -150}
    )
    down = pose(snout=(0, 10, 1))
    left_up = pose(snout=(-10, -1, 1))  # about -174°
    right = pose(snout=(10, 0, 1))
    assert pointing_down.evaluate(down, 0) and not pointing_left.evaluate(down, 0)
    assert pointing_left.evaluate(left_up, 0) and not pointing_down.evaluate(left_up, 0)
    assert not pointing_left.evaluate(right, 0) and not pointing_down.evaluate(right, 0)


def test_joint_angle():
    assert joint_angle_deg(1, 0, 0, 0, 0, 1) == pytest.approx(90.0)
    assert joint_angle_deg(1, 0, 0, 0, -1, 0) == pytest.approx(180.0)
    assert math.isnan(joint_angle_deg(0, 0, 0, 0, 1, 1))
    bent = compile_(
        {
            "type": "angle",
            "keypoints": ["leftear", "snout", "rightear"],
            "min_deg": 0,
            "max_deg": 100,
        }
    )
    assert bent.evaluate(pose(leftear=(10, 0, 1), rightear=(0, 10, 1)), 0)  # 90°
    assert not bent.evaluate(pose(leftear=(10, 0, 1), rightear=(-10, 1, 1)), 0)  # ~174°
    assert not bent.evaluate(pose(leftear=(10, 0, 1), rightear=(0, 10, 0.1)), 0)


def test_likelihood_gate():
    gate = compile_({"type": "likelihood", "keypoint": "leftear", "at_least": 0.9})
    assert gate.evaluate(pose(leftear=(0, 0, 0.9)), 0)
    assert not gate.evaluate(pose(leftear=(0, 0, 0.89)), 0)
    assert not gate.evaluate(pose(leftear=(0, 0, math.nan)), 0)


ZONE = {"type": "zone", "keypoint": "snout", "rectangle": [0, 0, 10, 10]}
GATE = {"type": "likelihood", "keypoint": "leftear", "at_least": 0.9}


@pytest.mark.parametrize(
    ("snout", "ear_likelihood", "all_", "any_", "not_zone"),
    [
        ((5, 5, 1), 1.0, True, True, False),
        ((5, 5, 1), 0.5, False, True, False),
        ((50, 5, 1), 1.0, False, True, True),
        ((50, 5, 1), 0.5, False, False, True),
    ],
)
def test_combinators(snout, ear_likelihood, all_, any_, not_zone):
    p = pose(snout=snout, leftear=(0, 0, ear_likelihood))
    assert compile_({"type": "all", "conditions": [ZONE, GATE]}).evaluate(p, 0) is all_
    assert compile_({"type": "any", "conditions": [ZONE, GATE]}).evaluate(p, 0) is any_
    assert compile_({"type": "not", "condition": ZONE}).evaluate(p, 0) is not_zone


def test_nested_combinators():
    cond = compile_(
        {
            "type": "any",
            "conditions": [
                {"type": "all", "conditions": [ZONE, GATE]},
                {"type": "not", "condition": {"type": "any", "conditions": [ZONE, GATE]}},
            ],
        }
    )
    assert cond.evaluate(pose(snout=(5, 5, 1), leftear=(0, 0, 1)), 0)  # both
    assert cond.evaluate(pose(snout=(50, 5, 1), leftear=(0, 0, 0)), 0)  # neither
    assert not cond.evaluate(pose(snout=(5, 5, 1), leftear=(0, 0, 0)), 0)  # one


@pytest.mark.parametrize("combinator", ["any", "all"])
def test_combinators_keep_stateful_children_up_to_date(combinator):
    # Neither "any" nor "all" may short-circuit past the speed condition, or its previous
    # position goes stale.
    speed_cfg = {"type": "speed", "keypoint": "snout", "above": 1000}
    cond = compile_({"type": combinator, "conditions": [GATE, speed_cfg]})
    speed = cond.children[1]
    # The gate decides "any" (true) and "all" (false) on its own in the middle frame.
    gate = 1.0 if combinator == "any" else 0.0
    cond.evaluate(pose(snout=(0, 0, 1), leftear=(0, 0, 1)), 0)
    cond.evaluate(pose(snout=(100, 0, 1), leftear=(0, 0, gate)), 10 * MS)
    # 1 px in 10 ms since the previous frame = 100 px/s, not 10100 px/s from a stale position.
    cond.evaluate(pose(snout=(101, 0, 1), leftear=(0, 0, 1)), 20 * MS)
    assert speed.speed_px_s == pytest.approx(100.0)
