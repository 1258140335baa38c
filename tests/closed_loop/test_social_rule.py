"""A social rule on a multi-animal bundle through `realtime-pose run`: the distance between two
animals' keypoints fires the emulated serial output exactly when the animals come close."""

import time

import cv2
import numpy as np
import yaml

from realtime_pose.bundle import write_bundle
from realtime_pose.hardware.testing.emulator import read_log as read_emulator_log
from realtime_pose.hardware.testing.emulator import start_emulator_process
from realtime_pose.recording import read_log
from tests.builders import draw_markers, marker_meta, marker_model
from tests.closed_loop.test_zone_laser import _run, edge_durations_ms

# the marker model as three one-keypoint animals: red is animal a, green b, blue c
ANIMALS = {"names": ["a", "b", "c"], "bodyparts": ["dot"]}
CLOSE_PX = 20.0


def a_ix(i: int) -> int:
    """Animal a's cell: a triangle wave 1..8..2 (period 14); b stays in cell (8, 3)."""
    return 8 - abs(i % 14 - 7)


def write_video(path, n):
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 100.0, (80, 64))
    for i in range(n):
        writer.write(draw_markers(64, 80, [(a_ix(i), 3), (8, 3), (1, 6)]))
    writer.release()
    return path


def test_two_animals_coming_close_fire_the_social_rule(tmp_path):
    bundle = tmp_path / "bundle"
    meta = marker_meta(keypoints=["a/dot", "b/dot", "c/dot"], skeleton=[], animals=ANIMALS)
    write_bundle(bundle, marker_model(), meta)
    video = write_video(tmp_path / "social.avi", 112)
    link, emu_log = str(tmp_path / "valve"), tmp_path / "emulator.jsonl"
    config = {
        "source": {"kind": "video", "path": str(video), "realtime": True},
        "bundle": str(bundle),
        "engine": {"threads": 1, "spinning": False, "warmup_runs": 1},
        "stream": {"address": "tcp://127.0.0.1:*", "control_address": None},
        "recording": {"enabled": True, "directory": str(tmp_path / "rec")},
        "prediction": {"enabled": False},
        "outputs": {"valve": {"kind": "serial", "port": link, "channel": 0, "max_on_ms": 50}},
        "rules": [
            {
                "name": "a-meets-b",
                "animal": "a",
                "on": "enter",
                "condition": {"type": "distance", "keypoints": ["dot", "b/dot"], "below": CLOSE_PX},
                "actions": [{"output": "valve", "action": "pulse", "duration_ms": 5}],
            }
        ],
    }
    path = tmp_path / "rig.yaml"
    path.write_text(yaml.safe_dump(config))
    with start_emulator_process(link, emu_log, max_on_ms=100, watchdog_ms=0):
        out = _run(path)
        assert out.returncode == 0, out.stderr
        time.sleep(0.2)
    rec = read_log(next((tmp_path / "rec").glob("*.poselog")))
    poses = rec.poses.reshape(len(rec.poses), -1, 3)  # rows a/dot, b/dot, c/dot
    distance = np.hypot(*(poses[:, 0, :2] - poses[:, 1, :2]).T)
    close = distance < CLOSE_PX
    entries = int(np.sum(close[1:] & ~close[:-1]) + close[0])
    fired = [
        e["event"]
        for e in rec.events
        if e["event"]["kind"] == "rule" and e["event"]["state"] == "fired"
    ]
    # 8 approaches in the video; a loaded machine drops some frames in real time (5 of 8 were
    # seen on the 2-core VM while a training ran), and the rule must fire on each one seen
    assert entries >= 3 and len(fired) == entries
    for event in fired:  # a within two cells of b
        assert a_ix(event["frame_index"]) >= 6  # 16 px from b; one cell further is 24 px
    assert len(edge_durations_ms(read_emulator_log(emu_log))) == entries


def test_dynamic_cropping_is_refused_for_several_animals_naming_the_field(tmp_path):
    bundle = tmp_path / "bundle"
    meta = marker_meta(keypoints=["a/dot", "b/dot", "c/dot"], skeleton=[], animals=ANIMALS)
    write_bundle(bundle, marker_model(), meta)
    video = write_video(tmp_path / "social.avi", 5)
    config = {
        "source": {"kind": "video", "path": str(video)},
        "bundle": str(bundle),
        "crop": {"enabled": True},
        "stream": {"address": "tcp://127.0.0.1:*", "control_address": None},
    }
    path = tmp_path / "rig.yaml"
    path.write_text(yaml.safe_dump(config))
    out = _run(path)
    assert out.returncode == 2
    assert "crop.enabled: dynamic cropping follows one animal" in out.stderr
    assert "tracks 3 (a, b, c)" in out.stderr
