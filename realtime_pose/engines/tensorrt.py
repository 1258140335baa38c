"""Native TensorRT engine (TensorRT 10 Python API + pycuda).

Deserialises an engine built by ``realtime-pose build-engine`` from the bundle's cache, and runs
it with pinned host buffers and asynchronous copies on one CUDA stream: copy the frame into the
pinned input buffer, upload, execute, download, synchronise. Install with
``pip install 'realtime-pose[gpu]'``; it needs an NVIDIA GPU.

The engine uses the CUDA primary context of ``device_id`` and makes it current in the thread
that calls :meth:`TensorRTEngine.run`, so it may be created in one thread and run in another.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from realtime_pose.engines.base import EngineError, EngineUnavailableError

log = logging.getLogger(__name__)


def _import_gpu_stack():
    try:
        import pycuda.driver as cuda
        import tensorrt as trt
    except ImportError as exc:
        raise EngineUnavailableError(
            f"the native TensorRT engine needs tensorrt and pycuda ({exc.name} is missing): "
            "pip install 'realtime-pose[gpu]' on a machine with an NVIDIA GPU"
        ) from exc
    try:
        cuda.init()
        if cuda.Device.count() == 0:
            raise EngineUnavailableError(
                "the native TensorRT engine needs an NVIDIA GPU; none found"
            )
    except cuda.Error as exc:
        raise EngineUnavailableError(f"CUDA is not usable here ({exc})") from exc
    return trt, cuda


def gpu_identity(device_id: int = 0) -> tuple[str, str]:
    """``(gpu_name, tensorrt_version)`` used to key cached engines."""
    trt, cuda = _import_gpu_stack()
    return cuda.Device(device_id).name(), trt.__version__


class TensorRTEngine:
    """Runs a serialised TensorRT engine, batch 1.

    Parameters
    ----------
    engine_path
        A serialised engine (``.engine``) built for this GPU and TensorRT version.
    input_name, output_names
        Tensor names, outputs in the order :meth:`run` returns them.
    device_id
        CUDA device index.
    input_size
        ``(height, width)`` for engines with a dynamic profile; ignored when the engine's input
        shape is fixed.
    """

    def __init__(
        self,
        engine_path: str | Path,
        input_name: str,
        output_names: list[str],
        *,
        device_id: int = 0,
        input_size: tuple[int, int] | None = None,
    ) -> None:
        trt, cuda = _import_gpu_stack()
        self._cuda = cuda
        engine_path = Path(engine_path)
        if not engine_path.is_file():
            raise EngineError(
                f"{engine_path}: no TensorRT engine; build one with "
                "`realtime-pose build-engine BUNDLE_DIR --height H --width W`"
            )
        self._ctx = cuda.Device(device_id).retain_primary_context()
        self._ctx.push()
        try:
            self._trt_logger = trt.Logger(trt.Logger.WARNING)
            runtime = trt.Runtime(self._trt_logger)
            self._engine = runtime.deserialize_cuda_engine(engine_path.read_bytes())
            if self._engine is None:
                raise EngineError(
                    f"{engine_path}: TensorRT could not deserialise the engine (built for another "
                    f"GPU or TensorRT version? this is TensorRT {trt.__version__}); rebuild it"
                )
            self._context = self._engine.create_execution_context()
            names = [self._engine.get_tensor_name(i) for i in range(self._engine.num_io_tensors)]
            missing = [n for n in [input_name, *output_names] if n not in names]
            if missing:
                raise EngineError(f"{engine_path}: tensors {missing} not in the engine ({names})")
            shape = tuple(self._engine.get_tensor_shape(input_name))
            if any(d < 0 for d in shape):
                if input_size is None:
                    raise EngineError(
                        f"{engine_path}: the engine's input is dynamic {shape}; give input_size"
                    )
                shape = (1, input_size[0], input_size[1], shape[3])
                self._context.set_input_shape(input_name, shape)
            self.fixed_input_size: tuple[int, int] | None = (int(shape[1]), int(shape[2]))
            self.input_name = input_name
            self.output_names = list(output_names)
            self._stream = cuda.Stream()
            self._host: dict[str, np.ndarray] = {}
            self._device: dict[str, object] = {}
            for name in [input_name, *output_names]:
                tshape = tuple(self._context.get_tensor_shape(name))
                dtype = trt.nptype(self._engine.get_tensor_dtype(name))
                host = cuda.pagelocked_empty(tshape, dtype)
                dev = cuda.mem_alloc(host.nbytes)
                self._host[name] = host
                self._device[name] = dev
                self._context.set_tensor_address(name, int(dev))
        finally:
            self._ctx.pop()
        log.info("TensorRT engine %s: input %s", engine_path.name, shape)

    def run(self, image: np.ndarray) -> list[np.ndarray]:
        """Run on one ``[H, W, C]`` image of the engine's input size.

        Returns views of pinned host buffers that the next call overwrites.
        """
        cuda = self._cuda
        host_in = self._host[self.input_name]
        if image.shape != host_in.shape[1:]:
            raise EngineError(
                f"TensorRT engine expects input {host_in.shape[1:]}, got {image.shape}"
            )
        self._ctx.push()
        try:
            np.copyto(host_in[0], image, casting="unsafe")
            cuda.memcpy_htod_async(self._device[self.input_name], host_in, self._stream)
            if not self._context.execute_async_v3(self._stream.handle):
                raise EngineError("TensorRT execute_async_v3 failed")
            for name in self.output_names:
                cuda.memcpy_dtoh_async(self._host[name], self._device[name], self._stream)
            self._stream.synchronize()
        finally:
            self._ctx.pop()
        return [self._host[name] for name in self.output_names]

    def warmup(self, height: int, width: int, runs: int = 3) -> None:
        """Run a few zero frames (the engine's size is fixed; ``height``/``width`` are checked)."""
        if (height, width) != self.fixed_input_size:
            raise EngineError(
                f"this TensorRT engine runs at {self.fixed_input_size}, not {(height, width)}"
            )
        image = np.zeros(self._host[self.input_name].shape[1:], self._host[self.input_name].dtype)
        for _ in range(runs):
            self.run(image)

    def close(self) -> None:
        """Free device buffers and release the CUDA context."""
        if getattr(self, "_ctx", None) is None:
            return
        self._ctx.push()
        try:
            for dev in self._device.values():
                dev.free()  # type: ignore[attr-defined]
            self._device.clear()
            self._context = None
            self._engine = None
        finally:
            self._ctx.pop()
            self._ctx.detach()
            self._ctx = None
