"""Rules in millimetres on the triangulated pose: 3D zones, height, 3D distance and speed."""

import copy
import math
import re
from pathlib import Path

import numpy as np
import pytest
import yaml
from pydantic import ValidationError

from realtime_pose.rules import RuleEngine, parse_rules, validate_rules
from realtime_pose.rules.conditions import compile_condition
from realtime_pose.rules.edit import with_zone, zones_of
from realtime_pose.rules.zones3d import (
    box_signed_distance,
    cylinder_signed_distance,
    height_above_plane,
    sphere_signed_distance,
    unit,
)

KEYPOINTS = ["snout", "leftear", "rightear", "tailbase"]
INDEX = {name: i for i, name in enumerate(KEYPOINTS)}
DT_NS = 10_000_000  # 100 frame sets a second
NAN = math.nan
LASER_ON = {"output": "laser", "action": "on"}
PULSE = {"output": "laser", "action": "pulse", "duration_ms": 5}
SPHERE = {"type": "zone3d", "keypoint": "snout", "sphere": [0, 0, 50, 20]}
HEIGHT = {"type": "height", "keypoint": "snout", "above": 80}
ZONE_2D = {"type": "zone", "keypoint": "snout", "rectangle": [0, 0, 100, 100]}


def rule(condition: dict, **fields) -> dict:
    return {"name": "r", "condition": condition, "actions": [LASER_ON], **fields}


def compile_(condition: dict, **fields):
    (cfg,) = parse_rules([rule(condition, **fields)])
    return compile_condition(cfg.condition, INDEX, cfg.min_likelihood, cfg.min_views)


def rows(snout=(0.0, 0.0, 50.0), views=3, tailbase=(0.0, 0.0, 0.0)) -> list[list[float]]:
    """3D pose rows [x, y, z, reprojection_px, n_views] as the engine hands them over."""
    return [
        [*snout, 0.4, views],
        [10.0, 0.0, 0.0, 0.4, 3],
        [-10.0, 0.0, 0.0, 0.4, 3],
        [*tailbase, 0.4, 3],
    ]


def pose3d(snout=(0.0, 0.0, 50.0), views=3, tailbase=(0.0, 0.0, 0.0)) -> np.ndarray:
    return np.array(rows(snout, views, tailbase), dtype=np.float64)


# ---------------------------------------------------------------------------------------------
# Geometry, against hand-computed distances
# ---------------------------------------------------------------------------------------------

BOX = (0.0, 0.0, 0.0, 100.0, 50.0, 20.0)


@pytest.mark.parametrize(
    ("point", "expected"),
    [
        ((50, 25, 10), 10.0),  # centre: 10 mm to floor and ceiling
        ((98, 25, 10), 2.0),  # near the x1 face
        ((50, 25, 20), 0.0),  # on the top face
        ((50, 25, 25), -5.0),  # above it
        ((105, 25, 26), -math.hypot(5, 6)),  # off an edge
        ((110, 60, 30), -math.sqrt(300)),  # off a corner
    ],
)
def test_box_signed_distance(point, expected):
    assert box_signed_distance(*point, *BOX) == pytest.approx(expected)


def test_sphere_signed_distance():
    assert sphere_signed_distance(0, 0, 50, 0, 0, 50, 20) == pytest.approx(20.0)
    assert sphere_signed_distance(3, 4, 62, 0, 0, 50, 20) == pytest.approx(7.0)  # 13 from centre
    assert sphere_signed_distance(0, 12, 66, 0, 0, 50, 20) == pytest.approx(0.0)
    assert sphere_signed_distance(0, 0, 80, 0, 0, 50, 20) == pytest.approx(-10.0)


@pytest.mark.parametrize(
    ("point", "expected"),
    [
        ((0, 0, 20), 10.0),  # on the axis: 10 mm to the side wall, 20 to the caps
        ((6, 8, 20), 0.0),  # on the side wall
        ((3, 4, 38), 2.0),  # 2 mm under the top cap
        ((0, 0, -3), -3.0),  # under the bottom cap
        ((16, 0, 44), -math.hypot(6, 4)),  # off the top rim
    ],
)
def test_upright_cylinder_signed_distance(point, expected):
    d = cylinder_signed_distance(*point, (0.0, 0.0, 0.0), (0.0, 0.0, 1.0), 10.0, 40.0)
    assert d == pytest.approx(expected)


