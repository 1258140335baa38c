"""Where the loop's own tail comes from, and what taking hand-offs out of the firing path buys.

    python benchmarks/loop_tail.py [--seconds 20] [--threads 1 2] [--fps 50 100] [--pairs 2]

Runs the latency self-test (``realtime-pose latency-test``: the synthetic camera, a rule
pulsing a serial output, the far end of a pty in another process) with the firing path as it
was (``before``: every serial line handed to the writer thread, Python's garbage collector
free to collect inside a frame) and as it is now (``after``: the line written from the loop
when the port takes it at once, collections between frames), alternated in pairs at each thread
count and frame rate so a noisy spell hits both alike. For each run it keeps the frame → byte
and beyond-engine p50/p99/max, the path's three legs (loop → dispatch, dispatch → write,
write → arrival), and a trace: per thread, CPU time and voluntary / involuntary context
switches during the run (``/proc/self/task``), and every garbage collection (``gc.callbacks``:
generation, length, and whether it ran on the loop thread). Writes
``benchmarks/results/loop_tail.json``.
"""

from __future__ import annotations

import argparse
import gc
import os
import sys
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import add_overwrite_argument, write_result
from realtime_pose.live.latency_selftest import run_latency_test
from realtime_pose.util.paths import DEMO_BUNDLE

VARIANTS = {
    "before": {"direct_write": False, "gc_between_frames": False},
    "after": {"direct_write": True, "gc_between_frames": True},
}


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
        self.names = {t.native_id: t.name for t in threading.enumerate()}

    def threads(self) -> list[dict[str, Any]]:
        """Threads that ran during the trace, busiest first (names for those still alive)."""
        tick_ms = 1000 / os.sysconf("SC_CLK_TCK")
        rows = []
        for tid, end in self.after.items():
            start = self._before.get(tid, {"voluntary": 0, "involuntary": 0, "cpu_ticks": 0})
            delta = {k: end[k] - start[k] for k in end}
            if not any(delta.values()):
                continue
            rows.append(
                {
                    "thread": self.names.get(tid, _thread_name(tid)),
                    "cpu_ms": round(delta["cpu_ticks"] * tick_ms, 1),
                    "voluntary_switches": delta["voluntary"],
                    "involuntary_switches": delta["involuntary"],
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
    for t in threading.enumerate():
        if t.native_id == tid:
            return t.name
    return f"tid {tid}"


def run_one(variant: str, seconds: float, threads: int, fps: float) -> dict[str, Any]:
    with Trace() as trace:
        result = run_latency_test(
            DEMO_BUNDLE, seconds=seconds, fps=fps, threads=threads, **VARIANTS[variant]
        )
    summary = result.summary()
    return {
        "variant": variant,
        "threads": threads,
        "fps": fps,
        "n": summary["n"],
        "p50_ms": summary["p50_ms"],
        "p99_ms": summary["p99_ms"],
        "engine_p50_ms": summary["engine_p50_ms"],
        "beyond_engine_ms": summary.get("beyond_engine_ms"),
        "path_ms": summary.get("path_ms"),
        "threads_trace": trace.threads(),
        "gc": trace.gc_summary(),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--fps", type=float, nargs="+", default=[50.0, 100.0])
    parser.add_argument("--pairs", type=int, default=2)
    parser.add_argument("--json", type=Path, default=None)
    add_overwrite_argument(parser)
    args = parser.parse_args()
    runs = []
    for threads in args.threads:
        for fps in args.fps:
            for pair in range(args.pairs):
                order = ("before", "after") if pair % 2 == 0 else ("after", "before")
                for variant in order:
                    row = run_one(variant, args.seconds, threads, fps)
                    runs.append(row)
                    beyond = row["beyond_engine_ms"] or {}
                    print(
                        f"{threads}t {fps:5.0f} fps {variant:6s}: frame→byte p50 "
                        f"{row['p50_ms']:.3f} p99 {row['p99_ms']:.3f} ms; beyond engine p50 "
                        f"{beyond.get('p50')} p99 {beyond.get('p99')} ms; gc {row['gc']['count']}",
                        flush=True,
                    )
    path = write_result(
        "loop_tail",
        {"seconds": args.seconds, "variants": VARIANTS, "runs": runs},
        args.json,
        overwrite=args.overwrite,
    )
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
