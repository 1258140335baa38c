"""What swapping a model into a running session costs the loop.

    python benchmarks/model_swap.py [--swaps 5] [--window-s 2] [--fps 100] [--threads 1]

One live session in this process: the demo bundle on the synthetic camera (320x240, ``--fps``,
paced like a camera), a rule that fires every 50 ms on a log-only output, the stream and the
control socket on loopback, a subscriber reading every ``pose`` and ``event``. Windows of
``--window-s`` alternate: one without a swap, then one that starts with a ``model_swap``
request (the demo bundle and a copy whose weights differ slightly, so its ``sha256`` differs:
A → B, B → A, ...), ``--swaps`` times each. Per window, from what the subscriber received:

- ``frames_dropped``: gaps in ``frame_index`` among the poses captured in the window;
- ``max_gap_ms``: the longest time between two published poses;
- ``beyond_engine_us``: per pose, capture → ready to publish minus the wait for the frame and
  the network (preprocess, peaks, prediction, rules), p50/p99/max;
- ``seq_continuous``: ``seq`` without a gap;
- ``rule_firings``: the rule's events.

A swap window also has the request → reply, request → swap (the ``model`` event's time on the
loop) and the swap's own ``load_ms`` (bundle check, engine build and warm-up, swap). Writes
``benchmarks/results/model_swap.json``.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import add_overwrite_argument, summarize_ns, write_result
from realtime_pose.live.run_config import parse_config
from realtime_pose.live.session import LiveSession
from realtime_pose.stream import ControlClient
from realtime_pose.util.paths import DEMO_BUNDLE
from tests.view.sessions import StreamLog

RULE = {
    "name": "tick",
    "on": "while",
    "refractory_s": 0.05,
    "condition": {"type": "likelihood", "keypoint": "snout", "at_least": 0.0},
    "actions": [{"output": "led", "action": "pulse", "duration_ms": 1}],
}


def perturbed_copy(bundle: Path, folder: Path) -> Path:
    """A copy of ``bundle`` whose largest float weight tensor is scaled by 1.001: the same
    network to within noise, another ``model.onnx`` (another ``sha256``)."""
    import onnx
    from onnx import numpy_helper

    shutil.copytree(bundle, folder)
    model = onnx.load(str(folder / "model.onnx"))
    floats = [t for t in model.graph.initializer if t.data_type == onnx.TensorProto.FLOAT]
    largest = max(floats, key=lambda t: int(np.prod(t.dims)))
    scaled = numpy_helper.to_array(largest) * np.float32(1.001)
    largest.CopyFrom(numpy_helper.from_array(scaled.astype(np.float32), largest.name))
    onnx.save(model, str(folder / "model.onnx"))
    return folder


def model_events(log: StreamLog) -> list[dict]:
    """The ``model`` events the subscriber has seen, in order."""
    return [e for e in log.of(b"event") if e["kind"] == "model"]


def window_figures(poses: list[dict], events: list[dict], t0_ns: int, t1_ns: int) -> dict[str, Any]:
    """What the subscriber saw of the poses captured in ``[t0_ns, t1_ns)``."""
    inside = [p for p in poses if t0_ns <= p["t_capture_ns"] < t1_ns]
    frames = np.array([p["frame_index"] for p in inside], np.int64)
    seqs = np.array([p["seq"] for p in inside], np.int64)
    published = np.array([p["t_publish_ns"] for p in inside], np.int64)
    beyond = [
        p["latency_ns"]["total"] - p["latency_ns"]["grab"] - p["latency_ns"]["inference"]
        for p in inside
    ]
    total = [p["t_publish_ns"] - p["t_capture_ns"] for p in inside]
    ticks = [e for e in events if e["kind"] == "rule" and t0_ns <= e["t_ns"] < t1_ns]
    return {
        "poses": len(inside),
        "frames_dropped": int(np.sum(np.diff(frames) - 1)) if len(frames) > 1 else 0,
        "max_gap_ms": round(float(np.diff(published).max()) / 1e6, 3) if len(inside) > 1 else None,
        "beyond_engine_us": summarize_ns(beyond),
        "capture_to_publish_us": summarize_ns(total),
        "seq_continuous": bool(len(seqs) < 2 or np.all(np.diff(seqs) == 1)),
        "rule_firings": len(ticks),
    }


def run(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    bundles = [DEMO_BUNDLE, perturbed_copy(DEMO_BUNDLE, work / "demo_bundle_b")]
    config = {
        "source": {"kind": "synthetic", "width": 320, "height": 240, "fps": args.fps, "seed": 3},
        "bundle": str(bundles[0]),
        "engine": {"threads": args.threads, "spinning": False},
        "stream": {"address": "tcp://127.0.0.1:*", "control_address": "tcp://127.0.0.1:*"},
        "recording": {"enabled": False, "directory": str(work / "rec")},
        "outputs": {"led": {"kind": "log", "channel": 0, "max_on_ms": 10}},
        "rules": [RULE],
        "status_interval_s": 0.5,
    }
    session = LiveSession(parse_config(config, "model_swap benchmark", work))
    loop = threading.Thread(target=session.run, name="loop", daemon=True)
    collector = StreamLog(session.publisher.bound_address, (b"pose", b"event"))
    loop.start()
    windows: list[dict[str, Any]] = []
    window_ns = int(args.window_s * 1e9)
    try:
        client = ControlClient(session.control.bound_address, timeout_ms=10_000)
        time.sleep(args.settle_s)
        for i in range(args.swaps):
            t0 = time.monotonic_ns()
            time.sleep(args.window_s)
            windows.append({"kind": "no_swap", "index": i, "t0_ns": t0})
            target = bundles[(i + 1) % 2]
            seen = len(model_events(collector))
            t0 = time.monotonic_ns()
            reply = client.request("model_swap", bundle=str(target))
            t_reply = time.monotonic_ns()
            row: dict[str, Any] = {"kind": "swap", "index": i, "t0_ns": t0}
            row["reply_ms"] = round((t_reply - t0) / 1e6, 3)
            if not reply["ok"]:
                row["error"] = reply["error"]
            else:
                deadline = time.monotonic() + max(args.window_s, 30.0)
                while len(model_events(collector)) == seen and time.monotonic() < deadline:
                    time.sleep(0.005)
                events = model_events(collector)[seen:]
                if events:
                    event = events[0]
                    row["state"] = event["state"]
                    row["swap_ms"] = round((event["t_ns"] - t0) / 1e6, 3)
                    row["load_ms"] = event.get("load_ms")
                    row["since_seq"] = event.get("since_seq")
                    row["error"] = event.get("error")
            time.sleep(max(0.0, (t0 + window_ns - time.monotonic_ns()) / 1e9))
            windows.append(row)
        client.close()
        time.sleep(0.2)
    finally:
        session.stop_event.set()
        loop.join(10)
        collector.close()
        session.close()
    poses = collector.of(b"pose")
    for row in windows:
        t0 = row.pop("t0_ns")
        row.update(window_figures(poses, collector.of(b"event"), t0, t0 + window_ns))
    seqs = np.array([p["seq"] for p in poses], np.int64)
    summary = {}
    for kind in ("no_swap", "swap"):
        rows = [r for r in windows if r["kind"] == kind]
        summary[kind] = {
            "windows": len(rows),
            "frames_dropped_mean": round(float(np.mean([r["frames_dropped"] for r in rows])), 2),
            "frames_dropped_max": max(r["frames_dropped"] for r in rows),
            "max_gap_ms": max(r["max_gap_ms"] or 0.0 for r in rows),
            "beyond_engine_p99_us_max": max(r["beyond_engine_us"]["p99_us"] for r in rows),
            "rule_firings_mean": round(float(np.mean([r["rule_firings"] for r in rows])), 1),
            "seq_continuous": all(r["seq_continuous"] for r in rows),
        }
    swaps = [r for r in windows if r["kind"] == "swap" and r.get("state") == "swapped"]
    if swaps:
        summary["swap"]["swap_ms"] = summarize_ns([r["swap_ms"] * 1e6 for r in swaps], "ms")
        summary["swap"]["load_ms"] = summarize_ns([r["load_ms"] * 1e6 for r in swaps], "ms")
    summary["swapped"] = len(swaps)
    summary["seq_continuous_whole_run"] = bool(np.all(np.diff(seqs) == 1))
    return {
        "config": {
            "bundles": [str(b) for b in bundles],
            "source": config["source"],
            "engine": config["engine"],
            "swaps": args.swaps,
            "window_s": args.window_s,
        },
        "summary": summary,
        "windows": windows,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--swaps", type=int, default=5, help="swap windows (and as many without)")
    parser.add_argument("--window-s", type=float, default=2.0, help="length of each window")
    parser.add_argument("--fps", type=float, default=100.0, help="the synthetic camera's rate")
    parser.add_argument("--threads", type=int, default=1, help="engine threads")
    parser.add_argument("--settle-s", type=float, default=1.0, help="run before the first window")
    parser.add_argument("--json", type=Path, default=None)
    add_overwrite_argument(parser)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="model_swap_") as tmp:
        result = run(args, Path(tmp))
    for kind in ("no_swap", "swap"):
        s = result["summary"][kind]
        print(
            f"{kind:8s}: {s['windows']} windows, dropped mean {s['frames_dropped_mean']} max "
            f"{s['frames_dropped_max']}, max gap {s['max_gap_ms']} ms, beyond-engine p99 max "
            f"{s['beyond_engine_p99_us_max']} us, rule firings {s['rule_firings_mean']}/window, "
            f"seq continuous {s['seq_continuous']}"
        )
    swap = result["summary"]["swap"]
    if "swap_ms" in swap:
        print(f"request → swap: {swap['swap_ms']}; load: {swap['load_ms']}")
    path = write_result("model_swap", result, args.json, overwrite=args.overwrite)
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