def test_lying_cylinder_and_unit_axis():
    axis = unit((2.0, 0.0, 0.0))
    assert axis == (1.0, 0.0, 0.0)
    base = (0.0, 0.0, 0.0)
    assert cylinder_signed_distance(20, 0, 5, base, axis, 10, 40) == pytest.approx(5.0)
    assert cylinder_signed_distance(20, 0, 12, base, axis, 10, 40) == pytest.approx(-2.0)
    assert cylinder_signed_distance(45, 0, 0, base, axis, 10, 40) == pytest.approx(-5.0)


def test_height_above_a_tilted_plane():
    up = unit((0.0, 3.0, 4.0))
    assert height_above_plane(7, 0.6 * 10, 0.8 * 10, (0.0, 0.0, 0.0), up) == pytest.approx(10.0)
    # Along the plane (perpendicular to up) the height does not change.
    assert height_above_plane(7, 8.0, -6.0, (0.0, 0.0, 0.0), up) == pytest.approx(0.0)
    assert height_above_plane(0, 0, 0, (0.0, 0.0, 5.0), (0.0, 0.0, 1.0)) == pytest.approx(-5.0)


# ---------------------------------------------------------------------------------------------
# Compiled 3D conditions
# ---------------------------------------------------------------------------------------------

SHAPES = {
    "box": {"box": [-10, -10, 40, 10, 10, 60]},
    "cylinder": {"cylinder": {"base": [0, 0, 40], "radius": 10, "height": 20}},
    "sphere": {"sphere": [0, 0, 50, 10]},
}


@pytest.mark.parametrize("shape", SHAPES)
def test_each_zone3d_shape_inside_and_outside(shape):
    inside = compile_({"type": "zone3d", "keypoint": "snout", **SHAPES[shape]})
    outside = compile_({"type": "zone3d", "keypoint": "snout", **SHAPES[shape], "inside": False})
    centre, above, beside = (0, 0, 50), (0, 0, 65), (15, 0, 50)
    assert inside.evaluate(rows(centre), 0) and not outside.evaluate(rows(centre), 0)
    for point in (above, beside):
        inside.reset()
        outside.reset()
        assert not inside.evaluate(rows(point), 0) and outside.evaluate(rows(point), 0)


@pytest.mark.parametrize("shape", SHAPES)
def test_each_zone3d_shape_hysteresis(shape):
    # All three zones have their top surface at z = 60; the snout comes down the axis.
    zone = compile_({"type": "zone3d", "keypoint": "snout", **SHAPES[shape], "hysteresis_mm": 2})
    zs = [70, 59, 57, 61, 61.5, 63, 59]
    #     out  1 mm in: not enough; 3 mm in: in; 1 and 1.5 mm beyond: still in; 3 beyond: out
    got = [zone.evaluate(rows((0, 0, z)), i * DT_NS) for i, z in enumerate(zs)]
    assert got == [False, False, True, True, True, False, False]


def test_a_tilted_cylinder_uses_its_axis():
    lying = {"base": [0, 0, 0], "axis": [2, 0, 0], "radius": 10, "height": 40}
    zone = compile_({"type": "zone3d", "keypoint": "snout", "cylinder": lying})
    assert zone.evaluate(rows((20, 0, 5)), 0)
    zone.reset()
    assert not zone.evaluate(rows((0, 0, 20)), 0)  # inside an upright one, not this one
    zone.reset()
    assert not zone.evaluate(rows((45, 0, 0)), 0)  # beyond its far cap


def tilted(t: float, s: float) -> tuple[float, float, float]:
    """The point at height ``t`` above the plane z-up tilted to up = (0, 3, 4)/5, moved ``s``
    along the plane."""
    return (5.0, 0.6 * t + 0.8 * s, 0.8 * t - 0.6 * s)


