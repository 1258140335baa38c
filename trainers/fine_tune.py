"""Training that starts from a trained model: old labels plus the frames corrected since.

``realtime-pose train PROJECT --from RUN_OR_BUNDLE`` starts from the weights of an earlier run
(its training-output folder, or the bundle exported from it, which names that folder in its
provenance) instead of from ImageNet, keeps that run's network, input scale and crop, and trains
on its training frames plus the labelled frames the project gained since (the captures
corrected in the labelling page). A share of the new frames is held out, so the run reports
the error on frames like the ones the model was unsure of, before and after, beside the
error on the old held-out frames (which must not get worse).
"""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path
from typing import Any

import numpy as np

from realtime_pose.trainers.project import Project, ProjectError, normalise_relpath
from realtime_pose.trainers.train_output import TrainOutput, TrainOutputError, read_train_output

FINE_TUNE_LEARNING_RATE_SHARE = 0.25
"""A fine-tuning run's peak learning rate, as a share of the network's default."""
FINE_TUNE_WARMUP_STEPS = 50


def resolve_start(path: str | Path) -> TrainOutput:
    """The training-output folder to start from: ``path`` itself, or the one a bundle's
    provenance names (``train_dir``).

    Raises
    ------
    ProjectError
        Naming the file and what is missing, e.g. a bundle imported from DeepLabCut (its
        weights are not a Keras model this trainer can continue).
    """
    root = Path(path).expanduser()
    bundle_json = root / "bundle.json"
    if bundle_json.is_file():
        try:
            provenance = json.loads(bundle_json.read_text()).get("provenance", {})
        except json.JSONDecodeError as exc:
            raise ProjectError(f"{bundle_json}: not valid JSON ({exc})") from exc
        train_dir = provenance.get("train_dir")
        if not train_dir:
            raise ProjectError(
                f"{bundle_json}: field 'provenance.train_dir' is missing: this bundle was not "
                "exported from a realtime-pose training run (an imported DeepLabCut model?), "
                "so there are no Keras weights to continue; retrain it in DeepLabCut"
            )
        root = Path(train_dir)
        if not root.is_dir():
            raise ProjectError(
                f"{bundle_json}: its training run {root} (field 'provenance.train_dir') is not "
                "on this machine; copy it here, or give --from that folder"
            )
    try:
        return read_train_output(root)
    except TrainOutputError as exc:
        raise ProjectError(f"--from: {exc}") from exc


@dataclasses.dataclass(frozen=True)
class FineTuneSplit:
    """Which frames a fine-tuning run trains and tests on (indices into the project)."""

    train: list[int]
    test: list[int]
    new_train: list[int]
    new_test: list[int]
    old_test: list[int]

    def record(self, project: Project) -> dict[str, Any]:
        """For ``train_config.json``."""
        return {
            "new_train": [project.images[i] for i in self.new_train],
            "new_test": [project.images[i] for i in self.new_test],
            "old_train_frames": len(self.train) - len(self.new_train),
            "old_test_frames": len(self.old_test),
        }


def fine_tune_split(
    project: Project, start: TrainOutput, holdout: float, seed: int = 0
) -> FineTuneSplit:
    """The earlier run's split, plus the project's labelled frames it never saw: ``holdout``
    of those (at least one where there are two or more) held out, the rest trained on.

    Frames of the earlier split no longer in the project (deleted) are left out."""
    lookup = {p: i for i, p in enumerate(project.images)}
    old_train = [lookup[p] for p in map(normalise_relpath, start.split["train"]) if p in lookup]
    old_test = [lookup[p] for p in map(normalise_relpath, start.split["test"]) if p in lookup]
    seen = set(old_train) | set(old_test)
    new = [i for i in range(len(project.images)) if i not in seen]
    if not new:
        raise ProjectError(
            f"{project.root}: no labelled frames beyond the {len(seen)} the run in "
            f"{start.root} used; label captured frames first (realtime-pose label FOLDER)"
        )
    rng = np.random.default_rng([int(seed), 0xF17E])
    order = [new[i] for i in rng.permutation(len(new))]
    n_test = min(len(new) - 1, max(1, math.ceil(holdout * len(new)))) if holdout > 0 else 0
    new_test, new_train = sorted(order[:n_test]), sorted(order[n_test:])
    return FineTuneSplit(old_train + new_train, old_test + new_test, new_train, new_test, old_test)


def load_start_weights(model: Any, start: TrainOutput) -> None:
    """Copy the earlier run's weights into ``model`` (built for the same network)."""
    import keras

    trained = keras.models.load_model(start.model_path, compile=False)
    mine, theirs = model.get_weights(), trained.get_weights()
    shapes = [w.shape for w in mine], [w.shape for w in theirs]
    if shapes[0] != shapes[1]:
        raise ProjectError(
            f"{start.model_path}: its weights do not fit this network ({len(theirs)} arrays vs "
            f"{len(mine)}); the project's keypoints or the network differ from that run's"
        )
    model.set_weights(theirs)
