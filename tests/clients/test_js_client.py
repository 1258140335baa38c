"""The Node.js client (clients/js) against a live CURVE session: poses, gaps, shape, ping, keys.

Runs ``npm ci`` in clients/js once when its node_modules are missing or stale (the zeromq
package ships its native addon inside; nothing is built or fetched outside the npm registry),
then ``node subscribe.js`` as a subprocess. Skips where Node.js or npm is missing, or where the
registry cannot be reached.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

CLIENT_DIR = Path(__file__).resolve().parents[2] / "clients" / "js"
NETWORK_ERROR = re.compile(
    r"\b(ENOTFOUND|EAI_AGAIN|ECONNREFUSED|ECONNRESET|ETIMEDOUT|ENETUNREACH|EHOSTUNREACH)\b"
    r"|npm (?:ERR!|error) network"
)
MARKER_KEYPOINTS = 3  # red, green, blue in the marker bundle of tests/live/conftest.py


def _installed_matches_lockfile() -> bool:
    """Whether node_modules holds exactly what package-lock.json pins (npm's hidden lockfile)."""
    hidden = CLIENT_DIR / "node_modules" / ".package-lock.json"
    if not hidden.is_file():
        return False
    wanted = json.loads((CLIENT_DIR / "package-lock.json").read_text())["packages"]
    wanted.pop("", None)
    return json.loads(hidden.read_text()).get("packages") == wanted


@pytest.fixture(scope="module")
def node() -> str:
    """The node executable, with clients/js/node_modules installed from the lockfile."""
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        pytest.skip("Node.js and npm are needed for the JavaScript client (clients/js)")
    if not _installed_matches_lockfile():
        done = subprocess.run(
            # one retry, not npm's two with up to a minute between: offline, fail in seconds
            [npm, "ci", "--no-audit", "--no-fund", "--fetch-retries=1"],
            cwd=CLIENT_DIR,
            capture_output=True,
            text=True,
            timeout=240,
        )
        if done.returncode != 0:
            output = done.stdout + done.stderr
            offline = NETWORK_ERROR.search(output)
            if offline:
                pytest.skip(f"npm ci in clients/js cannot reach the npm registry ({offline[0]})")
            pytest.fail(f"npm ci in clients/js failed ({done.returncode}):\n{output[-2000:]}")
    return node


def _run_client(node: str, rig, client_secret: Path, count: int, timeout_s: float):
    done = subprocess.run(
        [
            node,
            "subscribe.js",
            "--stream",
            rig.stream,
            "--control",
            rig.control,
            "--client-key",
            str(client_secret),
            "--server-key",
            str(rig.server_public),
            "--count",
            str(count),
            "--timeout",
            str(timeout_s),
        ],
        cwd=CLIENT_DIR,
        capture_output=True,
        text=True,
        timeout=timeout_s * 2 + 30,
    )
    lines = done.stdout.strip().splitlines()
    assert lines, f"no summary from the client (exit {done.returncode}):\n{done.stderr}"
    return done.returncode, json.loads(lines[-1]), done.stderr


def test_js_unit_tests_pass(node):
    done = subprocess.run(
        [node, "--test"], cwd=CLIENT_DIR, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-1000:]
    assert re.search(r"^# fail 0$", done.stdout, re.MULTILINE)
    assert not re.search(r"^# pass 0$", done.stdout, re.MULTILINE)


def test_js_client_receives_every_pose_and_pings_with_curve(node, curve_rig):
    rc, summary, stderr = _run_client(node, curve_rig, curve_rig.client_secret, 60, 10)

    assert rc == 0, (summary, stderr)
    assert summary["stopped"] == "count"
    assert summary["received"] == 60
    assert (summary["gaps"], summary["missing"], summary["restarts"]) == (0, 0, 0)
    assert summary["last_seq"] - summary["first_seq"] == 59
    assert summary["rejected"] == 0, summary["last_rejection"]
    assert summary["keypoints_shape"] == [1, MARKER_KEYPOINTS, 3]
    assert summary["keypoints_shape_changes"] == 0
    # t_capture_ns decoded exactly and on the publisher's clock: same host, so a short latency.
    assert int(summary["last_t_capture_ns"]) > 0
    latency = summary["capture_to_receive_us"]
    assert 0 < latency["p50"] <= latency["p99"] <= latency["max"] < 2_000_000
    assert summary["ping_ok"] is True, summary["ping_error"]


def test_js_client_with_a_strangers_key_gets_no_pose_and_no_reply(node, curve_rig):
    rc, summary, stderr = _run_client(node, curve_rig, curve_rig.stranger_secret, 5, 1.5)

    assert rc == 1, (summary, stderr)
    assert summary["stopped"] == "timeout"
    assert summary["received"] == 0
    assert summary["ping_ok"] is False
    assert "no reply" in summary["ping_error"]
