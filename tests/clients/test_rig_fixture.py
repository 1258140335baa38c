"""The CURVE rig the language clients are tested against serves an admitted Python client."""

from realtime_pose.stream import ControlClient, CurveClientKeys, PoseSubscriber


def test_the_curve_rig_serves_an_admitted_python_client(curve_rig):
    keys = CurveClientKeys(curve_rig.client_secret, curve_rig.server_public)
    with PoseSubscriber(curve_rig.stream, ("pose",), curve=keys) as sub:
        message = sub.recv(3000)
    assert message is not None and message[1]["v"] == 1
    with ControlClient(curve_rig.control, timeout_ms=3000, curve=keys) as control:
        assert control.request("ping")["ok"] is True
