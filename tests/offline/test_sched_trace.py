"""benchmarks/sched_trace.py: the kernel's scheduler trace read back, and windows broken down."""

import os

import numpy as np
import pytest

from benchmarks.sched_trace import (
    SchedTrace,
    TraceUnavailableError,
    parse_switches,
    window_breakdown,
)

TRACE = """\
# tracer: nop
          <idle>-0       [000] d..2.  10.000000000: sched_switch: prev_comm=swapper/0 prev_pid=0 \
prev_prio=120 prev_state=R ==> next_comm=python next_pid=100 next_prio=120
          python-100     [000] d..2.  10.000000100: sched_switch: prev_comm=python prev_pid=100 \
prev_prio=120 prev_state=R ==> next_comm=kworker/0:1 next_pid=7 next_prio=120
     kworker/0:1-7       [000] d..2.  10.000000400: sched_switch: prev_comm=kworker/0:1 prev_pid=7 \
prev_prio=120 prev_state=I ==> next_comm=python next_pid=100 next_prio=120
          <idle>-0       [001] d..2.  10.000000000: sched_switch: prev_comm=swapper/1 prev_pid=0 \
prev_prio=120 prev_state=R ==> next_comm=ZMQbg/IO/0 next_pid=102 next_prio=120
      ZMQbg/IO/0-102     [001] d..2.  10.000000500: sched_switch: prev_comm=ZMQbg/IO/0 \
prev_pid=102 prev_prio=120 prev_state=S ==> next_comm=swapper/1 next_pid=0 next_prio=120
          python-100     [000] d..2.  10.000001000: sched_switch: prev_comm=python prev_pid=100 \
prev_prio=120 prev_state=S ==> next_comm=swapper/0 next_pid=0 next_prio=120
"""


def test_switches_become_per_cpu_slices():
    slices, lost = parse_switches(TRACE)
    assert lost == 0
    by = {(s.cpu, s.tid): s for s in slices}
    kworker = by[(0, 7)]
    assert (kworker.start_ns, kworker.end_ns) == (10_000_000_100, 10_000_000_400)
    assert not kworker.preempted
    loop = sorted((s for s in slices if s.tid == 100), key=lambda s: s.start_ns)
    assert [(s.start_ns, s.end_ns, s.preempted) for s in loop] == [
        (10_000_000_000, 10_000_000_100, True),  # switched out still runnable
        (10_000_000_400, 10_000_001_000, False),  # went to sleep
    ]
    assert by[(1, 102)].comm == "ZMQbg/IO/0"


def test_windows_are_broken_down_by_kind_of_thread():
    slices, _ = parse_switches(TRACE)
    windows = np.array([[10_000_000_000, 10_000_001_000]], dtype=np.int64)
    out = window_breakdown(slices, windows, loop_tid=100, names={}, own_tids={100})
    cpu = out["cpu_ms_per_window"]
    assert cpu["loop"] == pytest.approx(0.0007)  # 0 -> 100 and 400 -> 1000 ns
    assert cpu["kworker"] == pytest.approx(0.0003) and cpu["ZMQ"] == pytest.approx(0.0005)
    assert out["window_ms"] == pytest.approx(0.001)
    assert out["loop_off_cpu_ms"] == pytest.approx(0.0003)
    assert out["loop_preemptions_per_window"] == 1.0  # switched out still runnable, at 100 ns


@pytest.mark.skipif(os.geteuid() != 0, reason="ftrace needs root")
def test_a_real_trace_sees_this_thread_run():
    import threading
    import time

    try:
        with SchedTrace(buffer_kb=2048) as trace:
            t_end = time.monotonic_ns() + 30_000_000
            while time.monotonic_ns() < t_end:
                time.sleep(0.001)  # switch out and in, many times
    except TraceUnavailableError as exc:
        pytest.skip(str(exc))
    me = threading.get_native_id()
    mine = [s for s in trace.slices if s.tid == me]
    assert len(mine) >= 5 and all(s.end_ns > s.start_ns for s in mine)
