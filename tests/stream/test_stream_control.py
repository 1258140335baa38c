"""The control server over real REQ/REP sockets: handlers, bad input, refusals, auth."""

from __future__ import annotations

import threading
from pathlib import Path

import msgpack
import pytest
import zmq

from realtime_pose.stream import (
    ControlClient,
    ControlServer,
    ControlTimeoutError,
    CurveClientKeys,
    CurveServerKeys,
    InsecureBindError,
    PosePublisher,
    PoseSubscriber,
    messages,
)


class Calls:
    """Handlers that record what they were called with, like a pipeline's would."""

    def __init__(self) -> None:
        self.seen: list[dict] = []
        self.threads: set[str] = set()

    def handler(self, reply: dict):
        def handle(request: messages.ControlRequestModel) -> dict:
            self.seen.append(request)
            self.threads.add(threading.current_thread().name)
            return reply

        return handle


@pytest.fixture
def calls():
    return Calls()


@pytest.fixture
def server(calls):
    handlers = {
        "meta": calls.handler({"meta": {"keypoints": ["snout"]}}),
        "status": calls.handler({"status": {"fps": 99.5}}),
        "record_start": calls.handler({"path": "/data/x.poselog"}),
        "record_stop": calls.handler({"poses": 12}),
        "rule_enable": calls.handler({"enabled": True}),
        "rule_disable": calls.handler({"enabled": False}),
    }
    srv = ControlServer("tcp://127.0.0.1:*", handlers)
    yield srv
    srv.close()


@pytest.fixture
def client(server):
    cli = ControlClient(server.bound_address, timeout_ms=2000)
    yield cli
    cli.close()


def test_ping_is_built_in(client):
    import time

    reply = client.request("ping", id=5)
    assert reply["ok"] is True and reply["id"] == 5 and reply["v"] == 1
    assert abs(reply["t_ns"] - time.monotonic_ns()) < 2e9


def test_handlers_are_called_with_the_validated_request(client, calls):
    assert client.request("meta") == {"v": 1, "ok": True, "meta": {"keypoints": ["snout"]}}
    assert client.request("status")["status"] == {"fps": 99.5}
    assert client.request("record_start", path="/data/x.poselog", video=True)["path"] == (
        "/data/x.poselog"
    )
    assert client.request("record_stop")["poses"] == 12
    assert client.request("rule_enable", name="zone")["enabled"] is True
    assert client.request("rule_disable", name="zone", id="abc") == {
        "v": 1,
        "ok": True,
        "id": "abc",
        "enabled": False,
    }
    assert [c.cmd for c in calls.seen] == [
        "meta",
        "status",
        "record_start",
        "record_stop",
        "rule_enable",
        "rule_disable",
    ]
    assert calls.seen[2] == messages.RecordStartRequest(
        cmd="record_start", path="/data/x.poselog", video=True
    )
    assert calls.seen[4].name == "zone" and calls.seen[0].token is None
    assert calls.threads == {"control-server"}  # never the caller's (the loop's) thread


BAD_REQUESTS = [
    (b"", "not a msgpack message"),
    (b"\xc1\xc1\xc1 garbage", "not a msgpack message"),
    (msgpack.packb([1, 2, 3]), "must be a msgpack map"),
    (msgpack.packb("ping"), "must be a msgpack map"),
    (msgpack.packb({"command": "ping"}), "unknown cmd None"),
    (msgpack.packb({"cmd": "self_destruct"}), "unknown cmd 'self_destruct'"),
    (msgpack.packb({"cmd": 1}), "unknown cmd 1"),
    (msgpack.packb({"cmd": "rule_enable", "name": 3}), "name: Input should be a valid string"),
    (msgpack.packb({"cmd": "rule_disable"}), "name: Field required"),
    (msgpack.packb({"cmd": "record_start", "path": 7}), "path"),
    (msgpack.packb({"cmd": "ping", "surprise": True}), "Extra inputs are not permitted"),
    # valid msgpack that Python cannot hold: a map (or a list) as a map key is unhashable; it
    # once ended the server thread, silencing every later request
    (b"\x82\xa3cmd\xa4ping\x81\x01\x02\x03", "not a usable msgpack message"),
    (b"\x82\xa3cmd\xa4ping\x92\x01\x02\x03", "not a usable msgpack message"),
    (b"\x81\xa3cmd\x81\x81\x01\x02\x03", "not a usable msgpack message"),
]


