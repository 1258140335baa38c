"""Regenerate the look-alike bundle shipped in ``realtime_pose/assets/lookalike_bundle/``.

A MobileNetV2-0.35 part-affinity network for crowds of identical animals
(:mod:`realtime_pose.trainers.synthetic_crowd`, 320×240 frames, up to 8 animals), trained from
scratch by ``realtime-pose train --no-identities`` and exported by the ONNX exporter::

    python -m realtime_pose.trainers.make_lookalike_bundle --steps 6000

1. Renders crowd clips of 2, 4 and 8 animals (``--seeds`` seeds each, ``--clip-frames`` frames)
   and one held-out clip per count (seed :data:`HELD_OUT_SEED`), keeps every ``--every``-th
   frame (consecutive frames are near copies) and joins them into one video with SLEAP labels
   (untracked instances: nothing names the animals): the training frames first, then the
   held-out ones, so ``--train-frames``/``--test-frames`` split them by clip.
2. Trains on it (``--crop``, ``--steps``, ``--scale 1``: the network runs on the 320×240 frame
   as it is); the 8-animal clips make the bundle's slots 8, and crowds of 8 give the network
   crossings and animals touching.
3. Exports it and checks it on clips of seeds it never saw (:data:`UNSEEN_SEEDS`): per
   keypoint, the error of the animals found (matched to the true ones within half a body
   length), the instance recall (:func:`~realtime_pose.trainers.animal_evaluation.instance_recall`)
   and how many found animals are real.

Everything goes to ``--work`` (default ``/tmp/realtime-pose-lookalike``); only ``model.onnx``,
``bundle.json`` and ``README.md`` go to ``--asset-dir``. Training is seeded, but TensorFlow's CPU
kernels are not bit-deterministic, so a regenerated bundle finds the animals as well without
being byte-identical. ``benchmarks/lookalikes.py`` measures its tracking and latency.
"""

from __future__ import annotations

import argparse
import json
import logging
import shutil
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

ASSET_DIR = Path(__file__).resolve().parents[1] / "realtime_pose" / "assets" / "lookalike_bundle"
WIDTH, HEIGHT = 320, 240
ANIMAL_COUNTS = (2, 4, 8)
"""Crowd sizes the network is trained and checked on; the largest is the bundle's slot count."""
HELD_OUT_SEED = 50
"""Seed of the held-out clips of the training project (``evaluation.json``)."""
UNSEEN_SEEDS = (101, 102, 103)
"""Seeds of the clips the finished bundle is checked on."""
FPS = 25.0
"""Frame rate written into the clips (the walk is per frame)."""
CHECK_EVERY = 4
"""The unseen-seed check scores every this-th frame of its clips."""
PCUTOFF = 0.5
"""Likelihood from which a keypoint counts as found (the tracking stage's ``min_likelihood``)."""
RECALL_RADIUS_PX = 10.0
"""Instance recall: half the visible keypoints within this of the truth (a quarter of a body
length at 320×240)."""
DEFAULT_STEPS = 6000
"""About 15 minutes of training at crop 192 on an idle 2-core CPU (0.12–0.15 s/step): on a
busy one, 150 steps took 0.37 s/step here against 0.44 s/step for the single-animal demo
network at the same crop, which trains at 0.117 s/step when the CPU is idle; crop 256 took 1.9×
as long per step. Fewer than the trainer's rule of thumb of 10k steps: it warns."""
DEFAULT_CROP = 192

log = logging.getLogger("make_lookalike_bundle")


@dataclass(frozen=True)
class TrainingLabels:
    """The joined clips :func:`write_training_labels` wrote.

    Attributes
    ----------
    slp
        SLEAP labels on ``video``: every kept frame, one untracked instance per animal in view.
    video
        Lossless FFV1 video of the kept frames, training frames first.
    train_frames, test_frames
        ``(first, last)`` frames of ``video`` to train on and to hold out.
    clips
        What each run of frames is: ``{"animals", "seed", "first", "last", "split"}``.
    """

    slp: Path
    video: Path
    train_frames: tuple[int, int]
    test_frames: tuple[int, int]
    clips: list[dict[str, Any]]


