"""The rule engine on scripted trajectories with known answers."""

import msgpack
import numpy as np
import pytest

from realtime_pose.rules import Action, RuleEngine, RuleEvent, parse_rules

KEYPOINTS = ["snout", "leftear", "rightear", "tailbase"]
DT_NS = 10_000_000  # 100 fps
ZONE = {"type": "zone", "keypoint": "snout", "rectangle": [100, 100, 200, 200]}
PULSE = {"output": "laser", "action": "pulse", "duration_ms": 5}
LASER_ON = {"output": "laser", "action": "on"}


def make_engine(*rules: dict) -> RuleEngine:
    defaults = {"condition": ZONE, "actions": [PULSE]}
    named = [{"name": f"rule{i}", **defaults, **r} for i, r in enumerate(rules)]
    return RuleEngine(parse_rules(named), KEYPOINTS)


def pose_at(x: float, y: float = 150.0, likelihood: float = 1.0) -> np.ndarray:
    pose = np.array([[0, 0, 1], [10, 0, 1], [0, 10, 1], [300, 300, 1]], dtype=np.float64)
    pose[0] = (x, y, likelihood)
    return pose


def run(engine: RuleEngine, xs, dt_ns: int = DT_NS) -> list[RuleEvent]:
    """Feed snout x positions (y = 150) at a fixed frame rate; return every event."""
    events = []
    for i, x in enumerate(xs):
        events += engine.evaluate(pose_at(x), i * dt_ns, i)
    return events


def summary(events) -> list[tuple[int, str, list[str]]]:
    return [(e.frame_index, e.kind, [f"{a.output}:{a.action}" for a in e.actions]) for e in events]


OUT, IN = 50.0, 150.0


def test_zone_entry_fires_exactly_once_per_entry():
    xs = [OUT, OUT, IN, IN, IN, IN, OUT, OUT, IN, IN, OUT]
    events = run(make_engine({}), xs)
    fired = [e for e in events if e.kind == "fired"]
    assert [e.frame_index for e in fired] == [2, 8]
    assert fired[0].t_ns == 2 * DT_NS
    assert fired[0].actions == (Action("laser", "pulse", 0.005),)
    # The episode ends with a release; a pulse leaves nothing to switch off.
    assert summary(e for e in events if e.kind == "released") == [
        (6, "released", []),
        (10, "released", []),
    ]


def test_starting_inside_fires_on_the_first_frame():
    assert [e.frame_index for e in run(make_engine({}), [IN, IN, IN])] == [0]


def test_exit_edge_only_after_having_been_inside():
    engine = make_engine({"on": "exit"})
    xs = [OUT, OUT, IN, IN, OUT, OUT, IN, OUT]
    fired = [e.frame_index for e in run(engine, xs) if e.kind == "fired"]
    assert fired == [4, 7]


def test_exit_with_dwell_ignores_short_excursions():
    engine = make_engine({"on": "exit", "min_dwell_s": 0.02})
    xs = [IN, OUT, IN, IN, OUT, OUT, OUT, IN]
    # Out for one frame (10 ms): nothing. Out from frame 4: fires 20 ms later.
    assert summary(run(engine, xs)) == [(6, "fired", ["laser:pulse"]), (7, "released", [])]


def test_laser_on_while_inside_switches_off_on_release():
    events = run(make_engine({"actions": [LASER_ON]}), [OUT, IN, IN, OUT, OUT])
    assert summary(events) == [(1, "fired", ["laser:on"]), (3, "released", ["laser:off"])]


def test_off_on_release_false_leaves_the_output_on():
    events = run(make_engine({"actions": [LASER_ON], "off_on_release": False}), [IN, OUT])
    assert summary(events) == [(0, "fired", ["laser:on"]), (1, "released", [])]


def jitter(center: float, n: int) -> list[float]:
    return [center + (2.0 if i % 2 else -2.0) for i in range(n)]


