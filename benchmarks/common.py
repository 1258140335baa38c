"""What every benchmark shares: the machine's description, percentiles and the JSON writer."""

from __future__ import annotations

import json
import time
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from realtime_pose.machine import machine_description

RESULTS_DIR = Path(__file__).resolve().parent / "results"


def summarize_ns(samples_ns: Iterable[int] | np.ndarray, unit: str = "us") -> dict[str, float]:
    """p50 / p99 / max / mean of nanosecond samples, in ``unit`` (``us`` or ``ms``)."""
    arr = np.asarray(
        list(samples_ns) if not isinstance(samples_ns, np.ndarray) else samples_ns, dtype=np.float64
    )
    scale = {"us": 1e3, "ms": 1e6}[unit]
    arr = arr / scale
    return {
        f"p50_{unit}": round(float(np.percentile(arr, 50)), 4),
        f"p99_{unit}": round(float(np.percentile(arr, 99)), 4),
        f"max_{unit}": round(float(arr.max()), 4),
        f"mean_{unit}": round(float(arr.mean()), 4),
        "n": int(arr.size),
    }


def write_result(name: str, payload: dict, path: Path | None = None) -> Path:
    """Write ``payload`` plus the machine description and a timestamp as JSON."""
    path = path or RESULTS_DIR / f"{name}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    doc = {
        "benchmark": name,
        "created_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": machine_description(),
        **payload,
    }
    path.write_text(json.dumps(doc, indent=2) + "\n")
    return path
