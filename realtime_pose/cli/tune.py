"""``realtime-pose tune BUNDLE``: find the fastest engine and settings for a bundle on this CPU."""

from __future__ import annotations

import argparse
import dataclasses
import logging
import sys

log = logging.getLogger(__name__)


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``tune`` sub-command."""
    p = subparsers.add_parser(
        "tune",
        help="time the engines and settings for a bundle here; store the fastest",
        description="Time ONNX Runtime (1/2 threads, spinning on/off) and OpenVINO (1/2 "
        "threads, where installed; fp32, and bf16/f16 where the CPU computes them) on BUNDLE "
        "at the size the rig feeds, alternating, and store the fastest in "
        "BUNDLE/engines/tuned.json for this CPU model. A reduced precision is chosen only when "
        "it kept the mean error on the labelled test frames within --tolerance-px. When ONNX "
        "Runtime wins, its threads' spinning is then chosen by the closed loop's frame -> byte "
        "p99 (the latency self-test at --fps, --loop-seconds per mode and round). Run configs "
        "without an engine: section (the 'auto' engine) use the choice from then on.",
    )
    p.add_argument("bundle", help="bundle folder")
    p.add_argument(
        "--size", default="320x240", help="network input WxH the rig feeds (default 320x240)"
    )
    p.add_argument("--runs", type=int, default=200, help="timed runs per candidate")
    p.add_argument(
        "--fps", type=float, default=100.0, help="the rig's frame rate, for the loop's tail"
    )
    p.add_argument(
        "--loop-seconds",
        type=float,
        default=8.0,
        help="seconds of the latency self-test per spinning mode and round (0: skip)",
    )
    p.add_argument(
        "--project",
        help="DeepLabCut project whose labelled test frames judge reduced-precision settings "
        "(bf16); default: the project the bundle was trained on, when it is on this machine",
    )
    p.add_argument(
        "--tolerance-px",
        type=float,
        default=None,
        help="mean held-out error a reduced precision may add (default 0.1 px, as export --int8)",
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Tune, print the table, store the choice; exit 2 on unusable input."""
    from realtime_pose.bundle import BundleError, load_bundle
    from realtime_pose.engines import EngineError
    from realtime_pose.engines.tuned import save_tuning
    from realtime_pose.geometry import Size
    from realtime_pose.offline.tuning import tune, tune_spinning

    try:
        size = Size.parse(args.size)
        bundle = load_bundle(args.bundle)
        result = tune(bundle, size, runs=args.runs, judge=_judge(bundle, args))
        chosen, loop = tune_spinning(bundle, result.chosen, size, args.fps, args.loop_seconds)
        result = dataclasses.replace(result, chosen=chosen, loop=loop)
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
            print(
                f"  {name:45s} p50 {row['p50_ms']:7.3f} ms  p99 {row['p99_ms']:7.3f} ms"
                + _verdict(row.get("accuracy"))
            )
    if result.loop:
        print(f"the closed loop's tail at {args.fps:g} fps (frame ready -> byte at the device):")
    for row in result.loop:
        name = ", ".join(f"{k}={v}" for k, v in row["engine"].items())
        print(
            f"  {name:45s} p50 {row['loop_p50_ms']:7.3f} ms  p99 {row['loop_p99_ms']:7.3f} ms  "
            f"(beyond the engine p99 {row['beyond_engine_p99_ms']:.3f} ms)"
        )
    print(f"chosen: {result.chosen} (stored in {bundle.engine_cache_dir / 'tuned.json'})")
    return 0


def _judge(bundle, args: argparse.Namespace):
    """The accuracy check for reduced-precision candidates, or ``None`` (said in one line)."""
    from functools import partial

    from realtime_pose.offline.precision import (
        DEFAULT_PRECISION_TOLERANCE_PX,
        held_out_change,
        labelled_project,
    )

    if args.project and not labelled_project(bundle, args.project):
        raise ValueError(f"--project {args.project}: not a folder")
    project = labelled_project(bundle, args.project)
    if project is None:
        log.warning(
            "%s: its training project is not on this machine (give --project): reduced-"
            "precision settings are timed but not chosen",
            bundle.root,
        )
        return None
    tolerance = args.tolerance_px
    if tolerance is None:
        tolerance = DEFAULT_PRECISION_TOLERANCE_PX
    return partial(held_out_change, bundle, project_dir=project, tolerance_px=tolerance)


def _verdict(accuracy: dict | None) -> str:
    if not accuracy:
        return ""
    if "change_px" in accuracy:
        word = "kept" if accuracy["accepted"] else "REFUSED"
        return (
            f"  held-out {accuracy['change_px']:+.3f} px "
            f"(tolerance {accuracy['tolerance_px']}): {word}"
        )
    return f"  {accuracy.get('why', '')}"
