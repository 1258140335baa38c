"""A zone rule driving the emulated laser through `realtime-pose run`: every entry fires once, no
output is ever on longer than its limit, and the board's own limit holds when the loop is
SIGKILLed with the laser on."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
import yaml

from realtime_pose.hardware.testing.emulator import read_log as read_emulator_log
from realtime_pose.hardware.testing.emulator import start_emulator_process
from realtime_pose.recording import read_log
from tests.builders import draw_markers, write_marker_bundle

REPO = Path(__file__).resolve().parents[2]
ZONE_X0 = 40.0  # red marker x = ix*8 + 4 + 1.82: inside for ix >= 5


def red_ix(i: int) -> int:
    """Red marker's cell: a triangle wave 1..8..2 with period 14 frames."""
    return 8 - abs(i % 14 - 7)


def write_video(path: Path, n: int) -> Path:
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 100.0, (80, 64))
    for i in range(n):
        writer.write(draw_markers(64, 80, [(red_ix(i), 3), (1, 1), (1, 6)]))
    writer.release()
    return path


def edge_durations_ms(records: list[dict], channel: int = 0) -> list[float]:
    """On-time of every on→off pair on ``channel`` in the emulator's log."""
    edges = [r for r in records if r["event"] == "edge" and r["channel"] == channel]
    out, t_on = [], None
    for e in edges:
        if e["on"] and t_on is None:
            t_on = e["t_ns"]
        elif not e["on"] and t_on is not None:
            out.append((e["t_ns"] - t_on) / 1e6)
            t_on = None
    assert t_on is None, "an output was left on"
    return out


def run_config(tmp_path, bundle, source, link, host_max_on_ms, rule_max_on_s):
    config = {
        "source": source,
        "bundle": str(bundle),
        "engine": {"threads": 1, "spinning": False, "warmup_runs": 1},
        "stream": {"address": "tcp://127.0.0.1:*", "control_address": None},
        "recording": {"enabled": True, "directory": str(tmp_path / "rec")},
        "prediction": {"enabled": False},
        "outputs": {
            "laser": {"kind": "serial", "port": link, "channel": 0, "max_on_ms": host_max_on_ms}
        },
        "rules": [
            {
                "name": "red-in-zone",
                "on": "enter",
                "condition": {"type": "zone", "keypoint": "red", "rectangle": [ZONE_X0, 0, 80, 64]},
                "max_on_s": rule_max_on_s,
                "actions": [{"output": "laser", "action": "on"}],
            }
        ],
    }
    path = tmp_path / "rig.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def _run(config_path, *extra, wait=True):
    env = dict(os.environ, PYTHONPATH=str(REPO))
    cmd = [sys.executable, "-m", "realtime_pose", "run", str(config_path), "--quiet", *extra]
    if wait:
        return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)
    return subprocess.Popen(cmd, env=env, stderr=subprocess.PIPE, text=True)


def test_every_entry_fires_once_and_no_output_outlives_its_limit(tmp_path):
    bundle = write_marker_bundle(tmp_path / "bundle")
    video = write_video(tmp_path / "zone.avi", 112)  # 8 periods
    link, emu_log = str(tmp_path / "laser"), tmp_path / "emulator.jsonl"
    with start_emulator_process(link, emu_log, max_on_ms=50, watchdog_ms=0):
        config = run_config(
            tmp_path,
            bundle,
            {"kind": "video", "path": str(video), "realtime": True},
            link,
            30,
            0.03,
        )
        out = _run(config)
        assert out.returncode == 0, out.stderr
        time.sleep(0.2)
    rec = read_log(next((tmp_path / "rec").glob("*.poselog")))
    inside = rec.poses[:, 0, 0, 0] >= ZONE_X0
    entries = int(np.sum(inside[1:] & ~inside[:-1]) + inside[0])
    rule_events = [e["event"] for e in rec.events if e["event"]["kind"] == "rule"]
    fired = [e for e in rule_events if e["state"] == "fired"]
    assert entries >= 6 and len(fired) == entries
    for e in fired:  # each firing is on a frame where red just entered
        assert red_ix(e["frame_index"]) >= 5
    cuts = [e for e in rule_events if e["state"] == "max_on_cut"]
    outputs = [e["event"] for e in rec.events if e["event"]["kind"] == "output"]
    assert [o["action"] for o in outputs if o["action"] == "on"] == ["on"] * entries
    assert cuts, "the marker stays in the zone ~70 ms: the rule's 30 ms max on-time must cut"
    durations = edge_durations_ms(read_emulator_log(emu_log))
    assert len(durations) == entries
    assert max(durations) <= 50 + 5  # never beyond the board limit (5 ms for scheduling)


def test_sigkill_mid_pulse_the_board_still_switches_off(tmp_path):
    bundle = write_marker_bundle(tmp_path / "bundle")
    video = write_video(tmp_path / "zone.avi", 400)
    link, emu_log = str(tmp_path / "laser"), tmp_path / "emulator.jsonl"
    with start_emulator_process(link, emu_log, max_on_ms=1000, watchdog_ms=0) as emu:
        # the output's configured limit is 80 ms; the host sends it to the board at start, the
        # rule never cuts (5 s), and the host dies mid-pulse: only the board can end the pulse
        config = run_config(
            tmp_path, bundle, {"kind": "video", "path": str(video), "realtime": True}, link, 80, 5.0
        )
        proc = _run(config, wait=False)
        try:
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                if any(r["event"] == "edge" and r["on"] for r in emu.records()):
                    break
                time.sleep(0.002)
            else:
                pytest.fail("the laser never went on")
            proc.send_signal(signal.SIGKILL)
            proc.wait(10)
            time.sleep(0.3)
        finally:
            if proc.poll() is None:
                proc.kill()
    records = read_emulator_log(emu_log)
    durations = edge_durations_ms(records)
    assert durations and max(durations) <= 80 + 5
    last_off = [r for r in records if r["event"] == "edge" and not r["on"]][-1]
    assert last_off["cause"] == "max_on"
