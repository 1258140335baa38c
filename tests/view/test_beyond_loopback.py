"""The live view bound beyond loopback, for real: inside a private network namespace whose
loopback device also carries 10.200.0.1 (not a loopback address, so the view treats it as
reachable from other hosts). Without a token it refuses to start; with one, every page, file,
WebSocket and action needs it (401 without, 403 wrong), and a browser with it works."""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.view.sessions import REPO

pytestmark = pytest.mark.timeout(180)


def run_in_namespace() -> dict:
    if shutil.which("unshare") is None or shutil.which("ip") is None:
        pytest.skip("needs unshare (util-linux) and ip (iproute2)")
    probe = subprocess.run(["unshare", "-n", "true"], capture_output=True, text=True)
    if probe.returncode != 0:
        pytest.skip(f"cannot make a network namespace here: {probe.stderr.strip()}")
    script = Path(__file__).with_name("netns_check.py")
    out = subprocess.run(
        ["unshare", "-n", sys.executable, str(script)],
        capture_output=True,
        text=True,
        timeout=150,
        cwd=REPO,
        env={"PYTHONPATH": str(REPO), "PATH": "/usr/sbin:/usr/bin:/sbin:/bin"},
    )
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_beyond_loopback_the_token_is_required_everywhere():
    result = run_in_namespace()
    assert result["no_token"]["exit"] == 2
    assert "reachable from other hosts and has no token" in result["no_token"]["stderr"]
    assert result["ready"] == "live view: http://10.200.0.1:8099/"
    assert result["page_without_token"] == 401
    assert result["static_without_token"] == 401
    assert result["api_without_token"] == 401
    assert result["page_wrong_token"] == 403
    assert result["page_token_query"] == 303
    assert "HttpOnly" in result["cookie_flags"] and "SameSite=Strict" in result["cookie_flags"]
    assert result["page_with_cookie"] == 200
    assert result["page_with_bearer"] == 200
    assert result["page_wrong_bearer"] == 403
    assert result["ws_without_token"] == 401
    assert result["ws_wrong_cookie"] == 403
    assert result["ws_with_cookie"] == 101
    browser = result["browser"]
    if isinstance(browser, str):
        pytest.skip(f"HTTP checks passed; no browser for the page check: {browser}")
    assert "401" in browser["refused_text"]
    assert browser["address_bar"] == "http://10.200.0.1:8099/"  # the token left the URL
    assert browser["badge"] == "live"
