"""``realtime-pose tune BUNDLE``: find the fastest engine and settings for a bundle on this CPU."""

from __future__ import annotations

import argparse
import logging
import sys

log = logging.getLogger(__name__)


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``tune`` sub-command."""
    p = subparsers.add_parser(
        "tune",
        help="time the engines and settings for a bundle here; store the fastest",
        description="Time ONNX Runtime (1/2 threads, spinning on/off) and OpenVINO (1/2 "
        "threads, where installed) on BUNDLE at the size the rig feeds, alternating, and store "
        "the fastest in BUNDLE/engines/tuned.json for this CPU model. Run configs without an "
        "engine: section (the 'auto' engine) use it from then on.",
    )
    p.add_argument("bundle", help="bundle folder")
    p.add_argument(
        "--size", default="320x240", help="network input WxH the rig feeds (default 320x240)"
    )
    p.add_argument("--runs", type=int, default=200, help="timed runs per candidate")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Tune, print the table, store the choice; exit 2 on unusable input."""
    from realtime_pose.bundle import BundleError, load_bundle
    from realtime_pose.engines import EngineError
    from realtime_pose.engines.tuning import save_tuning, tune
    from realtime_pose.geometry import Size

    try:
        size = Size.parse(args.size)
        bundle = load_bundle(args.bundle)
        result = tune(bundle, size, runs=args.runs)
        save_tuning(bundle, result)
    except (BundleError, EngineError, ValueError, OSError) as exc:
        print(f"realtime-pose tune: {exc}", file=sys.stderr)
        return 2
    print(f"{bundle.meta.name} at {size} on {result.cpu}:")
    for row in result.rows:
        name = ", ".join(f"{k}={v}" for k, v in row["engine"].items())
        if "error" in row:
            print(f"  {name:45s} unavailable: {row['error']}")
        else:
            print(f"  {name:45s} p50 {row['p50_ms']:7.3f} ms  p99 {row['p99_ms']:7.3f} ms")
    print(f"chosen: {result.chosen} (stored in {bundle.engine_cache_dir / 'tuned.json'})")
    return 0
