"""ONNX Runtime engine: CPU, CUDA and TensorRT execution providers behind one class."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import Field

from realtime_pose.bundle import Bundle
from realtime_pose.engines.base import EngineError, EngineOptions, EngineUnavailableError
from realtime_pose.geometry import Size
from realtime_pose.plugins import ENGINES

log = logging.getLogger(__name__)

Provider = Literal["cpu", "cuda", "tensorrt", "xnnpack"]

_ORT_NAMES = {
    "cpu": "CPUExecutionProvider",
    "cuda": "CUDAExecutionProvider",
    "tensorrt": "TensorrtExecutionProvider",
    "xnnpack": "XnnpackExecutionProvider",
}


def trt_profile(input_name: str, channels: int, sizes: Sequence[Size]) -> dict[str, str]:
    """TensorRT execution provider options for one optimisation profile covering ``sizes``.

    The profile spans the smallest to the largest size (per axis) and is tuned for the first
    one, so a loop that feeds a crop window and the full frame needs no engine rebuild.
    """
    if not sizes:
        return {}

    def shape(size: Size) -> str:
        return f"{input_name}:1x{size.height}x{size.width}x{channels}"

    smallest = Size(min(s.width for s in sizes), min(s.height for s in sizes))
    largest = Size(max(s.width for s in sizes), max(s.height for s in sizes))
    return {
        "trt_profile_min_shapes": shape(smallest),
        "trt_profile_opt_shapes": shape(sizes[0]),
        "trt_profile_max_shapes": shape(largest),
    }


def _provider_list(
    provider: Provider,
    device_id: int,
    fp16: bool,
    cache_dir: Path | None,
    profile: dict[str, str],
) -> list[tuple[str, dict]]:
    """The provider chain with options; GPU chains keep CPU last for unsupported nodes."""
    cuda = ("CUDAExecutionProvider", {"device_id": device_id, "cudnn_conv_algo_search": "DEFAULT"})
    cpu = ("CPUExecutionProvider", {})
    if provider == "cpu":
        return [cpu]
    if provider == "cuda":
        return [cuda, cpu]
    if provider == "xnnpack":
        return [("XnnpackExecutionProvider", {}), cpu]
    trt_opts: dict[str, object] = {
        "device_id": device_id,
        "trt_fp16_enable": fp16,
        "trt_max_workspace_size": 2 << 30,
    }
    if cache_dir is not None:
        cache_dir.mkdir(parents=True, exist_ok=True)
        trt_opts.update(
            trt_engine_cache_enable=True,
            trt_engine_cache_path=str(cache_dir),
            trt_timing_cache_enable=True,
            trt_timing_cache_path=str(cache_dir),
        )
    trt_opts.update(profile)  # the live shapes: no engine rebuild per frame
    return [("TensorrtExecutionProvider", trt_opts), cuda, cpu]


def _check_provider(provider: Provider, profile: dict[str, str], input_sizes: list[Size]) -> None:
    """Raise if ``provider`` is unknown or this onnxruntime lacks it (naming what to install)."""
    import onnxruntime as ort

    if provider not in _ORT_NAMES:
        raise EngineError(f"engine.provider must be one of {sorted(_ORT_NAMES)}, got {provider!r}")
    available = ort.get_available_providers()
    if _ORT_NAMES[provider] in available:
        return
    package = "onnxruntime-gpu (pip install 'realtime-pose[gpu]')"
    if provider == "tensorrt":
        package += " and the TensorRT libraries"
    elif provider == "xnnpack":
        package = "an onnxruntime built with XNNPACK (the PyPI CPU wheel has none)"
    shapes = ""
    if profile:
        shapes = f" (for input sizes {', '.join(map(str, input_sizes))})"
    raise EngineUnavailableError(
        f"ONNX Runtime provider '{provider}'{shapes} is not available: it needs "
        f"{package}; this onnxruntime {ort.__version__} has {available}"
    )


def _session_options(
    *,
    threads: int,
    spinning: bool,
    spin_duration_us: int | None,
    sequential: bool,
    denormal_as_zero: bool,
    cpu_arena: bool,
    spin_after_run: bool = True,
) -> Any:
    """ONNX Runtime session options for batch-1 latency (see :class:`OrtEngine`)."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    opts.intra_op_num_threads = max(0, int(threads))
    opts.inter_op_num_threads = 1
    opts.execution_mode = (
        ort.ExecutionMode.ORT_SEQUENTIAL if sequential else ort.ExecutionMode.ORT_PARALLEL
    )
    opts.add_session_config_entry("session.intra_op.allow_spinning", "1" if spinning else "0")
    if spinning and spin_duration_us is not None:
        opts.add_session_config_entry(
            "session.intra_op.spin_duration_us", str(max(1, int(spin_duration_us)))
        )
    if spinning and not spin_after_run:
        opts.add_session_config_entry("session.force_spinning_stop", "1")
    opts.log_severity_level = 3
    opts.enable_cpu_mem_arena = cpu_arena
    if denormal_as_zero:
        opts.add_session_config_entry("session.set_denormal_as_zero", "1")
    return opts


