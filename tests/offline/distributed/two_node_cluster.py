"""Run `realtime-pose analyze` on a real two-node Ray cluster and SIGKILL a worker mid-chunk.

Started by test_two_node_cluster.py inside a private network namespace (``unshare -n``), where
loopback is the only interface: Ray's head (``ray start --head``) and a second node (``ray start
--address=…`` with its own ``second_node`` resource) both take 127.0.0.1 as their address and
listen there alone. Writes what happened as JSON for the test to check.

Usage: python two_node_cluster.py SPEC.json RESULT.json
(SPEC: {"videos": [...], "bundle": ..., "output_dir": ..., "ray_bin": ...})
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[3]
WORKER_TITLE = "ray::ChunkWorker.run_chunk"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def our_processes(marker: str) -> list[int]:
    """PIDs whose command line mentions ``marker`` (this run's Ray temp folder)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and int(entry.name) != os.getpid():
            try:
                if marker in (entry / "cmdline").read_bytes().decode(errors="replace"):
                    pids.append(int(entry.name))
            except OSError:
                continue
    return pids


def titled(title: str) -> list[int]:
    """PIDs of processes whose (Ray-set) title starts with ``title``."""
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if (entry / "cmdline").read_bytes().startswith(title.encode()):
                    pids.append(int(entry.name))
            except OSError:
                continue
    return pids


def wait_for_nodes(address: str, count: int, timeout_s: float = 90) -> dict:
    import ray

    ray.init(address=address, logging_level="WARNING", log_to_driver=False)
    try:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            alive = [n for n in ray.nodes() if n["Alive"]]
            if len(alive) >= count:
                return {
                    "nodes": [n["NodeManagerAddress"] for n in alive],
                    "resources": ray.cluster_resources(),
                }
            time.sleep(0.5)
        raise RuntimeError(f"only {len(alive)} of {count} Ray nodes came up")
    finally:
        ray.shutdown()


def analyze(spec: dict, address: str, videos=None, output_dir=None) -> subprocess.Popen:
    cmd = [
        sys.executable, "-m", "realtime_pose", "analyze", *(videos or spec["videos"]),
        "--bundle", spec["bundle"], "--output-dir", output_dir or spec["output_dir"],
        "--format", "dlc,nwb", "--cluster", address, "--chunk-frames", "30",
    ]  # fmt: skip
    env = dict(os.environ, PYTHONPATH=str(REPO))
    return subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def main(spec_path: str, result_path: str) -> None:
    spec = json.loads(Path(spec_path).read_text())
    subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
    ray_bin, tmp = spec["ray_bin"], os.environ["RAY_TMPDIR"]
    port = free_port()
    address = f"127.0.0.1:{port}"
    common = ["--block", "--disable-usage-stats", "--num-cpus=1", "--object-store-memory=80000000"]
    logs = Path(tmp)
    started: list[subprocess.Popen] = []
    result: dict = {"address": address}
    try:
        head = ["--head", "--node-ip-address=127.0.0.1", f"--port={port}"]
        node = [f"--address={address}", '--resources={"second_node": 1}']
        for name, args in (("head", [*head, "--include-dashboard=false"]), ("node", node)):
            log_file = (logs / f"{name}.log").open("w")
            started.append(
                subprocess.Popen(
                    [ray_bin, "start", *args, *common],
                    stdout=log_file,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
            )
        result["cluster"] = wait_for_nodes(address, 2)
        result["listening"] = subprocess.run(
            ["ss", "-Hltn"], capture_output=True, text=True
        ).stdout.split("\n")

        first = analyze(spec, address)
        killed = None
        while first.poll() is None:
            busy = titled(WORKER_TITLE)
            if busy and killed is None:
                time.sleep(0.05)  # well inside the chunk
                if busy[0] in titled(WORKER_TITLE):
                    os.kill(busy[0], signal.SIGKILL)
                    killed = busy[0]
            time.sleep(0.02)
        out, err = first.communicate()
        result["first"] = {"rc": first.returncode, "stdout": out, "stderr": err, "killed": killed}
        second = analyze(spec, address)
        out, err = second.communicate(timeout=300)
        result["second"] = {"rc": second.returncode, "stdout": out, "stderr": err}
        client = analyze(spec, "ray://127.0.0.1:10001", spec["videos"][-1:], spec["client_dir"])
        out, err = client.communicate(timeout=300)
        result["client"] = {"rc": client.returncode, "stdout": out, "stderr": err}
        if client.returncode != 0:  # Ray Client's own server logs say why it could not start
            result["client"]["logs"] = {
                path.name: path.read_text(errors="replace")[-3000:]
                for path in sorted(logs.rglob("ray_client_server*"))
            }
    finally:
        for process in started:
            process.send_signal(signal.SIGTERM)
        for process in started:
            try:
                process.wait(timeout=40)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
        for pid in our_processes(tmp):  # anything of this cluster still alive
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        Path(result_path).write_text(json.dumps(result))


if __name__ == "__main__":
    main(*sys.argv[1:3])
