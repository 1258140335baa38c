"""Publisher → subscriber over real loopback sockets, in-process and across processes."""

from __future__ import annotations

import json
import signal
import sys
import time

import numpy as np
import pytest
import zmq

from realtime_pose.stream import InsecureBindError, PosePublisher, PoseSubscriber, messages
from tests.stream.child_process import Child, publish_paced, wait_for_first_line


def _connect(address: str, topics=("pose",), **kwargs) -> PoseSubscriber:
    return PoseSubscriber(address, topics, **kwargs)


def _wait_subscribed(pub: PosePublisher, sub: PoseSubscriber) -> None:
    """Send meta until the subscriber sees one (the SUB socket is then connected)."""
    for _ in range(250):
        pub.publish_meta(messages.meta_payload(["a"]))
        if sub.recv(20) is not None:
            while sub.recv(20) is not None:
                pass
            return
    raise AssertionError("subscriber never connected")


@pytest.fixture
def publisher():
    pub = PosePublisher("tcp://127.0.0.1:*")
    yield pub
    pub.close()


def test_bound_address_has_the_chosen_port(publisher):
    assert publisher.bound_address.startswith("tcp://127.0.0.1:")
    assert not publisher.bound_address.endswith(":*")


def test_pose_arrives_with_every_field(publisher):
    sub = _connect(publisher.bound_address, ("pose", "meta"))
    try:
        _wait_subscribed(publisher, sub)
        kp = np.array([[[1.0, 2.0, 0.5], [3.0, 4.0, 0.25]], [[5.0, 6.0, 1.0], [7.0, 8.0, 0.0]]])
        t_cap = time.monotonic_ns()
        t_pub = publisher.publish_pose(9, 99, t_cap, {"network": 1234}, kp, (t_cap + 5, kp + 1))
        topic, payload = sub.recv(2000)
    finally:
        sub.close()
    assert topic == "pose"
    assert payload["v"] == 1
    assert payload["seq"] == 9 and payload["frame_index"] == 99
    assert payload["t_capture_ns"] == t_cap and payload["t_publish_ns"] == t_pub >= t_cap
    assert payload["latency_ns"] == {"network": 1234}
    assert np.array_equal(np.array(payload["keypoints"]), kp)
    assert payload["predicted"]["t_target_ns"] == t_cap + 5
    assert np.array_equal(np.array(payload["predicted"]["keypoints"]), kp + 1)


def test_event_status_meta_topics_and_filtering(publisher):
    sub = _connect(publisher.bound_address, ("meta", "event"))
    try:
        _wait_subscribed(publisher, sub)
        publisher.publish_status({"fps": 30.0})
        publisher.publish_pose(0, 0, 0, {}, np.zeros((1, 3)))
        publisher.publish_event({"kind": "rule", "name": "zone", "frame_index": 3})
        publisher.publish_meta(messages.meta_payload(["snout"], model={"name": "m"}))
        got = [sub.recv(1000), sub.recv(1000), sub.recv(200)]
    finally:
        sub.close()
    assert got[0][0] == "event" and got[0][1]["name"] == "zone" and got[0][1]["v"] == 1
    assert got[1][0] == "meta" and got[1][1]["keypoints"] == ["snout"]
    assert got[2] is None  # status and pose were not subscribed
    assert publisher.last_meta["model"] == {"name": "m"}


def test_gap_and_restart_accounting(publisher):
    sub = _connect(publisher.bound_address, ("pose", "meta"))
    try:
        _wait_subscribed(publisher, sub)
        for seq in (0, 1, 2, 5, 6, 10, 3, 4):
            publisher.publish_pose(seq, seq, time.monotonic_ns(), {}, np.zeros((2, 3)))
        seen = []
        while (message := sub.recv(300)) is not None:
            seen.append(message[1]["seq"])
        stats = sub.stats()
    finally:
        sub.close()
    assert seen == [0, 1, 2, 5, 6, 10, 3, 4]
    assert stats.poses == 8
    assert stats.gaps == 2 and stats.missing == 2 + 3
    assert stats.restarts == 1
    assert stats.publish_to_receive.n == 8
    assert 0 < stats.publish_to_receive.p50_us <= stats.publish_to_receive.max_us
    assert stats.capture_to_receive.p50_us >= stats.publish_to_receive.p50_us


def test_undecodable_messages_are_skipped_and_counted():
    sub_address = "tcp://127.0.0.1:*"
    context = zmq.Context()
    raw_pub = context.socket(zmq.PUB)
    raw_pub.bind(sub_address)
    address = raw_pub.getsockopt_string(zmq.LAST_ENDPOINT)
    sub = _connect(address, ("pose",))
    try:
        for _ in range(250):
            raw_pub.send_multipart([b"pose", messages.encode({"seq": -1})])
            if sub.recv(20) is not None:
                break
        while sub.recv(50) is not None:
            pass
        raw_pub.send_multipart([b"pose", b"\xc1\xc1"])
        raw_pub.send_multipart([b"pose", messages.encode([1, 2])])
        raw_pub.send_multipart([b"pose"])
        raw_pub.send_multipart([b"pose", messages.encode({"seq": 0}), b"extra"])
        raw_pub.send_multipart([b"pose", messages.encode({"seq": 0})])
        message = sub.recv(1000)
    finally:
        sub.close()
        raw_pub.close(0)
        context.term()
    assert message == ("pose", {"seq": 0})
    assert sub.undecodable == 4


