"""Shared fixtures for the hardware tests: real ptys, a board emulator, polling helpers."""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from realtime_pose.hardware.action_log import ActionLog
from realtime_pose.hardware.testing.emulator import EmulatorThread

# Generous: the CI machine has two shared cores; tests wait for behaviour, never time it.
WAIT_S = 10.0


def wait_until(predicate: Callable[[], object], timeout_s: float = WAIT_S, poll_s: float = 0.01):
    """Poll ``predicate`` until it returns something truthy; fail the test on timeout."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"condition not reached within {timeout_s} s: {predicate}")
        time.sleep(poll_s)


@pytest.fixture
def link(tmp_path: Path) -> str:
    """A path for a pty symlink (a stable port name)."""
    return str(tmp_path / "rig-port")


@pytest.fixture
def emulator(link: str) -> Iterator[EmulatorThread]:
    """A board emulator (4 channels) on a pty, served by a thread, reachable at ``link``."""
    emu = EmulatorThread(link=link, n_channels=4)
    yield emu
    emu.stop()


@pytest.fixture
def action_log() -> ActionLog:
    return ActionLog()


def fill_pty(fd: int) -> None:
    """Write to a pty end until its buffer is full, so the next write on that end blocks.

    Big chunks first, then single newlines (reads on the other side see only empty lines). The
    kernel moves pty data asynchronously, so one EAGAIN does not mean full: retry until several
    rounds in a row accept nothing.
    """
    os.set_blocking(fd, False)
    for chunk in (b"#" * 1023 + b"\n", b"\n"):
        idle_rounds = 0
        while idle_rounds < 5:
            wrote = False
            with contextlib.suppress(BlockingIOError):
                while True:
                    os.write(fd, chunk)
                    wrote = True
            idle_rounds = 0 if wrote else idle_rounds + 1
            time.sleep(0.01)
