"""Rules on animals that look alike: slots instead of names, social conditions between any two
animals (``other/``), and what a rule sees while a track is lost."""

import math

import numpy as np
import pytest

from realtime_pose.bundle import AnimalsSpec
from realtime_pose.rules import RuleEngine, parse_rules
from realtime_pose.rules.config import validate_rules

SLOTS = AnimalsSpec(
    decoding="part_affinity",
    names=["animal0", "animal1", "animal2"],
    bodyparts=["head", "thorax"],
    edges=[(1, 0)],
)
KEYPOINTS = SLOTS.keypoint_names()
PULSE = {"output": "laser", "action": "pulse", "duration_ms": 5}
CLOSE = {"type": "distance", "keypoints": ["thorax", "other/thorax"], "below": 30}
FAR = (math.nan, math.nan)  # an empty slot: no animal there


def engine(**rule) -> RuleEngine:
    return RuleEngine(parse_rules([{"name": "r", "actions": [PULSE], **rule}]), KEYPOINTS)


def pose(*thoraxes, likelihood=0.9) -> np.ndarray:
    rows = []
    for x, y in thoraxes:
        seen = 0.0 if math.isnan(x) else likelihood
        rows += [(x, y - 10, seen), (x, y, seen)]
    return np.array(rows)


def fired(rules: RuleEngine, frames) -> list[int]:
    events = []
    for i, frame in enumerate(frames):
        events += rules.evaluate(frame, i * 10_000_000, i)
    return [e.frame_index for e in events if e.kind == "fired"]


def test_any_two_animals_coming_close_fire_whichever_slots_they_hold():
    frames = [
        pose((100, 100), (200, 100), (300, 100)),  # all apart
        pose((100, 100), (200, 100), (210, 100)),  # slots 1 and 2 close
        pose((100, 100), (200, 100), (300, 100)),
        pose((290, 100), (200, 100), (300, 100)),  # slots 0 and 2 close
        pose((100, 100), (200, 100), (300, 100)),
        pose((100, 100), FAR, (110, 100)),  # slot 1 empty; 0 and 2 close
    ]
    assert fired(engine(animal="any", condition=CLOSE), frames) == [1, 3, 5]


def test_a_named_slot_with_other_means_that_animal_near_any_other():
    frames = [
        pose((100, 100), (200, 100), (210, 100)),  # 1 and 2 close, slot 0 alone
        pose((195, 100), (200, 100), (300, 100)),  # slot 0 close to slot 1
    ]
    assert fired(engine(animal="animal0", condition=CLOSE), frames) == [1]


def test_all_with_other_means_every_animal_has_a_neighbour():
    frames = [
        pose((100, 100), (110, 100), (400, 100)),  # slot 2 has nobody near
        pose((100, 100), (110, 100), (120, 100)),
    ]
    assert fired(engine(animal="all", condition=CLOSE), frames) == [1]


def test_a_lost_track_coasts_with_likelihood_zero_and_the_rule_releases():
    """While a track coasts (its animal not detected), its slot keeps the predicted position
    with likelihood 0: no condition holds on it, so a social rule releases and fires again
    when the animal is seen close again (docs/rules.md, Animals that look alike)."""
    rules = engine(animal="any", condition=CLOSE, on="while")
    close = pose((100, 100), (110, 100), (400, 100))
    lost = close.copy()
    lost[2:4, 2] = 0.0  # slot 1 coasting: position kept, likelihood 0
    states = []
    for i, frame in enumerate([close, lost, lost, close]):
        events = rules.evaluate(frame, i * 10_000_000, i)
        states.append([e.kind for e in events])
    assert states[0] == ["fired"] and "fired" not in states[1] + states[2]
    assert states[3] == ["fired"]


def test_other_is_refused_where_it_cannot_mean_anything():
    one = AnimalsSpec(
        decoding="part_affinity", names=["animal0"], bodyparts=["head", "thorax"], edges=[(1, 0)]
    )
    rules = parse_rules([{"name": "r", "animal": "any", "condition": CLOSE, "actions": [PULSE]}])
    with pytest.raises(ValueError, match="'other/' needs two animals"):
        validate_rules(rules, one.keypoint_names(), {"laser"})
    unscoped = parse_rules([{"name": "r", "condition": CLOSE, "actions": [PULSE]}])
    with pytest.raises(ValueError, match="keypoint 'thorax' is unknown"):
        validate_rules(unscoped, KEYPOINTS, {"laser"})
    wrong = {**CLOSE, "keypoints": ["thorax", "other/wing"]}
    bad = parse_rules([{"name": "r", "animal": "any", "condition": wrong, "actions": [PULSE]}])
    with pytest.raises(ValueError, match="animal0/wing"):
        validate_rules(bad, KEYPOINTS, {"laser"})
