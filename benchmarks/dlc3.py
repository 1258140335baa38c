"""DeepLabCut 3 models: the imported bundle on ONNX Runtime vs DeepLabCut-Live's PyTorch runner.

    .venv-dlc3/bin/python benchmarks/dlc3.py [--model NET=PT ...] [--sizes 320x240 640x480]
                                             [--runs 60] [--threads 2] [--json FILE]

Runs in the DeepLabCut 3 environment (``make dlc3-env``). Per model: the import's wall time
(``import_dlc3``: rebuild, ONNX export, parity check, bundle write), then per frame size the
per-frame latency of the whole path on each side, on the same ``.pt`` and the same BGR frames in
the same run: our :class:`~realtime_pose.inference.estimator.PoseEstimator` on the bundle (colour
conversion, ONNX Runtime on the CPU, Numba peaks) and ``DLCLive.get_pose`` (colour conversion,
PyTorch on the CPU, DeepLabCut's predictor), alternating in blocks, both on ``--threads``
threads. Also the int8 variant (``realtime_pose.exporters.int8``), with its keypoint shift
from fp32, so a reader can see whether accuracy holds for that model.

Without ``--model``, a model per backbone (ResNet-50, HRNet-w18, CSPNeXt-s) is made with
DeepLabCut's own code as the tests make them (random weights: latency does not depend on them,
but the int8 accuracy of such a model says little about a trained one). The VM is shared:
compare the ratios within one run, not absolute numbers across runs.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import add_overwrite_argument, summarize_ns, write_result
from realtime_pose.geometry import Size


def _frames(size: Size, count: int) -> list[np.ndarray]:
    from realtime_pose.sources.synthetic_scene import random_sample

    rng = np.random.default_rng([size.width, size.height, 3])
    return [random_sample(rng, size.width, size.height)[0] for _ in range(count)]


def _time_blocks(paths: dict, frames: list[np.ndarray], runs: int, block: int = 10) -> dict:
    """``name → [ns per call]``: each path on the same frames, in alternating blocks."""
    samples: dict[str, list[int]] = {name: [] for name in paths}
    for path in paths.values():
        for frame in frames[:3]:
            path(frame)  # warm-up: first-call allocation, Numba, ORT arena
    i = 0
    while min(len(s) for s in samples.values()) < runs:
        for name, path in paths.items():
            for _ in range(block):
                frame = frames[i % len(frames)]
                i += 1
                t0 = time.perf_counter_ns()
                path(frame)
                samples[name].append(time.perf_counter_ns() - t0)
    return {name: summarize_ns(s[:runs], "ms") for name, s in samples.items()}


def _keypoint_shift(a, b, frames: list[np.ndarray]) -> dict[str, float]:
    dists = np.concatenate(
        [np.hypot(*(a(f)[:, :2] - b(f)[:, :2]).T) for f in frames]  # type: ignore[operator]
    )
    return {
        "median_px": float(np.median(dists)),
        "p99_px": float(np.percentile(dists, 99)),
        "max_px": float(dists.max()),
    }


def bench_model(net: str, pt: Path, sizes: list[Size], runs: int, threads: int, work: Path) -> dict:
    """Import wall time, then fp32 / int8 bundle vs DeepLabCut-Live latency per size."""
    import torch
    from dlclive import DLCLive

    from realtime_pose.engines import open_engine
    from realtime_pose.exporters.dlc3_import import import_dlc3
    from realtime_pose.exporters.int8 import quantize_bundle
    from realtime_pose.inference.estimator import PoseEstimator

    torch.set_num_threads(threads)
    t0 = time.perf_counter()
    bundle = import_dlc3(pt, work / f"{net}-fp32")
    import_s = time.perf_counter() - t0
    calibration = [f[:, :, ::-1].copy() for f in _frames(Size(320, 240), 16)]
    t0 = time.perf_counter()
    int8 = quantize_bundle(bundle, work / f"{net}-int8", calibration)
    quantize_s = time.perf_counter() - t0
    live = DLCLive(str(pt), model_type="pytorch", device="cpu")
    result: dict = {
        "model": str(pt),
        "stride": bundle.meta.stride,
        "import_s": round(import_s, 2),
        "int8_quantize_s": round(quantize_s, 2),
        "import_parity": bundle.meta.provenance["parity"]["torch_vs_onnx"],
        "sizes": {},
    }
    for size in sizes:
        frames = _frames(size, 8)
        ours = PoseEstimator(bundle, open_engine(bundle, {"threads": threads}))
        ours8 = PoseEstimator(int8, open_engine(int8, {"threads": threads}))
        live.init_inference(frames[0])
        paths = {
            "onnxruntime_fp32": lambda f, e=ours: e.estimate(f).copy(),
            "onnxruntime_int8": lambda f, e=ours8: e.estimate(f).copy(),
            "dlclive_pytorch": lambda f: np.asarray(live.get_pose(f)),
        }
        timing = _time_blocks(paths, frames, runs)
        p50_live = timing["dlclive_pytorch"]["p50_ms"]
        result["sizes"][f"{size.width}x{size.height}"] = {
            "latency": timing,
            "speedup_p50_vs_dlclive": {
                name: round(p50_live / t["p50_ms"], 2)
                for name, t in timing.items()
                if name != "dlclive_pytorch"
            },
            "fp32_vs_dlclive": _keypoint_shift(
                paths["onnxruntime_fp32"], paths["dlclive_pytorch"], frames
            ),
            "int8_vs_fp32": _keypoint_shift(
                paths["onnxruntime_int8"], paths["onnxruntime_fp32"], frames
            ),
        }
        print(net, size, result["sizes"][f"{size.width}x{size.height}"]["speedup_p50_vs_dlclive"])
    live.close()
    return result


def _models(args: argparse.Namespace, work: Path) -> dict[str, Path]:
    if args.model:
        return {spec.split("=", 1)[0]: Path(spec.split("=", 1)[1]) for spec in args.model}
    from tests.exporters.dlc3_models import make_dlc3_project

    return make_dlc3_project(work / "project").exports


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", nargs="+", metavar="NET=PT", help="models to measure")
    parser.add_argument("--sizes", nargs="+", default=["320x240", "640x480"], metavar="WxH")
    parser.add_argument("--runs", type=int, default=60, help="timed frames per path and size")
    parser.add_argument("--threads", type=int, default=2, help="threads, both runtimes")
    parser.add_argument("--json", type=Path, help="result file (default benchmarks/results/)")
    add_overwrite_argument(parser)
    args = parser.parse_args(argv)
    sizes = [Size(*map(int, s.lower().split("x"))) for s in args.sizes]
    with tempfile.TemporaryDirectory(prefix="dlc3-bench-") as tmp:
        work = Path(tmp)
        t0 = time.perf_counter()
        models = _models(args, work)
        fixtures_s = time.perf_counter() - t0
        results = {
            net: bench_model(net, pt, sizes, args.runs, args.threads, work)
            for net, pt in models.items()
        }
    from realtime_pose.exporters.provenance import tool_versions

    payload = {
        "command": " ".join(["benchmarks/dlc3.py", *(argv or sys.argv[1:])]),
        "note": "same .pt, same frames, same run; compare ratios within this run",
        "threads": args.threads,
        "runs": args.runs,
        "random_weight_models": not args.model,
        "fixture_build_s": round(fixtures_s, 1),
        "tools": tool_versions("deeplabcut", "deeplabcut-live", "torch", "onnxruntime"),
        "models": results,
    }
    path = write_result("dlc3", payload, args.json, overwrite=args.overwrite)
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
