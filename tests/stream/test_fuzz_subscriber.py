"""Fuzzing our own subscriber's decoder: any frames a publisher sends are counted or skipped."""

from __future__ import annotations

import time

import msgpack
import pytest
import zmq
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from realtime_pose.stream import PoseSubscriber
from tests.fuzz_strategies import control_like, mutated, raw_msgpack

POSE = msgpack.packb(
    {"v": 1, "seq": 3, "frame_index": 3, "t_capture_ns": 1, "t_publish_ns": 2, "keypoints": []}
)
SENTINEL = msgpack.packb({"v": 1, "sentinel": True})
KNOWN = [b"pose", b"status", b"event", b"meta"]
# a frame the subscription lets through: a known topic, possibly followed by junk
TOPICS = st.tuples(st.sampled_from(KNOWN), st.binary(max_size=4)).map(lambda t: t[0] + t[1])
PAYLOADS = st.one_of(
    raw_msgpack,
    control_like,
    st.binary(max_size=64),
    mutated(POSE),
    st.fixed_dictionaries(
        {
            "seq": st.integers(-(2**63), 2**64 - 1),
            "t_publish_ns": st.integers(-(2**63), 2**64 - 1),
            "t_capture_ns": st.integers(-(2**63), 2**64 - 1),
        }
    ).map(msgpack.packb),
)


@pytest.fixture(scope="module")
def link():
    context = zmq.Context.instance()
    pub = context.socket(zmq.PUB)
    port = pub.bind_to_random_port("tcp://127.0.0.1")
    sub = PoseSubscriber(f"tcp://127.0.0.1:{port}", topics=["pose", "status", "event", "meta"])
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:  # until the subscription has reached the publisher
        pub.send_multipart([b"pose", POSE])
        if sub.recv(timeout_ms=50) is not None:
            break
    yield pub, sub
    sub.close()
    pub.close(linger=0)


@pytest.mark.parametrize("stamp", [2**64 - 1, -(2**63), 2**63 - 1])
def test_time_stamps_from_another_clock_are_not_latencies(link, stamp):
    pub, sub = link
    pose = {"v": 1, "seq": 1, "t_publish_ns": stamp, "t_capture_ns": stamp, "sentinel": True}
    pub.send_multipart([b"pose", msgpack.packb(pose)])
    got = sub.recv(timeout_ms=5000)
    assert got is not None and got[1]["t_publish_ns"] == stamp
    assert sub.stats().poses >= 1


@settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))
@given(topic=TOPICS, rest=st.lists(PAYLOADS, max_size=2))
def test_any_message_is_counted_or_skipped(link, topic, rest):
    pub, sub = link
    before = sub.undecodable + sub.stats().received
    pub.send_multipart([topic, *rest])
    pub.send_multipart([b"meta", SENTINEL])  # recv skips what it cannot use; this it can
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        got = sub.recv(timeout_ms=1000)
        assert got is None or (isinstance(got[0], str) and isinstance(got[1], dict))
        if got is not None and got[1].get("sentinel") is True:
            break
    else:
        raise AssertionError("the sentinel never arrived")
    assert sub.undecodable + sub.stats().received == before + 2
