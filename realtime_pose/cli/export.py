"""``realtime-pose export``: a training output folder → a checked ONNX bundle."""

from __future__ import annotations

import argparse
import logging
import sys

log = logging.getLogger(__name__)


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``export`` sub-command."""
    parser = subparsers.add_parser(
        "export",
        help="export a trained Keras model to an ONNX bundle (parity-checked against TF)",
        description=(
            "Convert TRAIN_DIR (model.keras + train_config.json + split.json) to a bundle "
            "folder, after checking that ONNX Runtime reproduces TensorFlow's outputs and "
            "keypoints on the project's test frames. Nothing is written when the check fails."
        ),
    )
    parser.add_argument("train_dir", metavar="TRAIN_DIR", help="training output folder")
    parser.add_argument(
        "--output", "-o", required=True, metavar="BUNDLE_DIR", help="bundle folder to write"
    )
    parser.add_argument(
        "--int8",
        action="store_true",
        help="quantise to int8 for the CPU, calibrated on training frames",
    )
    parser.add_argument(
        "--int8-tolerance-px",
        type=float,
        default=None,
        metavar="PX",
        help=(
            "most mean error int8 may add on the project's labelled test frames, original "
            "pixels (default 0.1); beyond it the fp32 graph is written instead, with a warning"
        ),
    )
    parser.add_argument(
        "--int8-calibration",
        choices=("percentile", "minmax", "entropy"),
        default="percentile",
        help="how --int8 sets activation ranges from the training frames (default percentile)",
    )
    parser.add_argument(
        "--in-graph-peaks",
        action="store_true",
        help="find the peaks inside the graph: output keypoints [1, K, 3] only",
    )
    parser.add_argument(
        "--calibration-frames",
        type=int,
        default=64,
        metavar="N",
        help="training frames used to calibrate --int8 (default 64)",
    )
    parser.add_argument("--opset", type=int, default=17, help="ONNX opset, 13-18 (default 17)")
    parser.add_argument(
        "--tolerance-px",
        type=float,
        default=0.01,
        help="largest keypoint difference TF vs ONNX allowed, network pixels (default 0.01)",
    )
    parser.add_argument("--name", help="bundle name (default <project>-<net>)")
    parser.add_argument(
        "--overwrite", action="store_true", help="replace a bundle that exists at --output"
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Export; exit 0 on success, 1 when the parity check fails, 2 on unusable input."""
    try:
        from realtime_pose.exporters.int8 import DEFAULT_INT8_TOLERANCE_PX
        from realtime_pose.exporters.keras_onnx import export_bundle
        from realtime_pose.exporters.parity import ParityError
        from realtime_pose.trainers.train_output import TrainOutputError

        bundle = export_bundle(
            args.train_dir,
            args.output,
            opset=args.opset,
            in_graph_peaks=args.in_graph_peaks,
            int8=args.int8,
            int8_tolerance_px=(
                DEFAULT_INT8_TOLERANCE_PX
                if args.int8_tolerance_px is None
                else args.int8_tolerance_px
            ),
            int8_calibration=args.int8_calibration,
            tolerance_px=args.tolerance_px,
            max_calibration_frames=args.calibration_frames,
            name=args.name,
            overwrite=args.overwrite,
        )
    except ImportError as exc:
        print(f"realtime-pose export: {exc}", file=sys.stderr)
        return 2
    except ParityError as exc:
        print(f"realtime-pose export: {exc}; no bundle was written", file=sys.stderr)
        return 1
    except (TrainOutputError, FileExistsError, ValueError) as exc:
        print(f"realtime-pose export: {exc}", file=sys.stderr)
        return 2
    parity = bundle.meta.provenance["parity"]
    print(f"wrote {bundle.root} ({bundle.meta.name})")
    for stage, report in parity.items():
        print(
            f"  parity {stage}: keypoints max {report['keypoints_max_px_diff']:.3g} px, "
            f"raw max {max(report['raw_max_abs_diff'].values()):.3g} "
            f"on {report['frames']} frames ({report['source']})"
        )
    provenance = bundle.meta.provenance
    quant = provenance.get("quantization") or provenance.get("int8_refused")
    if quant:
        vs = quant["vs_fp32"]
        print(
            f"  int8 vs fp32: keypoints mean {vs['keypoints_mean_px_diff']:.3g} px, "
            f"max {vs['keypoints_max_px_diff']:.3g} px"
        )
        print(f"  {_held_out_line(quant.get('held_out'), refused='int8_refused' in provenance)}")
    elif args.int8_tolerance_px is not None:
        print("  --int8-tolerance-px has no effect without --int8")
    return 0


def _held_out_line(held_out: dict | None, refused: bool) -> str:
    if held_out is None:
        return "int8 not judged: no labelled test frame of the project was reachable; int8 kept"
    figures = (
        f"mean error on {held_out['frames']} held-out frames fp32 {held_out['fp32_mean_px']:.3g} "
        f"px, int8 {held_out['int8_mean_px']:.3g} px ({held_out['change_px']:+.3g} px, "
        f"tolerance {held_out['tolerance_px']:.3g})"
    )
    if refused:
        return f"int8 REFUSED, fp32 written: {figures}"
    return f"int8 kept: {figures}"