def keypoints_in_frame(keypoints: np.ndarray, width: int, height: int) -> np.ndarray:
    """``keypoints`` ``[..., 2]`` with NaN where the nearest pixel is outside the frame (what
    labels of the frame can hold)."""
    pixel = np.floor(keypoints + 0.5)
    inside = (
        (pixel[..., 0] >= 0)
        & (pixel[..., 0] < width)
        & (pixel[..., 1] >= 0)
        & (pixel[..., 1] < height)
    )
    return np.where(inside[..., None], keypoints, np.nan)


def write_training_labels(
    folder: Path,
    counts: Sequence[int],
    seeds: Sequence[int],
    clip_frames: int,
    every: int,
    held_out_seed: int = HELD_OUT_SEED,
) -> TrainingLabels:
    """Render crowd clips of ``counts`` animals (each of ``seeds``, ``clip_frames`` frames, and
    one held-out clip of ``held_out_seed`` with half as many) and join every ``every``-th frame
    of them into one video with SLEAP labels.

    Parameters
    ----------
    folder
        Created; the clips go to ``folder/clips``, the joined video and labels to ``folder``.
    counts
        Animals per clip.
    seeds
        Seeds of the training clips (per count).
    clip_frames
        Frames rendered per training clip.
    every
        Keep every this-th frame (``>= 1``).
    held_out_seed
        Seed of the held-out clips.

    Returns
    -------
    TrainingLabels
        The paths and the frame ranges of the split.
    """
    import cv2
    import sleap_io as sio

    from realtime_pose.sources.synthetic_scene import KEYPOINTS, SKELETON
    from realtime_pose.trainers.synthetic_crowd import load_crowd_truth, write_crowd_clip

    if every < 1 or clip_frames < every:
        raise ValueError(f"need clip_frames >= every >= 1, got {clip_frames} and {every}")
    folder.mkdir(parents=True, exist_ok=True)
    video_path = folder / "crowds.avi"
    skeleton = sio.Skeleton(nodes=list(KEYPOINTS), edges=[list(e) for e in SKELETON])
    video = sio.Video(filename=str(video_path), open_backend=False)
    plan = [("train", n, s, clip_frames) for n in counts for s in seeds]
    plan += [("test", n, held_out_seed, max(every, clip_frames // 2)) for n in counts]
    writer = cv2.VideoWriter(str(video_path), cv2.VideoWriter_fourcc(*"FFV1"), FPS, (WIDTH, HEIGHT))
    if not writer.isOpened():
        raise RuntimeError(f"OpenCV cannot write FFV1 video to {video_path}")
    frames: list[Any] = []
    clips: list[dict[str, Any]] = []
    try:
        for split, n, seed, length in plan:
            clip = write_crowd_clip(
                folder / "clips" / f"{split}_n{n}_s{seed}", n, length, WIDTH, HEIGHT, seed, FPS
            )
            truth = keypoints_in_frame(load_crowd_truth(clip.truth).keypoints, WIDTH, HEIGHT)
            first = len(frames)
            capture = cv2.VideoCapture(str(clip.video))
            try:
                for f in range(length):
                    ok, image = capture.read()
                    if not ok:
                        raise RuntimeError(f"{clip.video}: cannot read frame {f}")
                    if f % every:
                        continue
                    writer.write(image)
                    instances = [
                        sio.Instance.from_numpy(points, skeleton)
                        for points in truth[f]
                        if np.isfinite(points).any()
                    ]
                    frames.append(
                        sio.LabeledFrame(video=video, frame_idx=len(frames), instances=instances)
                    )
            finally:
                capture.release()
            clips.append(
                {
                    "split": split,
                    "animals": n,
                    "seed": seed,
                    "first": first,
                    "last": len(frames) - 1,
                }
            )
            log.info(
                "clip %s: %d animals, seed %d, %d frames kept", split, n, seed, len(frames) - first
            )
    finally:
        writer.release()
    labels = sio.Labels(labeled_frames=frames, videos=[video], skeletons=[skeleton])
    slp = folder / "crowds.slp"
    sio.save_slp(labels, str(slp))
    test_first = min(c["first"] for c in clips if c["split"] == "test")
    return TrainingLabels(
        slp, video_path, (0, test_first - 1), (test_first, len(frames) - 1), clips
    )


def body_length_px(truth: np.ndarray) -> float:
    """Median snout-to-tailbase distance of the animals in ``truth`` ``[F, A, K, 2]``."""
    from realtime_pose.sources.synthetic_scene import KEYPOINTS

    d = truth[:, :, KEYPOINTS.index("snout")] - truth[:, :, KEYPOINTS.index("tailbase")]
    return float(np.nanmedian(np.hypot(d[..., 0], d[..., 1])))


def match_animals(pred: np.ndarray, truth: np.ndarray, match_px: float) -> np.ndarray:
    """``[F, A]``: the predicted animal matched to each true one (−1: none), by the Hungarian
    method on the mean distance of the keypoints both show, pairs farther than ``match_px``
    left out.

    Parameters
    ----------
    pred
        ``[F, S, K, 3]`` x, y, likelihood; keypoints below :data:`PCUTOFF` are not shown.
    truth
        ``[F, A, K, 2]``, NaN where not visible.
    match_px
        Largest mean keypoint distance of a match.
    """
    from scipy.optimize import linear_sum_assignment

    from realtime_pose.offline.track_metrics import keypoint_distance_matrix

    shown = np.where((pred[..., 2] >= PCUTOFF)[..., None], pred[..., :2], np.nan)
    out = np.full(truth.shape[:2], -1, np.int64)
    for f in range(len(truth)):
        cost = keypoint_distance_matrix(truth[f], shown[f], match_px)
        if not np.isfinite(cost).any():
            continue
        rows, cols = linear_sum_assignment(np.where(np.isfinite(cost), cost, 1e9))
        for a, s in zip(rows, cols, strict=True):
            if np.isfinite(cost[a, s]):
                out[f, a] = s
    return out


def detection_figures(
    pred: np.ndarray, truth: np.ndarray, match_px: float, keypoints: Sequence[str]
) -> dict[str, Any]:
    """How well a look-alike network finds the animals of ``truth``.

    Parameters
    ----------
    pred
        ``[F, S, K, 3]`` the estimator's slots (x, y, likelihood).
    truth
        ``[F, A, K, 2]`` the visible keypoints (NaN elsewhere).
    match_px
        Largest mean keypoint distance of a predicted animal matched to a true one.
    keypoints
        The ``K`` names.

    Returns
    -------
    dict
        ``instance_recall`` (:func:`~realtime_pose.trainers.animal_evaluation.instance_recall`
        at :data:`RECALL_RADIUS_PX`), ``matched_share`` (true animals with two or more visible
        keypoints that some found animal matched), ``found_precision`` (found animals, two or
        more keypoints at :data:`PCUTOFF`, that match a true one), and over the visible keypoints
        of matched animals: ``error_px`` (mean, median, p90), ``pck5``, ``pck10`` (missed
        keypoints count as wrong), ``keypoint_found`` (share at :data:`PCUTOFF`) and
        ``per_keypoint`` (the same by name).
    """
    from realtime_pose.trainers.animal_evaluation import instance_recall

    assignment = match_animals(pred, truth, match_px)
    F = truth.shape[0]
    frame_idx, animal_idx = np.nonzero(assignment >= 0)
    matched_pred = pred[frame_idx, assignment[frame_idx, animal_idx]]  # [M, K, 3]
    matched_truth = truth[frame_idx, animal_idx]  # [M, K, 2]
    visible = np.isfinite(matched_truth[..., 0])
    found = visible & (matched_pred[..., 2] >= PCUTOFF)
    error = np.hypot(*(matched_pred[..., :2] - matched_truth).transpose(2, 0, 1))
    error = np.where(found, error, np.inf)  # a missed keypoint is never within a radius

    def summary(err: np.ndarray, vis: np.ndarray, hit: np.ndarray) -> dict[str, Any]:
        seen = err[hit]
        return {
            "keypoints": int(vis.sum()),
            "mean_error_px": float(np.mean(seen)) if len(seen) else None,
            "median_error_px": float(np.median(seen)) if len(seen) else None,
            "p90_error_px": float(np.percentile(seen, 90)) if len(seen) else None,
            "pck5": float(np.mean(err[vis] <= 5.0)) if vis.any() else None,
            "pck10": float(np.mean(err[vis] <= 10.0)) if vis.any() else None,
            "keypoint_found": float(hit.sum() / vis.sum()) if vis.any() else None,
        }

    countable = np.isfinite(truth[..., 0]).sum(axis=2) >= 2
    recall = instance_recall(pred, truth, PCUTOFF, RECALL_RADIUS_PX)  # NaN: no true animal
    found_animals = (pred[..., 2] >= PCUTOFF).sum(axis=2) >= 2
    matched_found = found_animals[frame_idx, assignment[frame_idx, animal_idx]].sum()
    return {
        "frames": int(F),
        "true_animals": int(countable.sum()),
        "instance_recall": None if not np.isfinite(recall) else recall,
        "matched_share": float((countable & (assignment >= 0)).sum() / max(1, countable.sum())),
        "found_animals": int(found_animals.sum()),
        "found_precision": float(matched_found / max(1, found_animals.sum())),
        **summary(error, visible, found),
        "per_keypoint": {
            name: summary(error[:, k], visible[:, k], found[:, k])
            for k, name in enumerate(keypoints)
        },
    }


def unseen_check(
    bundle_dir: Path,
    folder: Path,
    seeds: Sequence[int],
    counts: Sequence[int],
    frames: int,
) -> dict[str, Any]:
    """:func:`detection_figures` of a bundle on ``frames`` frames (every
    :data:`CHECK_EVERY`-th) of crowd clips of each of ``seeds`` and ``counts``, by count and
    overall, matched within half a body length."""
    import cv2

    from realtime_pose.sources.synthetic_scene import KEYPOINTS
    from realtime_pose.trainers.evaluate import bundle_predictor
    from realtime_pose.trainers.synthetic_crowd import load_crowd_truth, write_crowd_clip

    predict, bundle = bundle_predictor(bundle_dir, {"threads": 2, "spinning": False})
    slots, K = len(bundle.meta.animals.names), len(KEYPOINTS)
    by_count: dict[int, tuple[list[np.ndarray], list[np.ndarray]]] = {}
    lengths: list[float] = []
    for n in counts:
        preds, truths = by_count.setdefault(n, ([], []))
        for seed in seeds:
            clip = write_crowd_clip(
                folder / f"n{n}_s{seed}", n, frames * CHECK_EVERY, WIDTH, HEIGHT, seed, FPS
            )
            truth = load_crowd_truth(clip.truth)
            lengths.append(body_length_px(truth.keypoints))
            visible = np.where(truth.visible[..., None], truth.keypoints, np.nan)
            capture = cv2.VideoCapture(str(clip.video))
            try:
                for f in range(frames * CHECK_EVERY):
                    ok, image = capture.read()
                    if not ok:
                        raise RuntimeError(f"{clip.video}: cannot read frame {f}")
                    if f % CHECK_EVERY == 0:
                        preds.append(predict(image[..., ::-1]).reshape(slots, K, 3))
                        truths.append(visible[f])
            finally:
                capture.release()
    length = float(np.median(lengths))
    match_px = 0.5 * length
    result: dict[str, Any] = {
        "seeds": list(seeds),
        "frames_per_clip": frames,
        "frame_spacing": CHECK_EVERY,
        "body_length_px": length,
        "match_px": match_px,
        "recall_radius_px": RECALL_RADIUS_PX,
        "pcutoff": PCUTOFF,
        "by_animals": {},
    }
    all_pred, all_truth = [], []
    for n, (preds, truths) in by_count.items():
        pred = np.stack(preds)
        # the truth padded to the slots, so every count stacks into one array
        truth = np.full((len(truths), slots, K, 2), np.nan)
        truth[:, :n] = np.stack(truths)
        result["by_animals"][str(n)] = detection_figures(pred, truth[:, :n], match_px, KEYPOINTS)
        all_pred.append(pred)
        all_truth.append(truth)
    result["overall"] = detection_figures(
        np.concatenate(all_pred), np.concatenate(all_truth), match_px, KEYPOINTS
    )
    return result


def _px(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2f} px"


def _share(value: float | None) -> str:
    return "n/a" if value is None or not np.isfinite(value) else f"{value:.3f}"


def _row(label: str, figures: dict[str, Any]) -> str:
    return (
        f"| {label} | {figures['frames']} | {_share(figures['instance_recall'])} | "
        f"{_share(figures['found_precision'])} | {_px(figures['mean_error_px'])} | "
        f"{_px(figures['median_error_px'])} | {_px(figures['p90_error_px'])} | "
        f"{_share(figures['pck5'])} | {_share(figures['keypoint_found'])} |"
    )


def _readme(
    command: str,
    config: dict[str, Any],
    check: dict[str, Any],
    labels: TrainingLabels,
    size: int,
    total_s: float,
    clip_frames: int,
    every: int,
) -> str:
    rows = [_row(f"{n} animals", f) for n, f in check["by_animals"].items()]
    rows.append(_row("all", check["overall"]))
    per_kp = check["overall"]["per_keypoint"]
    kp_rows = [
        f"| {name} | {_px(f['median_error_px'])} | {_px(f['p90_error_px'])} | "
        f"{_share(f['pck5'])} | {_share(f['keypoint_found'])} |"
        for name, f in per_kp.items()
    ]
    train_clips = [c for c in labels.clips if c["split"] == "train"]
    seeds = sorted({c["seed"] for c in train_clips})
    held_out = _px(config.get("test_error_px"))
    seeds_seen = ", ".join(str(seed) for seed in check["seeds"])
    nl = "\n"
    header = (
        "| crowd | frames | instance recall | found animals real | mean | median | 90th pct "
        "| PCK@5px | keypoints found |\n|---|---|---|---|---|---|---|---|---|"
    )
    return f"""# Look-alike bundle

A MobileNetV2-0.35 part-affinity network for crowds of identical animals: the synthetic arena
of `realtime_pose.trainers.synthetic_crowd` (keypoints `snout`, `leftear`, `rightear`,
`tailbase`; 320×240 frames; 2 to 8 animals of one coat and size that cross, touch and leave the
frame), trained from scratch by `realtime-pose train --no-identities` and exported by
`realtime-pose export`. The estimator groups its peaks into up to 8 animals (slots `animal0` …
`animal7`) and the look-alike tracking stage keeps each followed animal in one slot. It lets the
tracking of unmarked animals be tested and benchmarked (`benchmarks/lookalikes.py`) with no
labels of your own. It knows only the synthetic crowds, not real animals.

## Finding the animals

{check["frames_per_clip"]} frames (every {check["frame_spacing"]}th) of one clip per crowd size and
seed ({seeds_seen}; seeds never seen in training). A found animal (2+ keypoints at
likelihood ≥ {check["pcutoff"]}) is matched to a true one within half a body length
({check["match_px"]:.1f} px); errors are over the visible keypoints (in the frame, not under
another animal) of matched animals; PCK@5px and *found* count a keypoint the network missed as
wrong. Instance recall: half the visible keypoints within {check["recall_radius_px"]:g} px.

{header}
{nl.join(rows)}

| keypoint (all crowds) | median | 90th pct | PCK@5px | found |
|---|---|---|---|---|
{nl.join(kp_rows)}

Held-out clips of the training project (seed {HELD_OUT_SEED}): {held_out} mean error.

## Training

{len(train_clips)} clips (2, 4 and 8 animals × seeds {", ".join(map(str, seeds))}, {clip_frames} \
frames each), every
{every}th frame kept: {config["n_train"]} training frames, {config.get("n_test", 0)} held out.
{config["steps"]} steps of batch {config["batch_size"]} at crop {config["crop_size"]} in \
{config["train_wall_time_s"]:.0f} s on a 2-core CPU, from scratch, seed {config["seed"]};
`model.onnx` is {size / 1e6:.2f} MB.

## Regenerate

From the repository root, with the `train` and `export` extras installed (about
{total_s / 60 + 1:.0f} minutes):

```
{command}
```

Training is seeded (data, split, initialisation, augmentation), but TensorFlow's CPU kernels
are not bit-deterministic, so a regenerated bundle finds the animals as well without being
byte-identical.
"""


def main(argv: list[str] | None = None) -> int:
    """Render the crowds, train, export, check on unseen seeds and install the bundle."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--steps", type=int, default=DEFAULT_STEPS, help=f"training steps (default {DEFAULT_STEPS})"
    )
    parser.add_argument(
        "--crop", type=int, default=DEFAULT_CROP, help="training crop side in px (default 192)"
    )
    parser.add_argument("--batch-size", type=int, default=8, help="crops per step (default 8)")
    parser.add_argument("--seeds", type=int, default=3, help="training clips per crowd size")
    parser.add_argument(
        "--clip-frames", type=int, default=1000, help="frames rendered per training clip"
    )
    parser.add_argument("--every", type=int, default=4, help="keep every N-th rendered frame")
    parser.add_argument(
        "--check-frames", type=int, default=100, help="frames scored per unseen clip"
    )
    parser.add_argument("--seed", type=int, default=0, help="training seed")
    parser.add_argument("--work", type=Path, default=Path("/tmp/realtime-pose-lookalike"))
    parser.add_argument(
        "--asset-dir", type=Path, default=ASSET_DIR, help="where the bundle is installed"
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    t_start = time.monotonic()

    from realtime_pose.cli import main as cli
    from realtime_pose.exporters.keras_onnx import export_bundle

    work = args.work
    if work.exists():
        shutil.rmtree(work)
    labels = write_training_labels(
        work / "data", ANIMAL_COUNTS, range(args.seeds), args.clip_frames, args.every
    )
    train_dir = work / "train"
    (a, b), (c, d) = labels.train_frames, labels.test_frames
    code = cli(
        [
            "train", str(labels.slp), "--no-identities", "-o", str(train_dir),
            "--steps", str(args.steps), "--crop", str(args.crop),
            "--batch-size", str(args.batch_size), "--weights", "none", "--scale", "1",
            "--train-frames", f"{a}-{b}", "--test-frames", f"{c}-{d}", "--seed", str(args.seed),
        ]
    )  # fmt: skip
    if code != 0:
        print(f"training failed (exit {code}); see the log above", file=sys.stderr)
        return code
    config = json.loads((train_dir / "train_config.json").read_text())
    staging = work / "bundle"
    export_bundle(train_dir, staging, name="lookalikes-synthetic-mobilenet_v2_0.35")
    check = unseen_check(staging, work / "check", UNSEEN_SEEDS, ANIMAL_COUNTS, args.check_frames)
    (work / "unseen_check.json").write_text(json.dumps(check, indent=2) + "\n")
    overall = check["overall"]
    log.info(
        "unseen crowds: instance recall %s, median error %s, PCK@5 %s",
        _share(overall["instance_recall"]), _px(overall["median_error_px"]),
        _share(overall["pck5"]),
    )  # fmt: skip
    args.asset_dir.mkdir(parents=True, exist_ok=True)
    for name in ("model.onnx", "bundle.json"):
        shutil.copyfile(staging / name, args.asset_dir / name)
    command = (
        f"python -m realtime_pose.trainers.make_lookalike_bundle --steps {args.steps} "
        f"--crop {args.crop} --batch-size {args.batch_size} --seeds {args.seeds} "
        f"--clip-frames {args.clip_frames} --every {args.every} "
        f"--check-frames {args.check_frames} --seed {args.seed}"
    )
    size = (args.asset_dir / "model.onnx").stat().st_size
    total_s = time.monotonic() - t_start
    readme = _readme(command, config, check, labels, size, total_s, args.clip_frames, args.every)
    (args.asset_dir / "README.md").write_text(readme)
    print(
        f"look-alike bundle in {args.asset_dir}: {size / 1e6:.2f} MB, unseen crowds: instance "
        f"recall {_share(overall['instance_recall'])}, median error "
        f"{_px(overall['median_error_px'])}"
        f" ({total_s / 60:.1f} min)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
