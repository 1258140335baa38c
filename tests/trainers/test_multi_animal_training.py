"""Two identifiable animals end to end: SLEAP labels → `realtime-pose train` (split by time) →
export → a live session whose meta, poses and per-animal rule cover both animals."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import yaml

from realtime_pose.cli import main
from realtime_pose.trainers.synthetic_project import TWO_ANIMALS, write_two_animal_clip

tf = pytest.importorskip("tensorflow", reason="training needs TensorFlow (the train extra)")
pytestmark = [
    pytest.mark.tf,
    pytest.mark.slow,
    pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning"),
]
BODYPARTS = ["snout", "leftear", "rightear", "tailbase"]


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    root = tmp_path_factory.mktemp("two")
    slp = write_two_animal_clip(root / "data", 40, width=96, height=64)
    out = root / "out"
    args = ["train", str(slp), "-o", str(out), "--steps", "3", "--batch-size", "2",
            "--crop", "64", "--weights", "none", "--train-frames", "0-29", "--test-frames",
            "30-39"]  # fmt: skip
    assert main(args) == 0
    return slp, out, root


def test_slp_labels_train_an_identity_channel_network_split_by_time(trained):
    _, out, _ = trained
    config = json.loads((out / "train_config.json").read_text())
    assert config["animals"] == {
        "names": list(TWO_ANIMALS),
        "bodyparts": BODYPARTS,
        "decoding": "identity_channels",
    }
    assert config["keypoints"][:2] == ["dark/snout", "dark/leftear"]
    assert config["keypoints"][4] == "light/snout" and len(config["keypoints"]) == 8
    assert config["augment"]["rearrange_probability"] == 0.5  # animals moved apart by default
    split = json.loads((out / "split.json").read_text())
    frame = [int(Path(p).stem[3:]) for p in split["train"]]
    held = [int(Path(p).stem[3:]) for p in split["test"]]
    assert (min(frame), max(frame), min(held), max(held)) == (0, 29, 30, 39)
    project = yaml.safe_load((out / "project" / "config.yaml").read_text())
    assert ["dark/leftear", "dark/rightear"] in project["symmetric_pairs"]


def test_the_exported_bundle_runs_live_with_both_animals_and_a_per_animal_rule(trained, tmp_path):
    from realtime_pose.bundle import load_bundle
    from realtime_pose.recording import read_log

    slp, out, root = trained
    bundle_dir = root / "bundle"
    if not bundle_dir.exists():
        assert main(["export", str(out), "-o", str(bundle_dir)]) == 0
    bundle = load_bundle(bundle_dir)
    assert bundle.meta.animals.names == list(TWO_ANIMALS)
    config = {
        "source": {"kind": "video", "path": str(slp.with_name("clip.avi")), "realtime": False},
        "bundle": str(bundle_dir),
        "engine": {"threads": 1, "spinning": False, "warmup_runs": 1},
        "stream": {"address": "tcp://127.0.0.1:*", "control_address": None},
        "recording": {"enabled": True, "directory": str(tmp_path / "rec")},
        "outputs": {"valve": {"kind": "serial", "port": "loop://", "channel": 0}},
        "rules": [
            {
                "name": "any-snout-left",
                "animal": "any",
                "condition": {"type": "zone", "keypoint": "snout", "rectangle": [0, 0, 48, 64]},
                "actions": [{"output": "valve", "action": "pulse", "duration_ms": 5}],
            }
        ],
    }
    path = tmp_path / "rig.yaml"
    path.write_text(yaml.safe_dump(config))
    assert main(["run", str(path), "--quiet"]) == 0
    rec = read_log(next((tmp_path / "rec").glob("*.poselog")))
    assert rec.header["meta"]["animals"]["names"] == list(TWO_ANIMALS)
    poses = rec.poses.reshape(len(rec.poses), -1, 3)
    assert poses.shape == (40, 8, 3) and np.isfinite(poses[:, :, :2]).all()
