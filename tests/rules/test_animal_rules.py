"""Rules on several animals: per-animal scope (a name, any, all) and social conditions."""

import json
from pathlib import Path

import numpy as np
import pytest

import realtime_pose
from realtime_pose.bundle import AnimalsSpec, BundleMeta
from realtime_pose.rules import RuleEngine, parse_rules
from realtime_pose.rules.config import animals_of, validate_rules

ANIMALS = AnimalsSpec(names=["female", "male"], bodyparts=["head", "thorax"])
KEYPOINTS = ANIMALS.keypoint_names()  # female/head, female/thorax, male/head, male/thorax
ZONE = {"type": "zone", "keypoint": "thorax", "circle": [100, 100, 20]}
PULSE = {"output": "laser", "action": "pulse", "duration_ms": 5}
DEMO = "assets/demo_bundle/bundle.json"
IN, OUT = (100.0, 100.0), (400.0, 400.0)


def engine(**rule) -> RuleEngine:
    return RuleEngine(parse_rules([{"name": "r", "actions": [PULSE], **rule}]), KEYPOINTS)


def pose(female_thorax, male_thorax) -> np.ndarray:
    rows = [(0, 0), female_thorax, (900, 900), male_thorax]
    return np.array([[x, y, 0.9] for x, y in rows])


def fired(rules: RuleEngine, frames) -> list[int]:
    events = []
    for i, (f, m) in enumerate(frames):
        events += rules.evaluate(pose(f, m), i * 10_000_000, i)
    return [e.frame_index for e in events if e.kind == "fired"]


FRAMES = [(OUT, OUT), (OUT, IN), (OUT, OUT), (IN, OUT), (IN, IN), (OUT, OUT)]


@pytest.mark.parametrize(
    ("scope", "expected"),
    [("female", [3]), ("male", [1, 4]), ("any", [1, 3]), ("all", [4])],
)
def test_a_bare_bodypart_means_the_scoped_animal(scope, expected):
    assert fired(engine(animal=scope, condition=ZONE), FRAMES) == expected


def test_a_social_distance_between_two_animals_fires_when_they_come_close():
    close = {"type": "distance", "keypoints": ["thorax", "male/thorax"], "below": 30}
    frames = [((100, 100), (200, 100)), ((100, 100), (125, 100)), ((100, 100), (160, 100))]
    frames += [((300, 300), (310, 305))]
    assert fired(engine(animal="female", condition=close), frames) == [1, 3]
    # the same written in full, with no scope
    full = {"type": "distance", "keypoints": ["female/thorax", "male/thorax"], "below": 30}
    assert fired(engine(condition=full), frames) == [1, 3]


def test_scopes_are_checked_against_the_model_naming_rule_and_field():
    rules = parse_rules([{"name": "r", "animal": "femal", "condition": ZONE, "actions": [PULSE]}])
    with pytest.raises(ValueError, match=r"rules\[0\] 'r': animal: animal 'femal' is unknown"):
        validate_rules(rules, KEYPOINTS)
    rules = parse_rules([{"name": "r", "animal": "any", "condition": ZONE, "actions": [PULSE]}])
    with pytest.raises(ValueError, match="animal: 'any' is set but the model tracks one animal"):
        validate_rules(rules, ["snout", "thorax"])
    wing = {**ZONE, "keypoint": "wing"}
    rules = parse_rules([{"name": "r", "animal": "male", "condition": wing, "actions": [PULSE]}])
    with pytest.raises(
        ValueError, match=r"condition\.keypoint \(animal 'male'\): keypoint 'male/wing'"
    ):
        validate_rules(rules, KEYPOINTS)
    with pytest.raises(ValueError, match="keypoint 'thorax' is unknown"):
        engine(condition=ZONE)  # no scope: a bare name must be a keypoint of the model


def test_animals_come_from_the_keypoint_names():
    assert animals_of(KEYPOINTS) == ["female", "male"]
    assert animals_of(["snout", "tail"]) == []
    assert KEYPOINTS[ANIMALS.rows_of("male")] == ["male/head", "male/thorax"]


def test_a_bundle_with_animals_must_name_its_keypoints_animal_slash_bodypart():
    demo = json.loads((Path(realtime_pose.__file__).parent / DEMO).read_text())
    base = {**demo, "skeleton": [], "animals": ANIMALS.model_dump()}
    meta = BundleMeta.model_validate({**base, "keypoints": KEYPOINTS})
    assert meta.animals.names == ["female", "male"]
    with pytest.raises(ValueError, match="must be animal/bodypart for every animal"):
        BundleMeta.model_validate({**base, "keypoints": ["head", "thorax"]})
    with pytest.raises(ValueError, match="contain no '/'"):
        AnimalsSpec(names=["a/b"], bodyparts=["head"])
