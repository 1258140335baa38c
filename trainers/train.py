"""The training loop: DeepLabCut-style targets and losses, Adam with warm-up and cosine decay.

One call of :func:`train` reads the project, splits it (seeded, saved as ``split.json``), builds
the network, trains for a step or time budget while a background thread augments batches,
re-estimates the BatchNorm statistics, saves ``model.keras`` and evaluates on the held-out
frames (``evaluation.json``). Checkpoints every few minutes let ``resume=True`` continue an
interrupted run to the same budget.

Output folder (the exporters' contract, see ``trainers/train_output.py``)::

    model.keras  train_config.json  split.json  evaluation.json  checkpoint/
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import os
import queue
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator

from realtime_pose.trainers.augment import AugmentConfig, augment, flip_permutation
from realtime_pose.trainers.evaluate import (
    format_metrics,
    keras_predictor,
    plot_worst,
    pose_metrics,
    predict_frames,
)
from realtime_pose.trainers.fine_tune import (
    FINE_TUNE_LEARNING_RATE_SHARE,
    FineTuneSplit,
    fine_tune_split,
    load_start_weights,
    resolve_start,
)
from realtime_pose.trainers.label_distances import label_distances
from realtime_pose.trainers.networks import (
    IMAGENET,
    NETS,
    STRIDE,
    build_model,
    load_imagenet_weights,
    parse_net,
)
from realtime_pose.trainers.part_affinity import (
    PAF_LOSS_WEIGHT,
    grouped_batch_targets,
    grouped_decoder,
    is_grouped,
    match_to_labels,
    project_edges,
    slot_shape,
)
from realtime_pose.trainers.project import (
    Project,
    ProjectError,
    data_hash,
    load_project,
    read_split,
    split_indices,
    write_split,
)
from realtime_pose.trainers.rearrange import rearrange_animals
from realtime_pose.trainers.scale import animal_extent_px, choose_scale
from realtime_pose.trainers.targets import LOCREF_STDEV, POS_DIST_THRESH, make_targets
from realtime_pose.trainers.train_output import TrainOutput

log = logging.getLogger(__name__)

LOCREF_LOSS_WEIGHT = 0.05
DEFAULT_LEARNING_RATE = {"mobilenet_v2": 2e-3, "resnet_50": 1e-3}
"""Peak Adam rate per backbone family. MobileNetV2-0.35 on the openfield project, 30 minutes
from scratch on 2 cores: 2.05 px held-out error at 1e-3, 2.00 px at 2e-3, 2.01 px at 3e-3
(one run each)."""
#: Share of multi-animal samples whose animals are moved apart (see trainers/rearrange.py).
DEFAULT_REARRANGE = 0.5
USEFUL_STEPS_AT_BATCH_8 = 10_000
"""Training steps (of 8 crops each) below which the networks here have underfit. Measured on
the openfield project, MobileNetV2-0.35 from scratch: 6.8k steps 2.37 px held-out, 9.2k 2.05
px, 14.9k 1.86 px; a 15-minute run of 658 steps on a project with 512-px crops, 54 px. A rule
of thumb from one project, used to warn, never to stop a run."""
CHECKPOINT_DIR = "checkpoint"


def steps_needed(batch_size: int) -> int:
    """:data:`USEFUL_STEPS_AT_BATCH_8` for ``batch_size`` (the same number of crops seen)."""
    return math.ceil(USEFUL_STEPS_AT_BATCH_8 * 8 / batch_size)


def budget_advice(
    seconds_per_step: float, budget_s: float, elapsed_s: float, steps_done: int, batch_size: int
) -> tuple[int, str | None]:
    """The steps a time budget will reach at the measured rate, and a warning when they are too
    few (:func:`steps_needed`), saying what budget would reach them."""
    projected = steps_done + int(max(0.0, budget_s - elapsed_s) / seconds_per_step)
    needed = steps_needed(batch_size)
    if projected >= needed:
        return projected, None
    minutes = math.ceil(needed * seconds_per_step / 60.0)
    return projected, (
        f"≈ {projected} steps in {budget_s / 60:g} minutes at {seconds_per_step:.3f} s/step; "
        f"this project needs about {needed} (batch {batch_size}): consider --minutes {minutes}, "
        "smaller crops (--crop) or --steps"
    )


_IMAGE_CACHE_BYTES = 3 << 30


class TrainSettings(BaseModel):
    """Everything that defines a training run (validated at the CLI edge)."""

    model_config = ConfigDict(extra="forbid", protected_namespaces=())

    project: Path
    output: Path
    net: str = "mobilenet_v2_0.35"
    steps: int | None = Field(default=None, gt=0)
    minutes: float | None = Field(default=None, gt=0)
    batch_size: int = Field(default=8, gt=0)
    crop_size: int | None = Field(default=None, ge=32, description="square crop side, px")
    train_fraction: float | None = Field(default=None, gt=0, le=1)
    split: Path | None = Field(
        default=None,
        description="a split file ({'train': [...], 'test': [...]} of image paths) to use "
        "instead of a random split by train_fraction (e.g. a split by time)",
    )
    scale: float | None = Field(
        default=None,
        gt=0,
        le=1,
        description="resize frames by this factor for training and use (None: chosen from the "
        "labels, trainers/scale.py)",
    )
    seed: int = 0
    learning_rate: float | None = Field(
        default=None, gt=0, description="peak Adam rate; None: DEFAULT_LEARNING_RATE of the net"
    )
    warmup_steps: int = Field(default=300, ge=0)
    weights: Literal["imagenet"] | Path | None = Field(
        default=None,
        description=(
            "backbone start: 'imagenet' (fetched by Keras; from scratch with a warning where it "
            "cannot be had), a local keras.applications '..._no_top.h5', or None (from scratch; "
            "`realtime-pose train` asks for 'imagenet' unless told otherwise)"
        ),
    )
    resume: bool = False
    start_from: Path | None = Field(
        default=None,
        description="continue from this run's weights (a training-output folder; "
        "trainers/fine_tune.py): its net, input scale and crop, its split plus the new frames",
    )
    holdout_new: float = Field(
        default=0.25, ge=0, lt=1, description="fine-tuning: share of the new frames held out"
    )
    checkpoint_minutes: float = Field(default=5.0, gt=0)
    log_every_s: float = Field(default=30.0, gt=0)
    budget_check_s: float = Field(
        default=30.0, gt=0, description="seconds of training timed before --minutes is judged"
    )
    target_kind: str | None = Field(
        default=None,
        pattern="^(disk|gaussian)$",
        description="score-map targets; None: DeepLabCut's disk, or a Gaussian for animals that "
        "look alike (disks of one bodypart of two animals closer than ~45 px merge into one "
        "plateau, one peak, where a Gaussian keeps two)",
    )
    bn_batches: int = Field(default=50, ge=0, description="batches for BatchNorm re-estimation")
    flip: bool | None = Field(default=None, description="None: on when left/right pairs are clear")
    rearrange: float | None = Field(
        default=None,
        ge=0,
        le=1,
        description="share of samples whose animals are moved apart (trainers/rearrange.py); "
        f"None: {DEFAULT_REARRANGE} with several animals, 0 with one",
    )
    scale_min: float = Field(default=0.5, gt=0)
    scale_max: float = Field(default=1.25, gt=0)

    @property
    def peak_learning_rate(self) -> float:
        """``learning_rate``, or the net's default when it is not set."""
        if self.learning_rate is not None:
            return self.learning_rate
        share = FINE_TUNE_LEARNING_RATE_SHARE if self.start_from is not None else 1.0
        return share * DEFAULT_LEARNING_RATE[parse_net(self.net)[0]]

    @model_validator(mode="after")
    def _budget(self) -> TrainSettings:
        if self.steps is None and self.minutes is None:
            raise ValueError("give a training budget: steps or minutes")
        parse_net(self.net)
        return self