def _open_session(model_path: str | Path, opts: Any, providers: list[tuple[str, dict]]) -> Any:
    """An ``InferenceSession`` on ``model_path``; :class:`EngineError` if ORT cannot make one."""
    import onnxruntime as ort

    try:
        return ort.InferenceSession(
            str(model_path),
            opts,
            providers=[p for p, _ in providers],
            provider_options=[o for _, o in providers],
        )
    except Exception as exc:  # ORT raises its own exception types
        raise EngineError(f"{model_path}: ONNX Runtime could not create a session ({exc})") from exc


class OrtOptions(EngineOptions):
    """``engine: {kind: onnxruntime, ...}``."""

    provider: Provider = Field(default="cpu", description="ONNX Runtime execution provider")
    threads: int = Field(default=0, ge=0, description="intra-op threads (0 = one per core)")
    spinning: bool = Field(default=True, description="spin idle ORT threads (lower latency)")
    spin_duration_us: int | None = Field(
        default=None,
        ge=0,
        description="how long idle ORT threads spin before they sleep, in µs (None: ONNX "
        "Runtime's default, well under a frame period); a frame period or more keeps them "
        "spinning between frames, at the cost of the cores they run on",
    )
    spin_after_run: bool = Field(
        default=True,
        description="let idle ORT threads go on spinning once a run has returned; false: they "
        "spin only inside a run and stop the moment it returns (ORT's "
        "session.force_spinning_stop), so between frames the cores are free for the camera, "
        "the outputs and the stream",
    )
    sequential: bool = Field(default=True, description="sequential execution (best at batch 1)")
    precision: Literal["fp32", "fp16"] = Field(
        default="fp16", description="GPU precision of the TensorRT provider"
    )
    device_id: int = Field(default=0, ge=0, description="GPU index (cuda, tensorrt)")
    denormal_as_zero: bool = Field(
        default=False, description="flush denormal floats to zero (faster on some CPUs)"
    )
    cpu_arena: bool = Field(default=True, description="ONNX Runtime's CPU memory arena")


