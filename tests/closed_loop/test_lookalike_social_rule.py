"""A social rule between two identical animals through `realtime-pose run`: a one-bodypart
look-alike bundle (every bright dot is an animal, nothing tells the two apart), the Numba
decoder, the tracker and a rule between any two animals (``other/``) fire the emulated serial
board exactly when the animals pass each other, and each keeps its own track throughout."""

import time

import cv2
import numpy as np
import yaml

from realtime_pose.bundle import write_bundle
from realtime_pose.hardware.testing.emulator import read_log as read_emulator_log
from realtime_pose.hardware.testing.emulator import start_emulator_process
from realtime_pose.recording import read_log
from tests.builders import dot_meta, dot_model
from tests.closed_loop.test_zone_laser import _run, edge_durations_ms

WIDTH, HEIGHT, CELL = 160, 64, 8
ROWS = (3, 5)  # the animals' lanes: 2 cells (16 px) apart
CLOSE_PX = 20.0
FRAMES = 136  # 8 passes


def cells(i: int) -> list[tuple[int, int]]:
    """Animal A sweeps cells 1..18 and back (period 34); B mirrors it in the lane below, so
    they pass each other twice a period, 8 px apart in x and 16 in y (17.9 px)."""
    ix = 1 + (17 - abs(i % 34 - 17))
    return [(ix, ROWS[0]), (19 - ix, ROWS[1])]


def write_video(path, n):
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"FFV1"), 100.0, (WIDTH, HEIGHT))
    for i in range(n):
        frame = np.zeros((HEIGHT, WIDTH, 3), np.uint8)
        for ix, iy in cells(i):
            frame[iy * CELL : (iy + 1) * CELL, ix * CELL : (ix + 1) * CELL] = 255
        writer.write(frame)
    writer.release()
    return path


def centre(cell: tuple[int, int]) -> np.ndarray:
    return np.array(cell, float) * CELL + CELL / 2


def test_two_identical_animals_passing_fire_the_rule_and_keep_their_tracks(tmp_path):
    bundle = tmp_path / "bundle"
    write_bundle(bundle, dot_model(), dot_meta(slots=3))
    video = write_video(tmp_path / "lanes.avi", FRAMES)
    link, emu_log = str(tmp_path / "valve"), tmp_path / "emulator.jsonl"
    config = {
        "source": {"kind": "video", "path": str(video), "realtime": False},
        "bundle": str(bundle),
        "engine": {"threads": 1, "spinning": False, "warmup_runs": 1},
        "stream": {"address": "tcp://127.0.0.1:*", "control_address": None},
        "recording": {"enabled": True, "directory": str(tmp_path / "rec")},
        "outputs": {"valve": {"kind": "serial", "port": link, "channel": 0, "max_on_ms": 50}},
        "rules": [
            {
                "name": "any-two-meet",
                "animal": "any",
                "on": "enter",
                "condition": {
                    "type": "distance",
                    "keypoints": ["dot", "other/dot"],
                    "below": CLOSE_PX,
                },
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
    assert len(rec.poses) == FRAMES
    truth = [[centre(c) for c in cells(int(f))] for f in rec.frame_indices]
    close = np.array([np.hypot(*(a - b)) < CLOSE_PX for a, b in truth])
    entered = [
        int(f)
        for f, now, before in zip(rec.frame_indices[1:], close[1:], close[:-1], strict=True)
        if now and not before
    ]
    assert len(entered) == 8
    fired = [
        e["frame_index"]
        for e in rec.events
        if e["event"]["kind"] == "rule" and e["event"]["state"] == "fired"
    ]
    assert fired == entered  # exactly the frames in which they come close, once per pass
    assert len(edge_durations_ms(read_emulator_log(emu_log))) == len(entered)

    # each animal keeps one track (and one slot) from its birth to the end, through the passes
    poses = rec.poses.reshape(FRAMES, 3, 3)
    followed = rec.track_ids >= 0
    assert followed.sum(axis=1)[3:].tolist() == [2] * (FRAMES - 3)  # min_hits: from the 3rd
    owner: dict[int, int] = {}
    for f in range(3, FRAMES):
        for slot in np.flatnonzero(followed[f]):
            lane = int(round((poses[f, slot, 1] - CELL / 2) / CELL))
            animal = ROWS.index(lane)
            assert owner.setdefault(int(rec.track_ids[f, slot]), animal) == animal
            np.testing.assert_allclose(poses[f, slot, :2], truth[f][animal], atol=0.5)
    assert len(owner) == 2
