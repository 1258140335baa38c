"""Shared fixtures for the hardware tests: real ptys, a board emulator, polling helpers."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from hardware.action_log import ActionLog
from hardware.emulator import EmulatorThread

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
