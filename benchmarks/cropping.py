"""Dynamic cropping: speed-up and accuracy change against full frames.

    python benchmarks/cropping.py [--bundle DIR] [--frames N] [--crop W H] [--video FILE]
                                  [--video-bundle DIR] [--json FILE]

1. **Synthetic scene** (ground truth known): the same frames, in order, through the estimator
   with and without a :class:`~realtime_pose.inference.crop.DynamicCropper`; per-frame time, engine
   time and keypoint error against the scene's true keypoints.
2. **A real video** (optional, e.g. the openfield video with a bundle trained on it): speed and
   how far cropped poses are from full-frame poses (no ground truth there).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import add_overwrite_argument, summarize_ns, write_result
from realtime_pose.bundle import load_bundle
from realtime_pose.engines import open_engine
from realtime_pose.geometry import Size
from realtime_pose.inference.crop import CropWindow, DynamicCropper
from realtime_pose.inference.estimator import STAMP_INFERRED, STAMP_PREPROCESSED, PoseEstimator
from realtime_pose.offline.analysis import video_frames
from realtime_pose.sources.synthetic_scene import SyntheticScene
from realtime_pose.util.paths import DEMO_BUNDLE


def run_mode(bundle, frames, crop: Size | None, threads: int, input_size: Size | None = None):
    """Poses and timings of every frame, with (``crop``) or without cropping."""
    frame_size = Size.of(frames[0])
    engine = open_engine(bundle, dict(threads=threads))
    estimator = PoseEstimator(bundle, engine, input_size)
    cropper = DynamicCropper(frame_size, crop) if crop else None
    estimator.warmup(frame_size, None)
    if crop is not None:
        estimator.warmup(frame_size, CropWindow(0, 0, *crop, False))
    stamps = np.zeros(3, np.int64)
    poses = np.zeros((len(frames), len(bundle.keypoints), 3), np.float32)
    total = np.zeros(len(frames), np.int64)
    infer = np.zeros(len(frames), np.int64)
    cropped = 0
    for i, frame in enumerate(frames):
        t0 = time.monotonic_ns()
        window = cropper.window() if cropper is not None else None
        pose = estimator.estimate(frame, window, stamps)
        if cropper is not None:
            cropper.update(pose)
            cropped += not window.full_frame
        total[i] = time.monotonic_ns() - t0
        infer[i] = stamps[STAMP_INFERRED] - stamps[STAMP_PREPROCESSED]
        poses[i] = pose
    engine.close()
    return poses, total, infer, cropped


def errors_px(poses: np.ndarray, truth: np.ndarray, pcutoff: float = 0.5) -> dict:
    err = np.linalg.norm(poses[..., :2] - truth, axis=-1)
    ok = poses[..., 2] >= pcutoff
    return {
        "mean_error_px": round(float(err.mean()), 3),
        "median_error_px": round(float(np.median(err)), 3),
        "p90_error_px": round(float(np.percentile(err, 90)), 3),
        "mean_error_px_pcutoff": round(float(err[ok].mean()), 3) if ok.any() else None,
        "fraction_above_pcutoff": round(float(ok.mean()), 4),
    }


def compare(bundle, frames, crop_size: Size, threads, truth=None, input_size=None) -> dict:
    out = {}
    full = run_mode(bundle, frames, None, threads, input_size)
    crop = run_mode(bundle, frames, crop_size, threads, input_size)
    for name, (poses, total, infer, cropped) in (("full_frame", full), ("dynamic_crop", crop)):
        row = {
            "per_frame": summarize_ns(total, "ms"),
            "engine": summarize_ns(infer, "ms"),
            "frames_cropped": int(cropped),
        }
        if truth is not None:
            row["accuracy"] = errors_px(poses, truth)
        out[name] = row
    out["speedup_p50"] = round(
        out["full_frame"]["per_frame"]["p50_ms"] / out["dynamic_crop"]["per_frame"]["p50_ms"], 3
    )
    diff = np.linalg.norm(full[0][..., :2] - crop[0][..., :2], axis=-1)
    both = (full[0][..., 2] >= 0.5) & (crop[0][..., 2] >= 0.5)
    out["crop_vs_full_px"] = {
        "median": round(float(np.median(diff[both])), 3) if both.any() else None,
        "p90": round(float(np.percentile(diff[both], 90)), 3) if both.any() else None,
    }
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--bundle", type=Path, default=DEMO_BUNDLE)
    parser.add_argument("--frames", type=int, default=1000)
    parser.add_argument("--size", nargs=2, type=int, default=(320, 240))
    parser.add_argument("--crop", nargs=2, type=int, default=(160, 160))
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--video", type=Path)
    parser.add_argument("--video-bundle", type=Path)
    parser.add_argument("--video-crop", nargs=2, type=int, default=(256, 256))
    parser.add_argument("--json", type=Path)
    add_overwrite_argument(parser)
    args = parser.parse_args(argv)
    results = {}
    scene = SyntheticScene(*args.size, seed=7)
    pairs = [scene.frame(i) for i in range(args.frames)]
    frames = [p[0] for p in pairs]
    truth = np.stack([p[1] for p in pairs])
    bundle = load_bundle(args.bundle)
    results["synthetic"] = {
        "bundle": str(args.bundle),
        "size": list(args.size),
        "crop": list(args.crop),
        **compare(bundle, frames, Size(*args.crop), args.threads, truth),
    }
    print(
        "synthetic:",
        results["synthetic"]["speedup_p50"],
        "x;",
        {k: results["synthetic"][k]["accuracy"] for k in ("full_frame", "dynamic_crop")},
    )
    if args.video and args.video_bundle:
        video_images = [f.image for f in video_frames(args.video, args.frames)]
        vb = load_bundle(args.video_bundle)
        results["video"] = {
            "video": str(args.video),
            "bundle": str(args.video_bundle),
            "crop": list(args.video_crop),
            **compare(vb, video_images, Size(*args.video_crop), args.threads),
        }
        print("video:", results["video"]["speedup_p50"], "x;", results["video"]["crop_vs_full_px"])
    path = write_result("cropping", results, args.json, overwrite=args.overwrite)
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