def test_height_with_a_tilted_up_vector_and_hysteresis():
    cond = compile_(
        {"type": "height", "keypoint": "snout", "above": 50, "up": [0, 3, 4], "hysteresis_mm": 5}
    )
    heights = [40, 52, 56, 47, 44, 50, 56]
    # Far along the tilted plane z is low (56 mm above the plane at z = -26.2), so a plain z
    # threshold would not fire here.
    got = [cond.evaluate(rows(tilted(t, 120.0)), i) for i, t in enumerate(heights)]
    assert got == [False, False, True, True, False, False, True]
    assert tilted(56, 120.0)[2] < 0


def test_height_origin_and_band():
    band = compile_(
        {"type": "height", "keypoint": "snout", "above": 10, "below": 20, "origin": [0, 0, 100]}
    )
    assert band.evaluate(rows((0, 0, 115)), 0)
    assert not band.evaluate(rows((0, 0, 125)), 1)
    assert not band.evaluate(rows((0, 0, 105)), 2)
    under = compile_({"type": "height", "keypoint": "snout", "below": 0})
    assert under.evaluate(rows((0, 0, -5)), 0)  # below the floor: negative height


def test_distance3d_counts_z():
    # snout (0, 0, 0), tailbase (3, 4, 12): 13 mm apart in 3D, 5 px in x, y alone.
    p = rows(snout=(0, 0, 0), tailbase=(3, 4, 12))
    pair = ["snout", "tailbase"]
    assert not compile_({"type": "distance3d", "keypoints": pair, "below": 13}).evaluate(p, 0)
    assert compile_({"type": "distance3d", "keypoints": pair, "below": 13.5}).evaluate(p, 0)
    assert compile_({"type": "distance3d", "keypoints": pair, "above": 12}).evaluate(p, 0)
    assert not compile_({"type": "distance3d", "keypoints": pair, "above": 13}).evaluate(p, 0)
    band = {"type": "distance3d", "keypoints": pair, "above": 6, "below": 12}
    assert not compile_(band).evaluate(p, 0)


def test_speed3d_from_consecutive_poses_and_timestamps():
    fast = compile_({"type": "speed3d", "keypoint": "snout", "above": 100})
    assert not fast.evaluate(rows((0, 0, 0)), 0)  # first frame: unknown
    assert fast.evaluate(rows((0, 0, 5)), DT_NS)  # 5 mm straight up in 10 ms: 500 mm/s
    assert fast.speed_mm_s == pytest.approx(500.0)
    assert fast.evaluate(rows((3, 4, 17)), 2 * DT_NS)  # 13 mm: 1300 mm/s
    assert fast.speed_mm_s == pytest.approx(1300.0)
    assert not fast.evaluate(rows((3, 4, 17.5)), 3 * DT_NS)  # 50 mm/s
    assert not fast.evaluate(rows((3, 4, 30), views=1), 4 * DT_NS)  # not triangulated
    assert not fast.evaluate(rows((3, 4, 40)), 5 * DT_NS)  # previous position unknown
    assert math.isnan(fast.speed_mm_s)
    assert fast.evaluate(rows((3, 4, 50)), 6 * DT_NS)


# Each is true for the snout at (0, 0, 50) with the tail base at the origin.
TRUE_AT_50 = [
    {"type": "zone3d", "keypoint": "snout", "sphere": [0, 0, 50, 10]},
    {"type": "zone3d", "keypoint": "snout", "box": [-10, -10, 40, 10, 10, 60]},
    {
        "type": "zone3d",
        "keypoint": "snout",
        "cylinder": {"base": [0, 0, 0], "radius": 5, "height": 60},
    },
    {"type": "zone3d", "keypoint": "snout", "sphere": [0, 0, 0, 10], "inside": False},
    {"type": "height", "keypoint": "snout", "above": 40},
    {"type": "distance3d", "keypoints": ["tailbase", "snout"], "below": 60},
]


