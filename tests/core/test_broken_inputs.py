"""Every broken bundle and config of the corpus is refused at start, naming the file and the
field, with nothing started half-way: no thread of ours left running, no output left on."""

from __future__ import annotations

import threading
import time

import pytest

from realtime_pose.cli import main
from realtime_pose.hardware.testing.emulator import EmulatorThread
from tests.broken_inputs import CASES, build

OURS = ("control-server", "grabber", "output-watchdog", "pose-log-fsync", "deadline", "-writer")


def _our_threads() -> list[str]:
    return [
        t.name for t in threading.enumerate() if t.is_alive() and any(s in t.name for s in OURS)
    ]


def test_the_corpus_is_large_enough():
    assert len(CASES) >= 30 and len({c.name for c in CASES}) == len(CASES)


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_a_broken_input_is_refused_naming_it(tmp_path, caplog, case):
    before = set(_our_threads())
    with EmulatorThread() as board:
        rig = build(case, tmp_path, serial_port=board.path)
        with caplog.at_level("ERROR"):
            assert main(["run", str(rig), "--quiet", "--seconds", "5"]) == 2
        time.sleep(0.05)
        on_edges = [e for e in board.emulator.edges(0) if e.get("on")]
    message = "\n".join(r.getMessage() for r in caplog.records if r.levelname == "ERROR")
    for name in case.names:
        assert name in message, message
    assert "Traceback" not in message
    assert on_edges == []  # the laser never went on
    assert set(_our_threads()) <= before  # nothing of the half-built session still runs
