"""``realtime-pose benchmark``: per-frame latency and FPS of the whole path on a video."""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

log = logging.getLogger(__name__)


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``benchmark`` sub-command."""
    p = subparsers.add_parser(
        "benchmark",
        help="time preprocess+engine+peaks+prediction per frame at several input sizes",
        description="Decode frames from VIDEO first, then time the whole per-frame path "
        "(preprocess, engine, peaks, coordinates, prediction) at each target pixel count, on "
        "the engine `run` would use here (the tuned choice, see `realtime-pose tune`) or the "
        "one --engine names; the output and the JSON say which engine ran.",
    )
    p.add_argument("video", type=Path)
    p.add_argument("--bundle", required=True, type=Path)
    p.add_argument(
        "--pixels",
        nargs="+",
        type=int,
        default=None,
        help="network pixel counts (aspect kept); default: the video's size",
    )
    p.add_argument("--frames", type=int, default=1000, help="timed frames per size")
    p.add_argument("--decode", type=int, default=200, help="frames decoded from the video")
    p.add_argument(
        "--engine",
        metavar="SECTION",
        help="the engine, as a run config's engine: section in YAML, e.g. '{kind: openvino, "
        "threads: 2}' (default: '{kind: auto}', what `run` uses without an engine: section)",
    )
    ort = p.add_argument_group("ONNX Runtime shortcuts (instead of --engine)")
    ort.add_argument("--provider", choices=["cpu", "cuda", "tensorrt"])
    ort.add_argument("--threads", type=int)
    ort.add_argument("--no-spinning", action="store_true")
    p.add_argument(
        "--json", type=Path, help="write results here, and a per-stage latency plot beside (.png)"
    )
    p.add_argument(
        "--overwrite", action="store_true", help="replace --json (and .png) if they exist"
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Decode, run each size, print a table and write JSON."""
    from realtime_pose.bundle import BundleError, load_bundle
    from realtime_pose.engines import EngineError
    from realtime_pose.offline.analysis import video_frames
    from realtime_pose.offline.latency_benchmark import run_benchmark
    from realtime_pose.sources import SourceError
    from realtime_pose.util.machine import machine_description
    from realtime_pose.util.safe_write import OutputExistsError, check_free, write_text

    try:
        if args.json:
            check_free(args.json, args.overwrite)  # before the run, not after it
            check_free(args.json.with_suffix(".png"), args.overwrite)
        bundle = load_bundle(args.bundle)
        frames = [frame.image for frame in video_frames(args.video, args.decode)]
        config = engine_config(args)
    except (BundleError, SourceError, OutputExistsError, ValueError) as exc:
        log.error("%s", exc)
        return 2
    results, runs = [], []
    for pixels in args.pixels or [None]:
        try:
            run = run_benchmark(bundle, frames, pixels, args.frames, config)
        except (EngineError, ValueError) as exc:  # ValueError: a bad --engine option
            log.error("%s", exc)
            return 2
        runs.append(run)
        summary = run.summary()
        results.append(summary)
        st = summary["stages"]
        print(f"engine: {_describe(run.engine)}")
        print(
            f"{summary['width']:4d}x{summary['height']:<4d} p50 {summary['p50_ms']:7.3f} ms "
            f"p99 {summary['p99_ms']:7.3f} ms max {summary['max_ms']:7.3f} ms "
            f"{summary['fps']:7.1f} fps | engine p50 {st['inference']['p50_ms']:.3f} ms, "
            f"overhead p50 {st['overhead']['p50_ms']:.3f} ms"
        )
    if args.json:
        doc = {
            "video": str(args.video),
            "bundle": str(args.bundle),
            "model": bundle.meta.name,
            "engine_asked": config,
            "engine": runs[0].engine,
            "machine": machine_description(),
            "results": results,
        }
        write_text(args.json, json.dumps(doc, indent=2) + "\n", args.overwrite)
        log.info("wrote %s", args.json)
        plot = write_plot(args.json.with_suffix(".png"), runs, bundle.meta.name, args.overwrite)
        if plot is not None:
            log.info("wrote %s", plot)
    return 0


def engine_config(args: argparse.Namespace) -> dict:
    """The engine section asked for: --engine, the ONNX Runtime shortcuts, or ``auto``."""
    from realtime_pose.engines import parse_engine_section

    shortcuts = args.provider is not None or args.threads is not None or args.no_spinning
    if args.engine is not None:
        if shortcuts:
            raise ValueError("give --engine or the ONNX Runtime shortcuts, not both")
        return parse_engine_section(args.engine) or {}
    if shortcuts:
        return {
            "kind": "onnxruntime",
            "provider": args.provider or "cpu",
            "threads": args.threads or 0,
            "spinning": not args.no_spinning,
        }
    return {"kind": "auto"}


def _describe(section: dict | None) -> str:
    if not section:
        return "(not known)"
    return ", ".join(f"{k}: {v}" for k, v in section.items())


def write_plot(path: Path, runs: list, model: str, overwrite: bool) -> Path | None:
    """Per-stage latency CDFs, one panel per network size."""
    from realtime_pose.offline.latency_benchmark import STAGES
    from realtime_pose.offline.plots import latency_cdf_png

    shown = ("preprocess", "inference", "peaks", "predict", "overhead", "total")
    panels = [
        (
            f"{run.size.width}x{run.size.height} network input",
            {name: run.stage_ns[:, STAGES.index(name)] for name in shown},
        )
        for run in runs
    ]
    return latency_cdf_png(path, panels, f"realtime-pose benchmark: {model}", overwrite)
