"""The stream on a second host, for real: the rig in one network namespace with CURVE on, the
client host in another, joined by a veth pair (tests/two_hosts.py). A client with admitted keys
gets every pose and its control requests answered; one with a stranger's keys or none gets
nothing, and no answer."""

from pathlib import Path

import pytest

from tests.two_hosts import run_as_rig

pytestmark = pytest.mark.timeout(200)


def test_over_curve_an_admitted_client_on_another_host_gets_every_pose_and_strangers_nothing():
    result = run_as_rig(Path(__file__).with_name("netns_curve_check.py"), timeout=180)
    assert result["stream"].startswith("tcp://10.231.0.1:")
    admitted = result["admitted"]
    assert admitted["received"] == 300 and admitted["gaps"] == 0
    assert admitted["ping"] is True
    for name in ("stranger", "anonymous"):
        assert result[name]["received"] == 0, name
        assert result[name]["ping"] is None, name  # no answer at all, not even a refusal
