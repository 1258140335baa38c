"""Pose stream latency: publisher here, subscriber in another process on the same host.

    python benchmarks/stream_latency.py [--rates 100 1000] [--seconds 10 5] [--keypoints 20]
                                        [--transport tcp|ipc] [--json FILE]

For each rate, a child process subscribes with ``PoseSubscriber``; this process publishes
poses at that rate and times every ``publish_pose`` call. The child measures, per message,
``time.monotonic_ns()`` at receipt minus ``t_publish_ns`` (transport: serialise-free part,
ZeroMQ + kernel + decode) and minus ``t_capture_ns`` (stamped just before ``publish_pose``,
so it also includes payload building and encoding). Also times ``PoseRecorder.write_pose`` on
the same poses, the other per-frame cost of publishing. Writes p50/p99/max in microseconds
and the machine's description to ``benchmarks/results/stream_latency.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import add_overwrite_argument, summarize_ns, write_result
from realtime_pose.recording import PoseRecorder
from realtime_pose.stream import PosePublisher, PoseSubscriber, messages


def subscriber_main(address: str, count: int) -> int:
    """Child role: receive ``count`` poses, print their latencies as one JSON line."""
    sub = PoseSubscriber(address, ("pose", "meta"), latency_window=count + 10)
    ready = False
    publish_ns: list[int] = []
    capture_ns: list[int] = []
    seqs: list[int] = []
    while len(seqs) < count:
        message = sub.recv(10_000)
        if message is None:
            break
        t_receive = time.monotonic_ns()
        topic, payload = message
        if topic == "meta":
            if not ready:
                print("ready", flush=True)
                ready = True
            continue
        seqs.append(payload["seq"])
        publish_ns.append(t_receive - payload["t_publish_ns"])
        capture_ns.append(t_receive - payload["t_capture_ns"])
    stats = sub.stats()
    sub.close()
    print(
        json.dumps(
            {
                "received": len(seqs),
                "gaps": stats.gaps,
                "missing": stats.missing,
                "publish_to_receive_ns": publish_ns,
                "capture_to_receive_ns": capture_ns,
            }
        ),
        flush=True,
    )
    return 0


def run_rate(rate_hz: float, seconds: float, n_keypoints: int, transport: str) -> dict:
    """Publish at ``rate_hz`` for ``seconds`` to a child subscriber; return the summaries."""
    count = int(rate_hz * seconds)
    tmp = tempfile.mkdtemp(prefix="stream-bench-")
    address = "tcp://127.0.0.1:*" if transport == "tcp" else f"ipc://{tmp}/pose"
    pub = PosePublisher(address)
    child = subprocess.Popen(
        [sys.executable, __file__, "--role", "subscriber", "--address", pub.bound_address,
         "--count", str(count)],
        stdout=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    try:
        import selectors

        selector = selectors.DefaultSelector()
        selector.register(child.stdout, selectors.EVENT_READ)  # type: ignore[arg-type]
        deadline = time.monotonic() + 30
        while True:
            pub.publish_meta(messages.meta_payload([f"k{i}" for i in range(n_keypoints)]))
            if selector.select(0.02):
                assert child.stdout is not None
                if child.stdout.readline().strip() == "ready":
                    break
            if time.monotonic() > deadline:
                raise RuntimeError("subscriber process never connected")
        rng = np.random.default_rng(0)
        poses = rng.random((256, 1, n_keypoints, 3)) * 640
        call_ns = np.empty(count, dtype=np.int64)
        period_ns = int(1e9 / rate_hz)
        next_ns = time.monotonic_ns()
        for seq in range(count):
            kp = poses[seq % 256]
            t0 = time.perf_counter_ns()
            pub.publish_pose(seq, seq, time.monotonic_ns(), {"network": 1_000_000}, kp)
            call_ns[seq] = time.perf_counter_ns() - t0
            next_ns += period_ns
            delay = next_ns - time.monotonic_ns()
            if delay > 0:
                time.sleep(delay / 1e9)
        out, _ = child.communicate(timeout=60)
    finally:
        if child.poll() is None:
            child.kill()
        pub.close()
    result = json.loads(out.strip().splitlines()[-1])
    return {
        "rate_hz": rate_hz,
        "published": count,
        "received": result["received"],
        "gaps": result["gaps"],
        "missing": result["missing"],
        "publish_to_receive": summarize_ns(result["publish_to_receive_ns"]),
        "capture_to_receive": summarize_ns(result["capture_to_receive_ns"]),
        "publish_pose_call": summarize_ns(call_ns),
    }


def publish_cost_back_to_back(n_keypoints: int, n: int = 20_000) -> dict:
    """Time ``publish_pose`` called back to back (warm caches), with one subscriber attached.

    Paced calls (``runs[].publish_pose_call``) also pay for waking up after each idle period,
    which on a busy shared VM dominates.
    """
    pub = PosePublisher("tcp://127.0.0.1:*", sndhwm=n + 10)
    sub = PoseSubscriber(pub.bound_address, ("pose",), rcvhwm=n + 10)
    time.sleep(0.3)
    kp = np.random.default_rng(2).random((1, n_keypoints, 3))
    times = np.empty(n, dtype=np.int64)
    for i in range(n):
        t0 = time.perf_counter_ns()
        pub.publish_pose(i, i, i, {"network": 1}, kp)
        times[i] = time.perf_counter_ns() - t0
    sub.close()
    pub.close()
    return summarize_ns(times)


def recorder_cost(n_keypoints: int, n: int = 20_000) -> dict:
    """Time ``PoseRecorder.write_pose`` (one ``os.write`` per pose) into a temp folder."""
    with tempfile.TemporaryDirectory() as tmp:
        rec = PoseRecorder(Path(tmp) / "bench.poselog", [f"k{i}" for i in range(n_keypoints)])
        kp = np.random.default_rng(1).random((1, n_keypoints, 3))
        times = np.empty(n, dtype=np.int64)
        for i in range(n):
            t0 = time.perf_counter_ns()
            rec.write_pose(i, i, i, kp)
            times[i] = time.perf_counter_ns() - t0
        rec.close()
    return summarize_ns(times)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--role", choices=["publisher", "subscriber"], default="publisher")
    parser.add_argument("--address", help=argparse.SUPPRESS)
    parser.add_argument("--count", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--rates", type=float, nargs="+", default=[100.0, 1000.0])
    parser.add_argument("--seconds", type=float, nargs="+", default=[10.0, 5.0])
    parser.add_argument("--keypoints", type=int, default=20)
    parser.add_argument("--transport", choices=["tcp", "ipc"], default="tcp")
    parser.add_argument("--json", type=Path, help="output file (default: benchmarks/results/)")
    add_overwrite_argument(parser)
    args = parser.parse_args(argv)
    if args.role == "subscriber":
        return subscriber_main(args.address, args.count)
    if len(args.seconds) not in (1, len(args.rates)):
        parser.error("--seconds takes one value, or one per rate")
    seconds = args.seconds * len(args.rates) if len(args.seconds) == 1 else args.seconds
    runs = []
    for rate, secs in zip(args.rates, seconds, strict=True):
        run = run_rate(rate, secs, args.keypoints, args.transport)
        runs.append(run)
        print(
            f"{rate:6.0f} Hz: received {run['received']}/{run['published']} "
            f"(missing {run['missing']}); publish->receive p50 "
            f"{run['publish_to_receive']['p50_us']:.0f} us p99 "
            f"{run['publish_to_receive']['p99_us']:.0f} us max "
            f"{run['publish_to_receive']['max_us']:.0f} us; publish_pose call p50 "
            f"{run['publish_pose_call']['p50_us']:.1f} us p99 "
            f"{run['publish_pose_call']['p99_us']:.1f} us"
        )
    back_to_back = publish_cost_back_to_back(args.keypoints)
    print(
        f"publish_pose back to back: p50 {back_to_back['p50_us']:.1f} us "
        f"p99 {back_to_back['p99_us']:.1f} us"
    )
    recorder = recorder_cost(args.keypoints)
    print(
        f"PoseRecorder.write_pose: p50 {recorder['p50_us']:.1f} us p99 {recorder['p99_us']:.1f} us"
    )
    path = write_result(
        "stream_latency",
        {
            "config": {
                "transport": args.transport,
                "keypoints": args.keypoints,
                "animals": 1,
                "subscriber": "PoseSubscriber in a separate process, same host",
                "load_average_1_5_15min": [round(x, 2) for x in os.getloadavg()],
            },
            "runs": runs,
            "publish_pose_back_to_back": back_to_back,
            "recorder_write_pose": recorder,
        },
        args.json,
        overwrite=args.overwrite,
    )
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
