"""The C client (clients/c) against a live CURVE session on loopback.

It is built with its Makefile (warnings as errors, and AddressSanitizer's leak check where the
toolchain runs it), then run as a subprocess: with the admitted client's keys it must see every
pose, decode them as the Python subscriber does and get a ping answered; with a stranger's keys
it must get nothing and give up within its timeout.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from realtime_pose.stream.security import make_keys
from tests.clients.conftest import ReferenceSubscriber

CLIENT_DIR = Path(__file__).resolve().parents[2] / "clients" / "c"
COUNT = 50
PROBE = '#include <zmq.h>\n#include <msgpack.h>\nint main(void) { return !zmq_has("curve"); }\n'
SANITIZERS = "-fsanitize=address,undefined -fno-omit-frame-pointer"


def _pkg_config(*args: str) -> list[str]:
    out = subprocess.run(["pkg-config", *args], capture_output=True, text=True, check=True)
    return out.stdout.split()


def _compiles_and_runs(build: Path, source: str, flags: list[str]) -> bool:
    (build / "probe.c").write_text(source)
    compiled = subprocess.run(
        ["cc", str(build / "probe.c"), "-o", str(build / "probe"), *flags],
        capture_output=True,
    )
    if compiled.returncode != 0:
        return False
    try:  # a sanitizer runtime at odds with the kernel may crash, or spin
        return subprocess.run([build / "probe"], capture_output=True, timeout=30).returncode == 0
    except subprocess.TimeoutExpired:
        return False


@pytest.fixture(scope="module")
def c_client(tmp_path_factory) -> Path:
    """The client built from clients/c with its Makefile."""
    missing = [tool for tool in ("cc", "make", "pkg-config") if shutil.which(tool) is None]
    if missing:
        pytest.skip(f"no {', '.join(missing)} (Debian: build-essential pkg-config)")
    build = tmp_path_factory.mktemp("c_client")
    msgpack = (
        "msgpack-c"
        if subprocess.run(["pkg-config", "--exists", "msgpack-c"]).returncode == 0
        else "msgpack"
    )
    try:
        flags = _pkg_config("--cflags", "--libs", "libzmq", msgpack)
    except subprocess.CalledProcessError:
        pytest.skip("no libzmq or msgpack-c for pkg-config (Debian: libzmq3-dev libmsgpack-dev)")
    if not _compiles_and_runs(build, PROBE, flags):
        pytest.skip("cannot build against libzmq and msgpack-c, or libzmq lacks CURVE")
    cflags = "-O1 -g -Werror"
    if _compiles_and_runs(build, "int main(void) { return 0; }\n", SANITIZERS.split()):
        cflags += " " + SANITIZERS
    made = subprocess.run(
        ["make", "-C", str(CLIENT_DIR), f"BUILD={build}", f"CFLAGS={cflags}"],
        capture_output=True,
        text=True,
    )
    if made.returncode != 0:
        pytest.fail(f"make in clients/c failed:\n{made.stdout}{made.stderr}")
    return build / "rtpose_client"


def run_client(client: Path, rig, secret: Path, count: int, timeout_ms: int):
    """Run the client; return (exit status, its JSON summary or None, stderr, seconds)."""
    start = time.monotonic()
    done = subprocess.run(
        [
            client,
            "--stream",
            rig.stream,
            "--control",
            rig.control,
            "--client-secret",
            secret,
            "--server-public",
            rig.server_public,
            "--count",
            str(count),
            "--timeout-ms",
            str(timeout_ms),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    lines = done.stdout.strip().splitlines()
    summary = json.loads(lines[-1]) if lines else None
    return done.returncode, summary, done.stderr, time.monotonic() - start


def test_c_client_receives_every_pose_and_pings_with_curve(curve_rig, c_client):
    n_keypoints = len(curve_rig.session.meta["keypoints"])
    with ReferenceSubscriber(curve_rig) as reference:
        status, summary, stderr, _ = run_client(
            c_client, curve_rig, curve_rig.client_secret, COUNT, 5000
        )
        assert status == 0, stderr
        expected = reference.pose(summary["last_pose"]["seq"])
    assert summary["received"] == COUNT
    assert (summary["gaps"], summary["missing"], summary["decode_errors"]) == (0, 0, 0)
    assert summary["last_seq"] - summary["first_seq"] == COUNT - 1
    assert summary["keypoints_shape"] == [1, n_keypoints, 3]
    assert summary["ping_ok"] is True and summary["ping_error"] is None
    assert 0 < summary["latency_p50_us"] <= summary["latency_p99_us"] < 1e6  # µs, rig clock
    last = summary["last_pose"]
    assert last["frame_index"] == expected["frame_index"]
    assert last["t_capture_ns"] == expected["t_capture_ns"]
    assert last["keypoints"] == expected["keypoints"]  # %.17g: the very doubles


def test_c_client_with_a_strangers_keys_receives_nothing(curve_rig, c_client):
    status, summary, stderr, seconds = run_client(
        c_client, curve_rig, curve_rig.stranger_secret, 5, 1500
    )
    assert status == 1, stderr
    assert summary["received"] == 0 and summary["timed_out"] is True
    assert summary["ping_ok"] is False and "no reply within 1500 ms" in summary["ping_error"]
    assert seconds < 15  # one timeout for the stream, one for the ping


def test_c_client_refuses_a_public_key_file_as_its_secret(tmp_path, c_client):
    make_keys(tmp_path, ("lab",))
    done = subprocess.run(
        [
            c_client,
            "--stream",
            "tcp://127.0.0.1:1",
            "--control",
            "tcp://127.0.0.1:1",
            "--client-secret",
            tmp_path / "clients" / "lab.key",
            "--server-public",
            tmp_path / "rig.key",
        ],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.returncode == 2
    assert "holds no secret-key" in done.stderr and done.stdout == ""