def auto_crop_size(project: Project, indices: Sequence[int], scale_max: float = 1.25) -> int:
    """Square training-crop side: the animal at the largest training scale plus 16 px of margin
    on each side, 192–512 px, a multiple of 16, and never larger than the frames (rounded up to
    16). The animal's size is the 90th percentile of its labelled extents.

    Small crops buy training steps: on the openfield project (extent ~123 px) 192-px crops run
    0.12 s/step against 0.19 s at 256 px on 2 cores, and 30 minutes of training (~15k vs ~9.6k
    steps) reached 1.87 vs 2.00 px held-out error on one held-out fifth and 2.08 vs 2.57 px on
    another (one run each).
    """
    extent = animal_extent_px(project.keypoints[list(indices)]) or 128.0  # 0: none labelled
    side = int(math.ceil(max(192.0, min(512.0, scale_max * extent + 32.0)) / 16) * 16)
    h, w = project.load_image(indices[0]).shape[:2]
    return min(side, int(math.ceil(max(h, w) / 16) * 16))


def map_size(crop: int) -> int:
    """Output map side for a square input of side ``crop`` (stride-16 ``same`` features, ×2)."""
    return 2 * math.ceil(crop / 16)


class _ImageStore:
    """Training frames decoded once and kept in memory (within a budget), else read on demand."""

    def __init__(self, project: Project, indices: Sequence[int]) -> None:
        self.project = project
        self.cache: dict[int, np.ndarray] = {}
        used = 0
        for i in indices:
            image = project.load_image(i)
            if used + image.nbytes > _IMAGE_CACHE_BYTES:
                log.info(
                    "image cache full after %d frames; reading the rest from disk", len(self.cache)
                )
                break
            self.cache[i] = image
            used += image.nbytes

    def __getitem__(self, index: int) -> np.ndarray:
        image = self.cache.get(index)
        return image if image is not None else self.project.load_image(index)


def batch_for_step(
    step: int,
    seed: int,
    store: _ImageStore,
    indices: Sequence[int],
    batch_size: int,
    crop: int,
    config: AugmentConfig,
    flip_perm: np.ndarray | None,
    target_kind: str,
    edges: list[tuple[int, int]] | None = None,
) -> tuple[np.ndarray, ...]:
    """The augmented batch of training step ``step`` (deterministic in ``seed`` and ``step``):
    images, score maps, locref and its mask, and with ``edges`` (animals that look alike) the
    part-affinity fields and their mask."""
    rng = np.random.default_rng([seed, step])
    chosen = rng.choice(len(indices), size=batch_size, replace=len(indices) < batch_size)
    images = np.empty((batch_size, crop, crop, 3), np.uint8)
    animals = store.project.animals
    n_animals = len(animals["names"]) if animals else 1
    keypoints = []
    for b, c in enumerate(chosen):
        i = indices[int(c)]
        image, kp, focus = store[i], store.project.keypoints[i], None
        if config.rearrange_probability > 0 and rng.random() < config.rearrange_probability:
            image, kp = rearrange_animals(rng, image, kp, n_animals)
            focus = kp.reshape(n_animals, -1, 2)[rng.integers(n_animals)]  # apart: one in view
        images[b], kp = augment(rng, image, kp, (crop, crop), config, flip_perm, focus)
        keypoints.append(kp)
    side = map_size(crop)
    if edges is not None:
        maps = grouped_batch_targets(
            np.stack(keypoints),
            slot_shape(store.project),
            side,
            edges,
            stride=STRIDE,
            pos_dist_thresh=POS_DIST_THRESH,
            locref_stdev=LOCREF_STDEV,
            kind=target_kind,
        )
        return (images, *maps)
    targets = make_targets(
        np.stack(keypoints),
        (side, side),
        stride=STRIDE,
        pos_dist_thresh=POS_DIST_THRESH,
        locref_stdev=LOCREF_STDEV,
        kind=target_kind,  # type: ignore[arg-type]
    )
    return images, targets.scmap, targets.locref, targets.locref_mask