def test_hysteresis_prevents_chatter_on_a_jittering_border_point():
    # The snout walks in, then sits on the zone's left border (x = 100) jittering by ±2 px.
    xs = [OUT, 80.0, 120.0, *jitter(100.0, 20), 120.0]
    plain = [e.frame_index for e in run(make_engine({}), xs) if e.kind == "fired"]
    assert len(plain) == 11  # every crossing fires without hysteresis
    with_hysteresis = make_engine({"condition": {**ZONE, "hysteresis_px": 5}})
    events = run(with_hysteresis, xs)
    assert summary(events) == [(2, "fired", ["laser:pulse"])]


def test_hysteresis_entering_needs_to_go_deep_enough():
    engine = make_engine({"condition": {**ZONE, "hysteresis_px": 5}})
    # 103 is inside but not 5 px inside: no entry until 106; leaving needs x < 95.
    xs = [OUT, 103.0, 104.0, 106.0, 96.0, 94.0, 103.0]
    assert summary(run(engine, xs)) == [(3, "fired", ["laser:pulse"]), (5, "released", [])]


def test_min_dwell_delays_firing_and_short_visits_never_fire():
    engine = make_engine({"min_dwell_s": 0.03})
    xs = [OUT, IN, IN, OUT, IN, IN, IN, IN, IN, OUT]
    # Visit at 1-2 lasts 10 ms: nothing. Visit from frame 4 fires 30 ms later, at frame 7.
    assert summary(run(engine, xs)) == [(7, "fired", ["laser:pulse"]), (9, "released", [])]


def test_refractory_drops_entries_within_the_period_and_does_not_defer_them():
    engine = make_engine({"refractory_s": 0.1})
    xs = [IN, OUT, IN] + [IN] * 12 + [OUT, IN]  # frame 16 is 160 ms after the first firing
    fired = [e.frame_index for e in run(engine, xs) if e.kind == "fired"]
    assert fired == [0, 16]


def test_refractory_boundary_is_inclusive():
    engine = make_engine({"refractory_s": 0.02})
    fired = [e.frame_index for e in run(engine, [IN, OUT, IN, OUT, IN]) if e.kind == "fired"]
    assert fired == [0, 2, 4]  # exactly 20 ms apart is allowed


def test_while_fires_every_frame_rate_limited_by_refractory():
    every = make_engine({"on": "while"})
    assert [e.frame_index for e in run(every, [OUT, IN, IN, IN, OUT])] == [1, 2, 3, 4]
    limited = make_engine({"on": "while", "refractory_s": 0.03})
    fired = [e.frame_index for e in run(limited, [IN] * 10) if e.kind == "fired"]
    assert fired == [0, 3, 6, 9]


def test_max_on_cuts_a_stuck_output_while_the_condition_still_holds():
    engine = make_engine({"actions": [LASER_ON], "max_on_s": 0.05})
    xs = [IN] * 10 + [OUT, IN]
    events = run(engine, xs)
    assert summary(events) == [
        (0, "fired", ["laser:on"]),
        (5, "max_on_cut", ["laser:off"]),  # 50 ms after switching on, still inside
        (10, "released", []),  # already off
        (11, "fired", ["laser:on"]),  # a new entry switches it on again
    ]


def test_max_on_applies_after_release_when_the_output_is_latched():
    engine = make_engine({"actions": [LASER_ON], "max_on_s": 0.03, "off_on_release": False})
    assert summary(run(engine, [IN, OUT, OUT, OUT, OUT])) == [
        (0, "fired", ["laser:on"]),
        (1, "released", []),
        (3, "max_on_cut", ["laser:off"]),
    ]


def test_while_rule_with_on_is_not_re_fired_after_a_cut():
    engine = make_engine({"on": "while", "actions": [LASER_ON], "max_on_s": 0.02})
    kinds = [(e.frame_index, e.kind) for e in run(engine, [IN] * 6)]
    assert kinds == [(0, "fired"), (1, "fired"), (2, "max_on_cut")]


