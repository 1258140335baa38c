"""``realtime-pose train``: train a pose network on a DeepLabCut project (needs TensorFlow)."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

log = logging.getLogger(__name__)

_NETS = ("mobilenet_v2_0.35", "mobilenet_v2_0.5", "mobilenet_v2_0.75", "mobilenet_v2_1.0",
         "resnet_50")  # fmt: skip


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``train`` sub-command."""
    parser = subparsers.add_parser(
        "train",
        help="train a pose network on a DeepLabCut project (TensorFlow)",
        description=(
            "Train a DeepLabCut-style network (stride 8, score maps + location refinement) from "
            "scratch on the labelled frames of PROJECT_DIR. Writes OUTPUT/model.keras, "
            "train_config.json, split.json (the held-out frames), evaluation.json and "
            "checkpoints; export the result with 'realtime-pose export OUTPUT --output BUNDLE'."
        ),
    )
    parser.add_argument("project", metavar="PROJECT_DIR", help="DeepLabCut project folder")
    parser.add_argument("--output", "-o", required=True, metavar="DIR", help="output folder")
    parser.add_argument("--net", default="mobilenet_v2_0.35", choices=_NETS, help="backbone")
    budget = parser.add_mutually_exclusive_group(required=True)
    budget.add_argument("--steps", type=int, help="train for N steps")
    budget.add_argument("--minutes", type=float, help="train for M minutes of wall time")
    parser.add_argument("--batch-size", type=int, default=8, help="crops per step (default 8)")
    parser.add_argument(
        "--crop", type=int, help="square training-crop side in px (default: from the animal size)"
    )
    parser.add_argument(
        "--train-fraction",
        type=float,
        help="fraction of labelled frames to train on (default: config.yaml TrainingFraction)",
    )
    parser.add_argument("--seed", type=int, default=0, help="split, initialisation, augmentation")
    parser.add_argument(
        "--learning-rate",
        type=float,
        default=None,
        help="peak Adam rate (default 2e-3 for MobileNetV2, 1e-3 for ResNet-50)",
    )
    parser.add_argument(
        "--weights",
        default="imagenet",
        metavar="imagenet|none|FILE",
        help=(
            "where the backbone starts: 'imagenet' (default; Keras fetches keras.applications' "
            "weights once into its cache, and where they cannot be had training starts from "
            "scratch with a warning), 'none' (from scratch), or a local '..._no_top.h5'"
        ),
    )
    parser.add_argument(
        "--resume", action="store_true", help="continue from OUTPUT/checkpoint to the same budget"
    )
    parser.add_argument(
        "--targets",
        choices=("disk", "gaussian"),
        default="disk",
        help="score-map targets: DeepLabCut's disk (default) or a Gaussian",
    )
    parser.add_argument(
        "--no-flip", action="store_true", help="never mirror (default: mirror when sides pair)"
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Train; exit 0 on success, 2 on unusable input."""
    from pydantic import ValidationError

    from realtime_pose.trainers.project import ProjectError

    try:
        from realtime_pose.trainers.train import TrainSettings, train

        settings = TrainSettings(
            project=Path(args.project),
            output=Path(args.output),
            net=args.net,
            steps=args.steps,
            minutes=args.minutes,
            batch_size=args.batch_size,
            crop_size=args.crop,
            train_fraction=args.train_fraction,
            seed=args.seed,
            learning_rate=args.learning_rate,
            weights=_weights(args.weights),
            resume=args.resume,
            flip=False if args.no_flip else None,
            target_kind=args.targets,
        )
        config = train(settings)
    except ValidationError as exc:
        for problem in exc.errors():
            field = ".".join(str(p) for p in problem["loc"]) or "options"
            print(f"realtime-pose train: {field}: {problem['msg']}", file=sys.stderr)
        return 2
    except (ImportError, ProjectError, ValueError) as exc:
        print(f"realtime-pose train: {exc}", file=sys.stderr)
        return 2
    err = config.get("test_error_px")
    print(
        f"trained {config['net']} for {config['steps']} steps in "
        f"{config['train_wall_time_s']:.0f} s; test error "
        + ("n/a (no held-out frames)" if err is None else f"{err:.2f} px")
        + f"; output in {args.output}"
    )
    return 0


def _weights(value: str) -> str | Path | None:
    """``--weights``: 'imagenet', 'none' (None) or a file."""
    if value.lower() == "none":
        return None
    return "imagenet" if value.lower() == "imagenet" else Path(value)