class _Prefetcher:
    """Builds batches in a background thread (OpenCV and NumPy release the GIL) while the
    training step runs, so augmentation overlaps with TensorFlow's compute."""

    def __init__(self, make: Any, first_step: int, depth: int = 3) -> None:
        self._make = make
        self._queue: queue.Queue = queue.Queue(maxsize=depth)
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=self._run, args=(first_step,), name="batch-prefetch", daemon=True
        )
        self._thread.start()

    def _run(self, step: int) -> None:
        while not self._stop.is_set():
            try:
                item = self._make(step)
            except Exception as exc:  # surfaced in the training thread
                self._queue.put(exc)
                return
            while not self._stop.is_set():
                try:
                    self._queue.put(item, timeout=0.2)
                    break
                except queue.Full:
                    continue
            step += 1

    def __iter__(self) -> Iterator[Any]:
        while True:
            item = self._queue.get()
            if isinstance(item, Exception):
                raise item
            yield item

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)


def learning_rate(base: float, step: int, progress: float, warmup_steps: int) -> float:
    """Linear warm-up (over ``warmup_steps`` or the first 5 % of the budget, whichever ends
    first), then cosine decay to 2 % of ``base`` at ``progress`` = 1 (the fraction of the step
    or time budget used)."""
    warm = 1.0
    if warmup_steps:
        warm = min(1.0, max((step + 1) / warmup_steps, progress / 0.05))
    progress = min(max(progress, 0.0), 1.0)
    cosine = 0.02 + 0.98 * 0.5 * (1.0 + math.cos(math.pi * progress))
    return base * warm * cosine


def _save_checkpoint(folder: Path, model: Any, optimizer: Any, state: dict[str, Any]) -> None:
    tmp = folder.with_name(folder.name + ".partial")
    tmp.mkdir(parents=True, exist_ok=True)
    model.save_weights(tmp / "model.weights.h5")
    np.savez(tmp / "optimizer.npz", *[v.numpy() for v in optimizer.variables])
    (tmp / "state.json").write_text(json.dumps(state, indent=1) + "\n")
    if folder.exists():
        old = folder.with_name(folder.name + ".old")
        if old.exists():
            _rmtree(old)
        folder.rename(old)
        tmp.rename(folder)
        _rmtree(old)
    else:
        tmp.rename(folder)


def _rmtree(path: Path) -> None:
    import shutil

    shutil.rmtree(path, ignore_errors=True)


def _load_checkpoint(
    folder: Path, model: Any, optimizer: Any, variables: Sequence[Any]
) -> dict[str, Any]:
    state = json.loads((folder / "state.json").read_text())
    model.load_weights(folder / "model.weights.h5")
    optimizer.build(variables)
    saved = np.load(folder / "optimizer.npz")
    values = [saved[f"arr_{i}"] for i in range(len(saved.files))]
    if len(values) != len(optimizer.variables):
        raise ProjectError(
            f"{folder}: the checkpoint's optimizer state does not match this network; "
            "start a new output folder or drop --resume"
        )
    for var, value in zip(optimizer.variables, values, strict=True):
        var.assign(value)
    return state


def reestimate_batchnorm(model: Any, batches: Iterator[Any], n_batches: int) -> int:
    """Replace every BatchNorm layer's running statistics with averages over ``n_batches``
    training batches ("precise BN"); returns the number of layers updated.

    Inputs of each BN layer are taken in training mode (batch statistics upstream), which is
    what the layer saw during training, and combined with the law of total variance.
    """
    import keras
    import tensorflow as tf

    bns = [layer for layer in model.layers if isinstance(layer, keras.layers.BatchNormalization)]
    if not bns or n_batches <= 0:
        return 0
    probe = keras.Model(model.inputs, [bn.input for bn in bns])

    @tf.function(reduce_retracing=True)
    def moments(x: Any) -> Any:
        outs = probe(x, training=True)
        return [
            (tf.reduce_mean(o, axis=[0, 1, 2]), tf.math.reduce_variance(o, axis=[0, 1, 2]))
            for o in outs
        ]

    sums_mean = [np.zeros(bn.moving_mean.shape, np.float64) for bn in bns]
    sums_sq_mean = [np.zeros_like(s) for s in sums_mean]
    sums_var = [np.zeros_like(s) for s in sums_mean]
    for n, batch in enumerate(batches):
        if n >= n_batches:
            break
        for k, (mean, var) in enumerate(moments(tf.constant(batch[0]))):
            mean, var = mean.numpy().astype(np.float64), var.numpy().astype(np.float64)
            sums_mean[k] += mean
            sums_sq_mean[k] += mean * mean
            sums_var[k] += var
    count = min(n + 1, n_batches)
    for k, bn in enumerate(bns):
        mean = sums_mean[k] / count
        var = sums_var[k] / count + sums_sq_mean[k] / count - mean * mean
        bn.moving_mean.assign(mean.astype(np.float32))
        bn.moving_variance.assign(np.maximum(var, 0.0).astype(np.float32))
    return len(bns)


def _prepare_split(
    settings: TrainSettings, project: Project, fine_tune: FineTuneSplit | None = None
) -> tuple[list[int], list[int]]:
    split_path = settings.output / "split.json"
    if fine_tune is not None:
        write_split(split_path, project, fine_tune.train, fine_tune.test)
        return fine_tune.train, fine_tune.test
    given = split_path if settings.resume and split_path.is_file() else settings.split
    if given is not None:
        saved = read_split(given)
        if not saved["train"]:
            raise ProjectError(f"{given}: the split names no training frames")
        train_idx = project.indices_of(saved["train"], where=str(given))
        test_idx = project.indices_of(saved["test"], where=str(given))
        if given != split_path:
            write_split(split_path, project, train_idx, test_idx)
        return train_idx, test_idx
    train_idx, test_idx = split_indices(len(project.images), project.train_fraction, settings.seed)
    write_split(split_path, project, train_idx, test_idx)
    return train_idx, test_idx


