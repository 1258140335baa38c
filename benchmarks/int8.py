"""CPU int8 vs fp32: ONNX Runtime latency and what quantisation does to the keypoints.

    python benchmarks/int8.py [--bundle DIR] [--int8-bundle DIR] [--project DIR]
                              [--size 320x240] [--threads 1 2] [--runs 300]
                              [--calibration-frames 64] [--calibration percentile ...]
                              [--first-fp32-too] [--json FILE]

Without ``--int8-bundle`` the fp32 bundle is quantised here (``realtime_pose.exporters.int8``),
once per ``--calibration`` method (and each again with the first convolution in float with
``--first-fp32-too``), calibrated on its training project's train split when the project is
reachable (else synthetic frames).
Latency: fp32 and int8 runs in alternating blocks, batch 1, on one test frame resized to
``--size``. Accuracy: keypoint distance int8 vs fp32 (frame pixels) on the test split at the
frames' own size and at ``--size``; with the project's labels, the error of each against them.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import add_overwrite_argument, project_labels, summarize_ns, write_result
from realtime_pose.bundle import Bundle, load_bundle
from realtime_pose.engines import open_engine
from realtime_pose.exporters.frames import bundle_frames, read_rgb_frames
from realtime_pose.geometry import Size
from realtime_pose.inference.estimator import PoseEstimator


def _resize(rgb: np.ndarray, size: Size) -> np.ndarray:
    import cv2

    return cv2.resize(rgb, size, interpolation=cv2.INTER_AREA)


def latency(
    fp32: Bundle, int8: Bundle, image: np.ndarray, threads: int, runs: int, block: int = 25
) -> dict[str, dict]:
    """fp32/int8 timings of ``engine.run`` at ``image``'s size, in alternating blocks.

    Blocks rather than call-by-call interleaving: ORT's pool threads spin for a while after a
    run, and would steal the cores from the other session's next call.
    """
    engines = {
        name: open_engine(b, dict(threads=threads, warmup_runs=0))
        for name, b in (("fp32", fp32), ("int8", int8))
    }
    for engine in engines.values():
        engine.warmup(Size.of(image), runs=20)
    samples: dict[str, list[int]] = {name: [] for name in engines}
    while len(samples["int8"]) < runs:
        for name, engine in engines.items():
            engine.run(image)  # let the other session's threads go quiet
            for _ in range(min(block, runs - len(samples[name]))):
                t0 = time.perf_counter_ns()
                engine.run(image)
                samples[name].append(time.perf_counter_ns() - t0)
    for engine in engines.values():
        engine.close()
    return {name: summarize_ns(np.array(s), "ms") for name, s in samples.items()}


def accuracy(
    fp32: Bundle,
    int8: Bundle,
    frames: list[np.ndarray],
    input_size: Size | None,
    labels: np.ndarray | None,
) -> dict[str, float]:
    """Keypoint distance int8 vs fp32, and each vs labels, in frame pixels."""
    est = {
        name: PoseEstimator(
            b, open_engine(b, dict(threads=2, warmup_runs=0)), input_size=input_size
        )
        for name, b in (("fp32", fp32), ("int8", int8))
    }
    poses = {name: [] for name in est}
    for rgb in frames:
        bgr = np.ascontiguousarray(rgb[:, :, ::-1])
        for name, e in est.items():
            poses[name].append(e.estimate(bgr).copy())
    p32, p8 = np.stack(poses["fp32"]), np.stack(poses["int8"])
    d = np.hypot(p32[..., 0] - p8[..., 0], p32[..., 1] - p8[..., 1])
    out = {
        "frames": len(frames),
        "int8_vs_fp32_mean_px": round(float(d.mean()), 4),
        "int8_vs_fp32_p99_px": round(float(np.percentile(d, 99)), 4),
        "int8_vs_fp32_max_px": round(float(d.max()), 4),
        "likelihood_mean_abs_diff": round(float(np.abs(p32[..., 2] - p8[..., 2]).mean()), 5),
    }
    if labels is not None:
        for name, p in (("fp32", p32), ("int8", p8)):
            err = np.hypot(p[..., 0] - labels[..., 0], p[..., 1] - labels[..., 1])
            out[f"{name}_vs_labels_mean_px"] = round(float(np.nanmean(err)), 4)
            out[f"{name}_vs_labels_median_px"] = round(float(np.nanmedian(err)), 4)
    return out


def _variants(args: argparse.Namespace, fp32: Bundle, tmp: Path) -> list[tuple[dict, Bundle]]:
    """The int8 bundles to compare: the given one, or one per calibration x first-layer choice."""
    if args.int8_bundle is not None:
        return [({"made": "given", "bundle": str(args.int8_bundle)}, load_bundle(args.int8_bundle))]
    from realtime_pose.exporters.int8 import quantize_bundle

    calib, calib_source = bundle_frames(fp32, "train", args.calibration_frames)
    made = []
    for method in args.calibration:
        for first in sorted({False, args.first_fp32_too}):
            t0 = time.perf_counter()
            bundle = quantize_bundle(
                fp32, tmp / f"{method}-{first}", calib, method=method, keep_first_fp32=first
            )
            about = {
                "calibration": method,
                "keep_first_fp32": first,
                "made": f"quantised here in {time.perf_counter() - t0:.1f} s on {len(calib)} "
                f"{calib_source} frames",
            }
            print(f"int8 {about}")
            made.append((about, bundle))
    return made


def measure(
    fp32: Bundle,
    int8: Bundle,
    image: np.ndarray,
    test_frames: list[np.ndarray],
    labels: np.ndarray | None,
    test_source: str,
    args: argparse.Namespace,
) -> dict:
    """One int8 variant against fp32: latency per thread count at ``image``'s size, accuracy at
    the frames' own size and at ``--size``, and how it was quantised."""
    rows = []
    for threads in args.threads:
        stats = latency(fp32, int8, image, threads, args.runs)
        speedup = stats["fp32"]["p50_ms"] / stats["int8"]["p50_ms"]
        rows.append(
            {
                "width": args.size.width,
                "height": args.size.height,
                "threads": threads,
                **stats,
                "speedup_p50": round(speedup, 3),
            }
        )
        print(
            f"{args.size} threads={threads}: fp32 p50 {stats['fp32']['p50_ms']:.3f} ms "
            f"p99 {stats['fp32']['p99_ms']:.3f}; int8 p50 {stats['int8']['p50_ms']:.3f} "
            f"ms p99 {stats['int8']['p99_ms']:.3f}; speed-up x{speedup:.2f}"
        )
    acc = {"native": accuracy(fp32, int8, test_frames, None, labels)}
    if any(Size.of(f) != args.size for f in test_frames):
        acc[str(args.size)] = accuracy(fp32, int8, test_frames, args.size, labels)
    for where, a in acc.items():
        print(f"accuracy at {where} ({test_source}): {a}")
    quantization = int8.meta.provenance.get("quantization", {})
    return {
        "quantization": {k: v for k, v in quantization.items() if k != "vs_fp32"},
        "latency": rows,
        "accuracy": acc,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--bundle", type=Path, help="fp32 bundle (default: the demo bundle)")
    parser.add_argument("--int8-bundle", type=Path, help="int8 variant (default: made here)")
    parser.add_argument("--project", type=Path, help="DeepLabCut project with the labels")
    parser.add_argument("--size", type=Size.parse, default=Size(320, 240), help="WxH for latency")
    parser.add_argument("--threads", nargs="+", type=int, default=[1, 2])
    parser.add_argument("--runs", type=int, default=300)
    parser.add_argument("--calibration-frames", type=int, default=64)
    parser.add_argument(
        "--calibration",
        nargs="+",
        choices=["minmax", "percentile", "entropy"],
        default=["percentile"],
        help="one int8 variant per method (default percentile, the exporter's)",
    )
    parser.add_argument(
        "--first-fp32-too",
        action="store_true",
        help="each method also with the first convolution kept in float",
    )
    parser.add_argument("--json", type=Path, default=None)
    add_overwrite_argument(parser)
    args = parser.parse_args(argv)

    if args.bundle is None:
        from realtime_pose.util.paths import DEMO_BUNDLE

        args.bundle = DEMO_BUNDLE
    fp32 = load_bundle(args.bundle)
    print(f"fp32 {fp32.root}")
    with tempfile.TemporaryDirectory(prefix="rtpose-int8-bench-") as tmp:
        variants = _variants(args, fp32, Path(tmp))
        test_frames, test_source = bundle_frames(fp32, "test", 64)
        project_dir = args.project or (
            Path(fp32.meta.provenance["project"]) if fp32.meta.provenance.get("project") else None
        )
        labels = None
        test_names = (fp32.meta.provenance.get("split") or {}).get("test") or []
        if project_dir is not None and project_dir.is_dir() and test_names:
            # every test frame, in split order, so that the labels line up
            test_frames = read_rgb_frames([project_dir / n for n in test_names])
            test_source = f"project test split ({project_dir})"
            labels = project_labels(project_dir, test_names)
        image = _resize(test_frames[0], args.size)
        load_before = os.getloadavg()
        results = [
            {**about, **measure(fp32, int8, image, test_frames, labels, test_source, args)}
            for about, int8 in variants
        ]
        path = write_result(
            "int8",
            {
                "fp32_bundle": str(fp32.root),
                "model": fp32.meta.name,
                "net": fp32.meta.provenance.get("net"),
                "accuracy_frames": test_source,
                # other processes on a shared machine inflate latency; ratios are interleaved
                "loadavg_1min_before_after": [
                    round(load_before[0], 2),
                    round(os.getloadavg()[0], 2),
                ],
                "variants": results,
            },
            args.json,
            overwrite=args.overwrite,
        )
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
