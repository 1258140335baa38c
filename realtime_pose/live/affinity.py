"""CPU affinity for the live loop: the loop thread on CPUs of its own, every other thread apart.

On a machine with few cores, a two-thread inference run waits for its slowest thread, so any of
our own threads (grabber, ZeroMQ I/O, serial writer, recorder) that wakes on one of its cores
lands in the frame's latency. Pinning the loop thread (preprocess, engine, peaks, rules,
publish) to ``loop`` CPUs and everything else to the ``others`` keeps them out of each other's
way. Linux only (``os.sched_setaffinity`` acts on the calling thread there); elsewhere the
helpers log once and do nothing.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable
from dataclasses import dataclass

log = logging.getLogger(__name__)

_SUPPORTED = hasattr(os, "sched_setaffinity") and hasattr(os, "sched_getaffinity")


def allowed_cpus() -> frozenset[int]:
    """CPUs this thread may run on (all CPUs where affinity is not supported)."""
    if _SUPPORTED:
        return frozenset(os.sched_getaffinity(0))
    return frozenset(range(os.cpu_count() or 1))


def set_thread_cpus(cpus: Iterable[int]) -> bool:
    """Restrict the *calling thread* (and threads it starts later) to ``cpus``.

    Returns ``False`` (logged) where the platform has no per-thread affinity or refuses it.
    """
    wanted = set(cpus)
    if not _SUPPORTED:
        log.warning("CPU affinity is not supported on this platform; loop_cpus ignored")
        return False
    try:
        os.sched_setaffinity(0, wanted)
    except OSError as exc:
        log.warning("could not pin a thread to CPUs %s: %s", sorted(wanted), exc)
        return False
    return True


@dataclass(frozen=True)
class CpuPlan:
    """Which CPUs the loop thread gets and which every other thread of ours gets."""

    loop: frozenset[int]
    others: frozenset[int]


def plan_cpus(loop: Iterable[int], allowed: Iterable[int] | None = None) -> CpuPlan:
    """Split the ``allowed`` CPUs (default: this thread's) into the loop's and the rest.

    Raises
    ------
    ValueError
        ``loop`` is empty or names a CPU outside ``allowed``. When ``loop`` takes every allowed
        CPU, the other threads share them (``others == loop``).
    """
    pool = frozenset(allowed) if allowed is not None else allowed_cpus()
    chosen = frozenset(int(c) for c in loop)
    if not chosen:
        raise ValueError("give at least one CPU for the loop")
    outside = sorted(chosen - pool)
    if outside:
        raise ValueError(f"CPU(s) {outside} are not available here (available: {sorted(pool)})")
    others = pool - chosen
    return CpuPlan(loop=chosen, others=others or chosen)


def set_thread_realtime(priority: int) -> tuple[int, int] | None:
    """Run the *calling thread* under ``SCHED_FIFO`` at ``priority`` (1-99; Linux).

    Returns the previous ``(policy, priority)`` to restore with :func:`restore_thread_policy`,
    or ``None`` where the platform has no such scheduling or refuses it (no ``CAP_SYS_NICE``,
    an ``RLIMIT_RTPRIO`` of 0, a container without it): one clear log line says so, and the
    loop runs as before.
    """
    if not hasattr(os, "sched_setscheduler"):
        log.warning(
            "real-time scheduling is not available on this platform; realtime_priority "
            "ignored (on Windows raise the process's priority class instead)"
        )
        return None
    previous = (os.sched_getscheduler(0), os.sched_getparam(0).sched_priority)
    try:
        os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(priority))
    except OSError as exc:
        log.warning(
            "could not run the loop thread under SCHED_FIFO %d (%s); running without. Allow it "
            "with `setcap cap_sys_nice+ep` on the Python binary or an rtprio limit in "
            "/etc/security/limits.conf (docs/realtime.md)",
            priority,
            exc,
        )
        return None
    log.info("loop thread under SCHED_FIFO priority %d", priority)
    return previous


def restore_thread_policy(previous: tuple[int, int]) -> None:
    """Put the calling thread back under the policy :func:`set_thread_realtime` replaced."""
    policy, priority = previous
    try:
        os.sched_setscheduler(0, policy, os.sched_param(priority))
    except OSError as exc:
        log.warning("could not restore the loop thread's scheduling policy: %s", exc)
