"""Animals that look alike end to end: a multi-animal DeepLabCut project with arbitrary
individuals trains with no edits as a part-affinity network (one score map per bodypart, not
per individual: the slots were not treated as identities), exports with its fields, and runs
live and offline with track ids."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import yaml

from realtime_pose.cli import main
from tests.trainers.test_lookalike_labels import BODYPARTS, INDIVIDUALS, write_project

tf = pytest.importorskip("tensorflow", reason="training needs TensorFlow (the train extra)")
pytestmark = [
    pytest.mark.tf,
    pytest.mark.slow,
    pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning"),
]


@pytest.fixture(scope="module")
def madlc_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("madlc")
    project = root / "mice"
    write_project(project)  # individuals mouse_a, xyz7, m3; no `identity` in config.yaml
    out = root / "out"
    args = ["train", str(project), "-o", str(out), "--steps", "2", "--batch-size", "2",
            "--crop", "32", "--weights", "none"]  # fmt: skip
    assert main(args) == 0
    return project, out


def test_a_madlc_project_with_arbitrary_individuals_trains_as_look_alikes(madlc_run):
    _, out = madlc_run
    config = json.loads((out / "train_config.json").read_text())
    animals = config["animals"]
    assert animals["decoding"] == "part_affinity"
    assert animals["names"] == ["animal0", "animal1", "animal2"]  # slots, not the individuals
    assert not set(INDIVIDUALS) & set(animals["names"])
    assert animals["bodyparts"] == list(BODYPARTS)
    assert len(animals["edges"]) == len(BODYPARTS) - 1  # a spanning tree of the skeleton
    assert config["target_kind"] == "gaussian"
    import keras

    model = keras.models.load_model(out / "model.keras", compile=False)
    scmap, locref, paf = (o.shape[-1] for o in model.outputs)
    # one score map per bodypart shared by every animal: an identity-channel network would
    # have one per (individual, bodypart), 3 x 4 = 12
    assert (scmap, locref, paf) == (len(BODYPARTS), 2 * len(BODYPARTS), 2 * (len(BODYPARTS) - 1))


@pytest.fixture(scope="module")
def crowd_bundle(madlc_run, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """The exported look-alike bundle (3 slots) and a clip of two identical animals."""
    from realtime_pose.trainers.synthetic_crowd import write_crowd_clip

    _, out = madlc_run
    root = tmp_path_factory.mktemp("crowd")
    assert main(["export", str(out), "-o", str(root / "bundle")]) == 0
    clip = write_crowd_clip(root / "data", 2, 30, 96, 64, seed=1)
    return clip.video, root / "bundle"


def test_the_look_alike_bundle_carries_its_graph_and_fields(madlc_run, crowd_bundle, tmp_path):
    from realtime_pose.bundle import load_bundle

    _, out = madlc_run
    meta = load_bundle(crowd_bundle[1]).meta
    assert meta.animals.grouped and meta.outputs.paf is not None
    assert meta.animals.edges and meta.animals.names == ["animal0", "animal1", "animal2"]
    assert meta.score_channels == len(BODYPARTS) and meta.num_keypoints == 3 * len(BODYPARTS)
    assert main(["export", str(out), "-o", str(tmp_path / "int8"), "--int8"]) != 0


def test_a_live_session_streams_and_records_a_track_id_per_slot(crowd_bundle, tmp_path):
    from realtime_pose.recording import read_log

    video, bundle = crowd_bundle
    config = {
        "source": {"kind": "video", "path": str(video), "realtime": False},
        "bundle": str(bundle),
        "engine": {"threads": 1, "spinning": False, "warmup_runs": 1},
        "stream": {"address": "tcp://127.0.0.1:*", "control_address": None},
        "recording": {"enabled": True, "directory": str(tmp_path / "rec")},
        "tracking": {"min_hits": 1},
    }
    path = tmp_path / "rig.yaml"
    path.write_text(yaml.safe_dump(config))
    assert main(["run", str(path), "--quiet"]) == 0
    log = read_log(next((tmp_path / "rec").glob("*.poselog")))
    assert log.header["meta"]["animals"]["decoding"] == "part_affinity"
    assert log.track_ids is not None and log.track_ids.shape == (30, 3)
    poses = log.poses.reshape(30, 3, -1, 3)
    empty = log.track_ids < 0
    # an empty slot holds nothing; a held slot's rows are its animal (or its prediction)
    assert (poses[empty][..., 2] == 0).all() and np.isnan(poses[empty][..., :2]).all()


def test_analyze_writes_one_individual_per_track(crowd_bundle, tmp_path):
    import pandas as pd

    video, bundle = crowd_bundle
    args = ["analyze", str(video), "--bundle", str(bundle), "--format", "dlc,nwb",
            "--output-dir", str(tmp_path), "--workers", "0"]  # fmt: skip
    assert main(args) == 0
    table = pd.read_hdf(next(tmp_path.glob("*.h5")))
    individuals = table.columns.get_level_values("individuals").unique()
    assert all(name.startswith("track") for name in individuals)
    assert len(table) == 30
    assert main(args) == 0  # complete: the re-run skips it rather than refusing its files