@pytest.mark.parametrize("condition", TRUE_AT_50, ids=lambda c: c["type"])
@pytest.mark.parametrize(
    ("snout", "views"),
    [((NAN, 0, 50), 3), ((0, 0, NAN), 3), ((0, 0, 50), 1), ((0, 0, 50), NAN), ((0, 0, 50), 0)],
)
def test_a_keypoint_not_triangulated_makes_3d_conditions_false(condition, snout, views):
    cond = compile_(condition)
    assert cond.evaluate(rows((0, 0, 50)), 0)
    assert not cond.evaluate(rows(snout, views), DT_NS)
    fresh = compile_(condition)
    assert not fresh.evaluate(rows(snout, views), 0)


def test_min_views_from_the_rule_and_from_the_condition():
    seen_by_two = rows((0, 0, 50), views=2)
    assert compile_(SPHERE).evaluate(seen_by_two, 0)  # default: 2 views
    assert not compile_(SPHERE, min_views=3).evaluate(seen_by_two, 0)
    own = {**SPHERE, "min_views": 2}
    assert compile_(own, min_views=3).evaluate(seen_by_two, 0)
    pair = {"type": "distance3d", "keypoints": ["snout", "tailbase"], "below": 100}
    assert not compile_(pair, min_views=3).evaluate(seen_by_two, 0)


# ---------------------------------------------------------------------------------------------
# Config: refusals at the edge
# ---------------------------------------------------------------------------------------------

CYL = {"base": [0, 0, 0], "radius": 30, "height": 60}


def _cond(**fields) -> dict:
    return rule({"type": "zone3d", "keypoint": "snout", **fields})


@pytest.mark.parametrize(
    ("data", "field"),
    [
        (_cond(box=[0, 0, 0, 1, 1, 1], sphere=[0, 0, 0, 1]), "exactly one"),
        (_cond(), "exactly one"),
        (_cond(cylinder={**CYL, "radius": -5}), "radius"),
        (_cond(cylinder={**CYL, "height": 0}), "height"),
        (_cond(cylinder={**CYL, "axis": [0, 0, 0]}), "axis"),
        (_cond(cylinder={**CYL, "base": [0, NAN, 0]}), "base"),
        (_cond(cylinder={**CYL, "centre": [0, 0, 0]}), "centre"),  # unknown field
        (_cond(sphere=[0, 0, 0, -1]), "sphere"),
        (_cond(sphere=[0, 0, math.inf, 1]), "sphere"),
        (_cond(box=[0, 0, NAN, 1, 1, 1]), "box"),
        (_cond(box=[0, 0, 5, 1, 1, 5]), "box"),  # z1 <= z0
        (_cond(box=[0, 0, 0, 1, 1]), "box"),  # five numbers
        (_cond(sphere=[0, 0, 0, 5], hysteresis_mm=5), "hysteresis_mm"),
        (_cond(box=[0, 0, 0, 100, 100, 8], hysteresis_mm=4), "hysteresis_mm"),
        (_cond(cylinder=CYL, hysteresis_mm=-1), "hysteresis_mm"),
        (_cond(sphere=[0, 0, 0, 5], hysteresis_px=1), "hysteresis_px"),  # the 2D field
        (_cond(sphere=[0, 0, 0, 5], min_views=1), "min_views"),
        (rule({"type": "height", "keypoint": "snout"}), "above"),
        (rule({**HEIGHT, "up": [0, 0, 0]}), "up"),
        (rule({**HEIGHT, "origin": [0, 0, NAN]}), "origin"),
        (rule({**HEIGHT, "above": math.inf}), "above"),
        (rule({**HEIGHT, "below": 84, "hysteresis_mm": 2}), "hysteresis_mm"),
        (rule({**HEIGHT, "below": 70}), "above"),
        (rule({"type": "distance3d", "keypoints": ["snout"], "below": 1}), "keypoints"),
        (rule({"type": "distance3d", "keypoints": ["a", "b"], "above": NAN}), "above"),
        (rule({"type": "speed3d", "keypoint": "snout", "below": 0}), "below"),
        (rule(SPHERE, min_views=1), "min_views"),
        (rule(SPHERE, min_likelihood=0.9), "min_likelihood"),  # 2D only
        (rule(ZONE_2D, min_views=3), "min_views"),  # 3D only
        (
            rule({"type": "likelihood", "keypoint": "snout", "at_least": 0.5}, min_views=3),
            "min_views",
        ),
    ],
)
def test_bad_3d_config_is_refused_naming_the_field(data, field):
    with pytest.raises(ValidationError) as excinfo:
        parse_rules([data])
    (error,) = excinfo.value.errors()
    where = ".".join(str(part) for part in error["loc"])
    assert where.startswith("rules.0")
    assert field in where.split(".") or field in error["msg"], (where, error["msg"])


