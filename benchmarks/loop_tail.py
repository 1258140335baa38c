"""Where the loop's own tail comes from, and what each change to the firing path buys.

    python benchmarks/loop_tail.py [--seconds 20] [--threads 1 2] [--fps 50 100] [--pairs 2]
        [--variants before after ...] [--far-end-priority N] [--sched-trace]
    python benchmarks/loop_tail.py --stability-minutes 10 [--variant after] [--fps 100]

Runs the latency self-test (``realtime-pose latency-test``: the synthetic camera, a rule
pulsing a serial output, the far end of a pty in another process) with the loop's settings of
each variant (:data:`VARIANTS`: ``before`` is the firing path as it was, every serial line
handed to the writer thread and Python's garbage collector free to collect inside a frame;
``after`` a rig's defaults now; the others change one setting more), alternated in pairs at
each thread count and frame rate so a noisy spell hits all alike. For each run it keeps the
frame → byte and beyond-engine p50/p99/max, the path's three legs (loop → dispatch, dispatch →
write, write → arrival), and a trace: per thread, CPU time and voluntary / involuntary context
switches during the run (``/proc/self/task``), every garbage collection (``gc.callbacks``:
generation, length, and whether it ran on the loop thread) and, with ``--sched-trace`` (root,
Linux ftrace), which kinds of thread held the CPUs inside the worst 2 % of firings' windows
(frame ready → byte received) beside the middle 20 % (:mod:`benchmarks.sched_trace`).

``--stability-minutes M`` runs one variant for M minutes instead and reports the beyond-engine
p99 of every minute beside the first minute's. Writes ``benchmarks/results/loop_tail.json``
(``loop_tail_stability.json``).
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import json
import os
import sys
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import add_overwrite_argument, write_result
from benchmarks.sched_trace import SchedTrace, tail_vs_median, thread_names
from realtime_pose.live.latency_selftest import LoopSettings, run_latency_test
from realtime_pose.util.paths import DEMO_BUNDLE
from realtime_pose.util.stats import Summary

VARIANTS: dict[str, dict[str, Any]] = {
    "before": {"direct_write": False, "gc_between_frames": False},
    "after": {},
    "spin_in_run": {"spin_after_run": False},
    "no_spinning": {"spinning": False},
    "realtime": {"realtime_priority": 50},
    "locked": {"lock_memory": True},
}
"""Each variant's loop settings beyond a rig's defaults (:class:`LoopSettings`)."""


def _task_stats() -> dict[int, dict[str, int]]:
    """Per thread of this process: CPU ticks and context switches so far."""
    out = {}
    for tid in os.listdir("/proc/self/task"):
        try:
            status = Path(f"/proc/self/task/{tid}/status").read_text()
            stat = Path(f"/proc/self/task/{tid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
        out[int(tid)] = {
            "voluntary": int(fields["voluntary_ctxt_switches"]),
            "involuntary": int(fields["nonvoluntary_ctxt_switches"]),
            "cpu_ticks": int(stat[11]) + int(stat[12]),
            "major_faults": int(stat[9]),
        }
    return out


class Trace:
    """Per-thread deltas over a run, and the garbage collections it saw."""

    def __init__(self) -> None:
        self.collections: list[dict[str, Any]] = []
        self._t0: dict[int, int] = {}
        self._before: dict[int, dict[str, int]] = {}

    def _on_gc(self, phase: str, info: dict[str, Any]) -> None:
        tid = threading.get_native_id()
        if phase == "start":
            self._t0[tid] = time.monotonic_ns()
        elif tid in self._t0:
            self.collections.append(
                {
                    "generation": info["generation"],
                    "ms": (time.monotonic_ns() - self._t0.pop(tid)) / 1e6,
                    "thread": _thread_name(tid),
                }
            )

    def __enter__(self) -> Trace:
        self._before = _task_stats()
        gc.callbacks.append(self._on_gc)
        return self

    def __exit__(self, *exc: object) -> None:
        gc.callbacks.remove(self._on_gc)
        self.after = _task_stats()
        self.names = thread_names()

    def threads(self) -> list[dict[str, Any]]:
        """Threads that ran during the trace, busiest first (names for those still alive)."""
        tick_ms = 1000 / os.sysconf("SC_CLK_TCK")
        rows = []
        for tid, end in self.after.items():
            start = self._before.get(
                tid, {"voluntary": 0, "involuntary": 0, "cpu_ticks": 0, "major_faults": 0}
            )
            delta = {k: end[k] - start[k] for k in end}
            if not any(delta.values()):
                continue
            rows.append(
                {
                    "thread": self.names.get(tid, _thread_name(tid)),
                    "cpu_ms": round(delta["cpu_ticks"] * tick_ms, 1),
                    "voluntary_switches": delta["voluntary"],
                    "involuntary_switches": delta["involuntary"],
                    "major_faults": delta["major_faults"],
                }
            )
        return sorted(rows, key=lambda r: -r["cpu_ms"])

    def gc_summary(self) -> dict[str, Any]:
        """Collections by generation and thread, and the longest."""
        by: dict[str, int] = {}
        for c in self.collections:
            key = f"gen{c['generation']} on {c['thread']}"
            by[key] = by.get(key, 0) + 1
        longest = max((c["ms"] for c in self.collections), default=0.0)
        return {"count": len(self.collections), "by": by, "longest_ms": round(longest, 3)}


def _thread_name(tid: int) -> str:
    return thread_names().get(tid, f"tid {tid}")


class _ThreadCensus:
    """Every thread of this process seen while a run goes on (they end with the session):
    native ids, and Python's names for those that have one."""

    def __init__(self) -> None:
        self.tids: set[int] = set()
        self.names: dict[int, str] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, name="census", daemon=True)

    def _watch(self) -> None:
        while not self._stop.wait(0.5):
            self.tids.update(int(t) for t in os.listdir("/proc/self/task"))
            self.names.update(thread_names())

    def __enter__(self) -> _ThreadCensus:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def _latency_run(
    variant: str, seconds: float, threads: int, fps: float, far_end: int | None, sched: bool
) -> tuple[Any, Trace, dict[str, Any] | None]:
    """One self-test run: its result, the per-thread trace and, with ``sched``, the scheduler
    trace's tail-vs-middle breakdown."""
    loop = LoopSettings(threads=threads, far_end_priority=far_end, **VARIANTS[variant])
    tracer = SchedTrace() if sched else contextlib.nullcontext()
    with Trace() as trace, _ThreadCensus() as census, tracer:
        result = run_latency_test(DEMO_BUNDLE, seconds=seconds, fps=fps, loop=loop)
    breakdown = None
    if sched:
        loop_tid = threading.main_thread().native_id
        breakdown = tail_vs_median(
            tracer.slices,
            result.windows_ns,
            result.beyond_engine_ns,
            loop_tid,
            census.names,
            census.tids,
        )
        breakdown["lost_events"] = tracer.lost
    return result, trace, breakdown