@dataclasses.dataclass
class _TrainingData:
    """The frames a run trains and is evaluated on, and how its training batches are made."""

    settings: TrainSettings
    project: Project
    train_idx: list[int]
    test_idx: list[int]
    input_scale: float
    scale_choice: dict[str, Any]
    crop: int
    flip_perm: np.ndarray | None
    aug_config: AugmentConfig
    store: _ImageStore
    fine_tune: FineTuneSplit | None = None
    start: TrainOutput | None = None
    """Fine-tuning: the run whose weights training starts from."""
    edges: list[tuple[int, int]] | None = None
    """Animals that look alike: the part-affinity graph (bodypart index pairs); else None."""

    @property
    def score_channels(self) -> int:
        """The network's score maps: one per bodypart when animals are grouped after it."""
        if self.edges is not None:
            return slot_shape(self.project)[1]
        return self.project.num_keypoints

    def batch(self, step: int) -> tuple[np.ndarray, ...]:
        """The augmented batch of training step ``step`` (see :func:`batch_for_step`)."""
        return batch_for_step(
            step,
            self.settings.seed,
            self.store,
            self.train_idx,
            self.settings.batch_size,
            self.crop,
            self.aug_config,
            self.flip_perm,
            self.settings.target_kind,
            self.edges,
        )


@dataclasses.dataclass
class _Network:
    """The pose network, its training view (score logits and locref) and its optimizer."""

    model: Any
    train_model: Any
    optimizer: Any
    variables: list[Any]
    backbone_start: str


@dataclasses.dataclass
class _TrainingOutcome:
    """What the training loop reached."""

    steps: int
    train_s: float
    steps_projected_at_start: int | None


def train(settings: TrainSettings) -> dict[str, Any]:
    """Train a pose network on a DeepLabCut project; see the module docstring for the outputs.

    Returns
    -------
    dict
        The contents of ``train_config.json`` (including the final test error).
    """
    _import_tensorflow_quietly()
    t_start = time.monotonic()
    out, ckpt_dir = _prepare_output(settings)
    data = _load_training_data(settings)
    net = _build_network(settings, data, data.start)
    before = _evaluate_fine_tune(net.model, data) if data.fine_tune is not None else None
    step, elapsed_before_s = 0, 0.0
    if settings.resume:
        step, elapsed_before_s = _resume_from_checkpoint(settings, net, ckpt_dir, data.crop)
    loop = _TrainingLoop(settings, net, data, ckpt_dir, step, elapsed_before_s)
    _log_budget(settings, data.crop)
    outcome = loop.run()
    _finish_model(settings, net.model, data, outcome, out)
    by_split, predicted = _evaluate_splits(net.model, data)
    if before is not None:
        by_split["fine_tune"] = _fine_tune_report(before, _evaluate_fine_tune(net.model, data))
    _write_evaluation(out, data.project, by_split)
    _report_evaluation(out, data.project, by_split, predicted)
    config = _train_config(settings, data, net, outcome, by_split, t_start)
    (out / "train_config.json").write_text(json.dumps(config, indent=2) + "\n")
    log.info(
        "done: test error %s px (train %s px); wrote %s",
        _fmt(config["test_error_px"]),
        _fmt(config["train_error_px"]),
        out,
    )
    return config


def _import_tensorflow_quietly() -> None:
    """Import TensorFlow and Keras with TensorFlow's C++ log cut to errors (unless set), before
    any work, so that a missing train extra fails at once."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import keras  # noqa: F401
    import tensorflow  # noqa: F401


def _prepare_output(settings: TrainSettings) -> tuple[Path, Path]:
    """The output folder and its checkpoint folder, checked to suit a new run or a resume; the
    output folder is created."""
    out = settings.output.expanduser()
    ckpt_dir = out / CHECKPOINT_DIR
    if (out / "model.keras").exists() and not settings.resume:
        raise ProjectError(
            f"{out}: already holds a trained model; choose a new --output or pass --resume"
        )
    if settings.resume and not ckpt_dir.is_dir():
        raise ProjectError(f"{ckpt_dir}: no checkpoint to resume from; drop --resume")
    out.mkdir(parents=True, exist_ok=True)
    return out, ckpt_dir


def _load_training_data(settings: TrainSettings) -> _TrainingData:
    """Load and split the project (writing ``split.json``), choose the input scale, crop,
    mirroring and augmentation, and decode the training frames."""
    project = load_project(settings.project, settings.train_fraction)
    fine_tune = start = None
    if settings.start_from is not None:
        start = resolve_start(settings.start_from)
        fine_tune = fine_tune_split(project, start, settings.holdout_new, settings.seed)
        settings = settings.model_copy(
            update={"scale": start.config.input_scale, "crop_size": _start_crop(start)}
        )
        log.info(
            "fine-tuning from %s: %d new labelled frames (%d held out), %d of the run's own",
            start.root,
            len(fine_tune.new_train) + len(fine_tune.new_test),
            len(fine_tune.new_test),
            len(fine_tune.train) - len(fine_tune.new_train),
        )
    if settings.target_kind is None:
        kind = "gaussian" if is_grouped(project.animals) else "disk"
        settings = settings.model_copy(update={"target_kind": kind})
    train_idx, test_idx = _prepare_split(settings, project, fine_tune)
    log.info(
        "%s: %d labelled frames, %d keypoints; training on %d, holding out %d",
        project.root,
        len(project.images),
        project.num_keypoints,
        len(train_idx),
        len(test_idx),
    )
    input_scale, scale_choice = _choose_input_scale(settings, project, train_idx)
    crop = _crop_side(settings, project, train_idx, input_scale)
    flip_perm = _flip_permutation(settings, project)
    aug_config = AugmentConfig(
        scale_min=settings.scale_min * input_scale,
        scale_max=settings.scale_max * input_scale,
        rearrange_probability=_rearrange_probability(settings, project),
    )
    store = _ImageStore(project, train_idx)
    edges = _part_affinity_graph(project)
    return _TrainingData(
        settings,
        project,
        train_idx,
        test_idx,
        input_scale,
        scale_choice,
        crop,
        flip_perm,
        aug_config,
        store,
        fine_tune,
        start,
        edges,
    )


def _part_affinity_graph(project: Project) -> list[tuple[int, int]] | None:
    """The part-affinity graph of a look-alike project (logged), else None."""
    if not is_grouped(project.animals):
        return None
    edges = project_edges(project)
    parts = project.animals["bodyparts"]  # type: ignore[index]
    log.info(
        "animals that look alike: one score map per bodypart and %d part-affinity fields (%s), "
        "up to %d animals a frame",
        len(edges),
        ", ".join(f"{parts[a]}→{parts[b]}" for a, b in edges),
        slot_shape(project)[0],
    )
    return edges


def _start_crop(start: Any) -> int | None:
    """The earlier run's training-crop side, so the fine-tuned network sees the same crops."""
    crop = (start.config.model_extra or {}).get("crop_size")
    return int(crop) if crop else None


