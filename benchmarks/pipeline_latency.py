"""Live-loop latency and throughput at 320x240, per stage and end to end.

    python benchmarks/pipeline_latency.py [--bundle DIR ...] [--seconds S] [--json FILE]

For each bundle (default: the embedded demo bundle):

1. **Per-frame path** (frames decoded beforehand, as ``realtime-pose benchmark``): preprocess,
   engine, peaks, coordinates and prediction per frame; ``overhead = frame time - engine time``;
   free-running FPS of that path.
2. **Live loop, paced camera**: the synthetic camera at 100 FPS through the grabber, the whole
   pipeline, the ZeroMQ stream and a subscriber in *another process*; end-to-end latency is
   ``t_capture`` → the subscriber's receive time (same host, same monotonic clock), with gaps.
3. **Live loop, free-running**: the synthetic camera unpaced, read in lockstep with the loop
   (the grabber renders the next frame while the loop works on the current one);
   loop FPS and drops.

Issue targets (MobileNetV2-0.35, 320x240, this CPU): overhead p50 <= 0.15 ms; free-running
throughput >= 500 FPS.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import add_overwrite_argument, summarize_ns, write_result
from realtime_pose.bundle import load_bundle
from realtime_pose.live.run_config import parse_config
from realtime_pose.live.session import LiveSession
from realtime_pose.offline.latency_benchmark import run_benchmark
from realtime_pose.sources.synthetic_scene import SyntheticScene
from realtime_pose.util.paths import DEMO_BUNDLE

SUBSCRIBER = textwrap.dedent(
    """
    import json, sys, time, msgpack, zmq
    ctx = zmq.Context(); sock = ctx.socket(zmq.SUB)
    sock.setsockopt(zmq.SUBSCRIBE, b"pose"); sock.rcvhwm = 100000
    sock.connect(sys.argv[1]); seconds = float(sys.argv[2])
    print("ready", flush=True)
    rows = []; poller = zmq.Poller(); poller.register(sock, zmq.POLLIN)
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        if poller.poll(100):
            topic, payload = sock.recv_multipart()
            t = time.monotonic_ns()
            m = msgpack.unpackb(payload)
            rows.append([m["seq"], m["t_capture_ns"], m["t_publish_ns"], t])
    print(json.dumps(rows))
    """
)


def per_frame_path(bundle, frames: list[np.ndarray], n: int, threads: int) -> dict:
    config = dict(threads=threads, spinning=True)
    return run_benchmark(bundle, frames, None, n, config).summary()


def live_loop(bundle_dir: Path, seconds: float, fps: float, realtime: bool, threads: int) -> dict:
    config = parse_config(
        {
            "source": {
                "kind": "synthetic",
                "width": 320,
                "height": 240,
                "fps": fps,
                "realtime": realtime,
            },
            "bundle": str(bundle_dir),
            "engine": {"threads": threads, "spinning": True},
            "stream": {"address": "tcp://127.0.0.1:*", "control_address": None},
            "status_interval_s": 1.0,
        },
        "benchmark",
    )
    session = LiveSession(config)
    sub = subprocess.Popen(
        [sys.executable, "-c", SUBSCRIBER, session.publisher.bound_address, str(seconds + 3)],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert sub.stdout.readline().strip() == "ready"
    time.sleep(1.0)  # subscription reaches the publisher
    t0 = time.monotonic()
    session.run(seconds)
    wall = time.monotonic() - t0
    stages = session.pipeline.stats.summary_ms()
    frames = session.pipeline.frames
    grab = session.grabber.stats()
    session.close()
    out, _ = sub.communicate(timeout=seconds + 30)
    rows = np.array(json.loads(out.strip().splitlines()[-1]), dtype=np.int64)
    result = {
        "fps": round(frames / wall, 1),
        "frames": frames,
        "dropped_by_grabber": int(grab.get("dropped", 0)),
        "stages_ms": stages,
    }
    if len(rows):
        seq = rows[:, 0]
        result["subscriber"] = {
            "received": int(len(rows)),
            "gaps": int(np.sum(np.diff(seq) != 1)),
            "missing": int(seq[-1] - seq[0] + 1 - len(seq)),
            "capture_to_receive": summarize_ns(rows[:, 3] - rows[:, 1], "ms"),
            "publish_to_receive": summarize_ns(rows[:, 3] - rows[:, 2], "ms"),
        }
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--bundle", nargs="+", type=Path, default=[DEMO_BUNDLE])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--frames", type=int, default=3000)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--json", type=Path, default=None)
    add_overwrite_argument(parser)
    args = parser.parse_args(argv)
    scene = SyntheticScene(320, 240, seed=1)
    frames = [scene.frame(i)[0] for i in range(200)]
    results = []
    for bundle_dir in args.bundle:
        bundle = load_bundle(bundle_dir)
        row: dict = {
            "bundle": str(bundle_dir),
            "model": bundle.meta.name,
            "backbone": bundle.meta.provenance.get("net") or bundle.meta.provenance.get("backbone"),
        }
        row["per_frame_path"] = per_frame_path(bundle, frames, args.frames, args.threads)
        pf = row["per_frame_path"]
        print(
            f"{bundle.meta.name}: per-frame total p50 {pf['p50_ms']:.3f} ms, engine p50 "
            f"{pf['stages']['inference']['p50_ms']:.3f} ms, overhead p50 "
            f"{pf['stages']['overhead']['p50_ms']:.3f} ms, {pf['fps']:.0f} FPS"
        )
        row["live_paced_100fps"] = live_loop(bundle_dir, args.seconds, 100.0, True, args.threads)
        lp = row["live_paced_100fps"]
        sub = lp.get("subscriber", {})
        e2e = sub.get("capture_to_receive", {})
        print(
            f"  live @100 FPS: {lp['fps']} FPS, capture->subscriber p50 "
            f"{e2e.get('p50_ms')} ms p99 {e2e.get('p99_ms')} ms, gaps {sub.get('gaps')}"
        )
        row["live_free_running"] = live_loop(bundle_dir, args.seconds, 1000.0, False, args.threads)
        lf = row["live_free_running"]
        print(f"  live free-running: {lf['fps']} FPS, dropped {lf['dropped_by_grabber']}")
        results.append(row)
    path = write_result(
        "pipeline_latency",
        {
            "size": [320, 240],
            "threads": args.threads,
            "seconds": args.seconds,
            "targets": {"overhead_p50_ms": 0.15, "free_running_fps": 500},
            "results": results,
        },
        args.json,
        overwrite=args.overwrite,
    )
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
