"""Peak finding: the runtime's kernels vs the plain NumPy reference, by map size and layout.

    python benchmarks/peaks.py [--repeats N] [--json FILE]

Issue target: K=4 on 60x80 maps p50 <= 15 us; K=20 on 120x160 p50 <= 60 us.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import add_overwrite_argument, summarize_ns, time_calls, write_result
from realtime_pose.inference.peaks import find_peaks, find_peaks_reference

CASES = [(4, 60, 80), (20, 120, 160), (4, 30, 40), (20, 60, 80)]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=5000)
    parser.add_argument("--json", type=Path, default=None)
    add_overwrite_argument(parser)
    args = parser.parse_args(argv)
    rng = np.random.default_rng(0)
    rows = []
    for k, h, w in CASES:
        s = rng.random((1, k, h, w), dtype=np.float32)
        loc = rng.standard_normal((1, 2 * k, h, w)).astype(np.float32)
        s_hwc = np.ascontiguousarray(s.transpose(0, 2, 3, 1))
        l_hwc = np.ascontiguousarray(loc.transpose(0, 2, 3, 1))
        out = np.empty((k, 3), np.float32)
        np.testing.assert_allclose(
            find_peaks(s, loc, 8, 7.28, "NCHW", out),
            find_peaks_reference(s, loc, 8, 7.28),
            rtol=1e-5,
        )
        variants = {
            "runtime_nchw": lambda s=s, loc=loc, out=out: find_peaks(s, loc, 8, 7.28, "NCHW", out),
            "runtime_nhwc": lambda s=s_hwc, loc=l_hwc, out=out: find_peaks(
                s, loc, 8, 7.28, "NHWC", out
            ),
            "numpy_reference_nchw": lambda s=s, loc=loc: find_peaks_reference(s, loc, 8, 7.28),
        }
        for name, fn in variants.items():
            stats = summarize_ns(time_calls(fn, args.repeats, 50), "us")
            rows.append({"variant": name, "keypoints": k, "height": h, "width": w, **stats})
            print(
                f"{name:22s} K={k:2d} {h:3d}x{w:<3d} p50 {stats['p50_us']:8.2f} us  "
                f"p99 {stats['p99_us']:8.2f} us"
            )
    targets = {"K4_60x80_p50_us": 15.0, "K20_120x160_p50_us": 60.0}
    best = {
        "K4_60x80_p50_us": next(
            r["p50_us"]
            for r in rows
            if r["variant"] == "runtime_nchw" and r["keypoints"] == 4 and r["height"] == 60
        ),
        "K20_120x160_p50_us": next(
            r["p50_us"]
            for r in rows
            if r["variant"] == "runtime_nchw" and r["keypoints"] == 20 and r["height"] == 120
        ),
    }
    path = write_result(
        "peaks",
        {"targets": targets, "runtime_nchw": best, "results": rows},
        args.json,
        overwrite=args.overwrite,
    )
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
