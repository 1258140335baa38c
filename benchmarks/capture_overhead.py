"""What capturing doubtful frames costs the live loop: capture on vs off, same session.

    python benchmarks/capture_overhead.py [--seconds-per-phase S] [--pairs N] [--json FILE]

One live session (the demo bundle on the synthetic camera at 320x240, 100 FPS, a light-coated
mouse the bundle never saw, so nearly every pose is doubtful) runs throughout, its loop pinned
to ``--loop-cpus`` (default CPU 1) as ``loop_cpus`` pins a rig's; the capture's writer thread
inherits the other CPUs. Phases alternate, N times: capture off, then capture on at its
maximum rate (``min_gap_s`` from ``--min-gap-s``: 0.5 s, the run config's default, or 0 for
every doubtful frame; ``max_per_minute`` from ``--max-per-minute``, 30 by default as in the
run config; ``per_cluster``, ``max_frames`` and the disk budget beyond what a phase can
fill; ``clusters`` stays at its default, 10, so the k-means costs what a rig's does). Each on
phase swaps a fresh
:class:`~realtime_pose.live.capture.FrameCapture` (opened by
:func:`~realtime_pose.live.capture_plan.open_capture` from the run config's ``capture:``
section, its events posted to the loop as the session posts them) into the loop's frame taps
between two frames (``pipeline.call_in_loop``), and swaps it out at the phase's end; it is then
closed (the writer drains) and its folder deleted before the next phase, so every on phase
starts from an empty folder and no off phase shares the CPUs with a draining writer. Not
included: the session's status line reading the capture's counters once a second.

Per phase:

- **loop overhead beyond the engine**, per frame: every stage of the loop except the wait for
  the frame (``grab``) and the network (``inference``): preprocess, peaks, predict, process,
  publish and record (the frame taps, so the capture's ``offer``, land in ``record``);
- frames offered, doubtful, captured, written and dropped because the writer was busy, and the
  loop's frame rate.

The p50/p99 differences between on and off phases are compared with the spread between phases
of the same kind (run-to-run spread): the VM is shared and noisy.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import (
    add_overwrite_argument,
    compare_phases,
    loop_figures,
    write_result,
)
from realtime_pose.live.capture_plan import open_capture
from realtime_pose.live.run_config import parse_config
from realtime_pose.live.session import LiveSession
from realtime_pose.util.paths import DEMO_BUNDLE

COUNTERS = ("offered", "doubtful", "captured", "written", "dropped_busy", "rate_limited")


def session_config(
    fps: float,
    loop_cpus: list[int] | None,
    project: Path,
    min_gap_s: float = 0.5,
    max_per_minute: float = 30.0,
) -> dict:
    source = {"kind": "synthetic", "width": 320, "height": 240, "fps": fps, "coat": "light"}
    return {
        "loop_cpus": loop_cpus,
        "source": {**source, "seed": 1},
        "bundle": str(DEMO_BUNDLE),
        "engine": {"threads": 1, "spinning": False},
        "recording": {"directory": str(project.parent / "rec")},
        # the section each on phase's capture is opened from (the session opens none itself)
        "capture": {
            "enabled": False,
            "project": str(project),
            "min_gap_s": min_gap_s,
            "max_per_minute": max_per_minute,
            "per_cluster": 1_000_000,
            "max_frames": 1_000_000,
            "disk_budget_mb": 1_000_000,
        },
    }


def phase(session: LiveSession, seconds: float, capture=None) -> dict:
    """Loop figures over the next ``seconds`` (with ``capture`` among the frame taps)."""
    pipe = session.pipeline
    before = dict.fromkeys(COUNTERS, 0) if capture is None else capture.stats()
    mark, frames0, t0 = pipe.stats.count, pipe.frames, time.monotonic()
    time.sleep(seconds)
    samples = pipe.stats.samples_since(mark)
    wall = time.monotonic() - t0
    frames = pipe.frames - frames0
    after = dict.fromkeys(COUNTERS, 0) if capture is None else capture.stats()
    figures = loop_figures(samples)
    return {
        "frames": figures.pop("frames"),
        "fps": round(frames / wall, 2),
        "captures": {k: after[k] - before[k] for k in COUNTERS},
        **figures,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds-per-phase", type=float, default=12.0)
    parser.add_argument("--pairs", type=int, default=3)
    parser.add_argument(
        "--max-per-minute",
        type=float,
        default=30.0,
        help="the capture's rate cap (default 30, the run config's); 60000 lifts it",
    )
    parser.add_argument(
        "--min-gap-s",
        type=float,
        default=0.5,
        help="the capture's spacing (default 0.5 s, the run config's: 2 captures a second, the "
        "most a rig's capture takes with the defaults); 0 captures every doubtful frame",
    )
    parser.add_argument("--fps", type=float, default=100.0)
    parser.add_argument("--warm-s", type=float, default=3.0, help="before the first phase")
    parser.add_argument(
        "--loop-cpus",
        type=int,
        nargs="*",
        default=[1],
        help="pin the loop here and everything else (the capture's writer among them) on "
        "the other CPUs, as a rig would (none: no pinning)",
    )
    parser.add_argument("--json", type=Path, default=None)
    add_overwrite_argument(parser)
    args = parser.parse_args(argv)
    workdir = Path(tempfile.mkdtemp(prefix="capture-overhead-"))
    project = workdir / "project"
    config = parse_config(
        session_config(
            args.fps, args.loop_cpus or None, project, args.min_gap_s, args.max_per_minute
        ),
        "capture_overhead",
        workdir,
    )
    session = LiveSession(config)
    pipe = session.pipeline
    loop = threading.Thread(target=session.run, daemon=True)
    loop.start()
    phases: list[dict] = []
    try:
        time.sleep(args.warm_s)  # the lead estimate, the caches
        for i in range(args.pairs):
            time.sleep(1.0)
            phases.append({"capture": "off", "pair": i, **phase(session, args.seconds_per_phase)})
            capture = open_capture(
                config.capture,
                session.bundle,
                project,
                name=f"phase{i}",
                on_event=lambda event: pipe.post_event(dict(event)),
            )
            taps = pipe.frame_taps
            pipe.call_in_loop(lambda c=capture, t=taps: setattr(pipe, "frame_taps", (*t, c)))
            try:
                time.sleep(0.5)  # the writer under way
                figures = phase(session, args.seconds_per_phase, capture)
            finally:
                pipe.call_in_loop(lambda t=taps: setattr(pipe, "frame_taps", t))
                capture.close()
            figures["written_after_close"] = capture.stats()["written"]
            shutil.rmtree(capture.directory, ignore_errors=True)
            phases.append({"capture": "on", "pair": i, **figures})
            for p in phases[-2:]:
                brief = {k: p[k] for k in ("capture", "fps")}
                brief["overhead_p50_p99_us"] = [
                    p["overhead_beyond_engine"][q] for q in ("p50_us", "p99_us")
                ]
                print(json.dumps({**brief, **p["captures"]}), flush=True)
    finally:
        session.stop_event.set()
        loop.join(10)
        session.close()
        shutil.rmtree(workdir, ignore_errors=True)
    result = {
        "config": session_config(
            args.fps,
            args.loop_cpus or None,
            Path("<tmp>/project"),
            args.min_gap_s,
            args.max_per_minute,
        ),
        "seconds_per_phase": args.seconds_per_phase,
        "phases": phases,
        "comparison": compare(phases),
    }
    path = write_result("capture_overhead", result, args.json, overwrite=args.overwrite)
    print(json.dumps(result["comparison"], indent=1))
    print(f"wrote {path}")
    return 0


def compare(phases: list[dict]) -> dict:
    """On vs off: mean difference of the phases' p50/p99, against the spread between phases of
    the same kind."""
    metrics = ("overhead_beyond_engine", "record_stage_incl_taps", "capture_to_publish")
    out = compare_phases(phases, lambda p: p["capture"], "off", "on", metrics, "on_minus_off")
    out["fps"] = {
        kind: [p["fps"] for p in phases if p["capture"] == kind] for kind in ("off", "on")
    }
    return out


if __name__ == "__main__":
    sys.exit(main())
