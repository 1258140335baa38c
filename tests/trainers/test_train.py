"""End to end: a tiny training run on a synthetic project, its outputs, resume and evaluation."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from realtime_pose.sources.synthetic_scene import KEYPOINTS
from realtime_pose.trainers.synthetic_project import write_synthetic_project

tf = pytest.importorskip("tensorflow", reason="training needs TensorFlow (the train extra)")
pytestmark = [
    pytest.mark.tf,
    # Keras 3 converts its variables with np.array(copy=False) internally (NumPy 2 warns)
    pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning"),
]


SMALL_RUN = dict(batch_size=2, crop_size=64, bn_batches=1, seed=1)
"""What every training here shares: a tiny run on a 96x64 synthetic project."""


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    from realtime_pose.trainers.train import TrainSettings, train

    root = tmp_path_factory.mktemp("train")
    project = write_synthetic_project(root / "project", 10, width=96, height=64, seed=5)
    settings = TrainSettings(
        project=project, output=root / "out", steps=3, train_fraction=0.8, **SMALL_RUN
    )
    train(settings)
    return project, root / "out"


def test_training_writes_the_exporter_contract(trained: tuple[Path, Path]):
    import keras

    project, out = trained
    config = json.loads((out / "train_config.json").read_text())
    assert config["keypoints"] == list(KEYPOINTS)
    assert config["stride"] == 8 and config["locref_stdev"] == pytest.approx(7.2801)
    assert config["steps"] == 3 and config["net"] == "mobilenet_v2_0.35"
    assert config["steps_needed"] == 40_000 and config["steps_projected_at_start"] is None
    assert len(config["data_hash"]) == 64 and config["project"] == str(project.resolve())
    assert isinstance(config["test_error_px"], float)
    split = json.loads((out / "split.json").read_text())
    assert len(split["train"]) == 8 and len(split["test"]) == 2
    assert not set(split["train"]) & set(split["test"])
    evaluation = json.loads((out / "evaluation.json").read_text())
    assert evaluation["split"] == "test" and evaluation["n_images"] == 2
    assert evaluation["mean_error_px"] == pytest.approx(config["test_error_px"])
    assert evaluation["train"]["n_images"] == 8
    assert (out / "evaluation.png").stat().st_size > 5_000  # the worst held-out frames, drawn

    model = keras.models.load_model(out / "model.keras", compile=False)
    assert model.inputs[0].dtype == "uint8" and model.inputs[0].shape[1:3] == (None, None)
    assert model.output_names == ["scmap", "locref"]
    scmap, locref = model(np.zeros((1, 64, 96, 3), np.uint8), training=False)
    assert scmap.shape == (1, 8, 12, 4) and locref.shape == (1, 8, 12, 8)
    assert float(tf.reduce_min(scmap)) >= 0.0 and float(tf.reduce_max(scmap)) <= 1.0


@pytest.mark.slow  # a second graph compilation: 20-60 s on a busy 2-core machine
def test_resume_continues_to_the_new_budget(trained: tuple[Path, Path]):
    from realtime_pose.trainers.project import ProjectError
    from realtime_pose.trainers.train import TrainSettings, train

    project, out = trained
    base = dict(project=project, output=out, **SMALL_RUN)
    with pytest.raises(ProjectError, match="already holds a trained model"):
        train(TrainSettings(**base, steps=5))
    config = train(TrainSettings(**base, steps=5, resume=True, train_fraction=0.8))
    assert config["steps"] == 5
    split = json.loads((out / "split.json").read_text())
    assert len(split["test"]) == 2  # the saved split is reused, not redrawn


def test_evaluate_cli_on_a_training_output(trained: tuple[Path, Path], tmp_path: Path, capsys):
    from realtime_pose.cli import main

    project, out = trained
    report = tmp_path / "eval.json"
    code = main(["evaluate", str(out), str(project), "--split", "test", "--json", str(report)])
    assert code == 0
    metrics = json.loads(report.read_text())
    for key in ("mean_error_px", "mean_error_px_pcutoff", "n_keypoints", "pck5", "pck10"):
        assert key in metrics
    assert metrics["n_images"] == 2 and set(metrics["per_keypoint"]) == set(KEYPOINTS)
    assert "mean error" in capsys.readouterr().out


@pytest.mark.slow  # another graph compilation
def test_a_time_budget_is_judged_after_a_short_calibration(trained, tmp_path, caplog):
    from realtime_pose.trainers.train import TrainSettings, train

    project, _ = trained
    settings = TrainSettings(
        project=project, output=tmp_path / "out", minutes=0.05, budget_check_s=1.0, **SMALL_RUN
    )
    with caplog.at_level("INFO", logger="realtime_pose.trainers.train"):
        train(settings)
    config = json.loads((tmp_path / "out" / "train_config.json").read_text())
    projected = config["steps_projected_at_start"]
    assert isinstance(projected, int) and projected >= 1
    messages = [r.getMessage() for r in caplog.records]
    advice = [m for m in messages if "this project needs about" in m]
    assert advice and f"≈ {projected} steps in 0.05 minutes" in advice[0]


def test_the_training_scale_is_recorded_and_exported_into_the_bundle(tmp_path: Path):
    from realtime_pose.bundle import load_bundle
    from realtime_pose.cli import main

    project = write_synthetic_project(tmp_path / "project", 6, width=96, height=64, seed=3)
    out = tmp_path / "out"
    args = ["train", str(project), "-o", str(out), "--steps", "2", "--batch-size", "2",
            "--crop", "64", "--weights", "none", "--scale", "0.5",
            "--train-fraction", "0.7"]  # fmt: skip
    assert main(args) == 0
    config = json.loads((out / "train_config.json").read_text())
    assert config["input_scale"] == 0.5 and config["scale_choice"]["given"] is True
    assert main(["export", str(out), "-o", str(tmp_path / "bundle")]) == 0
    bundle = load_bundle(tmp_path / "bundle")
    assert bundle.meta.input.scale == 0.5
    assert main(["train", str(project), "-o", str(tmp_path / "x"), "--steps", "1",
                 "--scale", "half"]) == 2  # fmt: skip


def test_an_openfield_sized_animal_trains_at_its_own_scale(trained: tuple[Path, Path]):
    _, out = trained
    config = json.loads((out / "train_config.json").read_text())
    assert config["input_scale"] == 1.0
    assert config["scale_choice"]["scale_for_crop"] == 1.0


def test_moving_animals_apart_is_refused_for_one_animal(trained: tuple[Path, Path], tmp_path):
    from realtime_pose.trainers.project import ProjectError
    from realtime_pose.trainers.train import TrainSettings, train

    project, _ = trained
    settings = TrainSettings(
        project=project, output=tmp_path / "out", steps=1, rearrange=0.5, **SMALL_RUN
    )
    with pytest.raises(ProjectError, match=r"config.yaml: rearranging animals .* several animals"):
        train(settings)
    assert not (tmp_path / "out" / "model.keras").exists()
