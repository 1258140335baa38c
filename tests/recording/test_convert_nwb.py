"""`realtime-pose convert LOG --nwb` on a real recorded session: a zone rule switches a laser on
and off and pulses a reward while `realtime-pose run` records; the NWB file passes pynwb's
validator and the NWB Inspector, movement loads its poses (equal to the log's), and the rule
firings and output actions sit on the poses' clock as events and on-intervals."""

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

from realtime_pose.cli import main
from realtime_pose.recording import read_log
from tests.builders import KEYPOINTS, write_marker_bundle
from tests.closed_loop.test_zone_laser import ZONE_X0, write_video
from tests.nwb_checks import assert_valid_nwb, movement_poses

pynwb = pytest.importorskip("pynwb", reason="the nwb extra is not installed")
REPO = Path(__file__).resolve().parents[2]


def record_session(tmp_path) -> Path:
    zone = {"type": "zone", "keypoint": "red", "rectangle": [ZONE_X0, 0, 80, 64]}
    config = {
        "source": {
            "kind": "video",
            "path": str(write_video(tmp_path / "zone.avi", 56)),
            "realtime": False,
        },
        "bundle": str(write_marker_bundle(tmp_path / "bundle")),
        "engine": {"threads": 1, "spinning": False, "warmup_runs": 1},
        "stream": {"address": "tcp://127.0.0.1:*", "control_address": None},
        "recording": {"enabled": True, "directory": str(tmp_path / "rec"), "video": True},
        "prediction": {"enabled": False},
        "outputs": {
            "laser": {"kind": "log", "channel": 0},
            "reward": {"kind": "log", "channel": 1},
        },
        "rules": [
            {
                "name": "red-in-zone",
                "on": "enter",
                "condition": zone,
                "actions": [
                    {"output": "laser", "action": "on"},
                    {"output": "reward", "action": "pulse", "duration_ms": 20},
                ],
            },
            {
                "name": "red-left-zone",
                "on": "exit",
                "condition": zone,
                "actions": [{"output": "laser", "action": "off"}],
            },
        ],
    }
    path = tmp_path / "rig.yaml"
    path.write_text(yaml.safe_dump(config))
    env = dict(os.environ, PYTHONPATH=str(REPO))
    cmd = [sys.executable, "-m", "realtime_pose", "run", str(path), "--quiet"]
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    return next((tmp_path / "rec").glob("*.poselog"))


def test_a_recorded_session_with_rule_events_becomes_a_valid_nwb_file(tmp_path):
    log_path = record_session(tmp_path)
    assert main(["convert", str(log_path), "--nwb"]) == 0
    nwb_path = log_path.with_suffix(".nwb")
    assert_valid_nwb(nwb_path)
    rec = read_log(log_path)
    t0 = rec.header["t_start_ns"]

    np.testing.assert_allclose(movement_poses(nwb_path, KEYPOINTS), rec.poses[:, 0], atol=1e-9)
    with pynwb.NWBHDF5IO(str(nwb_path), "r") as io:
        nwbfile = io.read()
        red = nwbfile.processing["behavior"]["PoseEstimation"]["red"]
        np.testing.assert_allclose(red.timestamps[:], (rec.t_capture_ns - t0) / 1e9)
        assert nwbfile.acquisition["video"].external_file[0] == log_path.with_suffix(".avi").name
        rules = nwbfile.events["rule_events"].to_dataframe()
        outputs = nwbfile.events["output_events"].to_dataframe()
        on = nwbfile.intervals["output_on"].to_dataframe()

    logged = [e["event"] for e in rec.events]
    fired = [e for e in logged if e["kind"] == "rule" and e["state"] == "fired"]
    assert len(fired) >= 3 and len(rules) == sum(e["kind"] == "rule" for e in logged)
    np.testing.assert_allclose(
        sorted(outputs["timestamp"]),
        sorted((e["t_ns"] - t0) / 1e9 for e in logged if e["kind"] == "output"),
    )
    pulses = outputs[outputs["action"] == "pulse"]
    assert (pulses["duration"] == 0.02).all() and (pulses["output"] == "reward").all()
    assert outputs[outputs["action"] != "pulse"]["duration"].isna().all()

    laser = on[on["output"] == "laser"]
    entries = [e for e in fired if e["name"] == "red-in-zone"]
    assert sorted(rules["rule"]) == sorted(e["name"] for e in logged if e["kind"] == "rule")
    assert len(laser) == len(entries) and (laser["how"] == "on/off").all()
    assert (laser["stop_time"] > laser["start_time"]).all()
    reward = on[on["output"] == "reward"]
    np.testing.assert_allclose(reward["stop_time"] - reward["start_time"], 0.02)
    assert main(["convert", str(log_path), "--nwb"]) == 1  # never replaced unasked
    assert main(["convert", str(log_path), "--nwb", "--overwrite"]) == 0
