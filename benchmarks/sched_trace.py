"""Which thread ran on which CPU, from the kernel's own scheduler trace (Linux ftrace).

:class:`SchedTrace` records every ``sched_switch`` on every CPU while it is open (tracefs,
root; the clock is ``mono``, the same as ``time.monotonic_ns()``). :func:`window_breakdown`
then says, for a set of time windows (a firing's frame-ready → byte-received), how long each
kind of thread held a CPU inside them, and how often the loop thread was switched out while
still runnable (preempted). Comparing the worst firings' windows with the median ones names
what the tail is made of: another thread of ours, ONNX Runtime's workers, a kernel worker,
the far end, or nothing at all (an idle CPU: a wake-up that came late).

Used by ``benchmarks/loop_tail.py --sched-trace``; nothing in the package depends on it.
"""

from __future__ import annotations

import os
import re
import threading
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

TRACEFS = Path("/sys/kernel/tracing")

_SWITCH = re.compile(
    r"\[(?P<cpu>\d+)\].*?\s(?P<ts>\d+\.\d+): sched_switch: prev_comm=(?P<prev_comm>.*?) "
    r"prev_pid=(?P<prev_pid>\d+) prev_prio=\d+ prev_state=(?P<state>\S+) ==> "
    r"next_comm=(?P<next_comm>.*?) next_pid=(?P<next_pid>\d+) next_prio=\d+"
)


class TraceUnavailableError(RuntimeError):
    """tracefs is missing or not writable (not root, or a kernel without ftrace)."""


@dataclass(frozen=True)
class Slice:
    """One thread's stay on one CPU."""

    cpu: int
    start_ns: int
    end_ns: int
    tid: int
    comm: str
    preempted: bool
    """It left the CPU still runnable (``prev_state`` R): switched out, not waiting."""


class SchedTrace:
    """Record ``sched_switch`` events while open; :attr:`slices` afterwards.

    Raises :class:`TraceUnavailableError` on entry where ftrace cannot be used.
    """

    def __init__(self, buffer_kb: int = 16384) -> None:
        self.buffer_kb = buffer_kb
        self.slices: list[Slice] = []
        self.lost = 0
        self._saved: dict[str, str] = {}

    def _write(self, name: str, value: str) -> None:
        (TRACEFS / name).write_text(value)

    def __enter__(self) -> SchedTrace:
        if not (TRACEFS / "trace").exists():
            os.system(f"mount -t tracefs nodev {TRACEFS} 2>/dev/null")
        if not (TRACEFS / "trace").exists() or not os.access(TRACEFS / "trace", os.W_OK):
            raise TraceUnavailableError(f"{TRACEFS} is not mounted or not writable (needs root)")
        for name in ("trace_clock", "buffer_size_kb"):
            text = (TRACEFS / name).read_text().strip()
            chosen = re.search(r"\[(\w+)\]", text)
            self._saved[name] = chosen.group(1) if chosen else text.split()[0]
        self._write("tracing_on", "0")
        self._write("trace_clock", "mono")
        self._write("buffer_size_kb", str(self.buffer_kb))
        self._write("trace", "")
        self._write("events/sched/sched_switch/enable", "1")
        self._write("tracing_on", "1")
        return self

    def __exit__(self, *exc: object) -> None:
        self._write("tracing_on", "0")
        self._write("events/sched/sched_switch/enable", "0")
        text = (TRACEFS / "trace").read_text(errors="replace")
        self._write("trace", "")
        for name, value in self._saved.items():
            self._write(name, value)
        self.slices, self.lost = parse_switches(text)


def parse_switches(text: str) -> tuple[list[Slice], int]:
    """Per-CPU slices from ftrace's text; and how many CPUs reported lost events."""
    last: dict[int, tuple[int, int, str]] = {}  # cpu -> (since_ns, tid, comm)
    slices: list[Slice] = []
    lost = text.count("LOST")
    for line in text.splitlines():
        m = _SWITCH.search(line)
        if m is None:
            continue
        cpu = int(m["cpu"])
        sec, _, frac = m["ts"].partition(".")
        t_ns = int(sec) * 1_000_000_000 + int(frac.ljust(9, "0")[:9])
        prev = last.get(cpu)
        if prev is not None:
            slices.append(Slice(cpu, prev[0], t_ns, prev[1], prev[2], m["state"].startswith("R")))
        last[cpu] = (t_ns, int(m["next_pid"]), m["next_comm"])
    return slices, lost


