"""What the live view asks of a running session, over its real stream and control socket:
JPEG previews on the frame topic, zone edits validated as the config is, saving the rules,
a manual output test held to the max on-time, snapshots. No browser needed."""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
import yaml
import zmq

from realtime_pose.live.run_config import load_config
from realtime_pose.stream import ControlClient, messages
from tests.view.sessions import (
    FRAME_H,
    FRAME_W,
    RunningSession,
    StreamLog,
    marker_config,
    write_rules,
)

RULE = {
    "name": "red-in-zone",
    "on": "enter",
    "condition": {"type": "zone", "keypoint": "red", "rectangle": [40, 40, 80, 64]},
    "actions": [{"output": "laser", "action": "pulse", "duration_ms": 5}],
}
LASER = {"laser": {"kind": "log", "channel": 0, "max_on_ms": 30}}


def receive(address: str, topics: tuple[bytes, ...], n: int, timeout_s: float = 20.0) -> list:
    ctx = zmq.Context.instance()
    sub = ctx.socket(zmq.SUB)
    sub.linger = 0
    for topic in topics:
        sub.setsockopt(zmq.SUBSCRIBE, topic)
    sub.connect(address)
    out, deadline = [], time.monotonic() + timeout_s
    try:
        while len(out) < n and time.monotonic() < deadline:
            if sub.poll(200):
                topic, payload = sub.recv_multipart()
                out.append((topic, messages.decode(payload)))
    finally:
        sub.close()
    return out


def test_previews_carry_the_frame_and_the_pose_the_stream_published(tmp_path):
    config = marker_config(tmp_path, view={"publish_frames": True, "frame_fps": 20})
    with RunningSession(config, tmp_path) as run:
        got = receive(run.stream, (b"frame", b"pose"), 400)
    poses = {m["seq"]: m for t, m in got if t == b"pose"}
    frames = [m for t, m in got if t == b"frame" and m["seq"] in poses]
    assert len(frames) >= 5, "previews at 20 fps for a few seconds"
    for frame in frames:
        image = cv2.imdecode(np.frombuffer(frame["jpeg"], np.uint8), cv2.IMREAD_COLOR)
        assert image.shape == (FRAME_H, FRAME_W, 3)
        assert (frame["width"], frame["height"]) == (FRAME_W, FRAME_H)
        pose = poses[frame["seq"]]
        assert frame["frame_index"] == pose["frame_index"]
        np.testing.assert_allclose(frame["keypoints"], pose["keypoints"], rtol=1e-6)
        assert frame["predicted"]["keypoints"] == pose["predicted"]["keypoints"]
        # the red marker's square is where its keypoint is: red in the decoded preview
        x, y, _ = frame["keypoints"][0][0]
        b, g, r = image[int(y), int(x)]
        assert r > 150 and g < 100 and b < 100
    gaps = np.diff([f["seq"] for f in frames])
    assert np.median(gaps) >= 3, "rate-limited: ~100 fps loop, 20 previews a second"


@pytest.fixture
def rules_session(tmp_path):
    rules_file = write_rules(tmp_path / "rules.yaml", [RULE])
    config = marker_config(
        tmp_path, view={"publish_frames": True}, rules="rules.yaml", outputs=LASER
    )
    (tmp_path / "rig.yaml").write_text(yaml.safe_dump(config))
    with RunningSession(config, tmp_path) as run, ControlClient(run.control, 3000) as client:
        yield run, client, rules_file


def test_zone_edits_are_validated_as_the_config_is_and_change_the_running_rule(rules_session):
    run, client, _ = rules_session
    rules = client.request("rules")
    assert rules["ok"] and rules["zones"][0]["rectangle"] == [40, 40, 80, 64]
    bad = client.request("zone_set", rule="red-in-zone", zone={"rectangle": [80, 0, 40, 40]})
    assert not bad["ok"]
    assert "rectangle must be [x0, y0, x1, y1] with x1 > x0" in bad["error"]
    two = client.request(
        "zone_set", rule="red-in-zone", zone={"rectangle": [0, 0, 1, 1], "circle": [1, 1, 1]}
    )
    assert not two["ok"] and "exactly one of rectangle" in two["error"]
    sneaky = client.request(
        "zone_set", rule="red-in-zone", zone={"rectangle": [0, 0, 9, 9], "keypoint": "green"}
    )
    assert not sneaky["ok"] and "only its shape" in sneaky["error"]
    missing = client.request("zone_set", rule="nope", zone={"circle": [1, 1, 1]})
    assert not missing["ok"] and "no rule named 'nope'" in missing["error"]
    engine = run.session.pipeline.rules
    assert engine._rule("red-in-zone").condition.signed_distance(60, 50) > 0  # unchanged
    ok = client.request("zone_set", rule="red-in-zone", zone={"rectangle": [40, 16, 80, 40]})
    assert ok["ok"], ok
    assert ok["zones"][0]["rectangle"] == [40, 16, 80, 40]
    deadline = time.monotonic() + 5
    rule = engine._rule("red-in-zone")
    assert rule.condition.signed_distance(60, 28) > 0 and rule.condition.signed_distance(60, 50) < 0
    # the red marker (y ~ 28) now enters the zone every period: the rule fires
    while time.monotonic() < deadline and run.session.pipeline.events < 2:
        time.sleep(0.05)
    assert run.session.pipeline.events >= 2


