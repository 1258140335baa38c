"""The live loop end to end with real parts: video and synthetic sources, the marker model, the
stream, the control socket, the recording and processors."""

import threading
import time

import numpy as np
import pytest

from realtime_pose.live.run_config import ConfigError, parse_config
from realtime_pose.live.session import LiveSession
from realtime_pose.recording import read_log
from realtime_pose.stream import ControlClient, PoseSubscriber
from tests.live.conftest import base_config, expected_pose


def _session(bundle, tmp_path, source, **extra):
    return LiveSession(parse_config(base_config(bundle, tmp_path, source, **extra), "test"))


def test_recorded_poses_match_the_markers_drawn(marker_bundle, marker_video, tmp_path):
    source = {"kind": "video", "path": str(marker_video), "realtime": True}
    with _session(marker_bundle, tmp_path, source) as session:
        session.run(duration_s=10)
        assert session.grabber.ended
        log_path = session.pipeline.recorder.path
    rec = read_log(log_path)
    assert len(rec.poses) >= 60  # paced at 100 fps: the loop keeps up and drops little
    assert np.all(np.diff(rec.seq) == 1)
    for pose, i in zip(rec.poses[:, 0], rec.frame_indices, strict=True):
        np.testing.assert_allclose(pose[:, :2], expected_pose(int(i)), atol=1e-3)
    assert rec.predicted is not None and rec.predicted.shape == rec.poses.shape
    assert list(log_path.parent.glob("*.h5")), "recording converted to DLC tables on stop"


def test_dynamic_cropping_reports_full_frame_pixels(marker_bundle, marker_video, tmp_path):
    source = {"kind": "video", "path": str(marker_video), "realtime": True}
    crop = {"enabled": True, "width": 48, "height": 48, "min_likelihood": 0.5}
    with _session(marker_bundle, tmp_path, source, crop=crop) as session:
        session.run(duration_s=10)
        log_path = session.pipeline.recorder.path
    rec = read_log(log_path)
    # markers spread wider than the crop, so cropped frames see only some of them; the ones the
    # network sees (likelihood 1) must still land on their full-frame positions
    seen, partial = 0, 0
    for pose, i in zip(rec.poses[:, 0], rec.frame_indices, strict=True):
        good = pose[:, 2] > 0.8
        seen += good.sum()
        partial += not good.all()  # a crop hid some marker: cropping really happened
        np.testing.assert_allclose(pose[good, :2], np.array(expected_pose(int(i)))[good], atol=1e-3)
    assert partial > 0 and seen >= len(rec.poses) // 2


def test_control_survives_garbage_while_poses_flow(marker_bundle, tmp_path):
    source = {"kind": "synthetic", "width": 80, "height": 64, "fps": 100}
    recording = {"enabled": False, "directory": str(tmp_path)}
    session = _session(marker_bundle, tmp_path, source, recording=recording)
    thread = threading.Thread(target=session.run, kwargs={"duration_s": 20})
    thread.start()
    try:
        address = session.control.bound_address
        with ControlClient(address, timeout_ms=3000) as client:
            assert client.request("ping")["ok"]
            frames_before = session.pipeline.frames
            for data in (b"\xff\xfe garbage", b"\x93\x01\x02\x03", b"\x81\xa3cmd\xa4boom"):
                reply = client.request_bytes(data)
                assert reply["ok"] is False and reply["error"]
            wrong = client.request("rule_enable", name=12)
            assert wrong["ok"] is False
            no_rules = client.request("rule_enable", name="x")
            assert no_rules["ok"] is False and "no rules" in no_rules["error"]
            status = client.request("status")
            assert status["ok"] and "latency_us" in status["status"]
            for outside in ("../escaped.poselog", str(tmp_path.parent / "escaped.poselog")):
                refused = client.request("record_start", path=outside)
                assert refused["ok"] is False and "outside the recording folder" in refused["error"]
            assert not (tmp_path.parent / "escaped.poselog").exists()
            started = client.request("record_start", path="ctl.poselog")
            assert started["ok"], started
            time.sleep(0.3)
            stopped = client.request("record_stop")  # converts on a worker: an event says when
            assert stopped["ok"] and stopped["converting"]
            assert stopped["path"] == str(tmp_path / "ctl.poselog")
            assert client.request("meta")["meta"]["keypoints"] == ["red", "green", "blue"]
        time.sleep(0.2)
        assert session.pipeline.frames > frames_before + 10
    finally:
        session.stop_event.set()
        thread.join(10)
        session.close()  # waits for the conversion
    assert len(read_log(tmp_path / "ctl.poselog").poses) > 5
    assert (tmp_path / "ctl.h5").is_file() and (tmp_path / "ctl.csv").is_file()


def test_subscriber_sees_contiguous_seq(marker_bundle, tmp_path):
    source = {"kind": "synthetic", "width": 80, "height": 64, "fps": 100}
    session = _session(marker_bundle, tmp_path, source, recording={"enabled": False})
    sub = PoseSubscriber(session.publisher.bound_address, topics=("pose", "status"))
    time.sleep(0.3)  # let the subscription reach the publisher (ZeroMQ slow joiner)
    session.run(duration_s=1.5)
    seqs, statuses = [], 0
    while (msg := sub.recv(timeout_ms=200)) is not None:
        topic, payload = msg
        if topic == "pose":
            seqs.append(payload["seq"])
            assert len(payload["keypoints"][0]) == 3 and payload["predicted"] is not None
            assert payload["t_publish_ns"] >= payload["t_capture_ns"]
        else:
            statuses += 1
    session.close()
    sub.close()
    assert len(seqs) > 100 and seqs == list(range(seqs[0], seqs[0] + len(seqs)))
    assert statuses >= 3


