"""OpenVINO engine: Intel's runtime reads the bundle's ONNX graph directly (CPU; Intel and AMD).

For each input size the loop feeds, the model is reshaped to that static shape and compiled with
the ``LATENCY`` performance hint (one stream, batch 1), so no shape is resolved per frame; a
frame of another size compiles once more on first sight. For an RGB bundle the compiled model
takes the camera's BGR frames and reverses the channels itself (``bgr_in_graph``), so a frame
that needs no resizing or padding goes to the network without a copy. Install with
``pip install 'realtime-pose[openvino]'``.
"""

from __future__ import annotations

import functools
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


def _import_openvino() -> Any:
    try:
        import openvino
    except ImportError as exc:
        raise EngineUnavailableError(
            f"the openvino engine needs the openvino package ({exc}): "
            "pip install 'realtime-pose[openvino]'"
        ) from exc
    return openvino


@functools.cache
def shared_core() -> Any:
    """The process's one ``openvino.Core``, made on first use and kept until exit.

    One, not one per engine: each Core loads a CPU plug-in that swaps the calling thread's
    alternate signal stack for one of its own (room for AMX state) and, when destroyed, puts
    back the stack it found and unmaps its own. Cores destroyed in another order than made
    leave the thread pointing at an unmapped stack, and the next signal handled there (SIGTERM
    to switch the outputs off, Ctrl-C) kills the process with SIGSEGV: two engines dropped
    first-made-first reproduce it (``tests/engines/test_engines.py``). A single Core also loads the
    plug-in once.
    """
    return _import_openvino().Core()


class OpenVinoOptions(EngineOptions):
    """``engine: {kind: openvino, ...}``."""

    threads: int = Field(default=0, ge=0, description="inference threads (0: OpenVINO's choice)")
    hint: Literal["LATENCY", "THROUGHPUT"] = Field(
        default="LATENCY", description="OpenVINO performance hint (LATENCY: one stream, batch 1)"
    )
    precision: Literal["f32", "bf16", "f16"] = Field(
        default="f32", description="inference precision (bf16/f16 only where the CPU has them)"
    )
    pin_threads: bool = Field(default=True, description="pin inference threads to cores")
    device: str = Field(default="CPU", min_length=1, description="OpenVINO device name")
    cache: bool = Field(default=True, description="cache compiled models beside the bundle")
    bgr_in_graph: bool = Field(
        default=True,
        description="take camera (BGR) frames and reverse the channels inside the compiled "
        "model, for RGB bundles (OpenVINO folds it into the first convolution): no colour "
        "conversion pass on our side (0.5 ms a 640x480 frame)",
    )


def _reversed_channels(model: Any) -> Any:
    """``model`` taking its NHWC input with the channels reversed (BGR for an RGB network)."""
    from openvino import Layout
    from openvino.preprocess import PrePostProcessor

    ppp = PrePostProcessor(model)
    ppp.input().tensor().set_layout(Layout("NHWC"))
    ppp.input().model().set_layout(Layout("NHWC"))
    ppp.input().preprocess().reverse_channels()
    return ppp.build()


CAPABILITY = {"bf16": "BF16", "f16": "FP16"}
"""Our reduced ``precision`` values and the OpenVINO capability that says a device has them."""


def device_precisions(core: Any, device: str = "CPU") -> set[str]:
    """The precisions an OpenVINO device reports it computes natively (``"BF16"``, ...)."""
    try:
        return {str(c).upper() for c in core.get_property(device, "OPTIMIZATION_CAPABILITIES")}
    except Exception:  # an old plug-in without the property: nothing is claimed
        return set()


def reduced_precisions(device: str = "CPU") -> list[str]:
    """The reduced precisions (``bf16``, ``f16``) OpenVINO computes natively on ``device``
    here; empty when OpenVINO is not installed."""
    try:
        core = shared_core()
    except EngineUnavailableError:
        return []
    have = device_precisions(core, device)
    return [p for p, capability in CAPABILITY.items() if capability in have]


