"""``realtime-pose latency-test``: frame-ready → byte-received latency of the closed loop."""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

log = logging.getLogger(__name__)


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``latency-test`` sub-command."""
    p = subparsers.add_parser(
        "latency-test",
        help="measure frame-ready -> serial byte-received latency of the closed loop",
        description="Run the live loop on the synthetic camera with a rule that pulses a serial "
        "output every few frames; a pseudo-terminal's far end timestamps each byte's arrival.",
    )
    p.add_argument("--bundle", type=Path, help="model bundle (default: the demo bundle)")
    p.add_argument("--seconds", type=float, default=10.0)
    p.add_argument("--fps", type=float, default=100.0, help="synthetic camera frame rate")
    p.add_argument("--size", nargs=2, type=int, default=(320, 240), metavar=("W", "H"))
    p.add_argument("--refractory-ms", type=float, default=20.0, help="time between firings")
    p.add_argument("--threads", type=int, default=0, help="ONNX Runtime threads (0 = all)")
    p.add_argument(
        "--no-spinning",
        action="store_true",
        help="let idle ONNX Runtime threads sleep (frees the cores for the I/O threads)",
    )
    p.add_argument(
        "--loop-cpus",
        type=int,
        nargs="+",
        metavar="CPU",
        help="pin the loop thread to these CPUs, everything else to the rest (Linux)",
    )
    p.add_argument(
        "--spin-us",
        type=int,
        metavar="US",
        help="how long idle ONNX Runtime threads spin before sleeping (default: ORT's own)",
    )
    p.add_argument(
        "--idle-poll-us",
        type=int,
        default=0,
        metavar="US",
        help="wake the loop thread this often while it waits for a frame (0: sleep)",
    )
    p.add_argument(
        "--no-spin-after-run",
        action="store_true",
        help="ONNX Runtime threads spin only inside a run and stop as it returns",
    )
    p.add_argument(
        "--realtime-priority",
        type=int,
        metavar="N",
        help="run the loop thread under SCHED_FIFO at priority N (Linux; where permitted)",
    )
    p.add_argument(
        "--lock-memory",
        action="store_true",
        help="lock the process's memory in RAM while the loop runs (mlockall; Linux)",
    )
    p.add_argument(
        "--far-end-priority",
        type=int,
        metavar="N",
        help="run the far-end reader (the board's stand-in) under SCHED_FIFO at priority N",
    )
    p.add_argument(
        "--json", type=Path, help="write the result here, and a latency plot beside it (.png)"
    )
    p.add_argument(
        "--overwrite", action="store_true", help="replace --json (and .png) if they exist"
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Run the test and print/write p50, p99, max against the engine-time budget."""
    from realtime_pose.live.latency_selftest import LoopSettings, run_latency_test
    from realtime_pose.util.machine import machine_description
    from realtime_pose.util.paths import DEMO_BUNDLE
    from realtime_pose.util.safe_write import OutputExistsError, check_free, write_text

    if args.json:
        try:
            check_free(args.json, args.overwrite)  # before the run, not after it
            check_free(args.json.with_suffix(".png"), args.overwrite)
        except OutputExistsError as exc:
            log.error("%s", exc)
            return 2
    result = run_latency_test(
        args.bundle or DEMO_BUNDLE,
        args.seconds,
        args.fps,
        tuple(args.size),
        args.refractory_ms,
        LoopSettings(
            threads=args.threads,
            spinning=not args.no_spinning,
            spin_duration_us=args.spin_us,
            spin_after_run=not args.no_spin_after_run,
            loop_cpus=args.loop_cpus,
            idle_poll_us=args.idle_poll_us,
            realtime_priority=args.realtime_priority,
            lock_memory=args.lock_memory,
            far_end_priority=args.far_end_priority,
        ),
    )
    summary = result.summary()
    if not summary["n"]:
        log.error("no pulse reached the serial port (%d lost)", result.unmatched)
        return 1
    print(
        f"frame-ready -> byte-received over {summary['n']} firings: p50 {summary['p50_ms']:.3f} ms"
        f"  p99 {summary['p99_ms']:.3f} ms  max {summary['max_ms']:.3f} ms"
        f"  (engine p50 {summary['engine_p50_ms']:.3f} ms; budget engine + 1 ms = "
        f"{summary['budget_ms']:.3f} ms)"
    )
    for stage, stats in summary["stages_ms"].items():
        print(
            f"  {stage:10s} p50 {stats['p50']:7.3f}  p99 {stats['p99']:7.3f}  "
            f"max {stats['max']:7.3f} ms"
        )
    beyond = summary["beyond_engine_ms"]
    if beyond["p50"] is not None:
        print(
            f"  beyond the frame's own inference: p50 {beyond['p50']:.3f}  p99 {beyond['p99']:.3f}"
            f"  max {beyond['max']:.3f} ms (goal p99 <= {summary['beyond_engine_goal_p99_ms']} ms)"
        )
    print("  path of the firings:")
    for leg, stats in summary["path_ms"].items():
        if stats["p50"] is not None:
            print(
                f"  {leg:20s} p50 {stats['p50']:7.3f}  p99 {stats['p99']:7.3f}  "
                f"max {stats['max']:7.3f} ms"
            )
    if args.json:
        document = {**summary, "machine": machine_description()}
        write_text(args.json, json.dumps(document, indent=2) + "\n", args.overwrite)
        log.info("wrote %s", args.json)
        from realtime_pose.offline.plots import latency_cdf_png

        panels = [
            ("frame ready -> byte at the device", {"total": result.latencies_ns}),
            ("the firings' path in legs", dict(result.segments_ns)),
        ]
        plot = latency_cdf_png(
            args.json.with_suffix(".png"), panels, "realtime-pose latency-test", args.overwrite
        )
        if plot is not None:
            log.info("wrote %s", plot)
    return 0
