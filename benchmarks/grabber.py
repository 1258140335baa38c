"""Grabber handoff latency: from the source's ``read()`` returning to the loop's ``get()``.

    python benchmarks/grabber.py [--seconds S] [--json FILE]

A small source paces frames at a fixed rate and stamps ``t_capture_ns`` as the last thing before
``read()`` returns, so ``monotonic_ns() - t_capture_ns`` after ``get()`` is the grabber's own cost:
lock, mailbox, condition notify and the consumer thread's wake-up. Scenarios:

- ``waiting``: the loop is blocked in ``get()`` when the frame arrives (the usual closed loop).
- ``busy``: the loop works for longer than a frame period, so frames are overwritten; the figure
  is the age of the frame the loop gets (bounded by about one period: newest wins), plus drops.
"""

from __future__ import annotations

import argparse
import os
import sys
import threading
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import add_overwrite_argument, summarize_ns, write_result
from realtime_pose.live.grabber import Grabber
from realtime_pose.sources.base import Frame, FrameSource


class PacedSource(FrameSource):
    """Frames of one preallocated image at ``fps``, stamped when ``read()`` returns."""

    def __init__(self, fps: float, width: int = 640, height: int = 480) -> None:
        self._fps = fps
        self._image = np.zeros((height, width, 3), np.uint8)
        self._index = 0
        self._next_due_ns = 0

    @property
    def fps(self) -> float:
        return self._fps

    @property
    def size(self) -> tuple[int, int]:
        return self._image.shape[1], self._image.shape[0]

    @property
    def source_id(self) -> str:
        return f"paced{self._fps:g}"

    def open(self) -> None:
        self._next_due_ns = time.monotonic_ns()

    def close(self) -> None:
        pass

    def read(self) -> Frame | None:
        wait_ns = self._next_due_ns - time.monotonic_ns()
        if wait_ns > 0:
            time.sleep(wait_ns * 1e-9)
        self._next_due_ns += round(1e9 / self._fps)
        frame = Frame(self._image, self._index, 0, self.source_id)
        self._index += 1
        frame.t_capture_ns = time.monotonic_ns()
        return frame


def run(fps: float, seconds: float, work_s: float) -> dict:
    source = PacedSource(fps)
    latencies = []
    with Grabber(source) as grabber:
        grabber.get(timeout_s=2.0)  # warm up
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            frame = grabber.get(timeout_s=1.0)
            if frame is None:
                continue
            latencies.append(time.monotonic_ns() - frame.t_capture_ns)
            if work_s:
                time.sleep(work_s)
        stats = grabber.stats()
    return {
        "source_fps": fps,
        "loop_work_ms": work_s * 1e3,
        "latency": summarize_ns(latencies, "us"),
        "read": stats["read"],
        "delivered": stats["delivered"],
        "dropped": stats["dropped"],
        "grabber_threads_left": sum(t.name.startswith("grabber") for t in threading.enumerate()),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=10.0, help="per scenario")
    parser.add_argument("--json", type=Path, default=None)
    add_overwrite_argument(parser)
    args = parser.parse_args(argv)
    scenarios = {
        "waiting_100fps": run(100.0, args.seconds, 0.0),
        "waiting_500fps": run(500.0, args.seconds, 0.0),
        "busy_200fps_loop_12ms": run(200.0, args.seconds, 0.012),
    }
    for name, result in scenarios.items():
        lat = result["latency"]
        print(
            f"{name:24s} p50 {lat['p50_us']:8.1f} us  p99 {lat['p99_us']:8.1f} us  "
            f"max {lat['max_us']:8.1f} us  read {result['read']} delivered "
            f"{result['delivered']} dropped {result['dropped']}"
        )
    path = write_result(
        "grabber",
        {
            "what": "read() returned -> get() returned (waiting); frame age at get() (busy)",
            "image": "640x480x3 uint8 (preallocated; the handoff never copies it)",
            "load_average_1_5_15min": [round(x, 2) for x in os.getloadavg()],
            "scenarios": scenarios,
        },
        args.json,
        overwrite=args.overwrite,
    )
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
