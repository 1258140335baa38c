"""Rule errors found against the bundle name the file the rules came from."""

import pytest
import yaml

from realtime_pose.live.run_config import load_config
from realtime_pose.rules import validate_rules
from realtime_pose.rules.config import validate_zones

RULE = {
    "name": "laser",
    "condition": {"type": "zone", "keypoint": "snot", "rectangle": [20, 20, 30, 30]},
    "actions": [{"output": "laser", "action": "on"}],
}


def test_rules_in_a_rules_file_are_refused_naming_that_file(tmp_path):
    (tmp_path / "zones.yaml").write_text(yaml.safe_dump([RULE]))
    rig = tmp_path / "rig.yaml"
    rig.write_text(
        yaml.safe_dump(
            {"bundle": "b", "outputs": {"laser": {"kind": "log"}}, "rules": "zones.yaml"}
        )
    )
    config = load_config(rig)
    assert config.where == str(rig) and config.rules_where == str(tmp_path / "zones.yaml")
    with pytest.raises(ValueError, match=r"zones\.yaml: invalid rules:\n.*keypoint 'snot'"):
        validate_rules(config.rules, ["snout"], ["laser"], config.rules_where)
    with pytest.raises(ValueError, match=r"^.*zones\.yaml: rules\[0\] 'laser'.*outside"):
        validate_zones(config.rules, 4, 4, where=config.rules_where)  # beyond a 4x4 frame


def test_inline_rules_name_the_run_config(tmp_path):
    rig = tmp_path / "rig.yaml"
    rig.write_text(
        yaml.safe_dump({"bundle": "b", "outputs": {"laser": {"kind": "log"}}, "rules": [RULE]})
    )
    config = load_config(rig)
    with pytest.raises(ValueError, match=r"rig\.yaml: invalid rules:"):
        validate_rules(config.rules, ["snout"], ["laser"], config.rules_where)
