"""Supervised threads: a loop that raises is logged, recorded, reported and, where safe,
restarted."""

from __future__ import annotations

import threading

import pytest

from realtime_pose.live.run_config import parse_config
from realtime_pose.live.session import LiveSession
from realtime_pose.recording import read_log
from realtime_pose.util.supervision import SupervisedThread, ThreadRegistry
from tests.builders import write_marker_bundle
from tests.live.conftest import base_config


def test_a_loop_that_raises_is_restarted_and_recorded(caplog):
    registry = ThreadRegistry()
    runs = []

    def loop():
        runs.append(1)
        if len(runs) <= 2:
            raise KeyError(f"bad input {len(runs)}")

    with caplog.at_level("ERROR"):
        thread = SupervisedThread(loop, "t-restart", backoff_s=(0.01,), registry=registry)
        thread.start()
        thread.join(5)
    assert not thread.is_alive() and len(runs) == 3
    assert registry.report() == {
        "t-restart": {
            "alive": False,
            "deaths": 2,
            "restarts": 2,
            "last_error": "KeyError: 'bad input 2'",
        }
    }
    assert [d.deaths for d in registry.deaths_since(0)] == [1, 2]
    assert "thread t-restart died: KeyError" in caplog.text and "Traceback" in caplog.text


@pytest.mark.parametrize("how", ["no-restart", "stopping", "limit"])
def test_a_dead_loop_is_not_restarted_when_that_is_not_safe(how):
    registry = ThreadRegistry()
    runs = []
    stop = threading.Event()

    def loop():
        runs.append(1)
        if how == "stopping":
            stop.set()
        raise RuntimeError("boom")

    thread = SupervisedThread(
        loop,
        f"t-{how}",
        restart=how != "no-restart",
        max_restarts=1 if how == "limit" else None,
        should_stop=stop.is_set,
        backoff_s=(0.01,),
        registry=registry,
    )
    thread.start()
    thread.join(5)
    assert not thread.is_alive()
    assert len(runs) == (2 if how == "limit" else 1)
    assert registry.report()[f"t-{how}"]["deaths"] == len(runs)


def test_a_thread_death_reaches_the_status_and_the_recording(tmp_path):
    bundle = write_marker_bundle(tmp_path / "bundle")
    source = {"kind": "synthetic", "width": 80, "height": 64, "fps": 100}
    config = parse_config(base_config(bundle, tmp_path, source), "test")
    statuses = []
    with LiveSession(config) as session:
        calls = []

        def dies_once():
            calls.append(1)
            if len(calls) == 1:
                raise ValueError("a message nobody thought of")

        SupervisedThread(dies_once, "lab-helper", backoff_s=(0.01,)).start()
        session.run(duration_s=1.0, on_status=statuses.append)
        log_path = session.pipeline.recorder.path
    assert statuses[-1]["threads"]["lab-helper"] == {
        "alive": False,
        "deaths": 1,
        "restarts": 1,
        "last_error": "ValueError: a message nobody thought of",
    }
    events = [r["event"] for r in read_log(log_path).events if r["event"]["kind"] == "thread"]
    assert [(e["name"], e["error"]) for e in events] == [
        ("lab-helper", "ValueError: a message nobody thought of")
    ]