def test_unknown_topic_is_refused():
    with pytest.raises(ValueError, match="unknown topic 'poses'"):
        PoseSubscriber("tcp://127.0.0.1:1", ("poses",))


def test_refuses_non_loopback_without_curve():
    with pytest.raises(InsecureBindError, match=r"refusing to bind tcp://0\.0\.0\.0"):
        PosePublisher("tcp://0.0.0.0:*")


def test_port_in_use_is_reported(publisher):
    with pytest.raises(OSError, match="cannot bind the pose stream"):
        PosePublisher(publisher.bound_address)


def test_slow_subscriber_does_not_block_and_sees_drops():
    """A subscriber that never reads: publishing goes on; the losses show up as seq gaps."""
    pub = PosePublisher("tcp://127.0.0.1:*", sndhwm=4)
    sub = _connect(pub.bound_address, ("pose", "meta"), rcvhwm=4)
    n = 3000
    try:
        _wait_subscribed(pub, sub)
        big = np.random.default_rng(0).random((8, 64, 3))  # ~14 kB per message
        sent_before = pub.sent
        for seq in range(n):  # would hang here (test timeout) if a send blocked
            pub.publish_pose(seq, seq, time.monotonic_ns(), {}, big)
        received = []
        while (message := sub.recv(500)) is not None:
            received.append(message[1]["seq"])
        stats = sub.stats()
    finally:
        sub.close()
        pub.close()
    assert pub.sent - sent_before + pub.dropped == n  # every call reached ZeroMQ or was counted
    assert 0 < len(received) < n
    assert received == sorted(received)
    assert stats.gaps > 0
    assert received[-1] - received[0] + 1 == len(received) + stats.missing


@pytest.mark.timeout(60)
def test_cli_subscriber_in_another_process_sees_every_seq():
    # the rig's publisher drops for a subscriber more than 64 messages behind (by design: a
    # slow subscriber must not slow the loop); here the point is that the subscriber misses
    # nothing it is sent, so the queue is large enough for a loaded machine's hiccups
    publisher = PosePublisher("tcp://127.0.0.1:*", sndhwm=10_000)
    n = 500
    child = Child(
        [
            sys.executable,
            "-m",
            "realtime_pose",
            "subscribe",
            "--address",
            publisher.bound_address,
            "--topic",
            "meta",
            "--topic",
            "pose",
            "--count",
            str(n),
            "--json",
            "--timeout",
            "20",
        ]
    )
    try:
        first = wait_for_first_line(child, lambda: publisher.publish_meta({"keypoints": ["a"]}))
        assert json.loads(first)["topic"] == "meta"
        publish_paced(publisher, n, fps=100)
        lines, stderr = child.finish()
    finally:
        child.kill()
        publisher.close()
    assert child.proc.returncode == 0, stderr
    poses = [json.loads(line) for line in lines]
    poses = [m["payload"] for m in poses if m["topic"] == "pose"]
    assert [p["seq"] for p in poses] == list(range(n))
    assert all(p["keypoints"][0][0][0] == p["seq"] for p in poses)
    assert f"({n} poses), gaps 0 (0 missing)" in stderr


@pytest.mark.timeout(60)
def test_cli_subscriber_prints_summary_on_ctrl_c(publisher):
    child = Child(
        [sys.executable, "-m", "realtime_pose", "subscribe", "--address", publisher.bound_address]
    )
    try:
        wait_for_first_line(child, lambda: publish_paced(publisher, 1, fps=1000))
        child.proc.send_signal(signal.SIGINT)
        _, stderr = child.finish()
    finally:
        child.kill()
    assert child.proc.returncode == 0
    assert "received" in stderr and "poses" in stderr
    assert "Traceback" not in stderr


def test_ipv6_loopback():
    try:
        pub = PosePublisher("tcp://[::1]:*")
    except OSError as exc:  # a host without IPv6
        pytest.skip(f"no IPv6 loopback here: {exc}")
    sub = _connect(pub.bound_address, ("pose", "meta"))
    try:
        assert pub.bound_address.startswith("tcp://[::1]:")
        _wait_subscribed(pub, sub)
        pub.publish_pose(0, 0, 0, {}, np.zeros((2, 3)))
        assert sub.recv(2000)[1]["seq"] == 0
    finally:
        sub.close()
        pub.close()
