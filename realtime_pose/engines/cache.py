"""Where GPU engines built for a bundle are cached.

A TensorRT engine is only valid for the GPU model, the TensorRT version, the input shape and the
precision it was built with, and for the exact ``model.onnx`` it came from. All five are in the
file name, so a rig that changes any of them finds no engine (and is told to build one) rather
than loading a stale one::

    BUNDLE/engines/NVIDIA-GeForce-RTX-3080_trt10.3.0_h480w640_fp16_3f2a9c1d0b7e.engine
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Literal

from realtime_pose.bundle import Bundle
from realtime_pose.geometry import Size

Precision = Literal["fp32", "fp16", "int8"]
_PRECISIONS = ("fp32", "fp16", "int8")


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9.]+", "-", text.strip()).strip("-") or "unknown"


def engine_cache_path(
    bundle: Bundle,
    gpu_name: str,
    trt_version: str,
    size: Size,
    precision: Precision,
) -> Path:
    """The cache file of the engine for ``bundle`` on this GPU, TensorRT, shape and precision.

    Parameters
    ----------
    bundle
        The loaded bundle; engines live in :attr:`Bundle.engine_cache_dir`.
    gpu_name
        The device name as CUDA reports it (e.g. ``"NVIDIA GeForce RTX 3080"``).
    trt_version
        ``tensorrt.__version__``.
    size
        The network input size the engine is built for (its optimisation profile).
    precision
        ``"fp32"``, ``"fp16"`` or ``"int8"``.

    Returns
    -------
    pathlib.Path
        The path (the folder is not created here).
    """
    if precision not in _PRECISIONS:
        raise ValueError(f"precision must be one of {_PRECISIONS}, got {precision!r}")
    if size.width <= 0 or size.height <= 0:
        raise ValueError(f"engine input size must be positive, got {size}")
    model_id = bundle.model_sha256()[:12]
    name = (
        f"{_slug(gpu_name)}_trt{_slug(trt_version)}_h{int(size.height)}w{int(size.width)}_"
        f"{precision}_{model_id}.engine"
    )
    return bundle.engine_cache_dir / name