def test_zone3d_refusal_messages_say_what_to_write():
    with pytest.raises(ValidationError, match=r"exactly one of box: .* got \['box', 'sphere'\]"):
        parse_rules([_cond(box=[0, 0, 0, 1, 1, 1], sphere=[0, 0, 0, 1])])
    with pytest.raises(
        ValidationError, match=r"hysteresis_mm \(5\) must be less than the sphere's"
    ):
        parse_rules([_cond(sphere=[0, 0, 0, 5], hysteresis_mm=5)])
    with pytest.raises(ValidationError, match=r"axis must be a non-zero vector"):
        parse_rules([_cond(cylinder={**CYL, "axis": [0, 0, 0]})])


@pytest.mark.parametrize(
    ("condition", "two_d", "three_d"),
    [
        (
            {"type": "all", "conditions": [ZONE_2D, HEIGHT]},
            "zone at condition.conditions.0",
            "height at condition.conditions.1",
        ),
        (
            {
                "type": "any",
                "conditions": [
                    {"type": "not", "condition": SPHERE},
                    {"type": "likelihood", "keypoint": "snout", "at_least": 0.5},
                ],
            },
            "likelihood at condition.conditions.1",
            "zone3d at condition.conditions.0.condition",
        ),
        (
            {
                "type": "not",
                "condition": {
                    "type": "all",
                    "conditions": [
                        {"type": "distance3d", "keypoints": ["snout", "tailbase"], "below": 5},
                        {"type": "speed", "keypoint": "snout", "above": 5},
                    ],
                },
            },
            "speed at condition.condition.conditions.1",
            "distance3d at condition.condition.conditions.0",
        ),
    ],
)
def test_mixing_2d_and_3d_in_one_rule_is_refused(condition, two_d, three_d):
    with pytest.raises(ValidationError) as excinfo:
        parse_rules([rule(condition)])
    message = str(excinfo.value)
    assert "rule 'r' mixes 2D conditions" in message
    assert two_d in message and three_d in message
    assert "split it into a 2D rule and a 3D rule" in message


def test_a_rule_is_2d_or_3d_and_3d_rules_round_trip_through_their_dump():
    rules = parse_rules(
        [
            {**rule(ZONE_2D), "name": "flat"},
            {**rule({"type": "all", "conditions": [SPHERE, HEIGHT]}), "name": "deep"},
            {**rule({"type": "zone3d", "keypoint": "snout", "cylinder": CYL}), "name": "port"},
        ]
    )
    assert [r.space for r in rules] == ["2d", "3d", "3d"]
    dumped = [r.model_dump(mode="json", exclude_unset=True) for r in rules]
    assert dumped[2]["condition"]["cylinder"] == CYL  # the axis was not written: not dumped
    assert parse_rules(copy.deepcopy(dumped)) == rules


# ---------------------------------------------------------------------------------------------
# Validation against the session: 2D rules vs 3D rules
# ---------------------------------------------------------------------------------------------


