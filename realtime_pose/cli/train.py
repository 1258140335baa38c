"""``realtime-pose train``: train a pose network on a DeepLabCut project or on multi-animal
labels (SLEAP ``.slp``, multi-animal DeepLabCut tables; needs TensorFlow)."""

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
            "Train a DeepLabCut-style network (stride 8, score maps + location refinement) on "
            "the labelled frames of PROJECT_DIR, its backbone started from ImageNet weights "
            "(see --weights; from scratch where they cannot be had). Writes OUTPUT/model.keras, "
            "train_config.json, split.json (the held-out frames), evaluation.json and "
            "checkpoints; export the result with 'realtime-pose export OUTPUT --output BUNDLE'."
        ),
    )
    parser.add_argument(
        "project",
        metavar="PROJECT",
        help=(
            "a DeepLabCut project folder, or multi-animal labels (SLEAP .slp, DeepLabCut "
            "CollectedData_*.h5/.csv with individuals, or a multi-animal DeepLabCut project "
            "folder): these are converted into OUTPUT/project, with one score map per animal "
            "and bodypart where the labels name each animal the same in every frame (SLEAP "
            "tracks, DeepLabCut 'identity: true'), else as look-alike animals grouped by "
            "part-affinity fields"
        ),
    )
    parser.add_argument(
        "--no-identities",
        action="store_true",
        help=(
            "several animals: treat them as look-alikes even where the labels name them "
            "(tracks, individuals); the names are then used for nothing but scoring"
        ),
    )
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
    parser.add_argument(
        "--scale",
        default="auto",
        metavar="auto|FACTOR",
        help=(
            "resize frames by FACTOR (<= 1) for training and every later use of the model; "
            "'auto' (default) chooses it from the labels: the animal within a 320-px crop, "
            "body parts at least two score-map cells apart (trainers/scale.py)"
        ),
    )
    parser.add_argument(
        "--split", metavar="FILE", help='a split file {"train": [...], "test": [...]} of images'
    )
    parser.add_argument(
        "--train-frames",
        metavar="FIRST-LAST",
        help="labels on a video: train on these video frames (a split by time)",
    )
    parser.add_argument(
        "--test-frames", metavar="FIRST-LAST", help="labels on a video: hold out these frames"
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
        "--from",
        dest="start_from",
        metavar="RUN_OR_BUNDLE",
        help=(
            "fine-tune: start from the weights of an earlier run (its output folder, or a bundle "
            "exported from it) on its training frames plus the frames labelled since (e.g. "
            "corrected captures); its net, input scale and crop are kept, the learning rate is "
            "a quarter of the default, and evaluation.json reports the error on held-out new "
            "frames before and after"
        ),
    )
    parser.add_argument(
        "--holdout-new",
        type=float,
        default=0.25,
        metavar="SHARE",
        help="fine-tuning: the share of the new labelled frames held out (default 0.25)",
    )
    parser.add_argument(
        "--targets",
        choices=("disk", "gaussian"),
        default=None,
        help="score-map targets: DeepLabCut's disk (default), or a Gaussian (the default for "
        "animals that look alike, whose neighbouring peaks a disk would merge)",
    )
    parser.add_argument(
        "--no-flip", action="store_true", help="never mirror (default: mirror when sides pair)"
    )
    parser.add_argument(
        "--rearrange",
        type=float,
        default=None,
        metavar="P",
        help=(
            "several animals: the share of training samples in which each animal is cut out "
            "and put at a random place and heading, so the network must tell them apart by "
            "their looks, not where they sit (default 0.5; 0 turns it off)"
        ),
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Train; exit 0 on success, 2 on unusable input."""
    from pydantic import ValidationError

    from realtime_pose.trainers.project import ProjectError

    try:
        from realtime_pose.trainers.train import TrainSettings, train

        project, split = _project_and_split(args)
        fine_tune = _fine_tune_settings(args)
        settings = TrainSettings(
            project=project,
            split=split,
            scale=None if args.scale == "auto" else _factor(args.scale),
            output=Path(args.output),
            net=args.net,
            steps=args.steps,
            minutes=args.minutes,
            batch_size=args.batch_size,
            crop_size=args.crop,
            train_fraction=args.train_fraction,
            seed=args.seed,
            learning_rate=args.learning_rate,
            weights=_weights(args.weights) if args.start_from is None else None,
            resume=args.resume,
            flip=False if args.no_flip else None,
            rearrange=args.rearrange,
            target_kind=args.targets,
            **fine_tune,
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
    for name, figures in (config.get("fine_tune") or {}).items():
        if isinstance(figures, dict) and "before_px" in figures:
            print(
                f"{name}: {figures['before_px']:.2f} px before, {figures['after_px']:.2f} px "
                f"after ({figures['frames']} frames)"
            )
    err = config.get("test_error_px")
    print(
        f"trained {config['net']} for {config['steps']} steps in "
        f"{config['train_wall_time_s']:.0f} s; test error "
        + ("n/a (no held-out frames)" if err is None else f"{err:.2f} px")
        + f"; output in {args.output}"
    )
    return 0


def _fine_tune_settings(args: argparse.Namespace) -> dict:
    """``--from``: the earlier run's net, and the fine-tuning warm-up."""
    if args.start_from is None:
        return {}
    from realtime_pose.trainers.fine_tune import FINE_TUNE_WARMUP_STEPS, resolve_start

    start = resolve_start(args.start_from)
    if args.net != _NETS[0] and start.config.net and args.net != start.config.net:
        raise ValueError(
            f"--net {args.net}: the run in {start.root} is a {start.config.net}; fine-tuning "
            "keeps its network (drop --net)"
        )
    args.net = start.config.net or args.net
    return {
        "start_from": start.root,
        "holdout_new": args.holdout_new,
        "warmup_steps": FINE_TUNE_WARMUP_STEPS,
    }


def _factor(value: str) -> float:
    try:
        return float(value)
    except ValueError:
        raise ValueError(f"--scale: expected 'auto' or a number, got {value!r}") from None


def _frame_range(value: str | None, option: str) -> tuple[int, int] | None:
    if value is None:
        return None
    first, sep, last = value.partition("-")
    try:
        lo, hi = int(first), int(last)
    except ValueError:
        raise ValueError(f"{option}: expected FIRST-LAST frame numbers, got {value!r}") from None
    if not sep or lo < 0 or hi < lo:
        raise ValueError(f"{option}: expected FIRST-LAST with 0 <= FIRST <= LAST, got {value!r}")
    return lo, hi


def _project_and_split(args: argparse.Namespace) -> tuple[Path, Path | None]:
    """The project folder to train on and the split file, converting multi-animal labels first
    (a labels file, or a multi-animal DeepLabCut project folder)."""
    from realtime_pose.trainers.animal_labels import is_multianimal_project

    source = Path(args.project)
    if source.name == "config.yaml" and source.is_file():
        source = source.parent
    split = None if args.split is None else Path(args.split)
    train_frames = _frame_range(args.train_frames, "--train-frames")
    test_frames = _frame_range(args.test_frames, "--test-frames")
    if not source.is_file() and not (source.is_dir() and is_multianimal_project(source)):
        if train_frames or test_frames:
            raise ValueError("--train-frames/--test-frames split labels on a video (a labels file)")
        if args.no_identities:
            raise ValueError(
                f"--no-identities: {source} is a single-animal project; the option is for "
                "labels of several animals"
            )
        return source, split
    from realtime_pose.trainers.animal_labels import load_animal_labels
    from realtime_pose.trainers.identity_project import (
        choose_decoding,
        write_animal_project,
        write_time_split,
    )

    labels = load_animal_labels(source)
    decoding, reason = choose_decoding(labels, use_identities=not args.no_identities)
    log.info("%s: %s project: %s", source, decoding, reason)
    project = Path(args.output) / "project"
    written = _written_decoding(project)
    if written is None:
        log.info(
            "%s: writing %d labelled frames as a project in %s", source, labels.num_frames, project
        )
        write_animal_project(labels, project, decoding)
    elif written != decoding:
        raise ValueError(
            f"{project}: an earlier run converted the labels for {written}, but now they make "
            f"a {decoding} project; use another --output (or delete {project})"
        )
    if train_frames is not None:
        if split is not None:
            raise ValueError("give either --split or --train-frames, not both")
        if labels.frame_indices is None:
            raise ValueError(
                f"--train-frames: {source} labels image files, not frames of a video; use --split"
            )
        last = int(labels.frame_indices.max())
        test = test_frames or (train_frames[1] + 1, max(last, train_frames[1] + 1))
        split = write_time_split(
            Path(args.output) / "time_split.json", labels.frame_indices, train_frames, test
        )
    return project, split


def _written_decoding(project: Path) -> str | None:
    """The ``animals.decoding`` of a project converted by an earlier run, or ``None``."""
    import yaml

    config_path = project / "config.yaml"
    if not config_path.is_file():
        return None
    config = yaml.safe_load(config_path.read_text()) or {}
    animals = config.get("animals") if isinstance(config, dict) else None
    return str((animals or {}).get("decoding", "identity_channels"))


def _weights(value: str) -> str | Path | None:
    """``--weights``: 'imagenet', 'none' (None) or a file."""
    if value.lower() == "none":
        return None
    return "imagenet" if value.lower() == "imagenet" else Path(value)
