"""A camera group live: frame sets per second, capture → ``pose3d`` latency, and what the group
costs beyond its views' own inference.

    python benchmarks/camera_group.py [--seconds 20] [--fps 100] [--threads 1]

Runs :class:`~realtime_pose.live.session.LiveSession` in this process on

- ``synthetic_3cam``: three ``synthetic_view`` cameras (320×240, the demo bundle's mouse in 3D,
  paced at ``--fps`` from one clock), triangulated with the virtual rig's calibration and
  forward-predicted in 3D, with a 3D zone rule on a log output;
- ``synthetic_3cam_drops``: the same with ``cam1`` losing every 10th frame (``drop_every``), to
  count incomplete sets by cause;
- ``real_4cam_videos`` (when ``../shared/datasets/anipose-mouse-4cam`` is there): the four
  1280×1024 videos of that rig played as one group (matched by frame index) with its stored
  calibration. The demo network knows nothing of that mouse (its 4 keypoints are not the
  dataset's 15), so this measures throughput and latency at that size, not accuracy; the
  network runs at 320×256 (``input_size``).

Per run: sets handed out, complete/incomplete, missing views by cause, sets per second,
capture → publish (``total``) and each stage p50/p99/max, and ``beyond_views``: per set, the
time the group adds to its views' inference: ``sync`` (the set's last view reached the host →
the loop took the set) + ``triangulate`` + ``predict`` + ``process`` (rules) + ``publish``.
Writes ``benchmarks/results/camera_group.json``.
"""

from __future__ import annotations

import argparse
import sys
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import add_overwrite_argument, summarize_ns, write_result
from realtime_pose.live.multiview import STAGES_3D
from realtime_pose.live.run_config import parse_config
from realtime_pose.live.session import LiveSession
from realtime_pose.sources.synthetic_views import virtual_rig
from realtime_pose.util.paths import DEMO_BUNDLE

DATASET = Path(__file__).resolve().parents[2] / "shared" / "datasets" / "anipose-mouse-4cam"
BEYOND = ("sync", "triangulate", "predict", "process", "publish")
ZONE_RULE = {
    "name": "snout-high",
    "on": "while",
    "condition": {"type": "zone3d", "keypoint": "snout", "box": [0, 0, 10, 300, 300, 200]},
    "actions": [{"output": "led", "action": "pulse", "duration_ms": 1}],
}


def synthetic_config(folder: Path, fps: float, threads: int, drop: bool) -> dict[str, Any]:
    calibration = folder / "virtual3.toml"
    if not calibration.exists():
        virtual_rig(3).save(calibration)
    camera = {"kind": "synthetic_view", "fps": fps, "seed": 1}
    sources = {f"cam{c}": {**camera, "camera": f"cam{c}"} for c in range(3)}
    if drop:
        sources["cam1"]["drop_every"] = 10
    return {
        "sources": sources,
        "calibration": str(calibration),
        "sync": {"mode": "frame_id", "wait_ms": 5},
        "bundle": str(DEMO_BUNDLE),
        "engine": {"kind": "onnxruntime", "threads": threads, "warmup_runs": 3},
        "stream": {"address": "tcp://127.0.0.1:*", "control_address": None},
        "prediction": {"enabled": True},
        "outputs": {"led": {"kind": "log"}},
        "rules": [ZONE_RULE],
    }


def real_config(threads: int) -> dict[str, Any] | None:
    if not (DATASET / "calibration.fd57457.toml").is_file():
        return None
    views = ("back", "mid", "side", "top")
    return {
        "sources": {
            v: {"kind": "video", "path": str(DATASET / v / f"minimal_{v}.mp4"), "realtime": False}
            for v in views
        },
        "calibration": str(DATASET / "calibration.fd57457.toml"),
        "sync": {"mode": "frame_id", "wait_ms": 50},
        "bundle": str(DEMO_BUNDLE),
        "input_size": [320, 256],
        "engine": {"kind": "onnxruntime", "threads": threads, "warmup_runs": 3},
        "stream": {"address": "tcp://127.0.0.1:*", "control_address": None},
        "prediction": {"enabled": True},
    }


def measure(config: dict[str, Any], seconds: float) -> dict[str, Any]:
    """Run the session for ``seconds`` (or to the sources' end); its counters and latencies."""
    session = LiveSession(parse_config(config, "camera_group benchmark", Path.cwd()))
    try:
        thread = threading.Thread(target=session.run, kwargs={"duration_s": seconds})
        t0 = time.monotonic()
        thread.start()
        thread.join(seconds + 60)
        elapsed = time.monotonic() - t0
        pipeline, group = session.pipeline, session.grabber
        stats = pipeline.stats
        stages = {name: stats.samples(name) for name in STAGES_3D}
        beyond = np.sum([stages[name] for name in BEYOND], axis=0)
        return {
            "cameras": session.group.names,
            "frame_sizes": [list(s) for s in session.group.sizes],
            "seconds": round(elapsed, 2),
            "sets": group.counts,
            "missing": group.missing,
            "stale_frames": group.stale_frames,
            "sets_per_s": round(pipeline.frames / elapsed, 1),
            "out_of_order_sets": pipeline.out_of_order_sets,
            "samples": int(len(beyond)),
            "capture_to_pose3d_ms": summarize_ns(stages["total"], "ms"),
            "beyond_views_us": summarize_ns(beyond, "us"),
            "stages_us": {name: summarize_ns(v, "us") for name, v in stages.items()},
        }
    finally:
        session.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--fps", type=float, default=100.0)
    parser.add_argument("--threads", type=int, default=1, help="ONNX Runtime threads per call")
    add_overwrite_argument(parser)
    args = parser.parse_args()
    folder = Path(__file__).resolve().parent / "results"
    runs: dict[str, Any] = {}
    for name, drop in (("synthetic_3cam", False), ("synthetic_3cam_drops", True)):
        runs[name] = measure(synthetic_config(folder, args.fps, args.threads, drop), args.seconds)
        print(name, runs[name]["sets_per_s"], "sets/s", runs[name]["beyond_views_us"], flush=True)
    real = real_config(args.threads)
    if real is not None:
        runs["real_4cam_videos"] = measure(real, args.seconds)
        print("real_4cam_videos", runs["real_4cam_videos"]["sets_per_s"], "sets/s", flush=True)
    (folder / "virtual3.toml").unlink(missing_ok=True)
    path = write_result(
        "camera_group",
        {"fps": args.fps, "threads": args.threads, "runs": runs},
        overwrite=args.overwrite,
    )
    print(path)


if __name__ == "__main__":
    main()
