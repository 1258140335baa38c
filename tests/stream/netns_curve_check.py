"""Run in the rig's private network namespace by test_second_host.py (see tests/two_hosts.py).

``netns_curve_check.py``: a live session on the rig's veth address with CURVE on; from the client
host's namespace, a subscriber with admitted keys, one with a stranger's keys and one with none,
and control requests the same three ways. Prints one JSON line. ``netns_curve_check.py client
STREAM CONTROL SERVER_KEY CLIENT_SECRET|- N`` is the client host's half.
"""

from __future__ import annotations

import json
import sys
import tempfile
import threading
from pathlib import Path

from tests.two_hosts import RIG, ClientHost


def rig_main() -> None:
    from realtime_pose.live.run_config import parse_config
    from realtime_pose.live.session import LiveSession
    from realtime_pose.stream.security import make_keys
    from tests.builders import write_marker_bundle
    from tests.live.conftest import base_config

    work = Path(tempfile.mkdtemp(prefix="rp-curve-"))
    keys, other = work / "keys", work / "other"
    make_keys(keys, ("lab",))
    make_keys(other, ("stranger",))
    bundle = write_marker_bundle(work / "bundle")
    source = {"kind": "synthetic", "fps": 100, "width": 80, "height": 64}
    data = base_config(bundle, work, source, recording={"enabled": False})
    data["stream"] = {
        "address": f"tcp://{RIG}:*",
        "control_address": f"tcp://{RIG}:*",
        "curve": {
            "secret_key": str(keys / "rig.key_secret"),
            "authorized_clients": str(keys / "clients"),
        },
    }
    out: dict = {}
    with ClientHost() as client:
        session = LiveSession(parse_config(data, "rig.yaml"))
        runner = threading.Thread(target=session.run, kwargs={"duration_s": 60}, daemon=True)
        runner.start()
        try:
            me = str(Path(__file__).resolve())
            stream, control = session.publisher.bound_address, session.control.bound_address
            server_key = str(keys / "rig.key")
            for name, secret, n in (
                ("admitted", keys / "clients" / "lab.key_secret", 300),
                ("stranger", other / "clients" / "stranger.key_secret", 0),
                ("anonymous", "-", 0),
            ):
                out[name] = client.python(
                    me, "client", stream, control, server_key, str(secret), str(n)
                )
        finally:
            session.stop_event.set()
            runner.join(10)
            session.close()
    out["stream"] = stream
    print(json.dumps(out))


def client_main(stream: str, control: str, server_key: str, secret: str, n: str) -> None:
    """Subscribe (N poses, or 2 s of trying when N is 0) and ping, with these keys."""
    from realtime_pose.stream import (
        ControlClient,
        ControlTimeoutError,
        CurveClientKeys,
        PoseSubscriber,
    )

    curve = None if secret == "-" else CurveClientKeys(Path(secret), Path(server_key))
    wanted = max(int(n), 1)  # N = 0: try for one pose (2 s), expecting none
    with PoseSubscriber(stream, ("pose",), curve=curve) as sub:
        received = 0  # the subscription is pose only: every message is one
        while received < wanted and sub.recv(2000) is not None:
            received += 1
        stats = sub.stats()
    try:
        with ControlClient(control, timeout_ms=1500, curve=curve) as client:
            ping = client.request("ping")["ok"]
    except ControlTimeoutError:
        ping = None
    print(json.dumps({"received": stats.poses, "gaps": stats.gaps, "ping": ping}))


if __name__ == "__main__":
    if sys.argv[1:2] == ["client"]:
        client_main(*sys.argv[2:7])
    else:
        rig_main()
