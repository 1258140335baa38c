"""Run inside a private network namespace (``unshare -n``) by test_beyond_loopback.py.

Gives the namespace's loopback device a non-loopback address (10.200.0.1/32), serves the live
view on it, and reports as JSON what each kind of request got: nothing leaves the namespace.
"""

from __future__ import annotations

import base64
import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request

HOST, PORT, TOKEN = "10.200.0.1", 8099, "s3cret-token"
URL = f"http://{HOST}:{PORT}/"


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


OPENER = urllib.request.build_opener(NoRedirect)


def status(path: str, headers: dict | None = None) -> tuple[int, dict]:
    request = urllib.request.Request(URL.rstrip("/") + path, headers=headers or {})
    try:
        with OPENER.open(request, timeout=5) as response:
            return response.status, dict(response.headers)
    except urllib.error.HTTPError as err:
        return err.code, dict(err.headers)


def websocket_status(headers: dict) -> int:
    sock = socket.create_connection((HOST, PORT), timeout=5)
    key = base64.b64encode(os.urandom(16)).decode()
    extra = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
    sock.sendall(
        (
            f"GET /ws HTTP/1.1\r\nHost: {HOST}:{PORT}\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
            f"Sec-WebSocket-Version: 13\r\n{extra}\r\n"
        ).encode()
    )
    line = sock.recv(4096).split(b"\r\n", 1)[0]
    sock.close()
    return int(line.split()[1])


def view(*extra: str, env: dict | None = None) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "realtime_pose", "view", "--stream", "tcp://127.0.0.1:5999"]
    cmd += ["--control", "none", "--address", URL.rstrip("/"), *extra]
    return subprocess.Popen(
        cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env or os.environ
    )


def main() -> None:
    subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
    subprocess.run(["ip", "addr", "add", f"{HOST}/32", "dev", "lo"], check=True)
    out: dict = {}
    open_view = view()
    _, err = open_view.communicate(timeout=60)
    out["no_token"] = {"exit": open_view.returncode, "stderr": err[-400:]}
    proc = view(env={**os.environ, "REALTIME_POSE_VIEW_TOKEN": TOKEN})
    try:
        assert proc.stdout is not None
        out["ready"] = proc.stdout.readline().strip()
        out["page_without_token"] = status("/")[0]
        out["static_without_token"] = status("/static/js/main.js")[0]
        out["api_without_token"] = status("/api/state")[0]
        out["page_wrong_token"] = status("/?token=wrong")[0]
        code, headers = status(f"/?token={TOKEN}")
        out["page_token_query"] = code
        cookie = headers.get("Set-Cookie", "").split(";", 1)[0]
        out["cookie_flags"] = headers.get("Set-Cookie", "")
        out["page_with_cookie"] = status("/", {"Cookie": cookie})[0]
        out["page_with_bearer"] = status("/", {"Authorization": f"Bearer {TOKEN}"})[0]
        out["page_wrong_bearer"] = status("/", {"Authorization": "Bearer nope"})[0]
        out["ws_without_token"] = websocket_status({})
        out["ws_wrong_cookie"] = websocket_status({"Cookie": "rp_view_token=nope"})
        out["ws_with_cookie"] = websocket_status({"Cookie": cookie})
        out["browser"] = browser_check()
    finally:
        proc.terminate()
        proc.wait(10)
    print(json.dumps(out))


def browser_check() -> dict | str:
    from realtime_pose.view.browser import Chromium, why_no_browser

    reason = why_no_browser()
    if reason:
        return reason
    from selenium.webdriver.common.by import By

    with Chromium() as browser:
        driver = browser.driver
        driver.get(URL)
        refused = driver.find_element(By.TAG_NAME, "body").text
        driver.get(f"{URL}?token={TOKEN}")
        deadline = time.monotonic() + 20
        badge = ""
        while time.monotonic() < deadline and badge != "live":
            badge = driver.find_element(By.ID, "conn").text
            time.sleep(0.2)
        return {"refused_text": refused, "address_bar": driver.current_url, "badge": badge}


if __name__ == "__main__":
    main()