def run_one(
    variant: str, seconds: float, threads: int, fps: float, far_end: int | None, sched: bool
) -> dict[str, Any]:
    """One run's row of the JSON."""
    result, trace, breakdown = _latency_run(variant, seconds, threads, fps, far_end, sched)
    summary = result.summary()
    row = {
        "variant": variant,
        "threads": threads,
        "fps": fps,
        "n": summary["n"],
        "p50_ms": summary["p50_ms"],
        "p99_ms": summary["p99_ms"],
        "engine_p50_ms": summary["engine_p50_ms"],
        "beyond_engine_ms": summary.get("beyond_engine_ms"),
        "path_ms": summary.get("path_ms"),
        "stages_ms": summary.get("stages_ms"),
        "far_end": summary["config"].get("far_end_scheduling"),
        "threads_trace": trace.threads(),
        "gc": trace.gc_summary(),
    }
    if breakdown is not None:
        row["sched_trace"] = breakdown
    return row


def stability(args: argparse.Namespace) -> dict[str, Any]:
    """One long run; the beyond-engine p99 of each minute beside the first minute's."""
    seconds = args.stability_minutes * 60
    fps = args.fps[0]
    threads = args.threads[0]
    result, _, _ = _latency_run(args.variant, seconds, threads, fps, args.far_end_priority, False)
    t0 = int(result.windows_ns[:, 0].min())
    minute = (result.windows_ns[:, 0] - t0) // 60_000_000_000
    windows = []
    for m in range(int(minute.max()) + 1):
        beyond = result.beyond_engine_ns[minute == m]
        windows.append({"minute": m + 1, **Summary.of(beyond).to_dict()})
    first = windows[0]["p99"]
    for w in windows:
        w["p99_vs_first"] = round(w["p99"] / first, 3) if first else None
    worst = max(abs(w["p99_vs_first"] - 1) for w in windows if w["p99_vs_first"] is not None)
    return {
        "variant": args.variant,
        "threads": threads,
        "fps": fps,
        "minutes": args.stability_minutes,
        "far_end": result.config.get("far_end_scheduling"),
        "frames": result.frames,
        "overall_beyond_engine_ms": Summary.of(result.beyond_engine_ns).to_dict(),
        "windows": windows,
        "largest_change_vs_first": round(worst, 3),
        "goal": "every 1-minute window's p99 within 20 % of the first's",
        "met": worst <= 0.2,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--fps", type=float, nargs="+", default=[50.0, 100.0])
    parser.add_argument("--pairs", type=int, default=2)
    parser.add_argument(
        "--variants", nargs="+", choices=sorted(VARIANTS), default=["before", "after"]
    )
    parser.add_argument(
        "--far-end-priority",
        type=int,
        default=None,
        help="SCHED_FIFO priority of the far-end reader (the board's stand-in); default normal",
    )
    parser.add_argument(
        "--sched-trace", action="store_true", help="record the kernel's scheduler trace (root)"
    )
    parser.add_argument("--stability-minutes", type=float, default=None)
    parser.add_argument("--variant", choices=sorted(VARIANTS), default="after")
    parser.add_argument("--json", type=Path, default=None)
    add_overwrite_argument(parser)
    args = parser.parse_args()
    if args.stability_minutes:
        document = stability(args)
        print(json.dumps(document["windows"]), document["largest_change_vs_first"], flush=True)
        name = "loop_tail_stability"
    else:
        document = compare(args)
        name = "loop_tail"
    path = write_result(name, document, args.json, overwrite=args.overwrite)
    print(f"wrote {path}")
    return 0


def compare(args: argparse.Namespace) -> dict[str, Any]:
    """The variants alternated in rounds at each thread count and frame rate."""
    runs = []
    for threads in args.threads:
        for fps in args.fps:
            for pair in range(args.pairs):
                order = args.variants if pair % 2 == 0 else args.variants[::-1]
                for variant in order:
                    row = run_one(
                        variant, args.seconds, threads, fps, args.far_end_priority, args.sched_trace
                    )
                    runs.append(row)
                    beyond = row["beyond_engine_ms"] or {}
                    print(
                        f"{threads}t {fps:5.0f} fps {variant:12s}: frame→byte p50 "
                        f"{row['p50_ms']:.3f} p99 {row['p99_ms']:.3f} ms; beyond engine p50 "
                        f"{beyond.get('p50')} p99 {beyond.get('p99')} ms; gc {row['gc']['count']}",
                        flush=True,
                    )
                    if "sched_trace" in row:
                        worst = row["sched_trace"].get("worst_2pct", {})
                        print(f"    worst 2 %: {worst.get('cpu_ms_per_window')}", flush=True)
    return {
        "seconds": args.seconds,
        "variants": {v: VARIANTS[v] for v in args.variants},
        "far_end_priority": args.far_end_priority,
        "runs": runs,
    }


if __name__ == "__main__":
    sys.exit(main())
