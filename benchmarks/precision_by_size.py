"""What reduced precision costs on labelled held-out frames, at each network input size.

    python benchmarks/precision_by_size.py --bundle DIR [--project DIR]
        [--sizes 160x120 320x240 640x480] [--calibration percentile] [--json FILE] [--overwrite]

For each input size a rig may feed (the frame resized to it, as ``input_size:`` in a run
config), the bundle's test frames are run on ONNX Runtime fp32 (the reference), OpenVINO bf16
(where the CPU computes it), and an int8 graph quantised here (``--calibration``, on the
project's train split) on ONNX Runtime and OpenVINO; each row is its mean error in frame pixels
and the change against the reference at that size: the figure ``tune`` and ``export --int8``
judge by (:func:`realtime_pose.offline.precision.held_out_change`).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import add_overwrite_argument, write_result
from realtime_pose.bundle import load_bundle
from realtime_pose.engines.openvino import reduced_precisions
from realtime_pose.geometry import Size
from realtime_pose.offline.precision import labelled_project
from realtime_pose.trainers.evaluate import evaluate


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bundle", type=Path, required=True, help="an fp32 bundle")
    parser.add_argument("--project", type=Path, help="labelled project (default: the bundle's)")
    parser.add_argument(
        "--sizes",
        nargs="+",
        type=Size.parse,
        default=[Size(160, 120), Size(320, 240), Size(640, 480)],
    )
    parser.add_argument("--calibration", default="percentile")
    parser.add_argument("--json", type=Path, default=None)
    add_overwrite_argument(parser)
    args = parser.parse_args(argv)
    from realtime_pose.exporters.frames import bundle_frames
    from realtime_pose.exporters.int8 import quantize_bundle

    fp32 = load_bundle(args.bundle)
    project = labelled_project(fp32, args.project)
    if project is None:
        raise SystemExit(f"{args.bundle}: its project is not here; give --project")
    calib, source = bundle_frames(fp32, "train", 64)
    int8 = quantize_bundle(
        fp32, Path(tempfile.mkdtemp(prefix="rp-int8-")) / "b", calib, method=args.calibration
    )
    variants = [("onnxruntime fp32", fp32, None)]
    if "bf16" in reduced_precisions():
        variants.append(("openvino bf16", fp32, {"kind": "openvino", "precision": "bf16"}))
    variants += [
        ("onnxruntime int8", int8, None),
        ("openvino int8", int8, {"kind": "openvino"}),
    ]
    rows = []
    for size in args.sizes:
        reference = None
        for name, bundle, engine in variants:
            metrics = evaluate(bundle.root, project, engine=engine, input_size=size)
            mean = metrics["mean_error_px"]
            reference = mean if reference is None else reference
            rows.append(
                {
                    "size": list(size),
                    "variant": name,
                    "mean_px": round(mean, 4),
                    "median_px": round(metrics["median_error_px"], 4),
                    "change_px": round(mean - reference, 4),
                    "frames": metrics["n_images"],
                }
            )
            print(f"{size} {name:18s} mean {mean:7.3f} px  change {mean - reference:+.3f}")
    path = write_result(
        "precision_by_size",
        {
            "bundle": str(args.bundle),
            "project": str(project),
            "int8": {"calibration": args.calibration, "frames": len(calib), "source": source},
            "rows": rows,
        },
        args.json,
        overwrite=args.overwrite,
    )
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
