"""Native TensorRT engine (TensorRT 10 Python API + pycuda).

Deserialises engines built by ``realtime-pose build-engine`` from the bundle's cache, one per
input size the loop feeds (the full frame's network size and, with cropping, the crop window's),
and runs each with pinned host buffers and asynchronous copies on one CUDA stream: copy the frame
into the pinned input buffer, upload, execute, download, synchronise. Install with
``pip install 'realtime-pose[gpu]'``; it needs an NVIDIA GPU.

The engine uses the CUDA primary context of ``device_id`` and makes it current in the thread
that calls :meth:`TensorRTEngine.run`, so it may be created in one thread and run in another.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import Field

from realtime_pose.bundle import Bundle
from realtime_pose.engines.base import EngineError, EngineOptions, EngineUnavailableError
from realtime_pose.geometry import Size
from realtime_pose.plugins import ENGINES

log = logging.getLogger(__name__)


def _import_gpu_stack(purpose: str = "the native TensorRT engine"):
    try:
        import pycuda.driver as cuda
        import tensorrt as trt
    except ImportError as exc:
        raise EngineUnavailableError(
            f"{purpose} needs tensorrt and pycuda ({exc.name} is missing): "
            "pip install 'realtime-pose[gpu]' on a machine with an NVIDIA GPU"
        ) from exc
    try:
        cuda.init()
        if cuda.Device.count() == 0:
            raise EngineUnavailableError(f"{purpose} needs an NVIDIA GPU; none found")
    except cuda.Error as exc:
        raise EngineUnavailableError(f"CUDA is not usable here ({exc})") from exc
    return trt, cuda


def gpu_identity(
    device_id: int = 0, purpose: str = "the native TensorRT engine"
) -> tuple[str, str]:
    """``(gpu_name, tensorrt_version)`` used to key cached engines."""
    trt, cuda = _import_gpu_stack(purpose)
    return cuda.Device(device_id).name(), trt.__version__


class TensorRTOptions(EngineOptions):
    """``engine: {kind: tensorrt, ...}``: engines from ``realtime-pose build-engine``."""

    precision: Literal["fp32", "fp16", "int8"] = Field(
        default="fp16", description="which cached engine to load (as built by build-engine)"
    )
    device_id: int = Field(default=0, ge=0, description="GPU index")


class _SizedEngine:
    """One deserialised engine for one input size, with its context and pinned buffers."""

    def __init__(self, trt: Any, cuda: Any, path: Path, input_name: str, outputs: list[str]):
        if not path.is_file():
            raise EngineError(
                f"{path}: no TensorRT engine; build one with "
                "`realtime-pose build-engine BUNDLE_DIR --width W --height H`"
            )
        self._trt_logger = trt.Logger(trt.Logger.WARNING)
        runtime = trt.Runtime(self._trt_logger)
        self.engine = runtime.deserialize_cuda_engine(path.read_bytes())
        if self.engine is None:
            raise EngineError(
                f"{path}: TensorRT could not deserialise the engine (built for another GPU or "
                f"TensorRT version? this is TensorRT {trt.__version__}); rebuild it"
            )
        self.context = self.engine.create_execution_context()
        names = [self.engine.get_tensor_name(i) for i in range(self.engine.num_io_tensors)]
        missing = [n for n in [input_name, *outputs] if n not in names]
        if missing:
            raise EngineError(f"{path}: tensors {missing} not in the engine ({names})")
        shape = tuple(self.engine.get_tensor_shape(input_name))
        if any(d < 0 for d in shape):
            raise EngineError(f"{path}: the engine's input is dynamic {shape}; rebuild it")
        self.size = Size(int(shape[2]), int(shape[1]))
        self.host: dict[str, np.ndarray] = {}
        self.device: dict[str, Any] = {}
        for name in [input_name, *outputs]:
            tshape = tuple(self.context.get_tensor_shape(name))
            dtype = trt.nptype(self.engine.get_tensor_dtype(name))
            host = cuda.pagelocked_empty(tshape, dtype)
            dev = cuda.mem_alloc(host.nbytes)
            self.host[name] = host
            self.device[name] = dev
            self.context.set_tensor_address(name, int(dev))

    def free(self) -> None:
        for dev in self.device.values():
            dev.free()
        self.device.clear()
        self.context = None
        self.engine = None


def engine_paths(
    bundle: Bundle, sizes: Sequence[Size], gpu_name: str, trt_version: str, precision: str
) -> dict[Size, Path]:
    """Where the cached engine for each input size is (see :mod:`realtime_pose.engines.cache`)."""
    from realtime_pose.engines.cache import engine_cache_path

    return {
        size: engine_cache_path(bundle, gpu_name, trt_version, size, precision)  # type: ignore[arg-type]
        for size in sizes
    }


@ENGINES.register("tensorrt")
class TensorRTEngine:
    """Runs serialised TensorRT engines, batch 1, one engine per input size.

    Parameters
    ----------
    engines
        ``{input size: engine file}``, each built for this GPU and TensorRT version.
    input_name, output_names
        Tensor names, outputs in the order :meth:`run` returns them.
    device_id
        CUDA device index.
    """

    Options = TensorRTOptions

    @classmethod
    def for_bundle(
        cls, bundle: Bundle, options: TensorRTOptions, input_sizes: Sequence[Size]
    ) -> TensorRTEngine:
        """The cached engines of ``bundle`` for each of ``input_sizes`` on this GPU."""
        if not input_sizes:
            raise EngineError(
                "the native TensorRT engine needs the input sizes the loop feeds (a fixed "
                "source size, or input_size in the run config)"
            )
        sizes = ", ".join(map(str, input_sizes))
        gpu_name, trt_version = gpu_identity(
            options.device_id, f"the native TensorRT engine for input sizes {sizes}"
        )
        meta = bundle.meta
        paths = engine_paths(bundle, input_sizes, gpu_name, trt_version, options.precision)
        return cls(paths, meta.input.name, meta.outputs.names(), device_id=options.device_id)

    def __init__(
        self,
        engines: Mapping[Size, str | Path],
        input_name: str,
        output_names: list[str],
        *,
        device_id: int = 0,
    ) -> None:
        if not engines:
            raise EngineError("TensorRTEngine needs at least one engine file")
        trt, cuda = _import_gpu_stack()
        self._cuda = cuda
        self.input_name = input_name
        self.output_names = list(output_names)
        self._ctx = cuda.Device(device_id).retain_primary_context()
        self._ctx.push()
        self._by_shape: dict[tuple[int, ...], _SizedEngine] = {}
        try:
            self._stream = cuda.Stream()
            for size, path in engines.items():
                sized = _SizedEngine(trt, cuda, Path(path), input_name, self.output_names)
                if sized.size != Size(*size):
                    raise EngineError(f"{path}: built for {sized.size}, not {Size(*size)}")
                self._by_shape[sized.host[input_name].shape[1:]] = sized
        except BaseException:
            for sized in self._by_shape.values():
                sized.free()
            self._ctx.pop()
            self._ctx.detach()
            raise
        self._ctx.pop()
        only = list(self._by_shape.values())
        self.fixed_input_size: Size | None = only[0].size if len(only) == 1 else None
        self.input_color: str | None = None  # the bundle's
        log.info("TensorRT engines for %s", ", ".join(str(s.size) for s in only))

    def run(self, image: np.ndarray) -> list[np.ndarray]:
        """Run on one ``[H, W, C]`` image of one of the engines' input sizes.

        Returns views of pinned host buffers that the next call overwrites.
        """
        sized = self._by_shape.get(image.shape if image.ndim == 3 else (*image.shape, 1))
        if sized is None:
            raise EngineError(
                f"no TensorRT engine for input {image.shape}; built for "
                f"{[s.size for s in self._by_shape.values()]}"
            )
        cuda = self._cuda
        host_in = sized.host[self.input_name]
        self._ctx.push()
        try:
            np.copyto(host_in[0], image.reshape(host_in.shape[1:]), casting="unsafe")
            cuda.memcpy_htod_async(sized.device[self.input_name], host_in, self._stream)
            if not sized.context.execute_async_v3(self._stream.handle):
                raise EngineError("TensorRT execute_async_v3 failed")
            for name in self.output_names:
                cuda.memcpy_dtoh_async(sized.host[name], sized.device[name], self._stream)
            self._stream.synchronize()
        finally:
            self._ctx.pop()
        return [sized.host[name] for name in self.output_names]

    def warmup(self, size: Size, runs: int = 3) -> None:
        """Run a few zero frames at ``size`` (one of the engines' sizes)."""
        match = [s for s in self._by_shape.values() if s.size == size]
        if not match:
            raise EngineError(
                f"no TensorRT engine for {size}; built for "
                f"{[str(s.size) for s in self._by_shape.values()]}"
            )
        host_in = match[0].host[self.input_name]
        image = np.zeros(host_in.shape[1:], host_in.dtype)
        for _ in range(runs):
            self.run(image)

    def close(self) -> None:
        """Free device buffers and release the CUDA context."""
        if getattr(self, "_ctx", None) is None:
            return
        self._ctx.push()
        try:
            for sized in self._by_shape.values():
                sized.free()
            self._by_shape.clear()
        finally:
            self._ctx.pop()
            self._ctx.detach()
            self._ctx = None
