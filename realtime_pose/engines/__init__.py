"""Inference engines behind one interface (:class:`~realtime_pose.engines.base.Engine`).

``open_engine(bundle, config)`` picks the backend named in the run config: ONNX Runtime (CPU,
CUDA or TensorRT execution providers) or a native TensorRT engine from the bundle's cache.
Adding a backend is one new module plus one branch here.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from realtime_pose.bundle import Bundle
from realtime_pose.engines.base import Engine, EngineError, EngineUnavailableError


class EngineConfig(BaseModel):
    """``engine:`` section of a run config."""

    model_config = ConfigDict(extra="forbid")

    backend: Literal["onnxruntime", "tensorrt"] = "onnxruntime"
    provider: Literal["cpu", "cuda", "tensorrt"] = Field(
        default="cpu", description="ONNX Runtime execution provider"
    )
    threads: int = Field(default=0, ge=0, description="intra-op threads (0 = one per core)")
    spinning: bool = Field(default=True, description="spin idle ORT threads (lower latency)")
    spin_duration_us: int | None = Field(
        default=None,
        ge=0,
        description="how long idle ORT threads spin before they sleep, in µs (None: ONNX "
        "Runtime's default, well under a frame period); a frame period or more keeps them "
        "spinning between frames, at the cost of the cores they run on",
    )
    sequential: bool = True
    precision: Literal["fp32", "fp16", "int8"] = Field(
        default="fp16", description="GPU precision (TensorRT provider and native engine)"
    )
    device_id: int = Field(default=0, ge=0)
    warmup_runs: int = Field(default=5, ge=0)


def open_engine(
    bundle: Bundle, config: EngineConfig | None = None, input_size: tuple[int, int] | None = None
) -> Engine:
    """Create the engine ``config`` asks for, for ``bundle``.

    Parameters
    ----------
    bundle
        The loaded model bundle.
    config
        Engine settings (defaults: ONNX Runtime on the CPU).
    input_size
        ``(height, width)`` the live loop will feed, if known (pins GPU engine shapes).
    """
    config = config or EngineConfig()
    meta = bundle.meta
    size = meta.input.fixed_size or input_size
    if config.backend == "onnxruntime":
        from realtime_pose.engines.onnxruntime import OrtEngine

        return OrtEngine(
            bundle.model_path,
            meta.input.name,
            meta.outputs.names(),
            provider=config.provider,
            threads=config.threads,
            spinning=config.spinning,
            spin_duration_us=config.spin_duration_us,
            sequential=config.sequential,
            fp16=config.precision == "fp16",
            device_id=config.device_id,
            cache_dir=bundle.engine_cache_dir / "ort-trt",
            fixed_input_size=size,
            channels=meta.input.channels,
        )
    from realtime_pose.engines.tensorrt import TensorRTEngine, gpu_identity

    if size is None:
        raise EngineError(
            "the native TensorRT engine needs a fixed input size: set source size or "
            "engine input size in the run config"
        )
    gpu_name, trt_version = gpu_identity(config.device_id)  # fails clearly without a GPU stack
    from realtime_pose.engines.cache import engine_cache_path

    path: Path = engine_cache_path(
        bundle, gpu_name, trt_version, size[0], size[1], config.precision
    )
    return TensorRTEngine(
        path, meta.input.name, meta.outputs.names(), device_id=config.device_id, input_size=size
    )


__all__ = ["Engine", "EngineConfig", "EngineError", "EngineUnavailableError", "open_engine"]