def test_an_off_from_another_rule_stops_the_max_on_timer():
    laser_on = {"actions": [LASER_ON], "max_on_s": 0.05}
    laser_off_far_right = {
        "condition": {"type": "zone", "keypoint": "snout", "rectangle": [180, 0, 400, 400]},
        "actions": [{"output": "laser", "action": "off"}],
    }
    engine = make_engine(laser_on, laser_off_far_right)
    events = run(engine, [IN, 190.0, 190.0, 190.0, 190.0, 190.0, 190.0, 190.0])
    assert summary(events) == [(0, "fired", ["laser:on"]), (1, "fired", ["laser:off"])]


def test_predicted_source_uses_the_prediction_and_falls_back_to_measured():
    engine = make_engine({}, {"source": "predicted"})
    measured, predicted = pose_at(OUT), pose_at(IN)
    events = engine.evaluate(measured, 0, 0, predicted=predicted)
    assert [(e.rule, e.source) for e in events] == [("rule1", "predicted")]
    engine.reset()
    events = engine.evaluate(pose_at(IN), 0, 0, predicted=None)
    assert [(e.rule, e.source) for e in events] == [("rule0", "measured"), ("rule1", "measured")]


def test_low_likelihood_snout_does_not_enter():
    engine = make_engine({})
    assert engine.evaluate(pose_at(IN, likelihood=0.3), 0, 0) == []
    assert [e.kind for e in engine.evaluate(pose_at(IN, likelihood=0.6), DT_NS, 1)] == ["fired"]


def test_multi_animal_pose_uses_animal_zero():
    engine = make_engine({})
    two = np.stack([pose_at(OUT), pose_at(IN)])
    assert engine.evaluate(two, 0, 0) == []
    two = np.stack([pose_at(IN), pose_at(OUT)])
    assert len(engine.evaluate(two, DT_NS, 1)) == 1
    # No animal at all: every keypoint is invisible, so the zone condition is false.
    assert [e.kind for e in engine.evaluate(np.zeros((0, 4, 3)), 2 * DT_NS, 2)] == ["released"]


def test_wrong_pose_shape_is_refused_with_the_expected_shape():
    engine = make_engine({})
    with pytest.raises(ValueError, match=r"\(3, 3\).*K = 4 keypoints \(snout, leftear"):
        engine.evaluate(np.zeros((3, 3)), 0, 0)


def test_disable_switches_held_outputs_off_on_the_next_frame_and_enable_restarts():
    engine = make_engine({"actions": [LASER_ON]})
    assert summary(engine.evaluate(pose_at(IN), 0, 0)) == [(0, "fired", ["laser:on"])]
    engine.disable("rule0")
    assert not engine.is_enabled("rule0")
    assert summary(engine.evaluate(pose_at(IN), DT_NS, 1)) == [(1, "released", ["laser:off"])]
    assert engine.evaluate(pose_at(IN), 2 * DT_NS, 2) == []  # disabled: nothing
    engine.enable("rule0")
    assert summary(engine.evaluate(pose_at(IN), 3 * DT_NS, 3)) == [(3, "fired", ["laser:on"])]


def test_disable_then_enable_between_frames_changes_nothing():
    engine = make_engine({"actions": [LASER_ON]})
    engine.evaluate(pose_at(IN), 0, 0)
    engine.disable("rule0")
    engine.enable("rule0")
    assert engine.evaluate(pose_at(IN), DT_NS, 1) == []  # still the same episode, laser on
    assert summary(engine.evaluate(pose_at(OUT), 2 * DT_NS, 2)) == [(2, "released", ["laser:off"])]


def test_disabled_in_config_and_unknown_names():
    engine = make_engine({"enabled": False}, {})
    assert engine.rule_names == ("rule0", "rule1")
    assert [e.rule for e in engine.evaluate(pose_at(IN), 0, 0)] == ["rule1"]
    for method in (engine.enable, engine.disable, engine.is_enabled):
        with pytest.raises(KeyError, match="no rule named 'nope'; the rules are: rule0, rule1"):
            method("nope")


def test_reset_forgets_edges_and_timers():
    engine = make_engine({"refractory_s": 10.0})
    assert len(engine.evaluate(pose_at(IN), 0, 0)) == 1
    assert engine.evaluate(pose_at(IN), DT_NS, 1) == []
    engine.reset()
    assert len(engine.evaluate(pose_at(IN), 2 * DT_NS, 2)) == 1


