"""Per-frame cost of the rule engine: ``RuleEngine.evaluate`` with 5 rules.

Feeds a pre-computed random-walk trajectory (8 keypoints, 100 fps timestamps, a prediction for
the rules that use one) and times each ``evaluate`` call with ``time.perf_counter_ns``. Writes
p50/p99/max in microseconds and the machine's description to
``benchmarks/results/rules_overhead.json``.

Run::

    python benchmarks/rules_overhead.py [--frames 20000] [--out PATH]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import add_overwrite_argument, summarize_ns, write_result
from realtime_pose.rules import RuleEngine, parse_rules

KEYPOINTS = ["snout", "leftear", "rightear", "neck", "spine", "tailbase", "leftpaw", "rightpaw"]
DT_NS = 10_000_000

RULES = [
    {
        "name": "laser_snout_in_zone",
        "source": "predicted",
        "condition": {
            "type": "zone",
            "keypoint": "snout",
            "circle": [320, 240, 60],
            "hysteresis_px": 4,
        },
        "on": "enter",
        "refractory_s": 0.2,
        "actions": [{"output": "laser", "action": "pulse", "duration_ms": 5}],
    },
    {
        "name": "light_off_leaving_corner",
        "condition": {
            "type": "zone",
            "keypoint": "tailbase",
            "polygon": [[0, 0], [200, 0], [200, 80], [80, 200], [0, 200]],
        },
        "on": "exit",
        "actions": [{"output": "light", "action": "off"}],
    },
    {
        "name": "reward_running",
        "condition": {"type": "speed", "keypoint": "neck", "above": 400},
        "on": "while",
        "refractory_s": 1.0,
        "actions": [{"output": "valve", "action": "pulse", "duration_ms": 30}],
    },
    {
        "name": "rearing_gate",
        "condition": {
            "type": "all",
            "conditions": [
                {"type": "distance", "keypoints": ["snout", "tailbase"], "below": 60},
                {"type": "likelihood", "keypoint": "leftpaw", "at_least": 0.8},
                {"type": "likelihood", "keypoint": "rightpaw", "at_least": 0.8},
            ],
        },
        "on": "enter",
        "min_dwell_s": 0.05,
        "max_on_s": 2.0,
        "actions": [{"output": "light", "action": "on"}],
    },
    {
        "name": "head_turn",
        "condition": {
            "type": "not",
            "condition": {
                "type": "angle",
                "keypoints": ["leftear", "neck", "rightear"],
                "min_deg": 20,
                "max_deg": 90,
            },
        },
        "on": "enter",
        "refractory_s": 0.5,
        "actions": [{"output": "ttl", "action": "toggle"}],
    },
]


def trajectory(n_frames: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Measured and predicted poses ``[n, K, 3]`` of an animal wandering a 640×480 arena."""
    rng = np.random.default_rng(seed)
    k = len(KEYPOINTS)
    centre = np.cumsum(rng.normal(0.0, 3.0, size=(n_frames, 2)), axis=0)
    arena = np.array([640.0, 480.0])
    centre = np.abs((centre + arena / 2) % (2 * arena) - arena)  # reflect at the walls
    offsets = rng.normal(0.0, 25.0, size=(k, 2))
    poses = np.empty((n_frames, k, 3))
    poses[:, :, :2] = centre[:, None, :] + offsets[None] + rng.normal(0, 2.0, (n_frames, k, 2))
    poses[:, :, 2] = rng.uniform(0.3, 1.0, size=(n_frames, k))
    predicted = poses.copy()
    predicted[1:, :, :2] += poses[1:, :, :2] - poses[:-1, :, :2]
    return poses, predicted


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=20_000)
    parser.add_argument("--out", type=Path, default=None)
    add_overwrite_argument(parser)
    args = parser.parse_args(argv)

    engine = RuleEngine(parse_rules(RULES), KEYPOINTS)
    poses, predicted = trajectory(args.frames + 1000)
    warm_up = 1000
    elapsed_ns = np.empty(args.frames, dtype=np.int64)
    n_events = 0
    clock = time.perf_counter_ns
    for i in range(args.frames + warm_up):
        t0 = clock()
        events = engine.evaluate(poses[i], i * DT_NS, i, predicted[i])
        t1 = clock()
        if i >= warm_up:
            elapsed_ns[i - warm_up] = t1 - t0
            n_events += len(events)

    stats = summarize_ns(elapsed_ns, "us")
    path = write_result(
        "rules_overhead",
        {
            "what": "RuleEngine.evaluate per frame, 5 rules, 8 keypoints, measured + predicted",
            "n_rules": len(RULES),
            "n_keypoints": len(KEYPOINTS),
            "n_frames": args.frames,
            "events_per_1000_frames": round(1000 * n_events / args.frames, 1),
            "evaluate_us": stats,
        },
        args.out,
        overwrite=args.overwrite,
    )
    print(stats, f"-> {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
