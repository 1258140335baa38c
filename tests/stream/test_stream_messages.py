"""Payload builders, request validation and endpoint classification."""

from __future__ import annotations

import msgpack
import numpy as np
import pytest

from realtime_pose.stream import messages
from realtime_pose.stream.security import is_loopback


def test_pose_payload_fields_and_roundtrip():
    kp = np.array([[[1.5, 2.5, 0.9], [3.0, 4.0, 0.1]]], dtype=np.float32)
    pred = np.array([[10.0, 20.0, 0.5], [30.0, 40.0, 0.6]])
    payload = messages.pose_payload(7, 42, 100, 150, {"network": 30}, kp, predicted=(170, pred))
    decoded = messages.decode(messages.encode(payload))
    assert decoded == {
        "v": 1,
        "seq": 7,
        "frame_index": 42,
        "t_capture_ns": 100,
        "t_publish_ns": 150,
        "latency_ns": {"network": 30},
        "keypoints": [[[1.5, 2.5, pytest.approx(0.9)], [3.0, 4.0, pytest.approx(0.1)]]],
        "predicted": {"t_target_ns": 170, "keypoints": [[[10.0, 20.0, 0.5], [30.0, 40.0, 0.6]]]},
    }


def test_pose_payload_single_animal_and_no_prediction():
    payload = messages.pose_payload(0, 0, 0, 0, {}, np.zeros((3, 3)))
    assert len(payload["keypoints"]) == 1 and len(payload["keypoints"][0]) == 3
    assert payload["predicted"] is None


@pytest.mark.parametrize("shape", [(3,), (3, 2), (1, 2, 3, 3), (2, 3, 4)])
def test_pose_payload_rejects_bad_shapes(shape):
    with pytest.raises(ValueError, match="keypoints must have shape"):
        messages.pose_payload(0, 0, 0, 0, {}, np.zeros(shape))


def test_meta_payload_relates_clocks():
    import time

    meta = messages.meta_payload(["snout", "tail"], [("snout", "tail")], {"name": "m"}, fps=30)
    expected = time.time_ns() - time.monotonic_ns()
    assert abs(meta["wall_offset_ns"] - expected) < 50_000_000
    assert meta["keypoints"] == ["snout", "tail"]
    assert meta["skeleton"] == [["snout", "tail"]]
    assert meta["fps"] == 30 and meta["v"] == 1


@pytest.mark.parametrize(
    ("request_map", "cls"),
    [
        ({"cmd": "ping"}, messages.PingRequest),
        ({"cmd": "meta", "id": 3}, messages.MetaRequest),
        ({"cmd": "status"}, messages.StatusRequest),
        ({"cmd": "record_start", "path": "/tmp/x.poselog"}, messages.RecordStartRequest),
        ({"cmd": "record_stop"}, messages.RecordStopRequest),
        ({"cmd": "rule_enable", "name": "zone"}, messages.RuleEnableRequest),
        ({"cmd": "rule_disable", "name": "zone", "token": "t"}, messages.RuleDisableRequest),
    ],
)
def test_parse_valid_requests(request_map, cls):
    request = messages.parse_request(msgpack.packb(request_map))
    assert isinstance(request, cls)
    assert request.cmd == request_map["cmd"]


@pytest.mark.parametrize(
    ("data", "error"),
    [
        (b"\xc1", "not a msgpack message"),
        (msgpack.packb({"cmd": "ping"}) + b"\x01", "not a msgpack message"),
        (msgpack.packb([1, 2]), "must be a msgpack map"),
        (msgpack.packb(None), "got nil"),
        (msgpack.packb({"x": 1}), "unknown cmd None"),
        (msgpack.packb({"cmd": "reboot"}), "unknown cmd 'reboot'"),
        (msgpack.packb({"cmd": ["ping"]}), "unknown cmd"),
        (msgpack.packb({"cmd": "rule_enable"}), "name: Field required"),
        (msgpack.packb({"cmd": "rule_enable", "name": 5}), "name: Input should be a valid string"),
        (msgpack.packb({"cmd": "rule_enable", "name": ""}), "name"),
        (msgpack.packb({"cmd": "record_start", "video": "yes"}), "video"),
        (msgpack.packb({"cmd": "ping", "extra": 1}), "extra: Extra inputs are not permitted"),
        (msgpack.packb({"cmd": "ping", "id": [1]}), "id"),
    ],
)
def test_parse_invalid_requests(data, error):
    with pytest.raises(messages.RequestError, match=error):
        messages.parse_request(data)


def test_unknown_cmd_error_is_short():
    with pytest.raises(messages.RequestError) as info:
        messages.parse_request(msgpack.packb({"cmd": "x" * 10_000}))
    assert len(str(info.value)) < 300  # the 10 000-char cmd is cut; the known list stays


@pytest.mark.parametrize(
    ("address", "loopback"),
    [
        ("tcp://127.0.0.1:5555", True),
        ("tcp://127.0.0.2:*", True),
        ("tcp://localhost:5555", True),
        ("tcp://[::1]:5555", True),
        ("ipc:///tmp/pose", True),
        ("inproc://pose", True),
        ("tcp://*:5555", False),
        ("tcp://0.0.0.0:5555", False),
        ("tcp://192.168.1.10:5555", False),
        ("tcp://eth0:5555", False),
        ("tcp://rig.lab.org:5555", False),
    ],
)
def test_is_loopback(address, loopback):
    assert is_loopback(address) is loopback


def test_is_loopback_rejects_non_endpoints():
    with pytest.raises(ValueError, match="not a ZeroMQ endpoint"):
        is_loopback("127.0.0.1:5555")


def test_status_payload_summarises_stage_latencies():
    samples = {"network": np.arange(1, 101) * 1000, "peaks": np.array([], dtype=np.int64)}
    status = messages.status_payload(99.5, 1200, 3, samples, recording=True)
    decoded = messages.decode(messages.encode(status))
    assert decoded["v"] == 1 and decoded["fps"] == 99.5
    assert decoded["frames"] == 1200 and decoded["dropped_frames"] == 3
    assert decoded["latency_us"]["network"] == {"p50": 50.5, "p99": 99.0, "max": 100.0}
    assert decoded["latency_us"]["peaks"] == {"p50": 0.0, "p99": 0.0, "max": 0.0}
    assert decoded["recording"] is True


def test_event_payload():
    event = messages.event_payload("rule", "laser_in_zone", 42, t_ns=5, state="on")
    assert messages.decode(messages.encode(event)) == {
        "v": 1,
        "kind": "rule",
        "name": "laser_in_zone",
        "frame_index": 42,
        "t_ns": 5,
        "state": "on",
    }
