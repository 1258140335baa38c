"""``realtime-pose import-dlc``: a DeepLabCut model → a checked ONNX bundle.

Dispatches on what it is given: a DeepLabCut 2 TensorFlow export folder (``pose_cfg.yaml`` and a
frozen ``.pb``), or a DeepLabCut 3 PyTorch model (an exported ``.pt``, a training
``snapshot-*.pt`` beside its ``pytorch_config.yaml``, or the folder holding either).
"""

from __future__ import annotations

import argparse
import sys


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``import-dlc`` sub-command."""
    parser = subparsers.add_parser(
        "import-dlc",
        help="convert a DeepLabCut model (TensorFlow export or PyTorch .pt) to a bundle",
        description=(
            "Convert a DeepLabCut model to a bundle with a uint8 RGB input, after checking ONNX "
            "Runtime against the original framework. Accepts a DeepLabCut 2 TensorFlow export "
            "folder (pose_cfg.yaml and a frozen snapshot-N.pb, checked against TensorFlow), or "
            "a DeepLabCut 3 model: an exported .pt (deeplabcut.export_model), a training "
            "snapshot-*.pt beside its pytorch_config.yaml, or the folder holding either "
            "(checked against PyTorch; needs the dlc3 extra). Nothing is written when the "
            "check fails."
        ),
    )
    parser.add_argument(
        "export_dir",
        metavar="DLC_MODEL",
        help="TensorFlow export folder, DeepLabCut 3 .pt, or a folder with pytorch_config.yaml",
    )
    parser.add_argument(
        "--output", "-o", required=True, metavar="BUNDLE_DIR", help="bundle folder to write"
    )
    peaks = parser.add_mutually_exclusive_group()
    peaks.add_argument(
        "--in-graph-peaks",
        dest="in_graph_peaks",
        action="store_true",
        default=None,
        help="output keypoints [1, K, 3] (default: as a TensorFlow export was made; maps for "
        "DeepLabCut 3)",
    )
    peaks.add_argument(
        "--maps", dest="in_graph_peaks", action="store_false", help="output score/locref maps"
    )
    parser.add_argument("--opset", type=int, default=17, help="ONNX opset, 13-18 (default 17)")
    parser.add_argument(
        "--images",
        nargs="+",
        metavar="IMAGE",
        help="frames for the parity check (default: a DeepLabCut 3 project's labelled frames "
        "when reachable, else synthetic)",
    )
    parser.add_argument(
        "--tolerance-px",
        type=float,
        default=None,
        help="keypoint tolerance, network pixels (default 0.01 TensorFlow, 0.001 DeepLabCut 3)",
    )
    parser.add_argument("--name", help="bundle name (default the export's name)")
    parser.add_argument(
        "--input-size",
        metavar="WxH",
        help="fix the network input to the size the rig feeds (e.g. 320x240): DeepLabCut's "
        "dilated convolutions then convert to single Conv nodes, several times faster "
        "(TensorFlow exports; a DeepLabCut 3 bundle takes any size)",
    )
    parser.add_argument(
        "--overwrite", action="store_true", help="replace a bundle that exists at --output"
    )
    parser.set_defaults(func=run)


def _import(args: argparse.Namespace):  # -> Bundle
    from realtime_pose.exporters.dlc3_source import is_dlc3_model

    common = {
        "opset": args.opset,
        "parity_images": args.images,
        "name": args.name,
        "overwrite": args.overwrite,
    }
    if args.tolerance_px is not None:
        common["tolerance_px"] = args.tolerance_px
    if is_dlc3_model(args.export_dir):
        from realtime_pose.exporters.dlc3_import import import_dlc3

        if args.input_size:
            raise ValueError(
                "--input-size applies to TensorFlow exports; a DeepLabCut 3 bundle takes any "
                "input size (its padding is inside the graph)"
            )
        return import_dlc3(
            args.export_dir, args.output, in_graph_peaks=bool(args.in_graph_peaks), **common
        )
    from realtime_pose.exporters.dlc_import import import_dlc
    from realtime_pose.geometry import Size

    return import_dlc(
        args.export_dir,
        args.output,
        in_graph_peaks=args.in_graph_peaks,
        input_size=Size.parse(args.input_size) if args.input_size else None,
        **common,
    )


def run(args: argparse.Namespace) -> int:
    """Import; exit 0 on success, 1 when the parity check fails, 2 on unusable input."""
    prog = "realtime-pose import-dlc"
    try:
        from realtime_pose.exporters.parity import ParityError

        bundle = _import(args)
    except ImportError as exc:
        print(f"{prog}: {exc}", file=sys.stderr)
        return 2
    except ParityError as exc:
        print(f"{prog}: {exc}; no bundle was written", file=sys.stderr)
        return 1
    except (FileExistsError, FileNotFoundError, ValueError) as exc:
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
