"""What every benchmark shares: the machine's description, percentiles and the JSON writer."""

from __future__ import annotations

import json
import time
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from realtime_pose.machine import machine_description
from realtime_pose.stats import Summary

RESULTS_DIR = Path(__file__).resolve().parent / "results"


def summarize_ns(samples_ns: Iterable[int] | np.ndarray, unit: str = "us") -> dict[str, float]:
    """p50 / p99 / max / mean of nanosecond samples, in ``unit`` (``us`` or ``ms``), and ``n``."""
    return Summary.of(samples_ns, unit).to_dict(suffix=True, mean=True, n=True)  # type: ignore


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
