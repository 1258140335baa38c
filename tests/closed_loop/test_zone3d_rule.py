"""A 3D zone rule through `realtime-pose run` on a three-camera group: the emulated serial board
pulses exactly on the frame sets whose triangulated snout is inside the box (and, away from the
box's walls, where the true snout is), and the ephys sync line pulses once per frame set."""

from __future__ import annotations

import time

import numpy as np
import pytest
import yaml

from realtime_pose.hardware.testing.emulator import read_log as read_emulator_log
from realtime_pose.hardware.testing.emulator import start_emulator_process
from realtime_pose.recording import read_log
from realtime_pose.sources.synthetic_views import SyntheticViews, virtual_rig
from realtime_pose.util.paths import DEMO_BUNDLE
from tests.closed_loop.test_zone_laser import _run, edge_durations_ms

pytestmark = pytest.mark.skipif(
    not (DEMO_BUNDLE / "model.onnx").is_file(), reason="demo bundle not built"
)
FPS, FRAMES, SEED = 20.0, 120, 2
BOX = [20.0, -200.0, -50.0, 300.0, 300.0, 200.0]  # mm: the arena's +x side, any height
MARGIN_MM = 6.0  # the demo network's 3D error is ~1.5 mm median, p90 ~2.7 mm


def on_edges(records: list[dict], channel: int) -> list[int]:
    return [
        r["t_ns"] for r in records if r["event"] == "edge" and r["channel"] == channel and r["on"]
    ]


def test_a_3d_zone_fires_on_the_frame_sets_inside_it_and_the_sync_line_marks_each_set(tmp_path):
    virtual_rig(3).save(tmp_path / "calibration.toml")
    link, emu_log = str(tmp_path / "board"), tmp_path / "emulator.jsonl"
    camera = {"kind": "synthetic_view", "fps": FPS, "max_frames": FRAMES, "seed": SEED}
    config = {
        "sources": {f"cam{c}": {**camera, "camera": f"cam{c}"} for c in range(3)},
        "calibration": "calibration.toml",
        "sync": {"mode": "frame_id", "wait_ms": 40, "output": "ephys", "pulse_ms": 2},
        "bundle": str(DEMO_BUNDLE),
        "engine": {"threads": 1, "spinning": False, "warmup_runs": 1},
        "stream": {"address": "tcp://127.0.0.1:*", "control_address": None},
        "recording": {"enabled": True, "directory": "rec"},
        "prediction": {"enabled": False},
        "outputs": {
            "laser": {"kind": "serial", "port": link, "channel": 0, "max_on_ms": 20},
            "ephys": {"kind": "serial", "port": link, "channel": 1, "max_on_ms": 20},
        },
        "rules": [
            {
                "name": "snout-in-box",
                "on": "while",
                "refractory_s": 0,
                "condition": {"type": "zone3d", "keypoint": "snout", "box": BOX},
                "actions": [{"output": "laser", "action": "pulse", "duration_ms": 5}],
            }
        ],
    }
    path = tmp_path / "rig.yaml"
    path.write_text(yaml.safe_dump(config))
    with start_emulator_process(link, emu_log, max_on_ms=100, watchdog_ms=0):
        out = _run(path)
        assert out.returncode == 0, out.stderr
        time.sleep(0.3)
    rec = read_log(next((tmp_path / "rec").glob("*.poselog")))
    sets = rec.sets
    assert sets is not None and len(sets.points) >= FRAMES // 2
    snout = sets.points[:, 0]  # [N, 5]: x, y, z, error, views
    inside = (snout[:, 0] >= BOX[0]) & (snout[:, 4] >= 2)
    fired = {
        e["event"]["frame_index"]
        for e in rec.events
        if e["event"]["kind"] == "rule" and e["event"]["state"] == "fired"
    }
    assert fired == set(sets.set_index[inside].tolist()), "exactly the sets inside the box"
    assert 0 < len(fired) < len(sets.points), "the animal goes in and out"

    truth_x = np.array(
        [SyntheticViews(virtual_rig(3), seed=SEED, fps=FPS).truth3d(k)[0, 0] for k in sets.key]
    )
    clear = (np.abs(truth_x - BOX[0]) > MARGIN_MM) & (snout[:, 4] >= 2)  # triangulated
    truly_inside = truth_x > BOX[0]
    fired_mask = np.isin(sets.set_index, list(fired))
    wrong = np.flatnonzero(clear & (fired_mask != truly_inside))
    detail = [(int(sets.key[i]), truth_x[i].round(1), snout[i].round(1).tolist()) for i in wrong]
    assert not len(wrong), f"the true snout decides: (key, true x, measured) {detail}"

    board = read_emulator_log(emu_log)
    assert len(edge_durations_ms(board, channel=0)) == len(fired), "one laser pulse per set"
    sync = on_edges(board, channel=1)
    sent = sets.sync_t_ns[sets.sync_t_ns >= 0]
    assert len(sent) == len(sets.points), "every set's record says when its pulse was sent"
    assert len(sync) == len(sent), "one sync edge per frame set, one to one"
    assert np.all(np.diff(sent) > 0) and np.all(np.diff(sync) > 0)
