"""CURVE from the run config: `realtime-pose keys` makes the files, `stream.curve` turns it on for
the stream and the control socket of a live session, `subscribe`/`ControlClient` take client
keys, a client without admitted keys gets nothing, and a bind beyond loopback without
authentication is refused naming the file and the field."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
import yaml

from realtime_pose.cli import main
from realtime_pose.live.run_config import ConfigError, load_config
from realtime_pose.stream import ControlClient, ControlTimeoutError, CurveClientKeys, PoseSubscriber
from tests.live.conftest import curve_config
from tests.view.sessions import RunningSession


@pytest.fixture
def keys(tmp_path) -> Path:
    folder = tmp_path / "keys"
    assert main(["keys", "--output", str(folder), "--client", "lab", "--client", "matlab"]) == 0
    return folder


def test_keys_are_made_in_pyzmqs_format_with_owner_only_secrets(keys, capsys):
    import zmq.auth

    public, secret = zmq.auth.load_certificate(keys / "rig.key_secret")
    assert secret is not None and zmq.auth.load_certificate(keys / "rig.key")[0] == public
    for name in ("lab", "matlab"):
        assert zmq.auth.load_certificate(keys / "clients" / f"{name}.key_secret")[1] is not None
    for path in keys.rglob("*.key_secret"):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
    assert stat.S_IMODE(keys.stat().st_mode) == 0o700
    assert stat.S_IMODE((keys / "clients").stat().st_mode) == 0o700
    before = (keys / "rig.key_secret").read_bytes()
    assert main(["keys", "--output", str(keys)]) == 2  # never replaces a key
    assert "will not replace existing key files" in capsys.readouterr().err
    assert (keys / "rig.key_secret").read_bytes() == before


def _write(tmp_path: Path, config: dict) -> Path:
    path = tmp_path / "rig.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def test_a_bind_beyond_loopback_without_curve_names_the_file_and_field(tmp_path):
    config = {"bundle": "b", "stream": {"address": "tcp://0.0.0.0:5599"}}
    with pytest.raises(ConfigError, match=r"rig.yaml: field 'stream.address': refusing to bind"):
        load_config(_write(tmp_path, config))
    config["stream"] = {"address": "tcp://127.0.0.1:5599", "control_address": "tcp://*:5600"}
    with pytest.raises(ConfigError, match=r"field 'stream.control_address'.*or stream.token"):
        load_config(_write(tmp_path, config))
    config["stream"]["token"] = "a" * 32  # a token is enough for the control socket
    load_config(_write(tmp_path, config))


def test_curve_paths_are_relative_to_the_config_and_checked_at_load(tmp_path, keys):
    curve = {"secret_key": "keys/rig.key_secret", "authorized_clients": "keys/clients"}
    config = load_config(
        _write(
            tmp_path, {"bundle": "b", "stream": {"address": "tcp://0.0.0.0:5599", "curve": curve}}
        )
    )
    assert config.stream.curve.secret_key == tmp_path / "keys" / "rig.key_secret"
    curve["secret_key"] = "keys/rig.key"  # the public half: no secret in it
    with pytest.raises(ConfigError, match=r"rig.yaml: field 'stream.curve': .*holds no secret key"):
        load_config(_write(tmp_path, {"bundle": "b", "stream": {"curve": curve}}))


def test_a_live_session_with_curve_streams_only_to_admitted_clients(
    tmp_path, keys, marker_bundle, marker_video
):
    data = curve_config(marker_bundle, marker_video, tmp_path, keys)
    lab = CurveClientKeys(keys / "clients" / "lab.key_secret", keys / "rig.key")
    stranger_keys = tmp_path / "stranger"
    assert main(["keys", "--output", str(stranger_keys), "--client", "x"]) == 0
    stranger = CurveClientKeys(stranger_keys / "clients" / "x.key_secret", keys / "rig.key")
    with RunningSession(data, tmp_path) as run:
        stream = run.stream
        admitted = PoseSubscriber(stream, ("pose",), curve=lab)
        refused = [PoseSubscriber(stream, ("pose",), curve=stranger), PoseSubscriber(stream)]
        got = [admitted.recv(3000) for _ in range(5)]
        assert all(m is not None and m[0] == "pose" for m in got)
        assert all(s.recv(1000) is None for s in refused)
        for s in (admitted, *refused):
            s.close()
        control = run.control
        with ControlClient(control, timeout_ms=3000, curve=lab) as client:
            assert client.request("ping")["ok"] is True
        with (
            ControlClient(control, timeout_ms=500) as anonymous,
            pytest.raises(ControlTimeoutError),
        ):
            anonymous.request("ping")
        code = main(
            [
                "subscribe",
                "--address",
                stream,
                "--count",
                "3",
                "--timeout",
                "5",
                "--client-key",
                str(keys / "clients" / "matlab.key_secret"),
                "--server-key",
                str(keys / "rig.key"),
            ]
        )
        assert code == 0


def test_subscribe_refuses_half_a_key_pair(tmp_path, keys, capsys):
    code = main(["subscribe", "--client-key", str(keys / "clients" / "lab.key_secret")])
    assert code == 2 and "needs --client-key and --server-key" in capsys.readouterr().err
    code = main(
        ["subscribe", "--client-key", str(keys / "rig.key"), "--server-key", str(keys / "rig.key")]
    )
    assert code == 2 and "holds no secret key" in capsys.readouterr().err
    assert not os.environ.get("REALTIME_POSE_CURVE_KEYS")


def test_the_sessions_own_view_reads_a_curve_stream_with_its_in_memory_keys(
    tmp_path, keys, marker_bundle, marker_video
):
    import json
    import time
    import urllib.request

    from realtime_pose.stream.security import client_keys_from_env, client_keys_to_env

    pytest.importorskip("aiohttp", reason="the live view needs the view extra")
    for _ in range(20):  # Z85 keys hold ':' and other punctuation: the hand-over keeps them
        import zmq

        public, secret = zmq.curve_keypair()
        round_trip = client_keys_from_env(
            client_keys_to_env(CurveClientKeys.from_keys(public, secret, public))
        )
        assert round_trip.load() == (public, secret, public)
    data = curve_config(marker_bundle, marker_video, tmp_path, keys)
    data["view"] = {"enabled": True, "address": "http://127.0.0.1:0"}
    with RunningSession(data, tmp_path) as run:
        url = run.url
        assert not any((keys / "clients").glob("*view*"))  # its key was never written down
        deadline, state = time.monotonic() + 30, {}
        while time.monotonic() < deadline:
            with urllib.request.urlopen(url + "api/state", timeout=5) as reply:
                state = json.loads(reply.read())
            if state["frames_received"] > 0 and state["meta"] and state["rules"] is not None:
                break
            time.sleep(0.3)
        assert state["frames_received"] > 0, state  # the stream, over CURVE
        assert state["meta"]["keypoints"]
        assert state["rules"] is not None  # a control reply, over CURVE
