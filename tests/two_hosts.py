"""Two hosts on one machine: the rig in a private network namespace, a client host in another,
joined by a veth pair with addresses that exist only inside them. Nothing leaves the sandbox.

From a test, :func:`run_as_rig` runs a script in a fresh namespace (``unshare -n``) and returns
the JSON it prints last. Inside it, :class:`ClientHost` makes the second namespace and runs
commands there (``ip netns exec``).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
RIG, CLIENT = "10.231.0.1", "10.231.0.2"
"""The rig's and the client host's addresses on the veth pair (a private range, only inside
the two namespaces)."""
ENV = {"PYTHONPATH": str(REPO), "PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "HOME": "/root"}


def run_as_rig(script: Path, *args: str, timeout: float = 150, env: dict | None = None) -> dict:
    """Run ``script`` in a new network namespace; skip when namespaces cannot be made here."""
    if shutil.which("unshare") is None or shutil.which("ip") is None:
        pytest.skip("needs unshare (util-linux) and ip (iproute2)")
    probe = subprocess.run(["unshare", "-n", "true"], capture_output=True, text=True)
    if probe.returncode != 0:
        pytest.skip(f"cannot make a network namespace here: {probe.stderr.strip()}")
    out = subprocess.run(
        ["unshare", "-n", sys.executable, str(script), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=REPO,
        env={**ENV, **(env or {})},
    )
    assert out.returncode == 0, out.stderr[-4000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


class ClientHost:
    """The second host: a named namespace joined to this one by a veth pair. Call from inside
    the rig's namespace (made by :func:`run_as_rig`); a context manager that removes it."""

    def __init__(self) -> None:
        self.name = f"rp-client-{os.getpid()}"

    def __enter__(self) -> ClientHost:
        _ip("link", "set", "lo", "up")
        _ip("netns", "add", self.name)
        try:
            rig_if, client_if = f"rpr{os.getpid() % 10000}", f"rpc{os.getpid() % 10000}"
            _ip("link", "add", rig_if, "type", "veth", "peer", "name", client_if)
            _ip("link", "set", client_if, "netns", self.name)
            _ip("addr", "add", f"{RIG}/24", "dev", rig_if)
            _ip("link", "set", rig_if, "up")
            _ip("netns", "exec", self.name, "ip", "addr", "add", f"{CLIENT}/24", "dev", client_if)
            _ip("netns", "exec", self.name, "ip", "link", "set", client_if, "up")
            _ip("netns", "exec", self.name, "ip", "link", "set", "lo", "up")
        except BaseException:
            self.__exit__()
            raise
        return self

    def command(self, *cmd: str) -> list[str]:
        """``cmd`` as run on the client host."""
        return ["ip", "netns", "exec", self.name, *cmd]

    def python(self, *args: str, timeout: float = 120, env: dict | None = None) -> dict:
        """Run ``python ARGS`` on the client host; the JSON it prints last."""
        out = subprocess.run(
            self.command(sys.executable, *args),
            capture_output=True,
            text=True,
            timeout=timeout,
            cwd=REPO,
            env={**os.environ, **(env or {})},
        )
        if out.returncode != 0:
            raise RuntimeError(f"client host: {args} failed: {out.stderr[-3000:]}")
        return json.loads(out.stdout.strip().splitlines()[-1])

    def __exit__(self, *exc: object) -> None:
        subprocess.run(["ip", "netns", "del", self.name], capture_output=True)


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, text=True)
