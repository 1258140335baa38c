"""``realtime-pose build-engine``: a TensorRT engine for this GPU, cached in the bundle."""

from __future__ import annotations

import argparse
import sys


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``build-engine`` sub-command."""
    parser = subparsers.add_parser(
        "build-engine",
        help="build a TensorRT engine for the local GPU from a bundle",
        description=(
            "Parse the bundle's model.onnx with TensorRT and build an engine for this GPU at one "
            "input size, saved in the bundle's engine cache where the native TensorRT engine "
            "finds it. Needs tensorrt, pycuda and an NVIDIA GPU (pip install "
            "'realtime-pose[gpu]')."
        ),
    )
    parser.add_argument("bundle", metavar="BUNDLE_DIR", help="bundle folder or .zip")
    precision = parser.add_mutually_exclusive_group()
    precision.add_argument("--fp16", action="store_true", help="half precision (recommended)")
    precision.add_argument(
        "--int8", action="store_true", help="int8 with entropy calibration on training frames"
    )
    parser.add_argument("--height", type=int, help="network input height in pixels")
    parser.add_argument("--width", type=int, help="network input width in pixels")
    parser.add_argument("--device", type=int, default=0, help="CUDA device index (default 0)")
    parser.add_argument(
        "--no-check", action="store_true", help="skip the keypoint check against ONNX Runtime"
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Build; exit 0 on success, 2 when TensorRT/GPU is missing or the input is unusable."""
    prog = "realtime-pose build-engine"
    if (args.height is None) != (args.width is None):
        print(f"{prog}: give --height and --width together", file=sys.stderr)
        return 2
    from realtime_pose.bundle import BundleError, load_bundle
    from realtime_pose.engines.base import EngineUnavailableError
    from realtime_pose.geometry import Size

    try:
        bundle = load_bundle(args.bundle)
    except BundleError as exc:
        print(f"{prog}: {exc}", file=sys.stderr)
        return 2
    precision = "int8" if args.int8 else "fp16" if args.fp16 else "fp32"
    try:
        from realtime_pose.exporters.tensorrt import EngineBuildError, build_engine

        built = build_engine(
            bundle,
            size=None if args.width is None else Size(args.width, args.height),
            precision=precision,
            device_id=args.device,
            check=not args.no_check,
        )
    except EngineUnavailableError as exc:
        print(f"{prog}: {exc}", file=sys.stderr)
        return 2
    except ValueError as exc:
        print(f"{prog}: {exc}", file=sys.stderr)
        return 2
    except EngineBuildError as exc:
        print(f"{prog}: {exc}", file=sys.stderr)
        return 1
    print(
        f"built {built.path} ({built.precision}, {built.size}, {built.gpu_name}, "
        f"TensorRT {built.trt_version}) in {built.build_s:.1f} s"
    )
    parity = built.info.get("vs_onnxruntime")
    if parity:
        print(
            f"  vs ONNX Runtime: keypoints max {parity['keypoints_max_px_diff']:.3g} px, "
            f"mean {parity['keypoints_mean_px_diff']:.3g} px on {parity['frames']} frames"
        )
    return 0
