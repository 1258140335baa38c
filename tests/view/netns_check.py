"""Run in the rig's private network namespace by test_beyond_loopback.py (see tests/two_hosts.py).

``netns_check.py``: serves the live view on the rig's veth address (10.231.0.1) and checks it
from the client host's namespace (10.231.0.2): refusals at start (no token, a weak token, plain
HTTP), then over HTTPS with the rig's own certificate every kind of request, a browser, and the
throttling of wrong tokens. Prints one JSON line. ``netns_check.py client URL TOKEN CERT PIN``
is the client host's half.
"""

from __future__ import annotations

import base64
import json
import os
import socket
import ssl
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

from tests.two_hosts import RIG, ClientHost

PORT = 8099
TOKEN = "Xq3v9kLm2Pz8Rw1Ty6Ub4Nc0"  # 24 base64url characters: 144 bits
URL = f"https://{RIG}:{PORT}/"


def view(address: str, token: str | None, data_home: str) -> subprocess.Popen:
    """``realtime-pose view`` on the rig; the token goes through the environment."""
    env = {**os.environ, "XDG_DATA_HOME": data_home}
    env.pop("REALTIME_POSE_VIEW_TOKEN", None)
    if token is not None:
        env["REALTIME_POSE_VIEW_TOKEN"] = token
    cmd = [sys.executable, "-m", "realtime_pose", "view", "--stream", "tcp://127.0.0.1:5999"]
    cmd += ["--control", "none", "--address", address]
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)


def refused(address: str, token: str | None, data_home: str) -> dict:
    proc = view(address, token, data_home)
    _, err = proc.communicate(timeout=60)
    return {"exit": proc.returncode, "stderr": err[-600:]}


def rig_main() -> None:
    out: dict = {}
    data_home = tempfile.mkdtemp(prefix="rp-tls-")
    with ClientHost() as client:
        out["no_token"] = refused(URL, None, data_home)
        out["weak_token"] = refused(URL, "s3cret-token", data_home)
        out["plain_http"] = refused(f"http://{RIG}:{PORT}", TOKEN, data_home)
        proc = view(URL, TOKEN, data_home)
        try:
            assert proc.stdout is not None
            out["ready"] = proc.stdout.readline().strip()
            from realtime_pose.view.tls import rig_certificate

            files = rig_certificate(RIG, Path(data_home) / "realtime-pose" / "tls")
            out["certificate"] = str(files.certificate)
            args = ["client", URL, TOKEN, str(files.certificate), files.spki_pin()]
            out["client"] = client.python(str(Path(__file__).resolve()), *args, timeout=120)
        finally:
            proc.terminate()
            _, err = proc.communicate(timeout=10)
            out["rig_log"] = err[-3000:]
    print(json.dumps(out))


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


def client_main(url: str, token: str, certificate: str, pin: str) -> None:
    """The client host's checks (run in its namespace)."""
    trusted = ssl.create_default_context(cafile=certificate)  # the rig's certificate, pinned
    opener = urllib.request.build_opener(NoRedirect, urllib.request.HTTPSHandler(context=trusted))

    def status(path: str, headers: dict | None = None) -> tuple[int, dict]:
        request = urllib.request.Request(url.rstrip("/") + path, headers=headers or {})
        try:
            with opener.open(request, timeout=5) as response:
                return response.status, dict(response.headers)
        except urllib.error.HTTPError as err:
            return err.code, dict(err.headers)

    out: dict = {}
    try:
        urllib.request.urlopen(url, timeout=5, context=ssl.create_default_context())
        out["untrusted_certificate"] = "accepted"
    except urllib.error.URLError as err:
        out["untrusted_certificate"] = type(err.reason).__name__
    out["page_without_token"] = status("/")[0]
    out["static_without_token"] = status("/static/js/main.js")[0]
    out["api_without_token"] = status("/api/state")[0]
    code, headers = status(f"/?token={token}")
    out["page_token_query"] = code
    set_cookie = headers.get("Set-Cookie", "")
    cookie = set_cookie.split(";", 1)[0]
    out["cookie_flags"] = set_cookie
    out["cookie_holds_token"] = token in set_cookie
    out["page_with_cookie"] = status("/", {"Cookie": cookie})[0]
    out["page_with_bearer"] = status("/", {"Authorization": f"Bearer {token}"})[0]
    out["page_with_token_as_cookie"] = status("/", {"Cookie": f"rp_view_session={token}"})[0]
    host, port = url.split("//", 1)[1].rstrip("/").rsplit(":", 1)
    out["ws_without_token"] = websocket_status(host, int(port), {}, trusted)
    out["ws_with_cookie"] = websocket_status(host, int(port), {"Cookie": cookie}, trusted)
    out["browser"] = browser_check(url, token, pin)
    # last: wrong tokens until the view throttles this address (it then refuses all of it)
    out["wrong_tokens"] = [status(f"/?token=wrong{i}")[0] for i in range(8)]
    code, headers = status(f"/?token={token}")
    out["right_token_while_throttled"] = code
    out["retry_after"] = headers.get("Retry-After")
    print(json.dumps(out))


def websocket_status(host: str, port: int, headers: dict, context: ssl.SSLContext) -> int:
    raw = socket.create_connection((host, port), timeout=5)
    sock = context.wrap_socket(raw, server_hostname=host)
    key = base64.b64encode(os.urandom(16)).decode()
    extra = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
    sock.sendall(
        (
            f"GET /ws HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
            f"Sec-WebSocket-Version: 13\r\n{extra}\r\n"
        ).encode()
    )
    line = sock.recv(4096).split(b"\r\n", 1)[0]
    sock.close()
    return int(line.split()[1])


def browser_check(url: str, token: str, pin: str) -> dict | str:
    from realtime_pose.view.browser import Chromium, why_no_browser

    reason = why_no_browser()
    if reason:
        return reason
    from selenium.webdriver.common.by import By

    # trust the rig's certificate (by its public key) and nothing else
    with Chromium(extra_flags=(f"--ignore-certificate-errors-spki-list={pin}",)) as browser:
        driver = browser.driver
        driver.get(url)
        refused_text = driver.find_element(By.TAG_NAME, "body").text
        driver.get(f"{url}?token={token}")
        deadline = time.monotonic() + 20
        badge = ""
        while time.monotonic() < deadline and badge != "live":
            badge = driver.find_element(By.ID, "conn").text
            time.sleep(0.2)
        return {"refused_text": refused_text, "address_bar": driver.current_url, "badge": badge}


if __name__ == "__main__":
    if sys.argv[1:2] == ["client"]:
        client_main(*sys.argv[2:6])
    else:
        rig_main()