def thread_names() -> dict[int, str]:
    """Native thread id → Python thread name, for the threads of this process alive now."""
    return {t.native_id: t.name for t in threading.enumerate() if t.native_id is not None}


def kind_of(tid: int, comm: str, loop_tid: int, names: dict[int, str], own_tids: set[int]) -> str:
    """A readable kind for a thread: ``loop``, a Python thread's name (digits dropped), ``engine
    workers`` (other threads of ours, unnamed: ONNX Runtime's, OpenVINO's), ``idle``, ``far end``,
    ``kworker``, ``ZMQ`` or ``other: COMM``."""
    if tid == loop_tid:
        return "loop"
    if tid == 0:
        return "idle"
    if tid in names:
        return re.sub(r"\d+", "", names[tid]).rstrip("-_ ") or "python thread"
    if comm.startswith("ZMQbg"):
        return "ZMQ"
    if tid in own_tids:
        return "engine workers"
    if comm.startswith("kworker"):
        return "kworker"
    if comm.startswith("python"):
        return "far end / other python"
    return f"other: {comm}"


def window_breakdown(
    slices: list[Slice],
    windows_ns: np.ndarray,
    loop_tid: int,
    names: dict[int, str],
    own_tids: set[int],
) -> dict[str, Any]:
    """Per kind of thread: its CPU time (ms, summed over CPUs) inside the windows, on average
    per window; the window's mean length, the time the loop thread was off its CPU inside it
    (waiting for a wake-up or preempted; the byte's last leg is the far end's), and the loop
    thread's preemptions inside them."""
    per_kind: dict[str, float] = defaultdict(float)
    preemptions = 0
    if len(windows_ns) == 0:
        return {"windows": 0, "cpu_ms_per_window": {}, "loop_preemptions_per_window": 0.0}
    first, last = int(windows_ns[:, 0].min()), int(windows_ns[:, 1].max())
    for s in slices:
        if s.end_ns <= first or s.start_ns >= last:
            continue
        # the windows overlapping this slice: they start before its end and end after its start
        overlapping = (windows_ns[:, 0] < s.end_ns) & (windows_ns[:, 1] > s.start_ns)
        for w0, w1 in windows_ns[overlapping]:
            overlap = int(min(s.end_ns, w1) - max(s.start_ns, w0))
            per_kind[kind_of(s.tid, s.comm, loop_tid, names, own_tids)] += overlap
            if s.tid == loop_tid and s.preempted and w0 <= s.end_ns <= w1:
                preemptions += 1
    n = len(windows_ns)
    window_ms = float((windows_ns[:, 1] - windows_ns[:, 0]).mean()) / 1e6
    loop_ms = per_kind.get("loop", 0) / n / 1e6
    return {
        "windows": n,
        "window_ms": round(window_ms, 4),
        "loop_off_cpu_ms": round(window_ms - loop_ms, 4),
        "cpu_ms_per_window": {
            k: round(v / n / 1e6, 4) for k, v in sorted(per_kind.items(), key=lambda kv: -kv[1])
        },
        "loop_preemptions_per_window": round(preemptions / n, 3),
    }


def tail_vs_median(
    slices: list[Slice],
    windows_ns: np.ndarray,
    beyond_ns: np.ndarray,
    loop_tid: int,
    names: dict[int, str],
    own_tids: set[int],
) -> dict[str, Any]:
    """:func:`window_breakdown` of the worst 2 % of firings (by time beyond the engine) beside
    the middle 20 %."""
    order = np.argsort(beyond_ns)
    n = len(order)
    if n < 10:
        return {}
    worst = order[-max(1, n // 50) :]
    middle = order[int(n * 0.4) : int(n * 0.6)]
    return {
        "worst_2pct": window_breakdown(slices, windows_ns[worst], loop_tid, names, own_tids),
        "middle_20pct": window_breakdown(slices, windows_ns[middle], loop_tid, names, own_tids),
    }
