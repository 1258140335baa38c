"""Fuzzing the control socket: whatever arrives, the server answers it and goes on answering."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import HealthCheck, given, settings

from realtime_pose.stream import ControlClient, ControlServer, messages
from tests.fuzz_strategies import any_control_request


@pytest.fixture(scope="module")
def server():
    handlers = {
        "status": lambda req: {"status": {"fps": 1.0}},
        "meta": lambda req: {"meta": {"keypoints": ["a"]}},
        "rule_enable": lambda req: {"rule": req.name},
    }
    srv = ControlServer("tcp://127.0.0.1:*", handlers)
    yield srv
    srv.close()


@pytest.fixture(scope="module")
def client(server):
    cli = ControlClient(server.bound_address, timeout_ms=2000)
    yield cli
    cli.close()


@settings(max_examples=400, deadline=None, suppress_health_check=list(HealthCheck))
@given(data=any_control_request())
def test_every_request_gets_an_answer(server, client, data):
    reply = client.request_bytes(data)
    assert reply["v"] == 1 and isinstance(reply["ok"], bool)
    if not reply["ok"]:
        assert isinstance(reply["error"], str) and reply["error"]


@settings(max_examples=300, deadline=None)
@given(data=any_control_request())
def test_decoding_raises_only_the_documented_error(data):
    with contextlib.suppress(messages.RequestError):
        messages.parse_request(data)


def test_the_server_still_answers_after_the_fuzz(server, client):
    before = server.requests
    assert client.request("ping")["ok"] is True
    assert server.requests == before + 1
    assert server._thread.is_alive() and server._thread.record.deaths == 0