def _choose_input_scale(
    settings: TrainSettings, project: Project, train_idx: list[int]
) -> tuple[float, dict[str, Any]]:
    """The factor frames are resized by (``--scale``, else chosen from the training labels) and
    the record of how it was chosen."""
    if settings.scale is None:
        choice = choose_scale(project.keypoints[train_idx], settings.scale_max, STRIDE)
        input_scale, scale_choice = choice.scale, choice.as_dict()
    else:
        input_scale, scale_choice = settings.scale, {"scale": settings.scale, "given": True}
    if input_scale != 1.0:
        log.info(
            "frames resized by %.2f for training and use (the animal spans ~%.0f px; %s)",
            input_scale,
            scale_choice.get("animal_extent_px") or float("nan"),
            "--scale" if settings.scale is not None else "chosen from the labels",
        )
    return input_scale, scale_choice


def _crop_side(
    settings: TrainSettings, project: Project, train_idx: list[int], input_scale: float
) -> int:
    """The square training-crop side (``--crop``, else :func:`auto_crop_size`), rounded up to a
    multiple of 16."""
    crop = settings.crop_size or auto_crop_size(
        project, train_idx, settings.scale_max * input_scale
    )
    return int(math.ceil(crop / 16) * 16)


def _flip_permutation(settings: TrainSettings, project: Project) -> np.ndarray | None:
    """The left/right bodypart permutation for mirroring, or None where mirroring is off."""
    flip_perm = flip_permutation(project.bodyparts, project.flip_pairs)
    if settings.flip is False:
        flip_perm = None
    elif settings.flip and flip_perm is None:
        raise ProjectError(
            f"{project.config_path}: mirroring needs every left/right bodypart paired, by "
            "name or in 'symmetric_pairs'"
        )
    if flip_perm is None:
        log.info(
            "mirroring off: --no-flip, or a bodypart names a side but has no partner (declare "
            "pairs as 'symmetric_pairs' in config.yaml to turn it on)"
        )
    return flip_perm


def _rearrange_probability(settings: TrainSettings, project: Project) -> float:
    """The share of samples whose animals are moved apart (``--rearrange``, else the default
    for the number of animals)."""
    rearrange = settings.rearrange
    if rearrange is None:
        rearrange = DEFAULT_REARRANGE if project.animals else 0.0
    elif rearrange > 0 and not project.animals:
        raise ProjectError(
            f"{project.config_path}: rearranging animals (--rearrange) needs several animals"
        )
    if rearrange:
        log.info(
            "moving the animals apart in %.0f %% of the samples (--rearrange)", 100 * rearrange
        )
    return rearrange


def _build_network(
    settings: TrainSettings, data: _TrainingData, start: TrainOutput | None = None
) -> _Network:
    """Seed Keras, build the network from its starting backbone weights (or the weights of the
    run ``start`` when fine-tuning), and its Adam optimizer."""
    import keras

    keras.utils.set_random_seed(settings.seed)
    from_file = settings.weights if isinstance(settings.weights, Path) else None
    model, train_model = build_model(
        settings.net,
        data.score_channels,
        weights=from_file,
        logits=True,
        num_edges=len(data.edges or ()),
    )
    if start is not None and not settings.resume:
        load_start_weights(model, start)
        backbone_start = f"the trained run {start.root} (fine-tuning)"
    else:
        backbone_start = _start_backbone(settings, model, from_file)
    optimizer = keras.optimizers.Adam(learning_rate=settings.peak_learning_rate)
    return _Network(model, train_model, optimizer, train_model.trainable_variables, backbone_start)


def _start_backbone(settings: TrainSettings, model: Any, from_file: Path | None) -> str:
    """Load the ImageNet weights where they are asked for; says where the backbone started."""
    if settings.resume:
        return "the checkpoint (resumed)"
    if settings.weights == IMAGENET:
        if load_imagenet_weights(model, settings.net):
            return "imagenet"
        return "scratch (ImageNet weights could not be had)"
    return f"file {from_file}" if from_file else "scratch"