def test_unknown_keypoint_is_refused_at_construction():
    with pytest.raises(ValueError, match=r"rules\[0\] 'rule0': condition.keypoint"):
        make_engine({"condition": {**ZONE, "keypoint": "nose"}})


def test_event_to_dict_round_trips_through_msgpack():
    (event,) = make_engine({"source": "predicted"}).evaluate(pose_at(IN), 123, 7)
    payload = msgpack.unpackb(msgpack.packb(event.to_dict()))
    assert payload == {
        "rule": "rule0",
        "kind": "fired",
        "frame_index": 7,
        "t_ns": 123,
        "source": "measured",
        "actions": [{"output": "laser", "action": "pulse", "duration_s": 0.005}],
    }


def test_speed_rule_on_a_trajectory():
    # Reward when the snout runs faster than 1000 px/s, at most once every 50 ms.
    engine = make_engine(
        {
            "condition": {"type": "speed", "keypoint": "snout", "above": 1000},
            "on": "while",
            "refractory_s": 0.05,
        }
    )
    xs = [0, 5, 10, 30, 50, 70, 90, 110, 130, 135, 140]  # 500, 500, then 2000 px/s, then 500
    fired = [e.frame_index for e in run(engine, xs) if e.kind == "fired"]
    assert fired == [3, 8]


def moved(engine: RuleEngine, name: str, rectangle: list[float]) -> None:
    """Replace rule ``name`` (a LASER_ON rule) by one whose zone is ``rectangle``, as the live
    view's zone edit does."""
    rule = {"name": name, "condition": {**ZONE, "rectangle": rectangle}, "actions": [LASER_ON]}
    engine.replace_rule(parse_rules([rule])[0])


def test_replaced_zone_fires_where_the_new_zone_is_and_not_where_the_old_was():
    engine = make_engine({"actions": [LASER_ON]}, {"actions": [PULSE]})
    assert summary(run(engine, [OUT, OUT])) == []
    moved(engine, "rule0", [20, 100, 80, 200])  # now x = 50 is inside
    events = []
    for i, x in enumerate([OUT, IN, OUT], start=2):
        events += engine.evaluate(pose_at(x), i * DT_NS, i)
    # fires at once (fresh state, inside the new zone), releases when the snout goes to 150
    assert summary(events) == [
        (2, "fired", ["laser:on"]),
        (3, "released", ["laser:off"]),
        (3, "fired", ["laser:pulse"]),  # rule1 kept its old zone
        (4, "fired", ["laser:on"]),
        (4, "released", []),
    ]
    assert engine.rule_names == ("rule0", "rule1")  # order kept


def test_replacing_a_rule_that_holds_an_output_switches_it_off_first():
    engine = make_engine({"actions": [LASER_ON]})
    assert summary(run(engine, [IN])) == [(0, "fired", ["laser:on"])]
    moved(engine, "rule0", [300, 300, 400, 400])  # the snout is outside the new zone
    events = engine.evaluate(pose_at(IN), DT_NS, 1)
    assert summary(events) == [(1, "released", ["laser:off"])]
    assert engine.evaluate(pose_at(IN), 2 * DT_NS, 2) == []


def test_replacing_keeps_the_enabled_switch_and_refuses_unknown_names():
    engine = make_engine({"actions": [LASER_ON]})
    engine.disable("rule0")
    moved(engine, "rule0", [20, 100, 80, 200])
    assert not engine.is_enabled("rule0")
    assert run(engine, [OUT, OUT]) == []
    bad = parse_rules([{"name": "nope", "condition": ZONE, "actions": [PULSE]}])[0]
    with pytest.raises(KeyError, match="no rule named 'nope'"):
        engine.replace_rule(bad)
    wrong_kp = parse_rules(
        [{"name": "rule0", "condition": {**ZONE, "keypoint": "tail"}, "actions": [PULSE]}]
    )[0]
    with pytest.raises(ValueError, match="keypoint 'tail' is unknown"):
        engine.replace_rule(wrong_kp)
