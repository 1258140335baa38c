"""Distributed analysis on embedded Ray: 1 vs 2 workers, per-chunk overhead, time to first result.

Runs the demo bundle on the first frames of the openfield video (640x480 H.264) through the
same code as ``realtime-pose analyze`` (ray_session, start_workers, run_jobs), writing nothing:

- throughput: frames/s of the analysis with 1 and with 2 workers (alternated, repeated);
- per-chunk overhead: the same frames cut into 1, 4, 12 and 24 chunks on one worker; the slope
  of wall time over the chunk count is what each chunk costs beyond its frames (Ray's task
  round trip, opening the file, seeking: decoding from the keyframe before the chunk, and the
  one extra frame that checks the seek); Ray's bare round trip to a warm actor is timed apart;
- time to first result: Ray's start, the workers' start (the bundle loaded once each), the
  first chunk back and the first video's poses merged, from the command's start.

The VM is shared: compare the ratios of one run, not absolute numbers across runs.

Usage: python benchmarks/scale_out.py [--frames 480] [--repeats 2]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import add_overwrite_argument, summarize_ns, write_result
from realtime_pose.offline.distributed.chunks import plan_chunks
from realtime_pose.offline.distributed.cluster import ray_session
from realtime_pose.offline.distributed.dispatch import VideoJob, run_jobs, start_workers

REPO = Path(__file__).resolve().parents[1]
VIDEO = REPO.parent / "shared/datasets/openfield-Pranav-2018-10-30/videos/m3v1mp4.mp4"
BUNDLE = REPO / "realtime_pose/assets/demo_bundle"
ENGINE = {"provider": "cpu", "threads": 1, "spinning": False}


def one_run(ray, actors, names, frames: int, chunk_frames: int) -> dict:
    """Analyse ``frames`` frames of the video in chunks; timings from run_jobs."""
    merged: list[int] = []
    chunks = plan_chunks(0, str(VIDEO), 2330, chunk_frames, max_frames=frames)
    job = VideoJob(0, VIDEO, chunks, frames, lambda poses: merged.append(len(poses)) or [])
    stats = run_jobs(ray, [job], actors, names)
    assert job.error is None and merged == [frames], job.error
    return {
        "chunks": len(chunks),
        "chunk_frames": chunk_frames,
        "seconds": stats.t_end_s,
        "frames_per_s": frames / stats.t_end_s,
        "t_first_chunk_s": stats.t_first_chunk_s,
        "t_first_video_s": stats.t_first_video_s,
        "worker_seconds_per_chunk": float(np.mean(stats.chunk_seconds)),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=480)
    parser.add_argument("--repeats", type=int, default=2)
    add_overwrite_argument(parser)
    args = parser.parse_args()
    if not VIDEO.is_file():
        sys.exit(f"{VIDEO} not found")
    t_command = time.monotonic()
    with ray_session(None, num_cpus=2) as ray:
        t_ray = time.monotonic() - t_command
        actors, names = start_workers(ray, 2, str(BUNDLE), ENGINE, None, 1.0, 0.0)
        t_workers = time.monotonic() - t_command
        first = one_run(ray, actors, names, 120, 30)  # a short video: its first results
        startup = {
            "ray_started_s": t_ray,
            "workers_ready_s": t_workers,
            "first_chunk_s": t_workers + first["t_first_chunk_s"],
            "first_video_s": t_workers + first["t_first_video_s"],
            "first_video": "120 frames in 4 chunks of 30 on 2 workers",
        }
        print("startup", startup, flush=True)

        throughput: dict[str, list[dict]] = {"1": [], "2": []}
        for _ in range(args.repeats):
            for n in (1, 2):
                run = one_run(ray, actors[:n], names[:n], args.frames, args.frames // 4)
                throughput[str(n)].append(run)
                print(f"{n} worker(s): {run['frames_per_s']:.1f} frames/s", flush=True)
        fps = {
            n: statistics.median(r["frames_per_s"] for r in runs) for n, runs in throughput.items()
        }

        overhead_frames = args.frames // 2
        sweep = []
        for _ in range(args.repeats):  # interleaved, so load changes hit every chunk count
            for n_chunks in (1, 4, 12, 24):
                chunk = overhead_frames // n_chunks
                run = one_run(ray, actors[:1], names[:1], overhead_frames, chunk)
                sweep.append(run)
                print(f"{run['chunks']} chunks: {run['seconds']:.2f} s", flush=True)
        slope, intercept = np.polyfit(
            [r["chunks"] for r in sweep], [r["seconds"] for r in sweep], 1
        )
        round_trips = []
        for _ in range(200):
            t = time.perf_counter_ns()
            ray.get(actors[0].identity.remote())
            round_trips.append(time.perf_counter_ns() - t)

    payload = {
        "video": f"{VIDEO.name} (640x480 H.264, keyframes every ~180 frames, B-frames)",
        "bundle": "demo bundle (MobileNetV2-0.35, full 640x480 frames), ONNX Runtime 1 thread",
        "frames": args.frames,
        "throughput": throughput,
        "frames_per_s_median": fps,
        "speedup_2_vs_1": fps["2"] / fps["1"],
        "per_chunk": {
            "sweep": sweep,
            "overhead_s": float(slope),
            "frames_seconds_s": float(intercept),
            "frame_s": float(intercept) / overhead_frames,
            "ray_round_trip": summarize_ns(round_trips, "ms"),
        },
        "startup": startup,
        "command": "python benchmarks/scale_out.py " + " ".join(sys.argv[1:]),
        "note": "2-vCPU shared VM: ratios within this run only",
    }
    print(write_result("scale_out", payload, overwrite=args.overwrite))
    print(f"speed-up 2 vs 1 workers: {payload['speedup_2_vs_1']:.2f}x; per-chunk overhead "
          f"{slope * 1000:.0f} ms; Ray round trip p50 "
          f"{payload['per_chunk']['ray_round_trip']['p50_ms']:.2f} ms")  # fmt: skip


if __name__ == "__main__":
    main()