def _resume_from_checkpoint(
    settings: TrainSettings, net: _Network, ckpt_dir: Path, crop: int
) -> tuple[int, float]:
    """Restore the weights and optimizer state saved in ``ckpt_dir``; returns the steps and
    seconds already trained."""
    state = _load_checkpoint(ckpt_dir, net.model, net.optimizer, net.variables)
    if state.get("net") != settings.net or state.get("crop") != crop:
        raise ProjectError(
            f"{ckpt_dir}: the checkpoint was trained with net {state.get('net')} and crop "
            f"{state.get('crop')}; resume with the same settings"
        )
    step, elapsed_before_s = int(state["step"]), float(state["elapsed_s"])
    log.info("resuming at step %d (%.0f s trained)", step, elapsed_before_s)
    return step, elapsed_before_s


def _train_step_function(net: _Network, grouped: bool = False) -> Callable[..., Any]:
    """One optimisation step as a ``tf.function`` of (images, scmap, locref, mask) — with
    ``grouped``, also (paf, paf mask): sigmoid cross-entropy on the score maps plus the masked
    Huber loss of the location refinement, weighted by :data:`LOCREF_LOSS_WEIGHT` (plus the
    masked squared error of the part-affinity fields, weighted by :data:`PAF_LOSS_WEIGHT`); it
    returns (loss, score loss, locref loss)."""
    import tensorflow as tf

    train_model, optimizer, variables = net.train_model, net.optimizer, net.variables

    def maps_loss(outputs: Any, scmap: Any, locref: Any, mask: Any) -> Any:
        logits, locref_pred = outputs[0], outputs[1]
        score_loss = tf.reduce_mean(
            tf.nn.sigmoid_cross_entropy_with_logits(labels=scmap, logits=logits)
        )
        err = tf.abs(locref_pred - locref)
        huber = tf.where(err < 1.0, 0.5 * err * err, err - 0.5)
        locref_loss = tf.reduce_sum(huber * mask) / tf.maximum(tf.reduce_sum(mask), 1.0)
        return score_loss, locref_loss

    @tf.function(reduce_retracing=True)
    def train_step(images: Any, scmap: Any, locref: Any, mask: Any) -> Any:
        with tf.GradientTape() as tape:
            outputs = train_model(images, training=True)
            score_loss, locref_loss = maps_loss(outputs, scmap, locref, mask)
            loss = score_loss + LOCREF_LOSS_WEIGHT * locref_loss
        grads = tape.gradient(loss, variables)
        optimizer.apply(grads, variables)
        return loss, score_loss, locref_loss

    @tf.function(reduce_retracing=True)
    def grouped_step(
        images: Any, scmap: Any, locref: Any, mask: Any, paf: Any, paf_mask: Any
    ) -> Any:
        with tf.GradientTape() as tape:
            outputs = train_model(images, training=True)
            score_loss, locref_loss = maps_loss(outputs, scmap, locref, mask)
            paf_err = tf.square(outputs[2] - paf) * paf_mask
            paf_loss = tf.reduce_sum(paf_err) / tf.maximum(tf.reduce_sum(paf_mask), 1.0)
            loss = score_loss + LOCREF_LOSS_WEIGHT * locref_loss + PAF_LOSS_WEIGHT * paf_loss
        grads = tape.gradient(loss, variables)
        optimizer.apply(grads, variables)
        return loss, score_loss, locref_loss

    return grouped_step if grouped else train_step


def _log_budget(settings: TrainSettings, crop: int) -> None:
    """Log what is about to be trained; warn when the step budget is too small to fit."""
    log.info(
        "training %s on %dx%d crops, batch %d, budget %s",
        settings.net,
        crop,
        crop,
        settings.batch_size,
        f"{settings.steps} steps" if settings.steps else f"{settings.minutes} min",
    )
    fresh = settings.start_from is None  # fine-tuning continues a fitted network
    if fresh and settings.steps and settings.steps < steps_needed(settings.batch_size):
        log.warning(
            "%d steps is fewer than the ~%d this project needs (batch %d): expect underfitting",
            settings.steps,
            steps_needed(settings.batch_size),
            settings.batch_size,
        )


