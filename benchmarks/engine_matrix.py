"""Every engine and setting at every size, batch 1: the matrix behind ``realtime-pose tune``.

    python benchmarks/engine_matrix.py [--bundle DIR] [--sizes 160x120 320x240 640x480]
                                       [--runs 200] [--project DIR] [--json FILE] [--overwrite]

ONNX Runtime (1/2 threads; spinning on/off; denormals flushed; no memory arena), its XNNPACK
provider where the build has it, and OpenVINO (1/2 threads; f32 and bf16 where the CPU has it),
timed in alternating blocks per size (:func:`realtime_pose.offline.tuning.tune`), with what the
tuner would choose at each size: bf16 only when it kept the mean error on the bundle's labelled
test frames (its training project, or ``--project``) within 0.1 px.
"""

from __future__ import annotations

import argparse
import sys
from functools import partial
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import add_overwrite_argument, write_result
from realtime_pose.bundle import load_bundle
from realtime_pose.geometry import Size
from realtime_pose.offline.precision import held_out_change, labelled_project
from realtime_pose.offline.tuning import tune
from realtime_pose.util.paths import DEMO_BUNDLE

SECTIONS = [
    *({"kind": "onnxruntime", "threads": t, "spinning": s} for t in (1, 2) for s in (True, False)),
    {"kind": "onnxruntime", "threads": 2, "denormal_as_zero": True},
    {"kind": "onnxruntime", "threads": 2, "cpu_arena": False},
    {"kind": "onnxruntime", "threads": 2, "provider": "xnnpack"},
    {"kind": "openvino", "threads": 1},
    {"kind": "openvino", "threads": 2},
    {"kind": "openvino", "threads": 1, "precision": "bf16"},
    {"kind": "openvino", "threads": 2, "precision": "bf16"},
]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bundle", type=Path, default=DEMO_BUNDLE)
    parser.add_argument(
        "--sizes",
        nargs="+",
        type=Size.parse,
        default=[Size(160, 120), Size(320, 240), Size(640, 480)],
    )
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument(
        "--project", type=Path, help="labelled project judging bf16 (default: the bundle's)"
    )
    parser.add_argument("--json", type=Path, default=None)
    add_overwrite_argument(parser)
    args = parser.parse_args(argv)
    bundle = load_bundle(args.bundle)
    project = labelled_project(bundle, args.project)
    judge = partial(held_out_change, bundle, project_dir=project) if project else None
    print(f"reduced precision judged on: {project or 'nothing (not chosen)'}")
    results = []
    for size in args.sizes:
        result = tune(bundle, size, SECTIONS, runs=args.runs, judge=judge)
        results.append(result.to_dict())
        print(f"{size}:")
        for row in result.rows:
            name = ", ".join(f"{k}={v}" for k, v in row["engine"].items() if k != "backend")
            label = f"{row['engine']['backend']:11s} {name}"
            if "error" in row:
                print(f"  {label:55s} unavailable: {row['error'][:70]}")
            else:
                verdict = row.get("accuracy", {})
                change = verdict.get("change_px")
                note = f"  held-out {change:+.3f} px" if change is not None else ""
                print(f"  {label:55s} p50 {row['p50_ms']:7.3f}  p99 {row['p99_ms']:7.3f} ms{note}")
        print(f"  tuner's choice: {result.chosen}")
    path = write_result(
        "engine_matrix",
        {"bundle": str(args.bundle), "sizes": results},
        args.json,
        overwrite=args.overwrite,
    )
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
