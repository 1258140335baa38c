"""What every benchmark shares: the machine's description, percentiles and the JSON writer."""

from __future__ import annotations

import json
import os
import platform
import sys
import time
from collections.abc import Iterable
from importlib import metadata
from pathlib import Path

import numpy as np

RESULTS_DIR = Path(__file__).resolve().parent / "results"
_PACKAGES = (
    "numpy",
    "numba",
    "onnxruntime",
    "onnxruntime-gpu",
    "opencv-python-headless",
    "pyzmq",
    "tensorflow",
    "tensorrt",
)


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine_description() -> dict[str, object]:
    """CPU, cores, memory, OS, Python and package versions, GPU if any."""
    versions = {}
    for name in _PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    mem_gib = None
    try:
        pages = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
        mem_gib = round(pages / 2**30, 1)
    except (ValueError, OSError):
        pass
    gpu = None
    try:
        import onnxruntime as ort

        if "CUDAExecutionProvider" in ort.get_available_providers():
            gpu = "CUDA provider available"
    except ImportError:
        pass
    return {
        "cpu": _cpu_model(),
        "cores": os.cpu_count(),
        "memory_gib": mem_gib,
        "os": platform.platform(),
        "python": sys.version.split()[0],
        "packages": versions,
        "gpu": gpu,
        "hostname": platform.node(),
        "note": "shared VM: compare ratios within one run",
    }


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