@ENGINES.register("openvino")
class OpenVinoEngine:
    """A compiled OpenVINO model per input size, batch 1.

    Parameters
    ----------
    model_path
        The ONNX graph.
    input_name, output_names
        Graph input, and the outputs in the order :meth:`run` returns them.
    options
        :class:`OpenVinoOptions`.
    input_sizes
        Sizes to compile for now (others compile when first seen).
    cache_dir
        Where OpenVINO caches compiled blobs (``None``: no cache).
    """

    Options = OpenVinoOptions

    @classmethod
    def for_bundle(
        cls, bundle: Bundle, options: OpenVinoOptions, input_sizes: Sequence[Size]
    ) -> OpenVinoEngine:
        """Compile ``bundle``'s graph for each of ``input_sizes``."""
        meta = bundle.meta
        cache = bundle.engine_cache_dir / "openvino" if options.cache else None
        return cls(
            bundle.model_path,
            meta.input.name,
            meta.outputs.names(),
            options,
            input_sizes,
            cache_dir=cache,
            channels=meta.input.channels,
            color=meta.input.color,
        )

    def __init__(
        self,
        model_path: str | Path,
        input_name: str,
        output_names: list[str],
        options: OpenVinoOptions | None = None,
        input_sizes: Sequence[Size] = (),
        *,
        cache_dir: Path | None = None,
        channels: int = 3,
        color: str = "RGB",
    ) -> None:
        self.options = options or OpenVinoOptions()
        self.input_name = input_name
        self.output_names = list(output_names)
        self._channels = channels
        self._core = shared_core()
        if self.options.device not in self._core.available_devices:
            raise EngineUnavailableError(
                f"OpenVINO device {self.options.device!r} is not available here; "
                f"devices: {self._core.available_devices}"
            )
        try:
            self._model = self._core.read_model(str(model_path))
        except Exception as exc:  # OpenVINO raises its own RuntimeError subclasses
            raise EngineError(f"{model_path}: OpenVINO cannot read the graph ({exc})") from exc
        self._check_precision()
        names = {o.get_any_name() for o in self._model.outputs}
        missing = [n for n in self.output_names if n not in names]
        if missing:
            raise EngineError(f"{model_path}: outputs {missing} not in the graph ({sorted(names)})")
        self._config = {
            "PERFORMANCE_HINT": self.options.hint,
            "INFERENCE_PRECISION_HINT": self.options.precision,
            "ENABLE_CPU_PINNING": self.options.pin_threads,
        }
        if self.options.threads:
            self._config["INFERENCE_NUM_THREADS"] = self.options.threads
        if cache_dir is not None:  # per compiled model: the Core is shared by every bundle
            cache_dir.mkdir(parents=True, exist_ok=True)
            self._config["CACHE_DIR"] = str(cache_dir)
        self._requests: dict[tuple[int, ...], tuple[Any, list[Any]]] = {}
        self.fixed_input_size: Size | None = None
        self._reverse = self.options.bgr_in_graph and color == "RGB" and channels == 3
        self.input_color: str | None = "BGR" if self._reverse else None
        for size in input_sizes:
            self._request_for((1, size.height, size.width, channels))

    def _check_precision(self) -> None:
        """Refuse a reduced precision the device cannot compute (OpenVINO would quietly run
        fp32 instead, and a tuned choice would not be what it says)."""
        wanted = self.options.precision
        if wanted == "f32":
            return
        have = device_precisions(self._core, self.options.device)
        if CAPABILITY[wanted] not in have:
            raise EngineUnavailableError(
                f"OpenVINO {self.options.device} here cannot compute {wanted} "
                f"(its precisions: {', '.join(sorted(have)) or 'none reported'}); use "
                "precision: f32"
            )

    def _request_for(self, shape: tuple[int, ...]) -> tuple[Any, list[Any]]:
        found = self._requests.get(shape)
        if found is not None:
            return found
        model = self._model.clone()
        try:
            model.reshape({self.input_name: list(shape)})
            if self._reverse:
                model = _reversed_channels(model)
            compiled = self._core.compile_model(model, self.options.device, self._config)
        except Exception as exc:
            raise EngineError(
                f"OpenVINO cannot compile the graph for input {shape}: {exc}"
            ) from exc
        outputs = [compiled.output(name) for name in self.output_names]
        found = (compiled.create_infer_request(), outputs)
        self._requests[shape] = found
        log.debug("OpenVINO compiled for %s", shape)
        return found

    def run(self, image: np.ndarray) -> list[np.ndarray]:
        """Run on one ``[H, W, C]`` image (batch axis added as a view)."""
        batch = image[np.newaxis] if image.ndim == 3 else image[np.newaxis, :, :, np.newaxis]
        request, outputs = self._request_for(batch.shape)
        request.infer({0: batch}, share_inputs=True)
        return [request.get_tensor(port).data for port in outputs]

    def warmup(self, size: Size, runs: int = 3) -> None:
        """Compile (if needed) and run a few zero images at ``size``."""
        image = np.zeros((*size.shape, self._channels), np.uint8)
        for _ in range(runs):
            self.run(image)

    def close(self) -> None:
        """Drop the compiled models and requests."""
        self._requests.clear()