def test_3d_rules_in_a_session_without_a_3d_pose_are_refused_naming_the_rule():
    rules = parse_rules([{**rule(ZONE_2D), "name": "flat"}, {**rule(HEIGHT), "name": "rear"}])
    with pytest.raises(ValueError) as excinfo:
        validate_rules(rules, KEYPOINTS, ["laser"], where="rig.yaml")  # default: "2d"
    message = str(excinfo.value)
    assert message.startswith("rig.yaml: invalid rules:")
    assert (
        "rules[1] 'rear': condition: a 3D rule (height, millimetres) needs the live 3D pose, "
        "and this session has none" in message
    )
    assert "calibration.toml" in message and "'flat'" not in message
    with pytest.raises(
        ValueError,
        match=r"rules\[0\] 'flat': condition: a 2D rule \(zone, frame pixels\) needs a 2D pose",
    ):
        validate_rules(rules, KEYPOINTS, ["laser"], space="3d")
    validate_rules(rules, KEYPOINTS, ["laser"], space="both")
    validate_rules(rules[1:], KEYPOINTS, ["laser"], space="3d")
    validate_rules(rules[:1], KEYPOINTS, ["laser"], space="2d")
    with pytest.raises(ValueError, match="space must be '2d', '3d' or 'both', got '3D'"):
        validate_rules(rules, KEYPOINTS, ["laser"], space="3D")


def test_3d_keypoint_names_are_checked_with_their_field():
    bad = rule(
        {
            "type": "all",
            "conditions": [
                SPHERE,
                {"type": "distance3d", "keypoints": ["snout", "tail"], "below": 5},
            ],
        }
    )
    with pytest.raises(
        ValueError, match=r"condition\.conditions\.1\.keypoints\.1: keypoint 'tail' is unknown"
    ):
        validate_rules(parse_rules([bad]), KEYPOINTS, space="3d")
    with pytest.raises(ValueError, match=r"condition\.keypoint: keypoint 'nose' is unknown"):
        RuleEngine(parse_rules([rule({**HEIGHT, "keypoint": "nose"})]), KEYPOINTS)


# ---------------------------------------------------------------------------------------------
# The engine on sequences of 3D poses
# ---------------------------------------------------------------------------------------------


def engine(*rules: dict) -> RuleEngine:
    named = [{"name": f"rule{i}", "actions": [LASER_ON], **r} for i, r in enumerate(rules)]
    return RuleEngine(parse_rules(named), KEYPOINTS)


def run3d(rules: RuleEngine, snouts, views=None) -> list:
    events = []
    for i, snout in enumerate(snouts):
        n = 3 if views is None else views[i]
        events += rules.evaluate(None, i * DT_NS, i, pose3d=pose3d(snout, n))
    return events


def summary(events) -> list[tuple[int, str, list[str]]]:
    return [(e.frame_index, e.kind, [f"{a.output}:{a.action}" for a in e.actions]) for e in events]


def test_zone3d_enter_with_hysteresis_dropout_and_refractory():
    rules = engine(
        {"condition": {**SPHERE, "hysteresis_mm": 2}, "on": "enter", "refractory_s": 0.05}
    )
    zs = [100, 69, 67, 71, 60, 60, 100, 50, 73]
    views = [3, 3, 3, 3, 1, 3, 3, 3, 3]
    # 69: 1 mm in, not enough; 67: in (fires); 71: 1 mm out, held by the hysteresis; seen by
    # one camera: false (released); 60: in again 30 ms after the firing: dropped; 50: 50 ms
    # after it: fires; 73: 3 mm out: released.
    events = run3d(rules, [(0, 0, z) for z in zs], views)
    assert summary(events) == [
        (2, "fired", ["laser:on"]),
        (4, "released", ["laser:off"]),
        (7, "fired", ["laser:on"]),
        (8, "released", ["laser:off"]),
    ]
    assert {e.source for e in events} == {"measured"}
    assert events[0].t_ns == 2 * DT_NS


def test_cylinder_exit_fires_only_after_having_been_inside():
    rules = engine(
        {"condition": {"type": "zone3d", "keypoint": "snout", "cylinder": CYL}, "on": "exit"}
    )
    xs = [100, 100, 0, 0, 100, 0, 100]
    fired = [e.frame_index for e in run3d(rules, [(x, 0, 30) for x in xs]) if e.kind == "fired"]
    assert fired == [4, 6]


