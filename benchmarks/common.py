"""What every benchmark shares: the machine's description, percentiles, a project's labels and
the JSON writer."""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

import numpy as np

from realtime_pose.util.machine import machine_description
from realtime_pose.util.safe_write import free_name, write_text
from realtime_pose.util.stats import Summary

RESULTS_DIR = Path(__file__).resolve().parent / "results"


def summarize_ns(samples_ns: Iterable[int] | np.ndarray, unit: str = "us") -> dict[str, float]:
    """p50 / p99 / max / mean of nanosecond samples, in ``unit`` (``us`` or ``ms``), and ``n``."""
    return Summary.of(samples_ns, unit).to_dict(suffix=True, mean=True, n=True)  # type: ignore


def add_overwrite_argument(parser: argparse.ArgumentParser) -> None:
    """``--overwrite``: let :func:`write_result` replace an existing result file."""
    parser.add_argument(
        "--overwrite",
        action="store_true",
        help="replace the result JSON if it exists (else the result goes to <name>-N.json)",
    )


def write_result(
    name: str, payload: dict, path: Path | None = None, *, overwrite: bool = False
) -> Path:
    """Write ``payload`` plus the machine description and a timestamp as JSON.

    The default path is ``benchmarks/results/<name>.json``. An existing file is never replaced
    unless ``overwrite``: the result then goes to the first free ``<stem>-N.json`` beside it and
    one line on stderr says so, so a long measurement is never lost to a name clash.
    """
    path = Path(path or RESULTS_DIR / f"{name}.json")
    if path.exists() and not overwrite:
        taken, path = path, free_name(path)
        print(f"{taken} exists: result written to {path} (--overwrite replaces)", file=sys.stderr)
    doc = {
        "benchmark": name,
        "created_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": machine_description(),
        **payload,
    }
    return write_text(path, json.dumps(doc, indent=2) + "\n", overwrite)


def project_labels(project_dir: Path, images: list[str]) -> np.ndarray | None:
    """Labels ``[N, K, 2]`` (NaN = not visible) of a DeepLabCut project's ``images``, via the
    trainer's reader; ``None`` (said why) when the trainer is not installed or the project
    cannot be read."""
    try:
        from realtime_pose.trainers.project import ProjectError, load_project
    except ImportError:
        print("no labels: the trainer (train extra) is not installed")
        return None
    try:
        project = load_project(project_dir)
        return project.keypoints[project.indices_of(images, where="benchmark")]
    except ProjectError as exc:
        print(f"no labels: {exc}")
        return None


OVERHEAD_STAGES = ("preprocess", "peaks", "predict", "process", "publish", "record")
"""The live loop's stages beyond the wait for the frame (``grab``) and the network
(``inference``): its own overhead per frame (the frame taps run in ``record``)."""


def loop_figures(samples: dict[str, np.ndarray]) -> dict:
    """A phase's per-frame figures from ``pipeline.stats.samples_since``: frames, overhead
    beyond the engine, the record stage (frame taps included), capture → publish, inference."""
    overhead = sum(samples[s] for s in OVERHEAD_STAGES)
    return {
        "frames": int(len(overhead)),
        "overhead_beyond_engine": summarize_ns(overhead),
        "record_stage_incl_taps": summarize_ns(samples["record"]),
        "capture_to_publish": summarize_ns(samples["total"]),
        "inference": summarize_ns(samples["inference"]),
    }


def compare_phases(
    phases: list[dict],
    kind: Callable[[dict], str],
    first: str,
    second: str,
    metrics: Sequence[str],
    difference: str,
) -> dict:
    """Alternated phases of two kinds (``kind(phase)`` is ``first`` or ``second``): per metric
    and p50/p99, each phase's value, the difference of the kinds' means (``difference``) and the
    spread between phases of the same kind (``spread_<kind>``), since the VM is noisy."""
    out: dict = {}
    for metric in metrics:
        for q in ("p50_us", "p99_us"):
            a = np.array([p[metric][q] for p in phases if kind(p) == first])
            b = np.array([p[metric][q] for p in phases if kind(p) == second])
            out[f"{metric}.{q}"] = {
                first: a.tolist(),
                second: b.tolist(),
                difference: round(float(b.mean() - a.mean()), 2),
                f"spread_{first}": round(float(a.max() - a.min()), 2),
                f"spread_{second}": round(float(b.max() - b.min()), 2),
            }
    return out


def time_calls(fn: Callable[[], object], repeats: int, warmup: int) -> np.ndarray:
    """``fn()`` timed ``repeats`` times (ns each, ``time.perf_counter_ns``) after ``warmup``
    untimed calls (compiled kernels, caches)."""
    for _ in range(warmup):
        fn()
    samples = np.empty(repeats, np.int64)
    for i in range(repeats):
        t0 = time.perf_counter_ns()
        fn()
        samples[i] = time.perf_counter_ns() - t0
    return samples