class Shift:
    """A processor written against DeepLabCut-Live's documented API."""

    def __init__(self, **kwargs):
        self.calls = []

    def process(self, pose, **kwargs):
        self.calls.append((kwargs["frame_time"], kwargs["frame_index"]))
        pose[:, 0] += 1000.0
        return pose


class Boom:
    def process(self, pose, **kwargs):
        if kwargs["frame_index"] % 2:
            raise RuntimeError("processor bug")
        return pose


def test_dlc_live_processor_and_a_raising_one(marker_bundle, marker_video, tmp_path):
    source = {"kind": "video", "path": str(marker_video), "realtime": True, "max_frames": 30}
    procs = [
        {"class": "tests.live.test_pipeline:Boom"},
        {"class": "tests.live.test_pipeline:Shift"},
    ]
    with _session(marker_bundle, tmp_path, source, processors=procs) as session:
        session.run(duration_s=10)
        chain = session.pipeline.processors
        log_path = session.pipeline.recorder.path
    assert chain.errors >= 10  # odd frames raised, counted, not fatal
    shift = chain.processors[1]
    assert len(shift.calls) == len(read_log(log_path).poses)
    rec = read_log(log_path)
    for pose, i in zip(rec.poses[:, 0], rec.frame_indices, strict=True):
        assert pose[0, 0] == pytest.approx(expected_pose(int(i))[0][0] + 1000.0, abs=1e-3)


def test_source_that_dies_mid_run_is_reopened(marker_bundle, tmp_path):
    source = {"kind": "synthetic", "width": 80, "height": 64, "fps": 200, "fail_after": 40}
    with _session(marker_bundle, tmp_path, source, recording={"enabled": False}) as session:
        session.run(duration_s=2.0)
        stats = session.grabber.stats()
        frames = session.pipeline.frames
    assert stats["errors"] >= 1 and stats["reopens"] >= 1
    assert frames > 60


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"crop": {"enabled": True, "width": -5}}, "crop.width"),
        ({"engine": {"provider": "opencl"}}, "engine.provider"),
        ({"source": {"kind": "webcam"}}, "source.kind"),
        ({"input_size": [0, 10]}, "input_size"),
        ({"prediction": {"lead_ms": -1}}, "prediction.lead_ms"),
        ({"unknown_section": {}}, "unknown_section"),
    ],
)
def test_bad_config_names_the_field(marker_bundle, tmp_path, change, field):
    data = base_config(marker_bundle, tmp_path, {"kind": "synthetic"})
    data.update(change)
    with pytest.raises(ConfigError, match=rf"rig\.yaml: field '{field}"):
        parse_config(data, "rig.yaml")


def test_rule_output_must_be_declared(marker_bundle, tmp_path):
    data = base_config(marker_bundle, tmp_path, {"kind": "synthetic"})
    data["rules"] = [
        {
            "name": "z",
            "on": "enter",
            "condition": {"type": "zone", "keypoint": "red", "rectangle": [0, 0, 10, 10]},
            "actions": [{"output": "laser", "action": "pulse", "duration_ms": 5}],
        }
    ]
    with pytest.raises(ConfigError, match="laser"):
        parse_config(data, "rig.yaml")


def test_two_recordings_in_one_folder_keep_their_own_tables(marker_bundle, tmp_path, caplog):
    import json

    meta_path = marker_bundle / "bundle.json"
    meta = json.loads(meta_path.read_text())
    meta["name"] = "demo-synthetic-mobilenet_v2_0.35"  # a dot in the name once cut the stem
    meta_path.write_text(json.dumps(meta))
    source = {"kind": "synthetic", "width": 80, "height": 64, "max_frames": 20, "realtime": False}
    config = parse_config(base_config(marker_bundle, tmp_path, source), "test")
    logs = []
    with caplog.at_level("INFO", logger="realtime_pose.live.pipeline"):
        for _ in range(2):  # within one second: the same time stamp
            with LiveSession(config) as session:
                session.run(duration_s=20)
                logs.append(session.pipeline.recorder.path)
    assert logs[0] != logs[1] and all(p.exists() for p in logs)
    for log_path in logs:
        for suffix in (".h5", ".csv", "_predicted.h5", "_predicted.csv"):
            assert (log_path.parent / f"{log_path.stem}{suffix}").is_file(), suffix
    tables = sorted(p.name for p in (tmp_path / "rec").iterdir() if p.suffix != ".poselog")
    assert len(tables) == 8
    stopped = [r.getMessage() for r in caplog.records if "recording stopped" in r.getMessage()]
    assert len(stopped) == 2
    for line, log_path in zip(stopped, logs, strict=True):
        listed = [name for name in tables if name in line]
        assert len(listed) == 4 and all(log_path.stem in name for name in listed)
