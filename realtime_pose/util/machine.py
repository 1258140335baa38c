"""A description of this machine, stored with every benchmark result."""

from __future__ import annotations

import os
import platform
import sys
from importlib import metadata
from pathlib import Path

_PACKAGES = (
    "numpy",
    "numba",
    "onnxruntime",
    "onnxruntime-gpu",
    "opencv-python-headless",
    "pyzmq",
    "tensorflow",
    "tensorrt",
    "openvino",
)


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


_FEATURES = ("avx2", "avx512f", "avx512_vnni", "avx_vnni", "avx512_bf16", "amx_bf16", "amx_int8")
"""Instruction sets that decide which engine settings run fast (or at all: bf16)."""


def cpu_features() -> list[str]:
    """Which of the instruction sets that matter to inference this CPU has (Linux; empty
    elsewhere). A virtual machine often reports a generic model name, so the model alone does
    not say whether bf16 is there."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("flags"):
                flags = set(line.split(":", 1)[1].split())
                return [f for f in _FEATURES if f in flags]
    except OSError:
        pass
    return []


def cpu_key() -> str:
    """The CPU model, core count and inference instruction sets: what a speed measurement
    (and a tuned engine choice) is only valid for."""
    features = cpu_features()
    return f"{_cpu_model()} x{os.cpu_count()}" + (f" [{' '.join(features)}]" if features else "")


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
        "cpu_features": cpu_features(),
        "cores": os.cpu_count(),
        "memory_gib": mem_gib,
        "os": platform.platform(),
        "python": sys.version.split()[0],
        "packages": versions,
        "gpu": gpu,
        "hostname": platform.node(),
        "note": "shared VM: compare ratios within one run",
    }