def test_height_while_rate_limited_by_refractory():
    rules = engine({"condition": HEIGHT, "on": "while", "refractory_s": 0.02, "actions": [PULSE]})
    zs = [50, 90, 90, 90, 90, 90, 50, 90]
    events = run3d(rules, [(0, 0, z) for z in zs])
    assert summary(events) == [
        (1, "fired", ["laser:pulse"]),
        (3, "fired", ["laser:pulse"]),
        (5, "fired", ["laser:pulse"]),
        (6, "released", []),
        (7, "fired", ["laser:pulse"]),  # 20 ms after the last firing: allowed
    ]


def test_distance3d_between_two_animals():
    animals = ["female/head", "female/thorax", "male/head", "male/thorax"]
    close = {"type": "distance3d", "keypoints": ["thorax", "male/thorax"], "below": 30}
    rules = RuleEngine(
        parse_rules([{"name": "meet", "animal": "female", "condition": close, "actions": [PULSE]}]),
        animals,
    )
    fired = []
    # The male's thorax straight above the female's: 0 px apart in x, y, z decides.
    for i, z in enumerate([100, 20, 40, 25]):
        p = np.array([[50, 0, 0, 0.3, 3], [0, 0, 0, 0.3, 3], [50, 0, z, 0.3, 3], [0, 0, z, 0.3, 3]])
        fired += [
            e.frame_index for e in rules.evaluate(None, i * DT_NS, i, pose3d=p) if e.kind == "fired"
        ]
    assert fired == [1, 3]


def test_2d_and_3d_rules_in_one_call_keep_rule_order():
    rules = engine(
        {"condition": HEIGHT, "actions": [PULSE]}, {"condition": ZONE_2D, "actions": [PULSE]}
    )
    assert rules.has_2d_rules and rules.has_3d_rules
    flat = np.array([[50, 50, 0.9], [0, 0, 0.9], [0, 0, 0.9], [0, 0, 0.9]])
    events = rules.evaluate(flat, 0, 0, pose3d=pose3d((0, 0, 90)))
    assert [e.rule for e in events] == ["rule0", "rule1"]
    # No 3D pose for this frame set: the 3D rule's keypoint does not count; the 2D rule holds.
    events = rules.evaluate(flat, DT_NS, 1, pose3d=None)
    assert [(e.rule, e.kind) for e in events] == [("rule0", "released")]


def test_predicted_3d_pose_for_source_predicted_and_fallback_to_measured():
    rules = engine({"condition": HEIGHT}, {"condition": HEIGHT, "source": "predicted"})
    low, high = pose3d((0, 0, 50)), pose3d((0, 0, 90))
    events = rules.evaluate(None, 0, 0, pose3d=low, predicted3d=high)
    assert [(e.rule, e.source) for e in events] == [("rule1", "predicted")]
    rules.reset()
    events = rules.evaluate(None, 0, 0, pose3d=high)
    assert [(e.rule, e.source) for e in events] == [("rule0", "measured"), ("rule1", "measured")]


def test_3d_pose_layouts_animal_zero_none_and_wrong_shape():
    rules = engine({"condition": HEIGHT})
    two = np.stack([pose3d((0, 0, 90)), pose3d((0, 0, 10))])
    assert [e.kind for e in rules.evaluate(None, 0, 0, pose3d=two)] == ["fired"]
    # No animal triangulated: every keypoint counts as not triangulated.
    events = rules.evaluate(None, DT_NS, 1, pose3d=np.zeros((0, 4, 5)))
    assert summary(events) == [(1, "released", ["laser:off"])]
    with pytest.raises(
        ValueError,
        match=r"pose3d has shape \(4, 3\); 3D rules expect \[K, 5\].*K = 4 keypoints \(snout,",
    ):
        rules.evaluate(None, 2 * DT_NS, 2, pose3d=np.zeros((4, 3)))