def test_saving_writes_the_rules_file_the_config_reads_back(rules_session, tmp_path):
    run, client, rules_file = rules_session
    assert client.request("zone_set", rule="red-in-zone", zone={"circle": [60, 28, 12]})["ok"]
    saved = client.request("rules_save")
    assert saved["ok"] and saved["path"] == str(rules_file)
    reread = load_config(tmp_path / "rig.yaml")
    assert reread.rules[0].condition.circle == (60, 28, 12)
    assert reread.rules[0].condition.rectangle is None
    assert reread.rules[0].actions == run.session.rule_configs[0].actions
    assert not list(tmp_path.glob(".rules*partial*")), "written through a temporary name"


def test_inline_rules_cannot_be_saved(tmp_path):
    config = marker_config(tmp_path, rules=[RULE], outputs=LASER)
    with RunningSession(config, tmp_path) as run, ControlClient(run.control, 3000) as client:
        reply = client.request("rules_save")
    assert not reply["ok"] and "inline in the run config" in reply["error"]


def test_manual_output_test_is_held_to_the_max_on_time(rules_session):
    run, client, _ = rules_session
    too_long = client.request("output_test", output="laser", duration_ms=31)
    assert not too_long["ok"]
    assert "longer than output 'laser' may be on (max_on_ms 30)" in too_long["error"]
    unknown = client.request("output_test", output="valve", duration_ms=5)
    assert not unknown["ok"] and "no output named 'valve'" in unknown["error"]
    ok = client.request("output_test", output="laser", duration_ms=30)
    assert ok["ok"] and ok["max_on_ms"] == 30
    time.sleep(0.1)
    log = run.session.dispatcher.action_log.records()
    pulses = [r for r in log if r.get("event") == "dispatch" and r.get("action") == "pulse"]
    assert [p["duration_s"] for p in pulses if p["frame_index"] is not None][-1] == 0.03


def snapshot_events(log: StreamLog) -> list[dict]:
    return [e for e in log.of(b"event") if e["kind"] == "snapshot"]


def wait_for(predicate, timeout_s: float = 10.0):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and not predicate():
        time.sleep(0.02)
    return predicate()


def test_snapshot_saves_the_raw_frame_and_its_pose(rules_session):
    run, client, _ = rules_session
    events = StreamLog(run.stream, (b"event",))
    try:
        assert wait_for(lambda: run.session.previewer.last is not None), "no frame previewed"
        reply = client.request("snapshot")
        assert reply["ok"], reply
        assert wait_for(lambda: snapshot_events(events)), "no event said the snapshot was saved"
        (saved,) = snapshot_events(events)
        assert saved["state"] == "saved" and saved["png"] == reply["png"]
        assert saved["pose"] == reply["pose"]
        image = cv2.imread(reply["png"])
        assert image.shape == (FRAME_H, FRAME_W, 3)
        pose = json.loads(Path(reply["pose"]).read_text())
        x, y, likelihood = pose["keypoints"][0][0]
        b, g, r = image[int(y), int(x)]
        assert likelihood > 0.5 and r > 200 and g < 60 and b < 60  # the red square under it
        time.sleep(run.session.requests.snapshot_interval_s)
        again = client.request("snapshot")
        assert again["ok"], again
        assert again["png"] != reply["png"], "a fresh name, never over the first"
    finally:
        events.close()


def test_snapshots_are_rate_limited_and_keep_a_free_disk_floor(rules_session, tmp_path):
    run, client, _ = rules_session
    assert wait_for(lambda: run.session.previewer.last is not None), "no frame previewed"
    first = client.request("snapshot")
    assert first["ok"], first
    hasty = client.request("snapshot")
    assert not hasty["ok"] and "one snapshot every" in hasty["error"], hasty
    requests = run.session.requests
    time.sleep(requests.snapshot_interval_s)
    free = shutil.disk_usage(tmp_path).free
    requests.snapshot_min_free_bytes = free + (1 << 40)  # a floor this disk is below
    low = client.request("snapshot")
    assert not low["ok"] and "free" in low["error"] and str(tmp_path / "rec") in low["error"]
    requests.snapshot_min_free_bytes = 0
    assert client.request("snapshot")["ok"], "refusals do not count against the rate"
    saved = sorted((tmp_path / "rec").glob("snapshot-*.png"))
    assert wait_for(lambda: len(sorted((tmp_path / "rec").glob("snapshot-*.png"))) == 2), saved


def test_zone_edits_refuse_what_would_stop_the_next_run(rules_session):
    run, client, _ = rules_session
    nan, inf = float("nan"), float("inf")
    refused = [
        ({"rectangle": [nan, 0, 10, 10]}, "rectangle"),
        ({"circle": [10, 10, inf]}, "circle"),
        ({"polygon": [[0, 0], [-inf, 5], [5, 5]]}, "polygon"),
        ({"polygon": [[i % 80, (7 * i) % 64] for i in range(257)]}, "at most 256"),
        ({"rectangle": [200, 200, 300, 300]}, "outside the 80x64 frame"),
    ]
    engine = run.session.pipeline.rules
    for zone, field in refused:
        reply = client.request("zone_set", rule="red-in-zone", zone=zone)
        assert not reply["ok"], (zone, reply)
        assert field in reply["error"], (field, reply["error"])
    assert engine._rule("red-in-zone").condition.signed_distance(60, 50) > 0  # unchanged
    assert client.request("rules")["zones"][0]["rectangle"] == [40, 40, 80, 64]
    many = [[40 + 20 * np.cos(a), 32 + 20 * np.sin(a)] for a in np.linspace(0, 6.2, 256)]
    assert client.request("zone_set", rule="red-in-zone", zone={"polygon": many})["ok"]