@ENGINES.register("onnxruntime")
class OrtEngine:
    """ONNX Runtime session tuned for batch-1 latency.

    Parameters
    ----------
    model_path
        The ONNX graph.
    input_name, output_names
        Graph input, and the outputs to fetch in the order :meth:`run` returns them.
    provider
        ``"cpu"``, ``"cuda"`` (needs onnxruntime-gpu) or ``"tensorrt"`` (ORT's TensorRT execution
        provider; needs onnxruntime-gpu and TensorRT libraries).
    threads
        Intra-op threads (0: ONNX Runtime's default, one per physical core).
    spinning
        Let idle worker threads spin before they sleep: lower latency, more CPU.
    spin_duration_us
        How long they spin (``None``: ONNX Runtime's default). Longer than the gap between
        frames keeps the workers (and the cores under them) awake from frame to frame.
    spin_after_run
        ``False``: the workers spin only inside a run and stop as it returns.
    sequential
        Sequential execution mode (best for batch 1; parallel only helps branching graphs).
    fp16
        TensorRT provider only: allow FP16 kernels.
    device_id
        GPU index for the CUDA and TensorRT providers.
    denormal_as_zero, cpu_arena
        CPU settings: flush denormals to zero; use ONNX Runtime's memory arena.
    cache_dir
        TensorRT provider only: where built engines and timing caches are kept.
    input_sizes
        The network input sizes the live loop will feed, if known; they make the TensorRT
        provider's optimisation profile.
    channels
        Input channels (3 for RGB/BGR, 1 for gray), for the TensorRT profile.
    """

    Options = OrtOptions

    @classmethod
    def for_bundle(
        cls, bundle: Bundle, options: OrtOptions, input_sizes: Sequence[Size]
    ) -> OrtEngine:
        """An ORT session on ``bundle.model_path`` with ``options``."""
        meta = bundle.meta
        return cls(
            bundle.model_path,
            meta.input.name,
            meta.outputs.names(),
            provider=options.provider,
            threads=options.threads,
            spinning=options.spinning,
            spin_duration_us=options.spin_duration_us,
            spin_after_run=options.spin_after_run,
            sequential=options.sequential,
            fp16=options.precision == "fp16",
            device_id=options.device_id,
            denormal_as_zero=options.denormal_as_zero,
            cpu_arena=options.cpu_arena,
            cache_dir=bundle.engine_cache_dir / "ort-trt",
            input_sizes=input_sizes,
            channels=meta.input.channels,
        )

    def __init__(
        self,
        model_path: str | Path,
        input_name: str,
        output_names: list[str],
        *,
        provider: Provider = "cpu",
        threads: int = 0,
        spinning: bool = True,
        spin_duration_us: int | None = None,
        spin_after_run: bool = True,
        sequential: bool = True,
        fp16: bool = True,
        device_id: int = 0,
        denormal_as_zero: bool = False,
        cpu_arena: bool = True,
        cache_dir: str | Path | None = None,
        input_sizes: Sequence[Size] = (),
        channels: int = 3,
    ) -> None:
        """Open the session on ``model_path`` and check it runs on ``provider``."""
        input_sizes = list(input_sizes)
        profile = trt_profile(input_name, channels, input_sizes) if provider == "tensorrt" else {}
        _check_provider(provider, profile, input_sizes)
        wanted = _ORT_NAMES[provider]
        opts = _session_options(
            threads=threads,
            spinning=spinning,
            spin_duration_us=spin_duration_us,
            spin_after_run=spin_after_run,
            sequential=sequential,
            denormal_as_zero=denormal_as_zero,
            cpu_arena=cpu_arena,
        )
        providers = _provider_list(
            provider, device_id, fp16, Path(cache_dir) if cache_dir else None, profile
        )
        self._session = _open_session(model_path, opts, providers)
        active = self._session.get_providers()
        if active[0] != wanted:
            raise EngineUnavailableError(
                f"ONNX Runtime fell back to {active[0]} instead of {wanted} (is a GPU visible and "
                "are CUDA/cuDNN/TensorRT libraries on the library path?)"
            )
        self.provider: Provider = provider
        self.input_name = input_name
        self.output_names = list(output_names)
        self.fixed_input_size: Size | None = None
        self.input_color: str | None = None  # the bundle's
        self._warm_shapes: set[tuple[int, ...]] = set()
        self._binding = None if provider == "cpu" else self._bind_outputs_to_host()
        log.debug("ORT session on %s (threads=%s, spinning=%s)", active, threads, spinning)

    def _bind_outputs_to_host(self) -> Any:
        """An I/O binding that fetches every output into host memory."""
        # I/O binding: ORT copies the input to the device once and the outputs back once,
        # with no per-call allocation of output buffers on the host side.
        binding = self._session.io_binding()
        for name in self.output_names:
            binding.bind_output(name, "cpu")
        return binding

    def run(self, image: np.ndarray) -> list[np.ndarray]:
        """Run on one ``[H, W, C]`` image (batch axis added as a view)."""
        batch = image[np.newaxis] if image.ndim == 3 else image[np.newaxis, :, :, np.newaxis]
        if self._binding is None:
            return self._session.run(self.output_names, {self.input_name: batch})
        self._binding.bind_cpu_input(self.input_name, batch)
        self._session.run_with_iobinding(self._binding)
        return self._binding.copy_outputs_to_cpu()

    def warmup(self, size: Size, runs: int = 3) -> None:
        """Run a few zero images at ``size`` (first runs at a new shape are slow)."""
        inp = self._session.get_inputs()[0]
        channels = inp.shape[3] if isinstance(inp.shape[3], int) else 3
        dtype = np.uint8 if "uint8" in inp.type else np.float32
        image = np.zeros((*size.shape, channels), dtype=dtype)
        for _ in range(runs):
            self.run(image)
        self._warm_shapes.add(image.shape)

    def is_warm(self, size: Size) -> bool:
        """Whether :meth:`warmup` has run at this size."""
        return any(s[:2] == size.shape for s in self._warm_shapes)

    def close(self) -> None:
        """Drop the session (ONNX Runtime frees it with the last reference)."""
        self._binding = None
        self._session = None  # type: ignore[assignment]
