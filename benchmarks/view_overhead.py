"""What the live view costs the loop, and what the browser gets: 0 vs 2 browsers, same run.

    python benchmarks/view_overhead.py [--seconds-per-phase S] [--pairs N] [--json FILE]

One live session (the demo bundle on the synthetic camera at 640x480, 100 FPS, network input
320x240, previews at 30 FPS, the view in its child process) runs throughout, its loop pinned to
``--loop-cpus`` (default CPU 1); the browsers, the view and the encoder inherit the other CPUs,
as on a rig (``loop_cpus`` in the run config). Without pinning, on a 2-core VM two software-
rendering Chromiums take the loop's CPU and the figures measure that contention, not the view.
Phases alternate: no browser, then two headless Chromium pages on the view, N times. For each
phase:

- **loop overhead beyond the engine**, per frame: every stage of the loop except the wait for
  the frame (``grab``) and the network (``inference``): preprocess, peaks, predict, process,
  publish and record (the frame taps, the preview tap's copy among them);
- capture -> publish latency and the loop's frame rate.

For the browser phases, from the pages' "drawn" reports: frames drawn per second per page, and
capture -> drawn-in-the-browser latency p50/p99 (the view records the time each report reaches
it, so the report's way back over loopback, ~0.1 ms, is included).

The p50/p99 differences between the two kinds of phase are compared with the spread between
phases of the same kind (run-to-run spread): the VM is shared and noisy.
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import (
    add_overwrite_argument,
    compare_phases,
    loop_figures,
    summarize_ns,
    write_result,
)
from realtime_pose.live.run_config import parse_config
from realtime_pose.live.session import LiveSession
from realtime_pose.util.paths import DEMO_BUNDLE
from realtime_pose.view.browser import Chromium


def session_config(fps: float, loop_cpus: list[int] | None) -> dict:
    return {
        "loop_cpus": loop_cpus,
        "source": {"kind": "synthetic", "width": 640, "height": 480, "fps": fps, "seed": 1},
        "bundle": str(DEMO_BUNDLE),
        "input_size": [320, 240],
        "engine": {"threads": 1, "spinning": False},
        "stream": {"address": "tcp://127.0.0.1:*", "control_address": "tcp://127.0.0.1:*"},
        "view": {"enabled": True, "address": "http://127.0.0.1:0", "frame_fps": 30},
    }


def view_state(url: str) -> dict:
    with urllib.request.urlopen(url + "api/state", timeout=5) as response:
        return json.loads(response.read())


def phase(session: LiveSession, seconds: float) -> dict:
    """Loop figures over the next ``seconds``."""
    pipe = session.pipeline
    mark, frames0, t0 = pipe.stats.count, pipe.frames, time.monotonic()
    encoded0 = session.previewer.encoded
    time.sleep(seconds)
    samples = pipe.stats.samples_since(mark)
    wall = time.monotonic() - t0
    figures = loop_figures(samples)
    return {
        "frames": figures.pop("frames"),
        "fps": round((pipe.frames - frames0) / wall, 2),
        "previews_per_s": round((session.previewer.encoded - encoded0) / wall, 2),
        **figures,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds-per-phase", type=float, default=12.0)
    parser.add_argument("--pairs", type=int, default=3)
    parser.add_argument("--fps", type=float, default=100.0)
    parser.add_argument(
        "--loop-cpus",
        type=int,
        nargs="*",
        default=[1],
        help="pin the loop here and everything else (view, encoder, browsers) on the other "
        "CPUs, as a rig would (none: no pinning)",
    )
    parser.add_argument("--json", type=Path, default=None)
    add_overwrite_argument(parser)
    args = parser.parse_args(argv)
    session = LiveSession(
        parse_config(session_config(args.fps, args.loop_cpus or None), "view_overhead", Path.cwd())
    )
    loop = threading.Thread(target=session.run, daemon=True)
    loop.start()
    url = session.view.wait_ready(60)
    browsers = [Chromium(1280, 900), Chromium(1280, 900)]
    phases: list[dict] = []
    try:
        time.sleep(3.0)  # warm: the lead estimate, the caches
        for i in range(args.pairs):
            for d in (b.driver for b in browsers):
                d.get("about:blank")
            time.sleep(1.0)
            phases.append({"browsers": 0, "pair": i, **phase(session, args.seconds_per_phase)})
            for d in (b.driver for b in browsers):
                d.get(url)
            time.sleep(2.0)  # pages loaded and drawing
            loop_figures = phase(session, args.seconds_per_phase)
            pages = view_state(url)["browsers"]
            phases.append({"browsers": 2, "pair": i, **loop_figures, "pages": pages})
            print(json.dumps({k: phases[-2][k] for k in ("browsers", "fps")}), flush=True)
            print(json.dumps({k: phases[-1][k] for k in ("browsers", "fps", "pages")}), flush=True)
    finally:
        for b in browsers:
            b.quit()
        session.stop_event.set()
        loop.join(10)
        encode_ns = list(session.previewer.encode_ns)
        session.close()
    result = {
        "config": session_config(args.fps, args.loop_cpus or None),
        "seconds_per_phase": args.seconds_per_phase,
        "phases": phases,
        "preview_encode": summarize_ns(encode_ns),
        "comparison": compare(phases),
    }
    path = write_result("view_overhead", result, args.json, overwrite=args.overwrite)
    print(json.dumps(result["comparison"], indent=1))
    print(f"wrote {path}")
    return 0


def compare(phases: list[dict]) -> dict:
    """0 vs 2 browsers: mean difference of the phases' p50/p99, against the spread between
    phases of the same kind."""
    out = compare_phases(
        phases,
        lambda p: f"{p['browsers']}_browsers",
        "0_browsers",
        "2_browsers",
        ("overhead_beyond_engine", "capture_to_publish"),
        "difference_of_means",
    )
    pages = [page for p in phases if p["browsers"] == 2 for page in p["pages"]]
    out["drawn_fps_per_page"] = [page["drawn_fps"] for page in pages]
    out["capture_to_drawn_ms"] = [page["capture_to_drawn_ms"] for page in pages]
    return out


if __name__ == "__main__":
    sys.exit(main())
