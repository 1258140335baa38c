"""The training loop: DeepLabCut-style targets and losses, Adam with warm-up and cosine decay.

One call of :func:`train` reads the project, splits it (seeded, saved as ``split.json``), builds
the network, trains for a step or time budget while a background thread augments batches,
re-estimates the BatchNorm statistics, saves ``model.keras`` and evaluates on the held-out
frames (``evaluation.json``). Checkpoints every few minutes let ``resume=True`` continue an
interrupted run to the same budget.

Output folder (the exporters' contract, see ``exporters/train_output.py``)::

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
from collections.abc import Iterator, Sequence
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
from realtime_pose.trainers.networks import (
    IMAGENET,
    NETS,
    STRIDE,
    build_model,
    load_imagenet_weights,
    parse_net,
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
    checkpoint_minutes: float = Field(default=5.0, gt=0)
    log_every_s: float = Field(default=30.0, gt=0)
    budget_check_s: float = Field(
        default=30.0, gt=0, description="seconds of training timed before --minutes is judged"
    )
    target_kind: str = Field(default="disk", pattern="^(disk|gaussian)$")
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
        return DEFAULT_LEARNING_RATE[parse_net(self.net)[0]]

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
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The augmented batch of training step ``step`` (deterministic in ``seed`` and ``step``)."""
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


def _prepare_split(settings: TrainSettings, project: Project) -> tuple[list[int], list[int]]:
    split_path = settings.output / "split.json"
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