class _TrainingLoop:
    """Runs training steps until the step or time budget is spent, at the scheduled learning rate,
    with progress logged and a checkpoint every few minutes.

    Parameters
    ----------
    settings
        The run's settings (budget, logging and checkpoint intervals).
    net
        The network and optimizer to train.
    data
        Where the training batches come from.
    ckpt_dir
        The checkpoint folder.
    step, elapsed_before_s
        The steps and seconds of training already done (non-zero on resume).
    """

    def __init__(
        self,
        settings: TrainSettings,
        net: _Network,
        data: _TrainingData,
        ckpt_dir: Path,
        step: int,
        elapsed_before_s: float,
    ) -> None:
        self.settings = settings
        self.net = net
        self.data = data
        self.ckpt_dir = ckpt_dir
        self.train_step = _train_step_function(net, grouped=data.edges is not None)
        self.peak_lr = settings.peak_learning_rate
        self.budget_s = settings.minutes * 60.0 if settings.minutes else math.inf
        self.max_steps = settings.steps or 10**12
        self.step = step
        self.elapsed_before_s = elapsed_before_s
        self.steps_at_compile = self.steps_at_log = step
        self.compiled = False
        self.calibrated = not settings.minutes
        self.projected: int | None = None
        self.losses: list[float] = []
        self.t_first = self.t_loop = self.t_log = self.t_ckpt = 0.0

    def run(self) -> _TrainingOutcome:
        """Train on batches made in a background thread, then write a last checkpoint."""
        prefetch = _Prefetcher(self.data.batch, self.step)
        self.t_first = self.t_loop = self.t_log = self.t_ckpt = time.monotonic()
        try:
            self._train_on(prefetch)
        finally:
            prefetch.close()
        train_s = self.elapsed_before_s + time.monotonic() - self.t_loop
        self._checkpoint(train_s)
        return _TrainingOutcome(self.step, train_s, self.projected)

    def _train_on(self, batches: Iterable[Any]) -> None:
        """Take a step per batch until the budget is spent."""
        for batch in batches:
            elapsed_s = self.elapsed_before_s + time.monotonic() - self.t_loop
            if self.step >= self.max_steps or elapsed_s >= self.budget_s:
                break
            score_loss, locref_loss = self._take_step(batch, elapsed_s)
            now = time.monotonic()
            if not self.calibrated and now - self.t_loop >= self.settings.budget_check_s:
                self._judge_time_budget(now, elapsed_s)
            if now - self.t_log >= self.settings.log_every_s:
                self._log_progress(now, elapsed_s, score_loss, locref_loss)
            if now - self.t_ckpt >= self.settings.checkpoint_minutes * 60:
                self._checkpoint(self.elapsed_before_s + now - self.t_loop)
                self.t_ckpt = now

    def _take_step(self, batch: Sequence[np.ndarray], elapsed_s: float) -> tuple[Any, Any]:
        """One optimisation step at the scheduled learning rate; returns the score and locref
        losses."""
        progress = max(self.step / self.max_steps, elapsed_s / self.budget_s)
        self.net.optimizer.learning_rate.assign(
            learning_rate(self.peak_lr, self.step, progress, self.settings.warmup_steps)
        )
        loss, score_loss, locref_loss = self.train_step(*batch)
        self.step += 1
        if not self.compiled:
            self._restart_clocks_after_compiling()
        self.losses.append(float(loss))
        if not math.isfinite(self.losses[-1]):
            raise FloatingPointError(
                f"loss became {self.losses[-1]} at step {self.step}; lower --learning-rate"
            )
        return score_loss, locref_loss

    def _restart_clocks_after_compiling(self) -> None:
        """Start the clocks anew after the first step, which traced and compiled the graph."""
        # compiling takes tens of seconds on a busy CPU; the budget counts training, not that
        self.compiled = True
        self.t_loop = self.t_log = self.t_ckpt = time.monotonic()
        log.info("compiled the training step in %.0f s", self.t_loop - self.t_first)

    def _judge_time_budget(self, now: float, elapsed_s: float) -> None:
        """Project the steps the time budget will reach at the rate measured so far, and warn
        when they are too few (:func:`budget_advice`)."""
        self.calibrated = True
        rate = (now - self.t_loop) / max(1, self.step - self.steps_at_compile)
        self.projected, advice = budget_advice(
            rate, self.budget_s, elapsed_s, self.step, self.settings.batch_size
        )
        if advice:
            log.warning("%s", advice)
        else:
            log.info("≈ %d steps in the %.0f-minute budget", self.projected, self.budget_s / 60)

    def _log_progress(
        self, now: float, elapsed_s: float, score_loss: Any, locref_loss: Any
    ) -> None:
        """Log the recent loss, the learning rate, the speed and the time left."""
        rate = (now - self.t_log) / max(1, self.step - self.steps_at_log)
        left = min((self.max_steps - self.step) * rate, self.budget_s - elapsed_s)
        log.info(
            "step %d  loss %.5f (score %.5f, locref %.4f)  lr %.2e  %.3f s/step  "
            "%.0f s trained, ~%.0f s left",
            self.step,
            np.mean(self.losses[-100:]),
            float(score_loss),
            float(locref_loss),
            float(self.net.optimizer.learning_rate),
            rate,
            elapsed_s,
            left,
        )
        self.t_log, self.steps_at_log = now, self.step

    def _checkpoint(self, elapsed_s: float) -> None:
        """Save the weights, the optimizer state and where the run stands."""
        state = {
            "step": self.step,
            "elapsed_s": elapsed_s,
            "net": self.settings.net,
            "crop": self.data.crop,
        }
        _save_checkpoint(self.ckpt_dir, self.net.model, self.net.optimizer, state)


def _finish_model(
    settings: TrainSettings, model: Any, data: _TrainingData, outcome: _TrainingOutcome, out: Path
) -> None:
    """Report the steps trained, re-estimate the BatchNorm statistics and save ``model.keras``."""
    log.info(
        "trained %d steps in %.0f s; re-estimating BatchNorm statistics",
        outcome.steps,
        outcome.train_s,
    )
    if outcome.steps < steps_needed(settings.batch_size) and settings.start_from is None:
        log.warning(
            "trained %d steps, fewer than the ~%d this project needs: the model may underfit",
            outcome.steps,
            steps_needed(settings.batch_size),
        )
    # step numbers no run reaches: augmented batches other than the ones trained on
    bn_batches = (data.batch(10**9 + i) for i in range(settings.bn_batches))
    reestimate_batchnorm(model, bn_batches, settings.bn_batches)
    model.save(out / "model.keras")


def _evaluate_splits(
    model: Any, data: _TrainingData
) -> tuple[dict[str, Any], dict[str, tuple[list[int], np.ndarray]]]:
    """Predict the held-out frames and up to 50 training frames; returns the metrics and the
    predictions by split name ("test", "train"), for the splits that have frames."""
    project = data.project
    predict = _keras_predictor(model, data)
    by_split: dict[str, Any] = {}
    predicted: dict[str, tuple[list[int], np.ndarray]] = {}
    for name, idx in (("test", data.test_idx), ("train", data.train_idx[:50])):
        if idx:
            preds = predict_frames(predict, project, idx)
            if data.edges is not None:  # animals in any order: each beside its own labels
                preds = match_to_labels(preds, project.keypoints[idx], slot_shape(project))
            predicted[name] = (list(idx), preds)
            by_split[name] = pose_metrics(
                preds, project.keypoints[idx], project.bodyparts, project.pcutoff
            )
            by_split[name].update(split=name, images=[project.images[i] for i in idx])
    return by_split, predicted


def _keras_predictor(model: Any, data: _TrainingData) -> Any:
    """The trained model as a predictor of frame keypoints (animals grouped where they look
    alike: ``[A·K, 3]`` in the decoder's order)."""
    decode = None
    if data.edges is not None:
        a, k = slot_shape(data.project)
        decode = grouped_decoder(k, data.edges, a, STRIDE, LOCREF_STDEV)
    return keras_predictor(model, input_scale=data.input_scale, decode=decode)


