"""Keep the loop's memory in RAM while it runs: no page fault waits for the disk mid-frame.

A page of the process (a shared library's code, a Python module, a buffer) that the kernel
dropped or paged out while it was cold costs a *major* page fault the next time the loop
touches it: the thread sleeps until the page is read back, milliseconds with the CPU idle.
Kernels page out cold memory on their own under pressure, and some hosts do it all the time
(proactive reclaim, e.g. DAMON's ``pageout`` on cloud VMs). ``mlockall`` pins what the process
uses: ``MCL_CURRENT | MCL_ONFAULT`` locks the pages already in memory and every page faulted in
later, without reading in the untouched rest of the address space (no jump in resident size).

Linux only; it needs ``CAP_IPC_LOCK`` or an ``RLIMIT_MEMLOCK`` above the process's size (as
root, or ``ulimit -l unlimited`` / ``LimitMEMLOCK=infinity``). Where refused, one log line says
so and the loop runs as before.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import os
import resource

log = logging.getLogger(__name__)

MCL_CURRENT = 1
MCL_FUTURE = 2
MCL_ONFAULT = 4


def _libc() -> ctypes.CDLL | None:
    name = ctypes.util.find_library("c")
    if name is None:
        return None
    try:
        return ctypes.CDLL(name, use_errno=True)
    except OSError:
        return None


def lock_memory() -> bool:
    """Lock the process's resident pages, and those faulted in later, into RAM.

    Returns ``True`` when locked; ``False`` (one warning) where the platform or the limits
    refuse it. Undo with :func:`unlock_memory`.
    """
    libc = _libc()
    if libc is None or not hasattr(libc, "mlockall"):
        log.warning("lock_memory: mlockall is not available on this platform; ignored")
        return False
    soft, _ = resource.getrlimit(resource.RLIMIT_MEMLOCK)
    limited = soft != resource.RLIM_INFINITY and os.geteuid() != 0
    # with a finite limit, locking future pages would make allocations past it fail: not tried
    error = f"RLIMIT_MEMLOCK is {soft // 1024} KiB" if limited else None
    if error is None and libc.mlockall(MCL_CURRENT | MCL_FUTURE | MCL_ONFAULT) != 0:
        error = os.strerror(ctypes.get_errno())
    if error is not None:
        log.warning(
            "lock_memory: cannot lock the process's memory (%s): running without. Allow it with "
            "`ulimit -l unlimited`, LimitMEMLOCK=infinity under systemd, or CAP_IPC_LOCK "
            "(docs/realtime.md)",
            error,
        )
        return False
    log.info("lock_memory: the process's memory is locked in RAM while the loop runs")
    return True


def unlock_memory() -> None:
    """Undo :func:`lock_memory`."""
    libc = _libc()
    if libc is not None and libc.munlockall() != 0:
        log.warning("lock_memory: munlockall failed (errno %d)", ctypes.get_errno())


def locked_kib() -> int:
    """``VmLck`` of this process (KiB of locked memory), 0 where unknown."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmLck:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0
