"""Fine-tuning from a trained run (``train --from``): its weights, its split plus the new frames,
before/after errors on held-out new frames, and the refusals."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from realtime_pose.trainers.synthetic_project import write_synthetic_project

SMALL_RUN = dict(batch_size=2, crop_size=64, bn_batches=1, seed=1)


def _add_captured_frames(project: Path, n: int, seed: int) -> list[str]:
    """A labeled-data folder of ``n`` more labelled frames (as the labelling page saves them)."""
    other = write_synthetic_project(
        project.parent / f"other-{seed}", n, width=96, height=64, seed=seed, video="captured"
    )
    shutil.copytree(other / "labeled-data" / "captured", project / "labeled-data" / "captured")
    return [f"labeled-data/captured/img{i:05d}.png" for i in range(n)]


def _write_run(folder: Path, split: dict, net: str = "mobilenet_v2_0.35") -> Path:
    """A training-output folder's files (no real weights; for the split logic)."""
    folder.mkdir(parents=True)
    (folder / "model.keras").write_bytes(b"not read by the split")
    (folder / "split.json").write_text(json.dumps(split))
    (folder / "train_config.json").write_text(
        json.dumps({"keypoints": ["a"], "stride": 8, "net": net, "crop_size": 64})
    )
    return folder


def test_the_split_keeps_the_run_s_frames_and_holds_out_a_share_of_the_new(tmp_path: Path):
    from realtime_pose.trainers.fine_tune import fine_tune_split, resolve_start
    from realtime_pose.trainers.project import load_project

    project = write_synthetic_project(tmp_path / "project", 6, width=96, height=64, seed=2)
    old = [f"labeled-data/synthetic/img{i:05d}.png" for i in range(6)]
    new = _add_captured_frames(project, 8, seed=3)
    run = _write_run(tmp_path / "run", {"train": old[:5], "test": old[5:]})
    split = fine_tune_split(load_project(project), resolve_start(run), holdout=0.25, seed=0)
    images = load_project(project).images
    assert sorted(images[i] for i in split.old_test) == old[5:]
    assert len(split.new_test) == 2 and len(split.new_train) == 6  # ceil(0.25 * 8) held out
    assert sorted(images[i] for i in split.new_test + split.new_train) == new
    assert sorted(images[i] for i in split.train) == sorted(
        old[:5] + [images[i] for i in split.new_train]
    )
    assert not set(split.train) & set(split.test)


def test_without_new_labels_or_weights_to_continue_it_is_refused(tmp_path: Path):
    from realtime_pose.trainers.fine_tune import fine_tune_split, resolve_start
    from realtime_pose.trainers.project import ProjectError, load_project

    project = write_synthetic_project(tmp_path / "project", 4, width=96, height=64, seed=2)
    old = [f"labeled-data/synthetic/img{i:05d}.png" for i in range(4)]
    run = _write_run(tmp_path / "run", {"train": old[:3], "test": old[3:]})
    with pytest.raises(ProjectError, match="no labelled frames beyond the 4"):
        fine_tune_split(load_project(project), resolve_start(run), 0.25)
    imported = tmp_path / "imported_bundle"
    imported.mkdir()
    (imported / "bundle.json").write_text(json.dumps({"provenance": {"exported_from": "dlc"}}))
    with pytest.raises(ProjectError, match=r"provenance\.train_dir"):
        resolve_start(imported)
    moved = tmp_path / "moved_bundle"
    moved.mkdir()
    (moved / "bundle.json").write_text(json.dumps({"provenance": {"train_dir": "/nowhere/run"}}))
    with pytest.raises(ProjectError, match="not on this machine"):
        resolve_start(moved)


@pytest.mark.tf
@pytest.mark.slow  # two tiny training runs (two graph compilations)
@pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")
def test_fine_tuning_starts_from_the_run_s_weights_and_reports_before_and_after(tmp_path: Path):
    pytest.importorskip("tensorflow", reason="training needs TensorFlow (the train extra)")
    import keras

    from realtime_pose.trainers.train import TrainSettings, train

    project = write_synthetic_project(tmp_path / "project", 8, width=96, height=64, seed=5)
    first = train(
        TrainSettings(
            project=project, output=tmp_path / "run", steps=3, train_fraction=0.75, **SMALL_RUN
        )
    )
    new = _add_captured_frames(project, 4, seed=9)
    # zero steps: the fine-tuned model is the start model with re-estimated BatchNorm only, so
    # "before" must be the first run's own model on those frames
    config = train(
        TrainSettings(
            project=project,
            output=tmp_path / "tuned",
            steps=1,
            start_from=tmp_path / "run",
            warmup_steps=1,
            **{**SMALL_RUN, "bn_batches": 0},
        )
    )
    tuned = config["fine_tune"]
    assert config["started_from"] == str(tmp_path / "run")
    assert (
        config["crop_size"] == first["crop_size"] and config["input_scale"] == first["input_scale"]
    )
    assert sorted(tuned["new_train"] + tuned["new_test"]) == new and len(tuned["new_test"]) == 1
    assert tuned["old_train_frames"] == 6 and tuned["old_test_frames"] == 2
    assert set(tuned["new_held_out"]) == {"before_px", "after_px", "frames"}
    assert tuned["old_held_out"]["before_px"] == pytest.approx(first["test_error_px"], rel=1e-4)
    evaluation = json.loads((tmp_path / "tuned" / "evaluation.json").read_text())
    assert evaluation["fine_tune"]["new_held_out"]["frames"] == 1
    split = json.loads((tmp_path / "tuned" / "split.json").read_text())
    assert set(tuned["new_train"]) <= set(split["train"]) and tuned["new_test"] == [
        p for p in split["test"] if "captured" in p
    ]
    start = keras.models.load_model(tmp_path / "run" / "model.keras", compile=False)
    after = keras.models.load_model(tmp_path / "tuned" / "model.keras", compile=False)
    moved = [
        float(np.abs(a - b).max())
        for a, b in zip(start.get_weights(), after.get_weights(), strict=True)
    ]
    assert max(moved) < 0.05  # one small step from the run's weights, not a fresh network
