"""lock_memory: the process's pages held in RAM while the loop runs, or one clear line."""

import os
import resource

import pytest

from realtime_pose.live.memory_lock import lock_memory, locked_kib, unlock_memory
from realtime_pose.live.run_config import parse_config


def test_memory_is_locked_and_unlocked_or_refused_with_one_line(caplog):
    soft, _ = resource.getrlimit(resource.RLIMIT_MEMLOCK)
    may = os.geteuid() == 0 or soft == resource.RLIM_INFINITY
    with caplog.at_level("INFO"):
        locked = lock_memory()
    try:
        assert locked == may
        if locked:
            assert locked_kib() > 1024  # the interpreter and numpy at least
            grown = bytearray(8 << 20)  # a page touched later is locked as it faults in
            grown[::4096] = b"x" * len(grown[::4096])
            assert locked_kib() > 8 * 1024
        else:
            assert "cannot lock the process's memory" in caplog.text
            assert "ulimit -l unlimited" in caplog.text
    finally:
        unlock_memory()
    assert locked_kib() == 0


def test_the_run_config_takes_lock_memory():
    config = {"source": {"kind": "synthetic"}, "bundle": "b", "lock_memory": True}
    assert parse_config(config, "rig.yaml").lock_memory is True
    with pytest.raises(ValueError, match="lock_memory"):
        parse_config({**config, "lock_memory": "sometimes"}, "rig.yaml")
