"""ONNX Runtime latency by input size and thread count, batch 1 (what the live loop pays).

    python benchmarks/engine_latency.py [--bundle DIR] [--sizes 160x120 320x240 640x480]
                                        [--threads 1 2] [--runs N] [--json FILE]

Default bundle: the embedded demo bundle (MobileNetV2-0.35, DLC-style head).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import add_overwrite_argument, summarize_ns, write_result
from realtime_pose.bundle import load_bundle
from realtime_pose.engines import open_engine
from realtime_pose.geometry import Size
from realtime_pose.util.paths import DEMO_BUNDLE


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--bundle", type=Path, default=DEMO_BUNDLE)
    parser.add_argument(
        "--sizes",
        nargs="+",
        type=Size.parse,
        default=[Size(160, 120), Size(320, 240), Size(640, 480)],
    )
    parser.add_argument("--threads", nargs="+", type=int, default=[1, 2])
    parser.add_argument("--spinning", choices=["on", "off", "both"], default="both")
    parser.add_argument("--runs", type=int, default=300)
    parser.add_argument("--json", type=Path, default=None)
    add_overwrite_argument(parser)
    args = parser.parse_args(argv)
    bundle = load_bundle(args.bundle)
    spin = {"on": [True], "off": [False], "both": [True, False]}[args.spinning]
    rng = np.random.default_rng(0)
    rows = []
    for size in args.sizes:
        w, h = size
        image = rng.integers(0, 255, (h, w, 3), dtype=np.uint8)
        for threads in args.threads:
            for spinning in spin:
                engine = open_engine(bundle, dict(threads=threads, spinning=spinning))
                engine.warmup(size, runs=10)
                samples = np.empty(args.runs, np.int64)
                for i in range(args.runs):
                    t0 = time.perf_counter_ns()
                    engine.run(image)
                    samples[i] = time.perf_counter_ns() - t0
                engine.close()
                stats = summarize_ns(samples, "ms")
                rows.append(
                    {"width": w, "height": h, "threads": threads, "spinning": spinning, **stats}
                )
                print(
                    f"{w}x{h} threads={threads} spinning={spinning!s:5} "
                    f"p50 {stats['p50_ms']:7.3f} ms  p99 {stats['p99_ms']:7.3f} ms"
                )
    path = write_result(
        "engine_latency",
        {
            "bundle": str(args.bundle),
            "model": bundle.meta.name,
            "provenance": bundle.meta.provenance,
            "results": rows,
        },
        args.json,
        overwrite=args.overwrite,
    )
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
