"""``realtime-pose demo`` prints the live view's URL, and that URL serves the page."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

pytest.importorskip("aiohttp", reason="the live view needs the view extra")
REPO = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _page(url: str, deadline: float) -> str:
    """GET ``url`` until the view process answers (it starts beside the session)."""
    while True:
        try:
            with urllib.request.urlopen(url, timeout=5) as reply:
                return reply.read().decode("utf-8", "replace")
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.3)


def test_demo_prints_a_live_view_url_that_serves_the_page(tmp_path: Path):
    port = _free_port()
    args = [
        *("demo", "--seconds", "40", "--quiet", "--view", f"http://127.0.0.1:{port}"),
        *("--address", "tcp://127.0.0.1:*", "--control-address", "tcp://127.0.0.1:*"),
        *("--rules", str(tmp_path / "rules.yaml")),
    ]
    proc = subprocess.Popen(
        [sys.executable, "-m", "realtime_pose", *args],
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        deadline = time.monotonic() + 90
        line = ""
        while "live view: open" not in line:
            line = proc.stdout.readline()
            assert line or proc.poll() is None, "demo ended without printing the view's URL"
            assert time.monotonic() < deadline, "no view URL within 90 s"
        url = line.split("open ", 1)[1].split()[0]
        assert url == f"http://127.0.0.1:{port}/"
        page = _page(url, time.monotonic() + 60)
        assert "<html" in page.lower() and "realtime-pose" in page.lower()
    finally:
        proc.terminate()
        proc.wait(30)
    assert proc.returncode == 0
