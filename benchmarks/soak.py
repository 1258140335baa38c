"""Soak: the whole loop for an hour, and whether anything creeps.

    python benchmarks/soak.py [--minutes 60] [--window-minutes 5] [--json FILE] [--overwrite]

The full rig runs at 100 FPS: the synthetic camera, the embedded demo bundle, forward
prediction, the ZeroMQ stream with a subscriber in another process, the crash-safe recording,
and a rule pulsing the laser on the board emulator (its own process) every 50 ms. Per window:
capture → publish p50/p99/max, frames, drops, firings, the process's RSS and open file
descriptors. Pass criteria (the issue's): the last window's p99 within 10 % of the first's, RSS
growth <= 20 MB per hour, no growth in file descriptors.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import add_overwrite_argument, summarize_ns, write_result
from realtime_pose.hardware.testing.emulator import start_emulator_process
from realtime_pose.live.run_config import parse_config
from realtime_pose.live.session import LiveSession
from realtime_pose.util.paths import DEMO_BUNDLE

SUBSCRIBER = """
import sys, time, zmq
ctx = zmq.Context(); s = ctx.socket(zmq.SUB); s.setsockopt(zmq.SUBSCRIBE, b"")
s.connect(sys.argv[1]); print("ready", flush=True); n = 0
while True:
    s.recv_multipart(); n += 1
"""


def rss_mb() -> float:
    """Resident set size of this process, MB (Linux /proc)."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=60.0)
    parser.add_argument("--window-minutes", type=float, default=5.0)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--json", type=Path, default=None)
    add_overwrite_argument(parser)
    args = parser.parse_args(argv)
    tmp = Path(tempfile.mkdtemp(prefix="rp-soak-"))
    board = start_emulator_process(tmp / "rig-laser", None, max_on_ms=100)
    config = parse_config(
        {
            "source": {"kind": "synthetic", "width": 320, "height": 240, "fps": 100},
            "bundle": str(DEMO_BUNDLE),
            "engine": {"threads": args.threads, "spinning": False},
            "stream": {"address": "tcp://127.0.0.1:*", "control_address": "tcp://127.0.0.1:*"},
            "recording": {"enabled": True, "directory": str(tmp / "rec")},
            "outputs": {
                "laser": {"kind": "serial", "port": str(tmp / "rig-laser"), "max_on_ms": 50}
            },
            "rules": [
                {
                    "name": "pulse",
                    "on": "while",
                    "condition": {"type": "likelihood", "keypoint": "snout", "at_least": 0.0},
                    "refractory_s": 0.05,
                    "actions": [{"output": "laser", "action": "pulse", "duration_ms": 2}],
                }
            ],
        },
        "soak",
    )
    session = LiveSession(config)
    subscriber = subprocess.Popen(
        [sys.executable, "-c", SUBSCRIBER, session.publisher.bound_address],
        stdout=subprocess.PIPE,
        text=True,
    )
    subscriber.stdout.readline()
    runner = threading.Thread(target=session.run, name="soak-session", daemon=True)
    runner.start()
    time.sleep(5.0)  # warm: the first window measures steady state
    stats = session.pipeline.stats
    window_s = args.window_minutes * 60
    end = time.monotonic() + args.minutes * 60
    windows = []
    while time.monotonic() < end:
        mark, t0 = stats.count, time.monotonic()
        frames0 = session.pipeline.frames
        drops0 = session.grabber.stats()["dropped"]
        fired0 = session.dispatcher.health()["submitted"]
        totals: list[np.ndarray] = []
        window_end = min(t0 + window_s, end)
        while time.monotonic() < window_end:
            time.sleep(5.0)  # well inside the stage buffer (2048 frames, 20 s at 100 FPS)
            totals.append(stats.samples_since(mark)["total"].copy())
            mark = stats.count
        seconds = time.monotonic() - t0
        total_ns = np.concatenate(totals) if totals else np.zeros(0, np.int64)
        row = {
            "window": len(windows),
            "minutes": round((time.monotonic() - (end - args.minutes * 60)) / 60, 2),
            "fps": round((session.pipeline.frames - frames0) / seconds, 2),
            "capture_to_publish": summarize_ns(total_ns, "ms"),
            "dropped": session.grabber.stats()["dropped"] - drops0,
            "firings": session.dispatcher.health()["submitted"] - fired0,
            "rss_mb": round(rss_mb(), 1),
            "open_fds": open_fds(),
            "threads": threading.active_count(),
        }
        windows.append(row)
        lat = row["capture_to_publish"]
        print(
            f"window {row['window']}: {row['fps']} FPS, p50 {lat['p50_ms']:.2f} p99 "
            f"{lat['p99_ms']:.2f} max {lat['max_ms']:.2f} ms, drops {row['dropped']}, "
            f"RSS {row['rss_mb']} MB, fds {row['open_fds']}",
            flush=True,
        )
    session.stop_event.set()
    runner.join(30)
    session.close()
    subscriber.kill()
    subscriber.wait()
    board.stop()
    shutil.rmtree(tmp, ignore_errors=True)
    first, last = windows[0], windows[-1]
    hours = max((len(windows) - 1) * args.window_minutes / 60, 1e-9)
    p99_change = last["capture_to_publish"]["p99_ms"] / first["capture_to_publish"]["p99_ms"] - 1
    rss_per_hour = (last["rss_mb"] - first["rss_mb"]) / hours
    verdict = {
        "p99_last_vs_first": round(p99_change, 4),
        "p99_within_10_percent": abs(p99_change) <= 0.10,  # the words, read both ways
        "p99_no_creep": p99_change <= 0.10,  # what they are for: not more than 10 % worse
        "rss_growth_mb_per_hour": round(rss_per_hour, 2),
        "rss_within_20_mb_per_hour": rss_per_hour <= 20,
        "fd_growth": last["open_fds"] - first["open_fds"],
        "no_fd_growth": last["open_fds"] <= first["open_fds"],
    }
    path = write_result(
        "soak",
        {"minutes": args.minutes, "windows": windows, "verdict": verdict},
        args.json,
        overwrite=args.overwrite,
    )
    print(verdict, f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