@pytest.mark.parametrize(("data", "error"), BAD_REQUESTS)
def test_bad_requests_get_ok_false_and_server_keeps_answering(client, server, data, error):
    reply = client.request_bytes(data)
    assert reply["ok"] is False
    assert error in reply["error"]
    assert client.request("ping")["ok"] is True
    assert server.errors == 1 and server.requests == 2


def test_reply_echoes_id_even_on_error(client):
    reply = client.request("rule_enable", id=11)
    assert reply == {
        "v": 1,
        "ok": False,
        "id": 11,
        "error": "invalid 'rule_enable' request: name: Field required",
    }


def test_multipart_request_is_refused(server):
    context = zmq.Context()
    req = context.socket(zmq.REQ)
    req.linger = 0
    req.connect(server.bound_address)
    try:
        req.send_multipart([msgpack.packb({"cmd": "ping"}), b"second frame"])
        assert req.poll(2000)
        reply = msgpack.unpackb(req.recv())
    finally:
        req.close()
        context.term()
    assert reply["ok"] is False and "one frame" in reply["error"]


def test_oversized_request_is_refused_and_server_survives():
    srv = ControlServer("tcp://127.0.0.1:*", max_request_bytes=1000)
    cli = ControlClient(srv.bound_address, timeout_ms=500)
    try:
        with pytest.raises(ControlTimeoutError, match="no reply"):
            cli.request("record_start", path="x" * 5000)  # ZeroMQ drops the connection
        assert cli.request("ping")["ok"] is True  # fresh socket, same server

        # frames individually under the limit but together over it: refused by the server
        context = zmq.Context()
        req = context.socket(zmq.REQ)
        req.linger = 0
        req.connect(srv.bound_address)
        req.send_multipart([b"a" * 800, b"b" * 800])
        assert req.poll(2000)
        reply = msgpack.unpackb(req.recv())
        req.close()
        context.term()
        assert reply["ok"] is False and "1600 bytes refused (limit 1000)" in reply["error"]
        assert cli.request("ping")["ok"] is True
    finally:
        cli.close()
        srv.close()


def test_failing_handler_gives_ok_false_and_is_logged(caplog):
    def broken(request):
        raise RuntimeError("camera unplugged")

    def unsendable(request):
        return {"value": object()}

    handlers = {"status": broken, "meta": unsendable}
    with (
        ControlServer("tcp://127.0.0.1:*", handlers) as srv,
        ControlClient(srv.bound_address, timeout_ms=2000) as cli,
    ):
        reply = cli.request("status")
        assert reply["ok"] is False
        assert reply["error"] == "status failed: RuntimeError: camera unplugged"
        reply = cli.request("meta")
        assert reply["ok"] is False and "not serialisable" in reply["error"]
        assert cli.request("ping")["ok"] is True
    assert any("camera unplugged" in (r.exc_text or "") for r in caplog.records)


def test_known_command_without_handler_is_not_available():
    with ControlServer("tcp://127.0.0.1:*") as srv, ControlClient(srv.bound_address) as cli:
        reply = cli.request("record_start")
    assert reply["ok"] is False
    assert reply["error"] == "'record_start' is not available in this session"


def test_handlers_for_unknown_commands_are_refused():
    with pytest.raises(ValueError, match="unknown commands"):
        ControlServer("tcp://127.0.0.1:*", {"reboot": lambda r: {}})


def test_client_recovers_after_timeout():
    srv = ControlServer("tcp://127.0.0.1:*")
    address = srv.bound_address
    srv.close()
    with ControlClient(address, timeout_ms=200) as cli:
        with pytest.raises(ControlTimeoutError):
            cli.request("ping")
        # a stuck REQ socket would raise ZMQError (EFSM) here instead of timing out again
        with pytest.raises(ControlTimeoutError):
            cli.request("ping")


def test_non_loopback_needs_authentication():
    with pytest.raises(InsecureBindError, match=r"or stream\.token"):
        ControlServer("tcp://0.0.0.0:*")
    with pytest.raises(InsecureBindError):
        ControlServer("tcp://*:*")


