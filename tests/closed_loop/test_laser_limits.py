"""Outputs that cannot be held on, end to end: a live session drives the emulated laser (a board
emulator in its own process, on a real pty) as hard as it can, through the control socket's
``output_test`` and through an ``on: while`` rule with no refractory period, and the board's own
edge log shows the minimum off-time and the duty-cycle limit held."""

from __future__ import annotations

import itertools
import json
import time

from realtime_pose.hardware.testing.emulator import read_log, start_emulator_process
from realtime_pose.stream import ControlClient
from tests.view.sessions import RunningSession, StreamLog, marker_config

MS = 1_000_000


def on_periods(records: list[dict], channel: int = 0) -> list[tuple[int, int]]:
    """``(t_on_ns, t_off_ns)`` of every on-period of ``channel`` in the emulator's log."""
    out, t_on = [], None
    for r in records:
        if r["event"] != "edge" or r["channel"] != channel:
            continue
        if r["on"] and t_on is None:
            t_on = r["t_ns"]
        elif not r["on"] and t_on is not None:
            out.append((t_on, r["t_ns"]))
            t_on = None
    assert t_on is None, "the laser was left on"
    return out


def max_on_in_any_window(periods: list[tuple[int, int]], window_ns: int) -> int:
    """The most on-time any window of ``window_ns`` holds (largest for a window that starts at
    an on-edge or ends at an off-edge)."""
    starts = [a for a, _ in periods] + [b - window_ns for _, b in periods]
    return max(
        (sum(max(0, min(b, s + window_ns) - max(a, s)) for a, b in periods) for s in starts),
        default=0,
    )


def figures(records: list[dict], window_ms: float) -> dict[str, float]:
    """What the emulator's log says, in ms: the largest on-time in any window, the shortest
    off-gap, the longest on-period, the duty cycle over the whole run, the latest the
    emulator's timers ended an on-period (``late_ms``: a Python select loop on a shared machine;
    the board counts that on-time too, so it never adds up beyond one period's lateness) and
    how many switch-ons the board itself refused (``board_held``: the host allowed them, a link
    latency too early)."""
    periods = on_periods(records)
    gaps = [b[0] - a[1] for a, b in itertools.pairwise(periods)]
    span = periods[-1][1] - periods[0][0]
    timed = [r for r in records if r["event"] == "edge" and "due_ns" in r]
    return {
        "periods": len(periods),
        "max_on_in_window_ms": max_on_in_any_window(periods, round(window_ms * MS)) / MS,
        "min_off_gap_ms": min(gaps) / MS,
        "max_on_period_ms": max(b - a for a, b in periods) / MS,
        "overall_duty": sum(b - a for a, b in periods) / span,
        "late_ms": max(r["t_ns"] - r["due_ns"] for r in timed) / MS,
        "board_held": sum(1 for r in records if r["event"] == "tx" and " HELD " in r["line"]),
    }


def laser(link: str, **limits: float) -> dict:
    return {"laser": {"kind": "serial", "port": link, "channel": 0, "watchdog_ms": 0, **limits}}


def test_output_test_as_fast_as_the_control_socket_allows_stays_within_the_limits(tmp_path):
    link, emu_log = str(tmp_path / "laser"), tmp_path / "emulator.jsonl"
    limits = {"max_on_ms": 50, "min_off_ms": 30, "max_duty": 0.25, "duty_window_ms": 400}
    replies = []
    with start_emulator_process(link, emu_log, watchdog_ms=0):
        config = marker_config(tmp_path, outputs=laser(link, **limits))
        with RunningSession(config, tmp_path) as run, ControlClient(run.control, 3000) as client:
            t_end = time.monotonic() + 3.0
            while time.monotonic() < t_end:
                replies.append(client.request("output_test", output="laser", duration_ms=20))
            time.sleep(0.2)
    got = figures(read_log(emu_log), limits["duty_window_ms"])
    (tmp_path / "figures.json").write_text(json.dumps(got))
    print("output_test figures:", got, "requests:", len(replies))
    ok = [r for r in replies if r["ok"]]
    refused = [r["error"] for r in replies if not r["ok"]]
    assert len(ok) >= 10 and got["periods"] == len(ok) - got["board_held"]
    assert ok[0]["min_off_ms"] == 30 and ok[0]["max_duty"] == 0.25
    assert any("min_off_ms" in e and "try again in" in e for e in refused)
    assert any("duty-cycle budget" in e for e in refused)
    assert all("ValueError: output 'laser' " in e for e in refused), set(refused)
    assert any("is on for another" in e for e in refused)  # asked while its pulse ran
    assert got["min_off_gap_ms"] >= 30  # exact: the board checks the times it logs
    assert got["max_on_in_window_ms"] <= 100 + got["late_ms"]


def test_a_while_rule_with_no_refractory_cannot_hold_the_laser_on(tmp_path):
    link, emu_log = str(tmp_path / "laser"), tmp_path / "emulator.jsonl"
    limits = {"max_on_ms": 100, "min_off_ms": 40, "max_duty": 0.3, "duty_window_ms": 1000}
    rule = {
        "name": "always",
        "on": "while",  # fires every frame, no refractory: re-sends "on" at the frame rate
        "condition": {"type": "zone", "keypoint": "red", "rectangle": [0, 0, 80, 64]},
        "actions": [{"output": "laser", "action": "on"}],
    }
    with start_emulator_process(link, emu_log, watchdog_ms=0):
        config = marker_config(tmp_path, outputs=laser(link, **limits), rules=[rule])
        with RunningSession(config, tmp_path) as run:
            events = StreamLog(run.stream, (b"event",))
            time.sleep(10.0)
            status = run.session.pipeline.publish_status()
            events.close()
        time.sleep(0.2)
    got = figures(read_log(emu_log), limits["duty_window_ms"])
    (tmp_path / "figures.json").write_text(json.dumps(got))
    print("while-rule figures:", got)
    assert got["periods"] >= 20
    assert got["min_off_gap_ms"] >= 40
    assert got["max_on_in_window_ms"] <= 300 + got["late_ms"]
    assert got["max_on_period_ms"] <= 100 + got["late_ms"]
    held = status["outputs"]["held_off"]["laser"]
    assert held["min_off"] > 0 and held["duty"] > 0 and held["last_cause"] in ("min_off", "duty")
    outputs = [e for e in events.of(b"event") if e["kind"] == "output"]
    assert {e.get("held_off") for e in outputs} >= {None, "min_off", "duty"}