def train(settings: TrainSettings) -> dict[str, Any]:
    """Train a pose network on a DeepLabCut project; see the module docstring for the outputs.

    Returns
    -------
    dict
        The contents of ``train_config.json`` (including the final test error).
    """
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import keras
    import tensorflow as tf

    t_start = time.monotonic()
    out = settings.output.expanduser()
    ckpt_dir = out / CHECKPOINT_DIR
    if (out / "model.keras").exists() and not settings.resume:
        raise ProjectError(
            f"{out}: already holds a trained model; choose a new --output or pass --resume"
        )
    if settings.resume and not ckpt_dir.is_dir():
        raise ProjectError(f"{ckpt_dir}: no checkpoint to resume from; drop --resume")
    out.mkdir(parents=True, exist_ok=True)
    project = load_project(settings.project, settings.train_fraction)
    train_idx, test_idx = _prepare_split(settings, project)
    log.info(
        "%s: %d labelled frames, %d keypoints; training on %d, holding out %d",
        project.root,
        len(project.images),
        project.num_keypoints,
        len(train_idx),
        len(test_idx),
    )
    if settings.scale is None:
        choice = choose_scale(project.keypoints[train_idx], settings.scale_max, STRIDE)
        input_scale, scale_reason = choice.scale, choice.as_dict()
    else:
        input_scale, scale_reason = settings.scale, {"scale": settings.scale, "given": True}
    if input_scale != 1.0:
        log.info(
            "frames resized by %.2f for training and use (the animal spans ~%.0f px; %s)",
            input_scale,
            scale_reason.get("animal_extent_px") or float("nan"),
            "--scale" if settings.scale is not None else "chosen from the labels",
        )
    crop = settings.crop_size or auto_crop_size(
        project, train_idx, settings.scale_max * input_scale
    )
    crop = int(math.ceil(crop / 16) * 16)
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
    aug_config = AugmentConfig(
        scale_min=settings.scale_min * input_scale,
        scale_max=settings.scale_max * input_scale,
        rearrange_probability=rearrange,
    )
    store = _ImageStore(project, train_idx)

    keras.utils.set_random_seed(settings.seed)
    from_file = settings.weights if isinstance(settings.weights, Path) else None
    model, train_model = build_model(
        settings.net, project.num_keypoints, weights=from_file, logits=True
    )
    backbone = f"file {from_file}" if from_file else "scratch"
    if settings.resume:
        backbone = "the checkpoint (resumed)"
    elif settings.weights == IMAGENET:
        if load_imagenet_weights(model, settings.net):
            backbone = "imagenet"
        else:
            backbone = "scratch (ImageNet weights could not be had)"
    peak_lr = settings.peak_learning_rate
    optimizer = keras.optimizers.Adam(learning_rate=peak_lr)
    variables = train_model.trainable_variables
    step, elapsed_before = 0, 0.0
    if settings.resume:
        state = _load_checkpoint(ckpt_dir, model, optimizer, variables)
        if state.get("net") != settings.net or state.get("crop") != crop:
            raise ProjectError(
                f"{ckpt_dir}: the checkpoint was trained with net {state.get('net')} and crop "
                f"{state.get('crop')}; resume with the same settings"
            )
        step, elapsed_before = int(state["step"]), float(state["elapsed_s"])
        log.info("resuming at step %d (%.0f s trained)", step, elapsed_before)

    @tf.function(reduce_retracing=True)
    def train_step(images: Any, scmap: Any, locref: Any, mask: Any) -> Any:
        with tf.GradientTape() as tape:
            logits, locref_pred = train_model(images, training=True)
            score_loss = tf.reduce_mean(
                tf.nn.sigmoid_cross_entropy_with_logits(labels=scmap, logits=logits)
            )
            err = tf.abs(locref_pred - locref)
            huber = tf.where(err < 1.0, 0.5 * err * err, err - 0.5)
            locref_loss = tf.reduce_sum(huber * mask) / tf.maximum(tf.reduce_sum(mask), 1.0)
            loss = score_loss + LOCREF_LOSS_WEIGHT * locref_loss
        grads = tape.gradient(loss, variables)
        optimizer.apply(grads, variables)
        return loss, score_loss, locref_loss

    def make_batch(s: int) -> Any:
        return batch_for_step(
            s,
            settings.seed,
            store,
            train_idx,
            settings.batch_size,
            crop,
            aug_config,
            flip_perm,
            settings.target_kind,
        )

    budget_s = settings.minutes * 60.0 if settings.minutes else math.inf
    max_steps = settings.steps or 10**12
    log.info(
        "training %s on %dx%d crops, batch %d, budget %s",
        settings.net,
        crop,
        crop,
        settings.batch_size,
        f"{settings.steps} steps" if settings.steps else f"{settings.minutes} min",
    )
    if settings.steps and settings.steps < steps_needed(settings.batch_size):
        log.warning(
            "%d steps is fewer than the ~%d this project needs (batch %d): expect underfitting",
            settings.steps,
            steps_needed(settings.batch_size),
            settings.batch_size,
        )
    prefetch = _Prefetcher(make_batch, step)
    t_loop = t_first = time.monotonic()
    compiled = False
    calibrated = not settings.minutes
    steps_at_compile = step
    projected: int | None = None
    t_log = t_ckpt = t_loop
    steps_at_log = step
    losses: list[float] = []
    try:
        for images, scmap, locref, mask in prefetch:
            elapsed = elapsed_before + time.monotonic() - t_loop
            if step >= max_steps or elapsed >= budget_s:
                break
            progress = max(step / max_steps, elapsed / budget_s)
            optimizer.learning_rate.assign(
                learning_rate(peak_lr, step, progress, settings.warmup_steps)
            )
            loss, score_loss, locref_loss = train_step(images, scmap, locref, mask)
            step += 1
            if not compiled:
                # the first step traces and compiles the graph (tens of seconds on a busy CPU);
                # the budget counts training, not compilation
                compiled = True
                t_loop = t_log = t_ckpt = time.monotonic()
                log.info("compiled the training step in %.0f s", t_loop - t_first)
            losses.append(float(loss))
            if not math.isfinite(losses[-1]):
                raise FloatingPointError(
                    f"loss became {losses[-1]} at step {step}; lower --learning-rate"
                )
            now = time.monotonic()
            if not calibrated and now - t_loop >= settings.budget_check_s:
                calibrated = True
                rate = (now - t_loop) / max(1, step - steps_at_compile)
                projected, advice = budget_advice(
                    rate, budget_s, elapsed, step, settings.batch_size
                )
                if advice:
                    log.warning("%s", advice)
                else:
                    log.info("≈ %d steps in the %.0f-minute budget", projected, budget_s / 60)
            if now - t_log >= settings.log_every_s:
                rate = (now - t_log) / max(1, step - steps_at_log)
                left = min((max_steps - step) * rate, budget_s - elapsed)
                log.info(
                    "step %d  loss %.5f (score %.5f, locref %.4f)  lr %.2e  %.3f s/step  "
                    "%.0f s trained, ~%.0f s left",
                    step,
                    np.mean(losses[-100:]),
                    float(score_loss),
                    float(locref_loss),
                    float(optimizer.learning_rate),
                    rate,
                    elapsed,
                    left,
                )
                t_log, steps_at_log = now, step
            if now - t_ckpt >= settings.checkpoint_minutes * 60:
                _save_checkpoint(
                    ckpt_dir, model, optimizer,
                    {"step": step, "elapsed_s": elapsed_before + now - t_loop,
                     "net": settings.net, "crop": crop},
                )  # fmt: skip
                t_ckpt = now
    finally:
        prefetch.close()
    train_s = elapsed_before + time.monotonic() - t_loop
    _save_checkpoint(
        ckpt_dir, model, optimizer,
        {"step": step, "elapsed_s": train_s, "net": settings.net, "crop": crop},
    )  # fmt: skip
    log.info("trained %d steps in %.0f s; re-estimating BatchNorm statistics", step, train_s)
    if step < steps_needed(settings.batch_size):
        log.warning(
            "trained %d steps, fewer than the ~%d this project needs: the model may underfit",
            step,
            steps_needed(settings.batch_size),
        )
    bn_batches = (make_batch(10**9 + i) for i in range(settings.bn_batches))
    reestimate_batchnorm(model, bn_batches, settings.bn_batches)
    model.save(out / "model.keras")

    predict = keras_predictor(model, input_scale=input_scale)
    by_split: dict[str, Any] = {}
    predicted: dict[str, tuple[list[int], np.ndarray]] = {}
    for name, idx in (("test", test_idx), ("train", train_idx[:50])):
        if idx:
            preds = predict_frames(predict, project, idx)
            predicted[name] = (list(idx), preds)
            by_split[name] = pose_metrics(
                preds, project.keypoints[idx], project.bodyparts, project.pcutoff
            )
            by_split[name].update(split=name, images=[project.images[i] for i in idx])
    # the held-out metrics at the top level (the layout `realtime-pose evaluate --json` writes),
    # the training-frame metrics beside them
    headline = by_split.get("test") or by_split.get("train") or {}
    evaluation = {**headline, "model": str(out), "project": str(project.root)}
    if "train" in by_split:
        evaluation["train"] = by_split["train"]
    (out / "evaluation.json").write_text(json.dumps(evaluation, indent=2) + "\n")
    _report_evaluation(out, project, by_split, predicted)
    config = {
        "net": settings.net,
        "keypoints": list(project.bodyparts),
        "skeleton": [list(e) for e in project.skeleton],
        "animals": project.animals,
        "input_scale": input_scale,
        "scale_choice": scale_reason,
        "stride": STRIDE,
        "locref_stdev": LOCREF_STDEV,
        "pos_dist_thresh": POS_DIST_THRESH,
        "target_kind": settings.target_kind,
        "crop_size": crop,
        "batch_size": settings.batch_size,
        "learning_rate": peak_lr,
        "flip": flip_perm is not None,
        "augment": dataclasses.asdict(aug_config),
        "steps": step,
        "steps_needed": steps_needed(settings.batch_size),
        "backbone_start": backbone,
        "steps_projected_at_start": projected,
        "train_wall_time_s": round(train_s, 1),
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
    }
    (out / "train_config.json").write_text(json.dumps(config, indent=2) + "\n")
    log.info(
        "done: test error %s px (train %s px); wrote %s",
        _fmt(config["test_error_px"]),
        _fmt(config["train_error_px"]),
        out,
    )
    return config


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