def test_token_protects_the_control_socket():
    with ControlServer("tcp://0.0.0.0:*", token="s3cret") as srv:
        port = srv.bound_address.rsplit(":", 1)[1]
        address = f"tcp://127.0.0.1:{port}"
        with ControlClient(address, timeout_ms=2000) as anonymous:
            reply = anonymous.request("ping")
            assert reply == {"v": 1, "ok": False, "error": "unauthorized: missing or wrong token"}
            assert anonymous.request("ping", token="guess")["ok"] is False
        with ControlClient(address, timeout_ms=2000, token="s3cret") as trusted:
            assert trusted.request("ping")["ok"] is True


@pytest.fixture
def curve_keys(tmp_path):
    import zmq.auth

    server_dir, client_dir, stranger_dir = (tmp_path / d for d in ("srv", "cli", "other"))
    authorized = tmp_path / "authorized"
    for d in (server_dir, client_dir, stranger_dir, authorized):
        d.mkdir()
    server_public, server_secret = zmq.auth.create_certificates(server_dir, "rig")
    client_public, client_secret = zmq.auth.create_certificates(client_dir, "lab")
    _, stranger_secret = zmq.auth.create_certificates(stranger_dir, "stranger")
    (authorized / "lab.key").write_bytes(Path(client_public).read_bytes())
    return {
        "server": CurveServerKeys(server_secret, authorized),
        "client": CurveClientKeys(client_secret, server_public),
        "stranger": CurveClientKeys(stranger_secret, server_public),
    }


def test_curve_control_admits_only_authorized_clients(curve_keys):
    with ControlServer("tcp://0.0.0.0:*", curve=curve_keys["server"]) as srv:
        address = "tcp://127.0.0.1:" + srv.bound_address.rsplit(":", 1)[1]
        with ControlClient(address, timeout_ms=2000, curve=curve_keys["client"]) as cli:
            assert cli.request("ping")["ok"] is True
        stranger = ControlClient(address, timeout_ms=500, curve=curve_keys["stranger"])
        anonymous = ControlClient(address, timeout_ms=500)  # no CURVE at all
        for cli in (stranger, anonymous):
            with pytest.raises(ControlTimeoutError):
                cli.request("ping")
            cli.close()


def test_curve_stream_reaches_only_authorized_subscribers(curve_keys):
    import numpy as np

    with PosePublisher("tcp://0.0.0.0:*", curve=curve_keys["server"]) as pub:
        address = "tcp://127.0.0.1:" + pub.bound_address.rsplit(":", 1)[1]
        good = PoseSubscriber(address, ("pose",), curve=curve_keys["client"])
        bad = PoseSubscriber(address, ("pose",), curve=curve_keys["stranger"])
        try:
            got = None
            for seq in range(200):
                pub.publish_pose(seq, seq, 0, {}, np.zeros((2, 3)))
                got = good.recv(20)
                if got is not None:
                    break
            assert got is not None and got[0] == "pose"
            for seq in range(200, 210):
                pub.publish_pose(seq, seq, 0, {}, np.zeros((2, 3)))
            assert bad.recv(300) is None
        finally:
            good.close()
            bad.close()


def test_bad_curve_key_file_is_explained(tmp_path):
    keys = CurveServerKeys(tmp_path / "missing.key_secret", tmp_path)
    with pytest.raises(ValueError, match="cannot read CURVE secret key"):
        ControlServer("tcp://127.0.0.1:*", curve=keys)


def test_meta_reply_from_publisher():
    """The pipeline's typical wiring: the meta handler returns the publisher's last meta."""
    with PosePublisher("tcp://127.0.0.1:*") as pub:
        pub.publish_meta(messages.meta_payload(["snout", "tail"]))
        handlers = {"meta": lambda request: {"meta": pub.last_meta}}
        with (
            ControlServer("tcp://127.0.0.1:*", handlers) as srv,
            ControlClient(srv.bound_address) as cli,
        ):
            reply = cli.request("meta")
    assert reply["meta"]["keypoints"] == ["snout", "tail"]
    assert "wall_offset_ns" in reply["meta"]


def test_ipv6_loopback_control():
    try:
        srv = ControlServer("tcp://[::1]:*")
    except OSError as exc:
        pytest.skip(f"no IPv6 loopback here: {exc}")
    with srv, ControlClient(srv.bound_address, timeout_ms=2000) as cli:
        assert cli.request("ping")["ok"] is True
