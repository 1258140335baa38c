"""realtime-pose vs DeepLabCut-Live on identical weights, same frames, same run.

    python benchmarks/vs_dlclive.py --train-dir RUN | --dlc-export DIR
        --dlclive-python VENV/bin/python [--video FILE] [--sizes 160x120 320x240 640x480]
        [--frames 100] [--rounds 4] [--json FILE] [--overwrite]

The network: a training output of ours written as a DeepLabCut exported model
(:mod:`realtime_pose.exporters.dlc_format`), or a DeepLabCut export a user gives; either is
imported with ``import-dlc`` into an fp32 bundle (and quantised to an int8 one), so both sides
run the same weights. DeepLabCut-Live 1.1 (``DLCLive(export).get_pose(frame)``, TensorFlow)
runs in its own environment (it pins ``numpy<2``): a child process started with
``--dlclive-python``, which answers one block of timed frames per request. Ours is the whole
per-frame path (:meth:`PoseEstimator.estimate`: preprocess, engine, peaks) on ONNX Runtime and
on OpenVINO, fp32 and int8 graphs, and OpenVINO computing in bf16 where the CPU has it (AMX,
AVX-512 BF16). Per size, DeepLabCut-Live's block and each of ours alternate for
``--rounds`` rounds, so a noisy spell of this shared machine falls on all of them. Frames are
the video's, resized beforehand to each size (both sides get the same pixels; DeepLabCut-Live
RGB, ours BGR as a camera gives it).

Set up DeepLabCut-Live (measured here: ~3 min, 2.5 GB, plus the CPU torch wheel that its
``dlclive`` package imports even for TensorFlow models)::

    python3 -m venv ~/venvs/dlclive
    ~/venvs/dlclive/bin/pip install "deeplabcut-live[tf]==1.1.0" "tensorflow>=2.16,<2.19" \\
        "numpy<2" torch
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import add_overwrite_argument, summarize_ns, write_result
from realtime_pose.bundle import load_bundle
from realtime_pose.engines import open_engine
from realtime_pose.geometry import Size
from realtime_pose.inference.estimator import PoseEstimator

OPENFIELD = Path(__file__).resolve().parents[2] / (
    "shared/datasets/openfield-Pranav-2018-10-30/videos/m3v1mp4.mp4"
)

DLCLIVE_CHILD = textwrap.dedent(
    """
    import json, sys, time
    import numpy as np
    from dlclive import DLCLive

    live = None
    for line in sys.stdin:
        request = json.loads(line)
        frames = np.load(request["frames"])  # [N, H, W, 3] RGB uint8
        if live is None:
            live = DLCLive(request["model"], model_type="base")
            live.init_inference(frames[0])
        for frame in frames[: request["warmup"]]:
            live.get_pose(frame)
        times, poses = [], []
        for i in range(request["n"]):
            frame = frames[i % len(frames)]
            t0 = time.perf_counter_ns()
            pose = live.get_pose(frame)
            times.append(time.perf_counter_ns() - t0)
            if i < len(frames):
                poses.append(np.asarray(pose, dtype=float).tolist())
        print(json.dumps({"times": times, "poses": poses}), flush=True)
    """
)


class DlcLive:
    """DeepLabCut-Live in its own environment, one timed block per call."""

    def __init__(self, python: str, export: Path) -> None:
        self.export = export
        self.proc = subprocess.Popen(
            [python, "-c", DLCLIVE_CHILD],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )

    def block(self, frames_file: Path, n: int, warmup: int) -> tuple[list[int], np.ndarray]:
        request = {"model": str(self.export), "frames": str(frames_file), "n": n, "warmup": warmup}
        self.proc.stdin.write(json.dumps(request) + "\n")
        self.proc.stdin.flush()
        reply = json.loads(self.proc.stdout.readline())
        return reply["times"], np.asarray(reply["poses"])

    def close(self) -> None:
        self.proc.stdin.close()
        self.proc.wait(30)


def video_frames(path: Path, n: int) -> list[np.ndarray]:
    cap = cv2.VideoCapture(str(path))
    frames = []
    while len(frames) < n:
        ok, frame = cap.read()
        if not ok:
            break
        frames.append(frame)
    cap.release()
    if not frames:
        raise SystemExit(f"{path}: no frames")
    return frames


def ours_block(estimator: PoseEstimator, frames: list[np.ndarray], n: int, warmup: int):
    for frame in frames[:warmup]:
        estimator.estimate(frame)
    times, poses = [], []
    for i in range(n):
        frame = frames[i % len(frames)]
        t0 = time.perf_counter_ns()
        pose = estimator.estimate(frame)
        times.append(time.perf_counter_ns() - t0)
        if i < len(frames):
            poses.append(pose.copy())
    return times, np.asarray(poses)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--train-dir", type=Path, help="a training output of realtime-pose train")
    source.add_argument("--dlc-export", type=Path, help="a DeepLabCut exported-model folder")
    parser.add_argument("--dlclive-python", required=True, help="python of a DeepLabCut-Live env")
    parser.add_argument("--video", type=Path, default=OPENFIELD)
    parser.add_argument(
        "--sizes",
        nargs="+",
        type=Size.parse,
        default=[Size(160, 120), Size(320, 240), Size(640, 480)],
    )
    parser.add_argument("--frames", type=int, default=100, help="timed frames per block")
    parser.add_argument("--rounds", type=int, default=4, help="alternating blocks per size")
    parser.add_argument("--threads", type=int, default=2, help="threads for our engines")
    parser.add_argument("--json", type=Path, default=None)
    add_overwrite_argument(parser)
    args = parser.parse_args(argv)
    from realtime_pose.exporters.dlc_format import write_dlc_export
    from realtime_pose.exporters.dlc_import import import_dlc
    from realtime_pose.exporters.int8 import quantize_bundle

    tmp = Path(tempfile.mkdtemp(prefix="rp-vs-dlclive-"))
    export = args.dlc_export or write_dlc_export(args.train_dir, tmp / "dlc-export")
    frames_bgr = video_frames(args.video, args.frames)
    engines = {
        "onnxruntime": {"kind": "onnxruntime", "threads": args.threads},
        "openvino": {"kind": "openvino", "threads": args.threads},
    }
    from realtime_pose.engines.openvino import reduced_precisions

    if "bf16" in reduced_precisions():  # AMX / AVX-512 BF16: OpenVINO computes in bf16
        engines["openvino_bf16"] = {
            "kind": "openvino",
            "threads": args.threads,
            "precision": "bf16",
        }
    dlclive = DlcLive(args.dlclive_python, export)
    rows = []
    quantization: dict[str, dict] = {}
    try:
        for size in args.sizes:
            sized = [cv2.resize(f, size, interpolation=cv2.INTER_AREA) for f in frames_bgr]
            frames_file = tmp / f"frames-{size}.npy"
            np.save(frames_file, np.stack([f[:, :, ::-1] for f in sized]))
            # import-dlc at the size fed: DeepLabCut's dilated convolutions become single Convs
            sized_rgb = [f[:, :, ::-1].copy() for f in sized]
            fp32 = import_dlc(
                export, tmp / f"bundle-{size}", parity_images=sized_rgb[:16], input_size=size
            )
            int8 = quantize_bundle(fp32, tmp / f"bundle-int8-{size}", sized_rgb[:64])
            quantization[str(size)] = int8.meta.provenance.get("quantization", {}).get("vs_fp32")
            variants = {}
            for precision, bundle in (("fp32", fp32), ("int8", load_bundle(int8.root))):
                for name, section in engines.items():
                    try:
                        engine = open_engine(bundle, section, [size])
                    except Exception as exc:
                        print(f"{name} {precision}: unavailable ({exc})")
                        continue
                    variants[f"{name}_{precision}"] = PoseEstimator(bundle, engine)
            samples: dict[str, list[int]] = {"dlclive": [], **{k: [] for k in variants}}
            poses: dict[str, np.ndarray] = {}
            for r in range(args.rounds):
                times, pose = dlclive.block(frames_file, args.frames, warmup=10 if r == 0 else 2)
                samples["dlclive"] += times
                poses.setdefault("dlclive", pose)
                for name, estimator in variants.items():
                    times, pose = ours_block(estimator, sized, args.frames, 10 if r == 0 else 2)
                    samples[name] += times
                    poses.setdefault(name, pose)
            stats = {name: summarize_ns(v, "ms") for name, v in samples.items()}
            base = stats["dlclive"]
            row = {"size": list(size), "stats": stats, "ratio_vs_dlclive": {}, "keypoints": {}}
            for name in variants:
                row["ratio_vs_dlclive"][name] = {
                    "p50": round(base["p50_ms"] / stats[name]["p50_ms"], 2),
                    "p99": round(base["p99_ms"] / stats[name]["p99_ms"], 2),
                }
                diff = np.linalg.norm(poses[name][:, :, :2] - poses["dlclive"][:, :, :2], axis=-1)
                row["keypoints"][name] = {
                    "mean_px_vs_dlclive": round(float(diff.mean()), 5),
                    "max_px_vs_dlclive": round(float(diff.max()), 5),
                }
            rows.append(row)
            print(f"{size}: DeepLabCut-Live p50 {base['p50_ms']:.2f} ms p99 {base['p99_ms']:.2f}")
            for name in variants:
                s, q, k = stats[name], row["ratio_vs_dlclive"][name], row["keypoints"][name]
                print(
                    f"  {name:18s} p50 {s['p50_ms']:7.3f} ms p99 {s['p99_ms']:7.3f} ms  "
                    f"x{q['p50']} (p50) x{q['p99']} (p99)  keypoints vs DLC-Live mean "
                    f"{k['mean_px_vs_dlclive']} max {k['max_px_vs_dlclive']} px"
                )
    finally:
        dlclive.close()
    result = {
        "network": str(args.train_dir or args.dlc_export),
        "video": str(args.video),
        "frames_per_block": args.frames,
        "rounds": args.rounds,
        "our_threads": args.threads,
        "dlclive": "deeplabcut-live 1.1.0, TensorFlow runner (DLCLive.get_pose)",
        "int8_vs_fp32_quantization": quantization,
        "sizes": rows,
    }
    path = write_result("vs_dlclive", result, args.json, overwrite=args.overwrite)
    _plot(rows, path.with_suffix(".png"), args.overwrite)
    print(f"wrote {path}")
    return 0


def _plot(rows: list[dict], path: Path, overwrite: bool = False) -> None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib not installed: no plot")
        return
    names = list(rows[0]["stats"])
    fig, ax = plt.subplots(figsize=(7, 4))
    width = 0.8 / len(names)
    for j, name in enumerate(names):
        p50 = [r["stats"][name]["p50_ms"] for r in rows]
        ax.bar([i + j * width for i in range(len(rows))], p50, width, label=name)
    ax.set_xticks([i + 0.4 - width / 2 for i in range(len(rows))])
    ax.set_xticklabels(["x".join(map(str, r["size"])) for r in rows])
    ax.set_ylabel("per-frame p50, ms")
    ax.set_yscale("log")
    ax.legend(fontsize=7)
    ax.set_title("identical weights, same frames, same run")
    fig.tight_layout()
    if overwrite or not path.exists():  # the plot goes with its JSON
        fig.savefig(path, dpi=90)
    plt.close(fig)


if __name__ == "__main__":
    sys.exit(main())
