"""Bottom-up assembly: candidates, PAF assembly and the whole decode, by layout and animal count.

    python benchmarks/assembly.py [--repeats N] [--json FILE] [--overwrite]

Maps are 128×128 cells (a 1024×1024 input at stride 8) with 13 bodyparts, painted by the
trainer's targets for known mice (Gaussian score maps plus uniform noise below the candidate
threshold, the PAF targets plus Gaussian noise), so every call does the work of a real frame:
each stage is checked to find every animal before it is timed. Stages, each timed on its own
over ``--repeats`` calls after a warm-up: ``candidates`` (peak search and locref),
``assembly`` (connection scores and grouping) and ``decode`` (both, through
:meth:`BottomUpDecoder.decode`).

Issue target: assembly of 8 animals × 13 parts p99 <= 0.3 ms.
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import add_overwrite_argument, summarize_ns, time_calls, write_result
from realtime_pose.inference.assembly import BottomUpDecoder, paf_graph
from realtime_pose.trainers.group_targets import make_group_targets

NAMES = [
    "snout", "left_ear", "right_ear", "neck", "left_forepaw", "right_forepaw", "spine1",
    "spine2", "left_hindpaw", "right_hindpaw", "tail_base", "tail_mid", "tail_tip",
]  # fmt: skip
SKELETON = [
    ("snout", "neck"), ("left_ear", "neck"), ("right_ear", "neck"), ("neck", "spine1"),
    ("spine1", "left_forepaw"), ("spine1", "right_forepaw"), ("spine1", "spine2"),
    ("spine2", "left_hindpaw"), ("spine2", "right_hindpaw"), ("spine2", "tail_base"),
    ("tail_base", "tail_mid"), ("tail_mid", "tail_tip"),
]  # fmt: skip
BODY = np.array(
    [(80, 0), (50, -25), (50, 25), (25, 0), (0, -40), (0, 40), (-10, 0), (-45, 0), (-55, -40),
     (-55, 40), (-80, 0), (-115, 8), (-150, 0)],
    dtype=np.float64,
) + np.array([35.0, 0.0])  # fmt: skip
MAP = (128, 128)
STRIDE = 8
LOCREF_STDEV = 7.2801
TARGET_ASSEMBLY_P99_US = 300.0


def mice(n: int, seed: int) -> np.ndarray:
    """``n`` mice ``[n, 13, 2]`` on a 2-column grid of the 1024×1024 input."""
    rng = np.random.default_rng(seed)
    rows = math.ceil(n / 2)
    out = []
    for i in range(n):
        r, c = divmod(i, 2)
        centre = ((c + 0.5) * 512 + rng.uniform(-20, 20), (r + 0.5) * 1024 / rows)
        angle = rng.uniform(-0.2, 0.2) + (math.pi if rng.random() < 0.5 else 0.0)
        cos, sin = math.cos(angle), math.sin(angle)
        body = (BODY + rng.normal(0, 3, BODY.shape)) * rng.uniform(0.85, 1.1)
        out.append(body @ np.array([[cos, -sin], [sin, cos]]).T + centre)
    return np.stack(out).astype(np.float32)


def network_maps(truth: np.ndarray, edges: list[tuple[int, int]], seed: int) -> tuple:
    """NHWC score maps, locref and PAF for ``truth``, with noise."""
    rng = np.random.default_rng(seed)
    t = make_group_targets(truth[None], MAP, edges, kind="gaussian")
    scmap = np.maximum(t.scmap[0], rng.uniform(0, 0.05, t.scmap[0].shape).astype(np.float32))
    paf = t.paf[0] + rng.normal(0, 0.02, t.paf[0].shape).astype(np.float32)
    return scmap, t.locref[0], paf


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=5000)
    parser.add_argument("--json", type=Path, default=None)
    add_overwrite_argument(parser)
    args = parser.parse_args(argv)
    edges = paf_graph(NAMES, SKELETON)
    rows = []
    for n_animals in (8, 2):
        truth = mice(n_animals, seed=n_animals)
        nhwc = network_maps(truth, edges, seed=n_animals)
        layouts = {
            "NHWC": nhwc,
            "NCHW": tuple(np.ascontiguousarray(m.transpose(2, 0, 1)) for m in nhwc),
        }
        for layout, (scmap, locref, paf) in layouts.items():
            dec = BottomUpDecoder(len(NAMES), edges, STRIDE, LOCREF_STDEV, layout, 8)
            out = np.empty((8, len(NAMES), 3), np.float32)
            _, found = dec.decode(scmap, locref, paf, out)
            assert found == n_animals and np.isfinite(out[:found]).all(), (layout, found)
            n_cand = dec.find_candidates(scmap, locref)
            stages = {
                "candidates": lambda d=dec, s=scmap, lr=locref: d.find_candidates(s, lr),
                "assembly": lambda d=dec, p=paf, o=out: d.assemble(p, o),
                "decode": lambda d=dec, s=scmap, lr=locref, p=paf, o=out: d.decode(s, lr, p, o),
            }
            # in this order: "assembly" works on the candidates the first stage left
            for stage, fn in stages.items():
                stats = summarize_ns(time_calls(fn, args.repeats, 200), "us")
                rows.append(
                    {
                        "animals": n_animals,
                        "parts": len(NAMES),
                        "layout": layout,
                        "stage": stage,
                        "candidates_found": n_cand,
                        **stats,
                    }
                )
                print(
                    f"{n_animals} animals {layout} {stage:10s} p50 {stats['p50_us']:8.2f} us  "
                    f"p99 {stats['p99_us']:8.2f} us  max {stats['max_us']:8.2f} us"
                )
    worst = max(r["p99_us"] for r in rows if r["animals"] == 8 and r["stage"] == "assembly")
    print(f"assembly 8 x 13, worst layout p99 {worst:.1f} us (target {TARGET_ASSEMBLY_P99_US})")
    path = write_result(
        "assembly",
        {
            "map_cells": list(MAP),
            "stride": STRIDE,
            "repeats": args.repeats,
            "targets": {"assembly_8x13_p99_us": TARGET_ASSEMBLY_P99_US},
            "assembly_8x13_p99_us": worst,
            "results": rows,
        },
        args.json,
        overwrite=args.overwrite,
    )
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
