"""The pose stream to clients on another host, over CURVE: Python, C, MATLAB/Octave, Node.js.

    python benchmarks/remote_clients.py [--seconds 600] [--fps 100] [--json FILE]

Runs itself in a private network namespace (``unshare -n``; it needs root or user namespaces):
the rig there, a client host in a second namespace joined by a veth pair (addresses only inside
them, tests/two_hosts.py). The live session (the embedded demo bundle on the synthetic camera,
320×240 at ``--fps``, ONNX Runtime, 1 thread) binds its stream and control socket on the rig's
veth address with CURVE on. On the client host each client of ``clients/`` subscribes with its
own admitted key pair for the whole run and pings once at the end; a Python subscriber on the
rig itself (same host, the reference) does the same. Each reports poses received, gaps in
``seq`` and capture → receipt latency p50/p99 (the namespaces share the kernel's clocks, so
receipt minus ``t_capture_ns`` is meaningful; MATLAB/Octave go through Unix time and the ping's
``wall_offset_ns``). Writes ``benchmarks/results/remote_clients.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchmarks.common import add_overwrite_argument, write_result  # noqa: E402

INSIDE = "REALTIME_POSE_BENCH_RIG_NAMESPACE"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=600.0)
    parser.add_argument("--fps", type=float, default=100.0)
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--clients", nargs="+", default=["python", "c", "octave", "js"])
    add_overwrite_argument(parser)
    parser.add_argument("--python-client", nargs=5, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.python_client:
        return python_client(*args.python_client)
    if os.environ.get(INSIDE) != "1":
        env = {**os.environ, INSIDE: "1"}
        return subprocess.run(["unshare", "-n", sys.executable, *sys.argv], env=env).returncode
    payload = run_rig(args)
    path = write_result("remote_clients", payload, args.json, overwrite=args.overwrite)
    print(f"wrote {path}")
    return 0


def run_rig(args: argparse.Namespace) -> dict:
    """In the rig's namespace: the session, the clients, their reports."""
    from realtime_pose.live.run_config import parse_config
    from realtime_pose.live.session import LiveSession
    from realtime_pose.stream.security import make_keys
    from realtime_pose.util.paths import DEMO_BUNDLE
    from tests.two_hosts import RIG, ClientHost

    work = Path(tempfile.mkdtemp(prefix="rp-remote-"))
    names = [*args.clients, "rig_python"]
    make_keys(work / "keys", tuple(names))
    keys = work / "keys"
    count = int(args.seconds * args.fps)
    timeout_s = args.seconds + 120
    launchers = {
        "python": lambda c: [sys.executable, __file__, "--python-client", *c, str(count)],
        "c": lambda c: [c_client(work), *_c_args(c), "--count", str(count), "--timeout-ms", "5000"],
        "octave": lambda c: _octave(c, count),
        "js": lambda c: ["node", str(REPO / "clients/js/subscribe.js"), *_js_args(c, count)],
    }
    config = {
        "source": {"kind": "synthetic", "fps": args.fps, "width": 320, "height": 240},
        "bundle": str(DEMO_BUNDLE),
        "engine": {"kind": "onnxruntime", "threads": 1, "spinning": False},
        "stream": {
            "address": f"tcp://{RIG}:*",
            "control_address": f"tcp://{RIG}:*",
            "sndhwm": 1000,
            "curve": {
                "secret_key": str(keys / "rig.key_secret"),
                "authorized_clients": str(keys / "clients"),
            },
        },
        "recording": {"enabled": False},
    }
    reports: dict[str, dict] = {}
    with ClientHost() as client:
        session = LiveSession(parse_config(config, "remote_clients"))
        runner = threading.Thread(
            target=session.run, kwargs={"duration_s": args.seconds + 60}, daemon=True
        )
        runner.start()
        try:
            endpoints = (session.publisher.bound_address, session.control.bound_address)
            procs = {}
            for name in args.clients:
                creds = (
                    *endpoints,
                    str(keys / "clients" / f"{name}.key_secret"),
                    str(keys / "rig.key"),
                )
                procs[name] = subprocess.Popen(
                    client.command(*launchers[name](creds)),
                    stdout=subprocess.PIPE,
                    stderr=subprocess.PIPE,
                    text=True,
                    cwd=REPO,
                )
            rig_creds = (
                *endpoints,
                str(keys / "clients/rig_python.key_secret"),
                str(keys / "rig.key"),
            )
            procs["rig_python"] = subprocess.Popen(
                launchers["python"](rig_creds),
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
                cwd=REPO,
            )
            for name, proc in procs.items():
                out, err = proc.communicate(timeout=timeout_s)
                lines = [line for line in out.splitlines() if line.startswith("{")]
                reports[name] = json.loads(lines[-1]) if lines else {"error": err[-2000:]}
                reports[name]["exit"] = proc.returncode
        finally:
            status = session.pipeline.last_status
            session.stop_event.set()
            runner.join(15)
            session.close()
    return {
        "seconds": args.seconds,
        "fps": args.fps,
        "poses_asked": count,
        "transport": f"tcp over a veth pair between two network namespaces, CURVE; rig {RIG}",
        "session_status": status,
        "clients": {name: _row(name, r) for name, r in reports.items()},
        "raw": reports,
    }