def test_an_engine_reads_only_the_poses_its_rules_need():
    flat_only = engine({"condition": ZONE_2D})
    assert flat_only.has_2d_rules and not flat_only.has_3d_rules
    flat = np.array([[50, 50, 0.9], [0, 0, 0.9], [0, 0, 0.9], [0, 0, 0.9]])
    # A 2D-only engine never looks at pose3d, whatever it is.
    assert len(flat_only.evaluate(flat, 0, 0, pose3d=np.zeros((1, 1)))) == 1
    deep_only = engine({"condition": HEIGHT})
    assert deep_only.has_3d_rules and not deep_only.has_2d_rules
    assert len(deep_only.evaluate(np.zeros((1, 1)), 0, 0, pose3d=pose3d((0, 0, 90)))) == 1


def test_replacing_a_2d_rule_by_a_3d_rule_switches_the_pose_it_reads():
    rules = engine({"condition": ZONE_2D, "actions": [PULSE]})
    flat_out = np.array([[500, 500, 0.9], [0, 0, 0.9], [0, 0, 0.9], [0, 0, 0.9]])
    assert rules.evaluate(flat_out, 0, 0, pose3d=pose3d((0, 0, 90))) == []
    (deep,) = parse_rules([{"name": "rule0", "condition": HEIGHT, "actions": [PULSE]}])
    rules.replace_rule(deep)
    assert rules.has_3d_rules and not rules.has_2d_rules
    events = rules.evaluate(flat_out, DT_NS, 1, pose3d=pose3d((0, 0, 90)))
    assert summary(events) == [(1, "fired", ["laser:pulse"])]


# ---------------------------------------------------------------------------------------------
# Zone listing and edits from the live view
# ---------------------------------------------------------------------------------------------


def test_zone_listing_leaves_3d_zones_out_and_edits_refuse_them():
    rules = parse_rules(
        [
            {**rule(ZONE_2D), "name": "flat"},
            {**rule({"type": "zone3d", "keypoint": "snout", "cylinder": CYL}), "name": "port"},
        ]
    )
    assert [(z["rule"], z["path"], z["rectangle"]) for z in zones_of(rules)] == [
        ("flat", "condition", [0.0, 0.0, 100.0, 100.0])
    ]
    edited = with_zone(rules, "flat", "condition", {"circle": [50, 50, 10]}, KEYPOINTS, ["laser"])
    assert edited[0].condition.circle == (50.0, 50.0, 10.0)
    assert edited[1] == rules[1]
    with pytest.raises(ValueError, match=r"rule 'port': condition is a 3D zone \(millimetres\)"):
        with_zone(rules, "port", "condition", {"circle": [50, 50, 10]}, KEYPOINTS, ["laser"])


# ---------------------------------------------------------------------------------------------
# The example in docs/rules.md
# ---------------------------------------------------------------------------------------------

DOC = Path(__file__).resolve().parents[2] / "docs" / "rules.md"


def doc_rule(name: str):
    for block in re.findall(r"```yaml\n(.*?)```", DOC.read_text(), flags=re.DOTALL):
        for cfg in parse_rules(yaml.safe_load(block)["rules"]):
            if cfg.name == name:
                return cfg
    raise AssertionError(f"no rule {name!r} in {DOC}")


def test_doc_rearing_example_switches_the_laser_with_dwell_and_hysteresis():
    rules = RuleEngine([doc_rule("laser_while_rearing")], KEYPOINTS)
    zs = [20] + [90] * 12 + [78, 70]  # up from frame 1; 78 is within the 5 mm hysteresis
    events = run3d(rules, [(0, 0, z) for z in zs])
    assert summary(events) == [(11, "fired", ["laser:on"]), (14, "released", ["laser:off"])]


@pytest.mark.parametrize(("views", "fired"), [(3, [1]), (2, [])])
def test_doc_port_example_needs_three_views(views, fired):
    rules = RuleEngine([doc_rule("reward_at_port")], KEYPOINTS)
    events = run3d(rules, [(250, 120, 30)] * 4, [views] * 4)
    # Frame 0: the speed is not known yet; frame 1: still, inside the cylinder.
    assert [e.frame_index for e in events if e.kind == "fired"] == fired
