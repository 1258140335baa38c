"""``realtime-pose import-dlc``: a DeepLabCut exported model → a checked ONNX bundle."""

from __future__ import annotations

import argparse
import sys


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``import-dlc`` sub-command."""
    parser = subparsers.add_parser(
        "import-dlc",
        help="convert a DeepLabCut exported model (pose_cfg.yaml + .pb) to a bundle",
        description=(
            "Convert a DeepLabCut TensorFlow export folder (pose_cfg.yaml and a frozen "
            "snapshot-N.pb, as written by deeplabcut.export_model) to a bundle with a uint8 RGB "
            "input, after checking ONNX Runtime against TensorFlow. Nothing is written when "
            "the check fails."
        ),
    )
    parser.add_argument("export_dir", metavar="DLC_EXPORT_DIR", help="DeepLabCut export folder")
    parser.add_argument(
        "--output", "-o", required=True, metavar="BUNDLE_DIR", help="bundle folder to write"
    )
    peaks = parser.add_mutually_exclusive_group()
    peaks.add_argument(
        "--in-graph-peaks",
        dest="in_graph_peaks",
        action="store_true",
        default=None,
        help="output keypoints [1, K, 3] (default: as the DeepLabCut export was made)",
    )
    peaks.add_argument(
        "--maps", dest="in_graph_peaks", action="store_false", help="output score/locref maps"
    )
    parser.add_argument("--opset", type=int, default=17, help="ONNX opset, 13-18 (default 17)")
    parser.add_argument(
        "--images",
        nargs="+",
        metavar="IMAGE",
        help="frames for the parity check (default synthetic)",
    )
    parser.add_argument(
        "--tolerance-px", type=float, default=0.01, help="keypoint tolerance, network pixels"
    )
    parser.add_argument("--name", help="bundle name (default the export folder's name)")
    parser.add_argument(
        "--input-size",
        metavar="WxH",
        help="fix the network input to the size the rig feeds (e.g. 320x240): DeepLabCut's "
        "dilated convolutions then convert to single Conv nodes, several times faster",
    )
    parser.add_argument(
        "--overwrite", action="store_true", help="replace a bundle that exists at --output"
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Import; exit 0 on success, 1 when the parity check fails, 2 on unusable input."""
    prog = "realtime-pose import-dlc"
    try:
        from realtime_pose.exporters.dlc_import import DlcImportError, import_dlc
        from realtime_pose.exporters.parity import ParityError
        from realtime_pose.geometry import Size

        bundle = import_dlc(
            args.export_dir,
            args.output,
            opset=args.opset,
            in_graph_peaks=args.in_graph_peaks,
            parity_images=args.images,
            tolerance_px=args.tolerance_px,
            name=args.name,
            overwrite=args.overwrite,
            input_size=Size.parse(args.input_size) if args.input_size else None,
        )
    except ImportError as exc:
        print(f"{prog}: {exc}", file=sys.stderr)
        return 2
    except ParityError as exc:
        print(f"{prog}: {exc}; no bundle was written", file=sys.stderr)
        return 1
    except (DlcImportError, FileExistsError, FileNotFoundError, ValueError) as exc:
        print(f"{prog}: {exc}", file=sys.stderr)
        return 2
    print(f"wrote {bundle.root} ({bundle.meta.name}, {len(bundle.keypoints)} keypoints)")
    for stage, report in bundle.meta.provenance["parity"].items():
        print(
            f"  parity {stage}: keypoints max {report['keypoints_max_px_diff']:.3g} px, "
            f"raw max {max(report['raw_max_abs_diff'].values()):.3g} on {report['frames']} "
            f"frames ({report['source']})"
        )
    return 0
