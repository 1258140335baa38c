"""Per-frame latency of the whole inference path, the counterpart of DeepLabCut-Live's benchmark.

Frames are decoded beforehand; then each frame goes through preprocess → engine → peaks →
frame coordinates → forward prediction, timed with ``time.perf_counter_ns`` at every stage, at
each requested network size (a pixel count, aspect kept). No grabber, stream or recording: this
is the cost a rig pays per frame on this machine, and what FPS the path sustains free-running.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from realtime_pose.bundle import Bundle
from realtime_pose.engines import engine_section, open_engine
from realtime_pose.geometry import Size
from realtime_pose.inference.estimator import (
    ESTIMATOR_STAGES,
    STAMP_PEAKS,
    NetworkInput,
    PoseEstimator,
    estimator_stage_ns,
    size_for_pixels,
)
from realtime_pose.inference.predict import ForwardPredictor
from realtime_pose.plugins import Choice
from realtime_pose.util.stats import Summary

STAGES = (*ESTIMATOR_STAGES, "predict", "total", "overhead")


@dataclass
class BenchmarkRun:
    """Timings (ns) of one network size; ``summary()`` gives the JSON row."""

    pixels: int
    size: Size
    stage_ns: np.ndarray  # [frames, len(STAGES)]
    wall_s: float
    engine: dict | None = None
    """The engine section that ran (for ``auto``: the tuned one), when the engine says."""

    def summary(self) -> dict:
        """``{pixels, width, height, p50_ms, p99_ms, max_ms, fps, stages}``."""
        stages = {
            name: Summary.of(self.stage_ns[:, i]).to_dict(suffix=True)
            for i, name in enumerate(STAGES)
        }
        total = stages["total"]
        frames = len(self.stage_ns)
        return {
            "pixels": self.pixels,
            "width": self.size.width,
            "height": self.size.height,
            "frames": frames,
            "p50_ms": total["p50_ms"],
            "p99_ms": total["p99_ms"],
            "max_ms": total["max_ms"],
            "fps": round(frames / self.wall_s, 1),
            "stages": stages,
        }


def run_benchmark(
    bundle: Bundle,
    frames: list[np.ndarray],
    pixels: int | None,
    n_frames: int,
    engine: Choice | dict | None = None,
    warmup_frames: int = 20,
) -> BenchmarkRun:
    """Time ``n_frames`` frames (cycling through ``frames``) at about ``pixels`` pixels.

    ``pixels=None`` runs at the frames' own size.
    """
    frame_size = Size.of(frames[0])
    size = size_for_pixels(frame_size, pixels) if pixels else frame_size
    sizing = NetworkInput.for_bundle(bundle.meta, size if pixels else None)
    runner = open_engine(bundle, engine, [sizing.size(frame_size)])  # the padded size it runs at
    section = engine_section(runner)
    estimator = PoseEstimator(bundle, runner, size if pixels else None)
    predictor = ForwardPredictor(len(bundle.keypoints))
    predicted = np.zeros((len(bundle.keypoints), 3), np.float32)
    stamps = np.zeros(3, np.int64)
    period_ns = 10_000_000  # synthetic 100 fps capture clock for the predictor
    for i in range(warmup_frames):
        pose = estimator.estimate(frames[i % len(frames)], None, stamps)
        predictor.update(pose, i * period_ns)
        predictor.predict(i * period_ns + period_ns, predicted)
    predictor.reset()
    out = np.zeros((n_frames, len(STAGES)), np.int64)
    t_wall = time.perf_counter()
    for i in range(n_frames):
        frame = frames[i % len(frames)]
        t0 = time.monotonic_ns()
        pose = estimator.estimate(frame, None, stamps)
        predictor.update(pose, i * period_ns)
        predictor.predict(i * period_ns + 2 * period_ns, predicted)
        t_end = time.monotonic_ns()
        row = out[i]
        estimator_stage_ns(t0, stamps, row)
        row[3] = t_end - stamps[STAMP_PEAKS]
        row[4] = t_end - t0
        row[5] = row[4] - row[1]
    wall = time.perf_counter() - t_wall
    runner.close()
    return BenchmarkRun(pixels or frame_size.pixels, size, out, wall, section)