def _evaluate_fine_tune(model: Any, data: _TrainingData) -> dict[str, Any]:
    """Error on the held-out new frames and the run's own held-out frames."""
    assert data.fine_tune is not None
    project = data.project
    predict = keras_predictor(model, input_scale=data.input_scale)
    metrics: dict[str, Any] = {}
    for name, idx in (
        ("new_held_out", data.fine_tune.new_test),
        ("old_held_out", data.fine_tune.old_test),
    ):
        if idx:
            preds = predict_frames(predict, project, idx)
            metrics[name] = pose_metrics(
                preds, project.keypoints[idx], project.bodyparts, project.pcutoff
            )
    return metrics


def _fine_tune_report(before: dict[str, Any], after: dict[str, Any]) -> dict[str, Any]:
    """Before/after mean errors of a fine-tuning run (``evaluation.json``'s ``fine_tune``)."""
    report: dict[str, Any] = {}
    for name in after:
        b, a = before[name]["mean_error_px"], after[name]["mean_error_px"]
        report[name] = {"before_px": b, "after_px": a, "frames": after[name]["n_images"]}
        log.info("fine-tuning, %s: mean error %s px before, %s px after", name, _fmt(b), _fmt(a))
    return report


def _write_evaluation(out: Path, project: Project, by_split: dict[str, Any]) -> None:
    """Write ``evaluation.json``: the held-out metrics at the top level (the layout
    `realtime-pose evaluate --json` writes), the training-frame metrics beside them."""
    headline = by_split.get("test") or by_split.get("train") or {}
    evaluation = {**headline, "model": str(out), "project": str(project.root)}
    if "train" in by_split:
        evaluation["train"] = by_split["train"]
    if "fine_tune" in by_split:
        evaluation["fine_tune"] = by_split["fine_tune"]
    (out / "evaluation.json").write_text(json.dumps(evaluation, indent=2) + "\n")


def _train_config(
    settings: TrainSettings,
    data: _TrainingData,
    net: _Network,
    outcome: _TrainingOutcome,
    by_split: dict[str, Any],
    t_start: float,
) -> dict[str, Any]:
    """The contents of ``train_config.json``: what the exporters need, and the run's record.

    Parameters
    ----------
    settings, data, net, outcome
        The run: its settings, training data, network and what the training loop reached.
    by_split
        The evaluation metrics by split name (:func:`_evaluate_splits`).
    t_start
        ``time.monotonic()`` when the run started.
    """
    project, train_idx, test_idx = data.project, data.train_idx, data.test_idx
    return {
        "net": settings.net,
        "keypoints": list(project.bodyparts),
        "skeleton": [list(e) for e in project.skeleton],
        "animals": project.animals
        if data.edges is None
        else {**project.animals, "edges": [list(e) for e in data.edges]},  # type: ignore[dict-item]
        "label_distances": label_distances(
            project.keypoints[train_idx], project.bodyparts, project.skeleton, project.animals
        ),
        "input_scale": data.input_scale,
        "scale_choice": data.scale_choice,
        "stride": STRIDE,
        "locref_stdev": LOCREF_STDEV,
        "pos_dist_thresh": POS_DIST_THRESH,
        "target_kind": data.settings.target_kind,
        "crop_size": data.crop,
        "batch_size": settings.batch_size,
        "learning_rate": settings.peak_learning_rate,
        "flip": data.flip_perm is not None,
        "augment": dataclasses.asdict(data.aug_config),
        "steps": outcome.steps,
        "steps_needed": steps_needed(settings.batch_size),
        "backbone_start": net.backbone_start,
        "steps_projected_at_start": outcome.steps_projected_at_start,
        "train_wall_time_s": round(outcome.train_s, 1),
        "total_wall_time_s": round(time.monotonic() - t_start, 1),
        "project": str(project.root),
        "data_hash": data_hash(project),
        "scorer": project.scorer,
        "pcutoff": project.pcutoff,
        "train_fraction": project.train_fraction,
        "seed": settings.seed,
        "n_train": len(train_idx),
        "n_test": len(test_idx),
        "test_error_px": by_split.get("test", {}).get("mean_error_px"),
        "test_error_px_pcutoff": by_split.get("test", {}).get("mean_error_px_pcutoff"),
        "train_error_px": by_split.get("train", {}).get("mean_error_px"),
        "started_from": None if settings.start_from is None else str(settings.start_from),
        "fine_tune": None
        if data.fine_tune is None
        else {**data.fine_tune.record(project), **by_split.get("fine_tune", {})},
    }


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2f}"


__all__: Sequence[str] = (
    "NETS",
    "TrainSettings",
    "auto_crop_size",
    "batch_for_step",
    "learning_rate",
    "map_size",
    "reestimate_batchnorm",
    "train",
)


def _report_evaluation(
    out: Path,
    project: Project,
    by_split: dict[str, Any],
    predicted: dict[str, tuple[list[int], np.ndarray]],
) -> None:
    """Log the per-keypoint table of the held-out frames (else the training frames) and draw
    the worst of them to ``evaluation.png`` beside ``evaluation.json``."""
    name = "test" if "test" in by_split else "train" if "train" in by_split else None
    if name is None:
        return
    log.info("evaluation on the %s frames:\n%s", name, format_metrics(by_split[name]))
    indices, preds = predicted[name]
    try:
        path = plot_worst(
            project, indices, preds, out / "evaluation.png", project.pcutoff, name, overwrite=True
        )
    except ImportError:  # matplotlib comes with the train extra; a bare install may lack it
        log.info("matplotlib is not installed: no evaluation.png (pip install '.[train]')")
        return
    log.info("the worst %s frames, labels vs predictions: %s", name, path)
