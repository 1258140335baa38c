"""Regenerate the demo bundle shipped in ``realtime_pose/assets/demo_bundle/``.

A MobileNetV2-0.35 trained by this package's trainer on frames of the synthetic scene
(:mod:`realtime_pose.sources.synthetic_scene`, 320×240), exported with the ONNX exporter and
checked on frames of :class:`~realtime_pose.sources.synthetic_scene.SyntheticScene` videos it
never saw (other seeds)::

    python -m realtime_pose.trainers.make_demo_bundle --minutes 10 --seed 0

The project, training output and log go to ``--work`` (default ``/tmp/realtime-pose-demo``);
only ``model.onnx``, ``bundle.json`` and ``README.md`` are written to the assets folder.
Training is seeded (data, split, initialisation, augmentation), but TensorFlow's CPU kernels
are not bit-deterministic and a time budget ends at a machine-dependent step, so a regenerated
bundle tracks as well but is not byte-identical.
"""

from __future__ import annotations

import argparse
import json
import logging
import shutil
import sys
from pathlib import Path
from typing import Any

import numpy as np

ASSET_DIR = Path(__file__).resolve().parents[1] / "realtime_pose" / "assets" / "demo_bundle"
WIDTH, HEIGHT = 320, 240

log = logging.getLogger("make_demo_bundle")


def scene_error(bundle_dir: Path, seeds: tuple[int, ...], frames: int = 100) -> dict[str, Any]:
    """Keypoint error of a bundle on ``frames`` frames each of unseen synthetic-scene videos."""
    from realtime_pose.sources.synthetic_scene import KEYPOINTS, SyntheticScene
    from realtime_pose.trainers.evaluate import bundle_predictor, pose_metrics

    predict, _ = bundle_predictor(bundle_dir)
    preds, labels = [], []
    for seed in seeds:
        scene = SyntheticScene(WIDTH, HEIGHT, seed=seed)
        for i in range(0, frames * 20, 20):  # 0.2 s apart at 100 fps
            image_bgr, kp = scene.frame(i)
            preds.append(predict(np.ascontiguousarray(image_bgr[..., ::-1])))
            labels.append(kp)
    return pose_metrics(np.stack(preds), np.stack(labels), KEYPOINTS, pcutoff=0.6)


def _readme(command: str, config: dict[str, Any], scene: dict[str, Any], size: int) -> str:
    held_out = _px(config.get("test_error_px"))
    return f"""# Demo bundle

A MobileNetV2-0.35 pose network for the synthetic arena scene of
`realtime_pose.sources.synthetic_scene` (keypoints `snout`, `leftear`, `rightear`, `tailbase`;
320×240 frames), trained from scratch by `realtime-pose train` and exported by `realtime-pose
export`. With the synthetic frame source it lets the live loop, the stream and the benchmarks run
with no camera and no model of your own. It knows only the synthetic scene, not real animals.

## Accuracy

| frames | mean | median | 90th pct | PCK@5px | PCK@10px |
|---|---|---|---|---|---|
| {scene["n_images"]} frames of unseen scene videos (seeds {scene["seeds"]}) | \
{_px(scene["mean_error_px"])} | {_px(scene["median_error_px"])} | {_px(scene["p90_error_px"])} | \
{scene["pck5"]:.3f} | {scene["pck10"]:.3f} |

Held-out frames of the training project: {held_out} mean error.
Training: {config["steps"]} steps in {config["train_wall_time_s"]:.0f} s on a 2-core CPU,
{config["n_train"]} training frames, seed {config["seed"]}; `model.onnx` is {size / 1e6:.2f} MB.

## Regenerate

From the repository root, with the `train` and `export` extras installed (about
{config["total_wall_time_s"] / 60 + 1:.0f} minutes):

```
{command}
```

Training is seeded (data, split, initialisation, augmentation), but TensorFlow's CPU kernels
are not bit-deterministic and a time budget ends at a machine-dependent step, so a regenerated
bundle tracks as well without being byte-identical.
"""


def _px(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2f} px"


def main(argv: list[str] | None = None) -> int:
    """Build the synthetic project, train, export, measure and install the demo bundle."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    budget = parser.add_mutually_exclusive_group()
    budget.add_argument("--minutes", type=float, default=10.0, help="training time budget")
    budget.add_argument("--steps", type=int, help="training step budget (instead of minutes)")
    parser.add_argument("--frames", type=int, default=1000, help="labelled synthetic frames")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--work", type=Path, default=Path("/tmp/realtime-pose-demo"))
    parser.add_argument("--output", type=Path, default=ASSET_DIR, help="bundle folder")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")

    from realtime_pose.exporters.keras_onnx import export_bundle
    from realtime_pose.trainers.synthetic_project import write_synthetic_project
    from realtime_pose.trainers.train import TrainSettings, train

    work = args.work
    if work.exists():
        shutil.rmtree(work)
    project = write_synthetic_project(work / "project", args.frames, WIDTH, HEIGHT, seed=args.seed)
    log.info("wrote %d synthetic frames to %s", args.frames, project)
    config = train(
        TrainSettings(
            project=project,
            output=work / "train",
            net="mobilenet_v2_0.35",
            minutes=None if args.steps else args.minutes,
            steps=args.steps,
            seed=args.seed,
        )
    )
    staging = work / "bundle"
    export_bundle(work / "train", staging, name="demo-synthetic-mobilenet_v2_0.35")
    seeds = (args.seed + 101, args.seed + 102, args.seed + 103)
    scene = scene_error(staging, seeds)
    scene["seeds"] = list(seeds)
    (work / "scene_evaluation.json").write_text(json.dumps(scene, indent=2) + "\n")
    log.info(
        "unseen synthetic videos: mean error %.2f px, PCK@5 %.3f", scene["mean_error_px"],
        scene["pck5"],
    )  # fmt: skip
    args.output.mkdir(parents=True, exist_ok=True)
    for name in ("model.onnx", "bundle.json"):
        shutil.copyfile(staging / name, args.output / name)
    budget = f"--steps {args.steps}" if args.steps else f"--minutes {args.minutes:g}"
    command = (
        f"python -m realtime_pose.trainers.make_demo_bundle {budget} --frames {args.frames} "
        f"--seed {args.seed}"
    )
    size = (args.output / "model.onnx").stat().st_size
    (args.output / "README.md").write_text(_readme(command, config, scene, size))
    print(
        f"demo bundle in {args.output}: {size / 1e6:.2f} MB, unseen-video error "
        f"{scene['mean_error_px']:.2f} px"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