def _row(name: str, report: dict) -> dict:
    """Received, gaps and latency in one shape for every client (ms)."""
    if name == "js":
        latency = report.get("capture_to_receive_us") or {}
        p50, p99 = latency.get("p50"), latency.get("p99")
    else:
        p50, p99 = report.get("latency_p50_us"), report.get("latency_p99_us")
    return {
        "where": "rig (same host)" if name == "rig_python" else "client host (other namespace)",
        "received": report.get("received"),
        "gaps": report.get("gaps"),
        "missing": report.get("missing"),
        "latency_p50_ms": None if p50 is None else round(p50 / 1e3, 3),
        "latency_p99_ms": None if p99 is None else round(p99 / 1e3, 3),
        "ping_ok": report.get("ping_ok"),
        "exit": report.get("exit"),
    }


def _options(creds: tuple[str, ...], key: str, server: str) -> list[str]:
    """``--stream S --control C KEY SECRET SERVER PUBLIC``: the C and JS clients' options."""
    stream, control, secret, public = creds
    return ["--stream", stream, "--control", control, key, secret, server, public]


def _c_args(creds: tuple[str, ...]) -> list[str]:
    return _options(creds, "--client-secret", "--server-public")


def _js_args(creds: tuple[str, ...], count: int) -> list[str]:
    options = _options(creds, "--client-key", "--server-key")
    return [*options, "--count", str(count), "--timeout", "5"]


def _octave(creds: tuple[str, ...], count: int) -> list[str]:
    stream, control, secret, public = creds
    call = (
        f"addpath('{REPO / 'clients/matlab'}'); "
        f"rtpose_client('{stream}', '{control}', '{secret}', '{public}', {count}, 5000);"
    )
    return ["octave", "--no-gui", "--no-history", "--quiet", "--eval", call]


def c_client(work: Path) -> str:
    """Build the C client into ``work`` (its Makefile)."""
    build = work / "c-build"
    subprocess.run(["make", "-s", "-C", str(REPO / "clients/c"), f"BUILD={build}"], check=True)
    return str(build / "rtpose_client")


def python_client(stream: str, control: str, secret: str, public: str, count: str) -> int:
    """One Python subscriber: ``count`` poses with these keys, then a ping; one JSON line."""
    from realtime_pose.stream import ControlClient, CurveClientKeys, PoseSubscriber

    keys = CurveClientKeys(Path(secret), Path(public))
    with PoseSubscriber(stream, ("pose",), curve=keys, latency_window=int(count)) as sub:
        received = 0  # the subscription is pose only: every message is one
        while received < int(count) and sub.recv(5000) is not None:
            received += 1
        stats = sub.stats()
    with ControlClient(control, timeout_ms=5000, curve=keys) as client:
        ping_ok = bool(client.request("ping").get("ok"))
    latency = stats.capture_to_receive
    print(
        json.dumps(
            {
                "client": "python",
                "received": stats.poses,
                "gaps": stats.gaps,
                "missing": stats.missing,
                "latency_p50_us": latency.p50_us if stats.poses else None,
                "latency_p99_us": latency.p99_us if stats.poses else None,
                "ping_ok": ping_ok,
            }
        )
    )
    return 0


if __name__ == "__main__":
    if shutil.which("unshare") is None:
        sys.exit("needs unshare (util-linux) and ip (iproute2)")
    sys.exit(main())
