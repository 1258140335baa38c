"""``realtime-pose evaluate``: error of a trained model or a bundle on labelled frames."""

from __future__ import annotations

import argparse
import sys


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``evaluate`` sub-command."""
    parser = subparsers.add_parser(
        "evaluate",
        help="measure a model's keypoint error on a DeepLabCut project's labelled frames",
        description=(
            "MODEL is a training output folder (needs TensorFlow) or a bundle folder/.zip "
            "(ONNX Runtime only). The train/test split comes from --split-file, else the "
            "training output's split.json, else the bundle's provenance; --split all needs none."
        ),
    )
    parser.add_argument("model", metavar="MODEL", help="training output folder or bundle")
    parser.add_argument("project", metavar="PROJECT_DIR", help="DeepLabCut project folder")
    parser.add_argument("--split", choices=("train", "test", "all"), default="test")
    parser.add_argument("--split-file", help="split.json with the train/test image lists")
    parser.add_argument("--json", dest="json_path", metavar="FILE", help="write metrics as JSON")
    parser.add_argument(
        "--pcutoff", type=float, help="likelihood threshold (default: the project's pcutoff)"
    )
    parser.add_argument(
        "--plot", metavar="PNG", help="draw the worst frames (by mean error): predictions vs labels"
    )
    parser.add_argument(
        "--overwrite", action="store_true", help="replace --json/--plot files that exist"
    )
    parser.add_argument(
        "--input-size",
        metavar="WxH",
        help="for a bundle: the network input for a whole frame, as a run config's input_size "
        "(errors stay in frame pixels; default: the bundle's training scale)",
    )
    parser.add_argument(
        "--engine",
        metavar="SECTION",
        help="for a bundle: the engine to run it on, as a run config's engine: section in "
        "YAML, e.g. '{kind: openvino, precision: bf16}' (default: ONNX Runtime, CPU)",
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Evaluate and print a summary; exit 0 on success, 2 on unusable input."""
    from realtime_pose.bundle import BundleError
    from realtime_pose.engines import EngineError, parse_engine_section
    from realtime_pose.geometry import Size
    from realtime_pose.trainers.evaluate import evaluate, format_metrics
    from realtime_pose.trainers.project import ProjectError

    try:
        engine = parse_engine_section(args.engine)
        input_size = Size.parse(args.input_size) if args.input_size else None
        metrics = evaluate(
            args.model,
            args.project,
            split=args.split,
            split_file=args.split_file,
            pcutoff=args.pcutoff,
            json_path=args.json_path,
            plot_path=args.plot,
            overwrite=args.overwrite,
            engine=engine,
            input_size=input_size,
        )
    except (
        ImportError,
        ProjectError,
        BundleError,
        EngineError,
        ValueError,
        FileNotFoundError,
    ) as exc:
        print(f"realtime-pose evaluate: {exc}", file=sys.stderr)
        return 2
    print(format_metrics(metrics))
    if args.json_path:
        print(f"wrote {args.json_path}")
    if args.plot:
        print(f"wrote {args.plot}")
    return 0
