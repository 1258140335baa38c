"""ONNX bundle → TensorRT engine for the local GPU (TensorRT 10 Python API).

The engine is built for one input size (an optimisation profile fixed at one
:class:`~realtime_pose.geometry.Size`, the size the live loop feeds after cropping and resizing;
a loop that feeds two sizes, a crop window and the full frame, uses one engine for each) and one
precision, and saved in the bundle's engine cache under
:func:`realtime_pose.engines.cache.engine_cache_path`, where the native TensorRT engine looks
for it. A JSON file beside it records how it was built and, when ONNX Runtime is available, how
far its keypoints are from the ONNX graph's on a few frames.

INT8 uses TensorRT's entropy calibration (``IInt8EntropyCalibrator2``) over training frames
resized to the engine's input size; the calibration table is cached beside the engine.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np

from realtime_pose.bundle import Bundle
from realtime_pose.exporters.frames import bundle_frames
from realtime_pose.geometry import Size
from realtime_pose.util.safe_write import write_text

log = logging.getLogger(__name__)

Precision = Literal["fp32", "fp16", "int8"]


class EngineBuildError(RuntimeError):
    """TensorRT could not parse or build the network; the message carries TensorRT's errors."""


@dataclass(frozen=True)
class EngineBuild:
    """A built engine: where it is and how it was made."""

    path: Path
    precision: Precision
    size: Size
    gpu_name: str
    trt_version: str
    build_s: float
    info: dict[str, Any]


def _resize(frame: np.ndarray, size: Size) -> np.ndarray:
    import cv2

    if Size.of(frame) == size:
        return np.ascontiguousarray(frame)
    return cv2.resize(frame, size, interpolation=cv2.INTER_AREA)


def _make_calibrator(trt: Any, cuda: Any, frames: list[np.ndarray], cache_file: Path) -> Any:
    class FrameCalibrator(trt.IInt8EntropyCalibrator2):
        """Feeds uint8 RGB frames (batch 1) to TensorRT's entropy calibration."""

        def __init__(self) -> None:
            trt.IInt8EntropyCalibrator2.__init__(self)
            self._frames = [np.ascontiguousarray(f[None]) for f in frames]
            self._index = 0
            self._device = cuda.mem_alloc(self._frames[0].nbytes)

        def get_batch_size(self) -> int:
            return 1

        def get_batch(self, names: list[str]) -> list[int] | None:
            if self._index >= len(self._frames):
                return None
            cuda.memcpy_htod(self._device, self._frames[self._index])
            self._index += 1
            return [int(self._device)]

        def read_calibration_cache(self) -> bytes | None:
            return cache_file.read_bytes() if cache_file.is_file() else None

        def write_calibration_cache(self, cache: Any) -> None:
            cache_file.parent.mkdir(parents=True, exist_ok=True)
            cache_file.write_bytes(bytes(cache))

    return FrameCalibrator()


def _engine_parity(
    bundle: Bundle, path: Path, size: Size, frames: list[np.ndarray]
) -> dict[str, Any]:
    """Keypoints of the engine vs ONNX Runtime on the CPU (the reference graph)."""
    from realtime_pose.engines.tensorrt import TensorRTEngine
    from realtime_pose.exporters.parity import check_parity, ort_network

    meta = bundle.meta
    names = meta.outputs.names()
    engine = TensorRTEngine({size: path}, meta.input.name, names)
    try:

        def run_engine(frame: np.ndarray) -> dict[str, np.ndarray]:
            return {n: np.array(o[0]) for n, o in zip(names, engine.run(frame), strict=True)}

        report = check_parity(
            ort_network(str(bundle.model_path)),
            run_engine,
            [_resize(f, size) for f in frames],
            stride=meta.stride,
            locref_stdev=meta.locref_stdev,
            raw_tolerance=None,
            tolerance_px=None,
            source="bundle frames",
        )
    finally:
        engine.close()
    return report.to_dict()


def _refuse_onnxruntime_int8(bundle: Bundle) -> None:
    """Refuse a bundle quantised for ONNX Runtime on the CPU (TensorRT cannot take its QDQ)."""
    if bundle.meta.provenance.get("quantization"):
        raise ValueError(
            f"{bundle.root}: this is an ONNX Runtime int8 bundle for the CPU (asymmetric uint8 "
            "QDQ, which TensorRT does not take); build the engine from the fp32 bundle, with "
            "--int8 for TensorRT's own calibration"
        )


def _engine_size(bundle: Bundle, size: Size | None) -> Size:
    """The engine's input size: ``size``, else the bundle's fixed size (``size`` must fit it)."""
    fixed = bundle.meta.input.fixed_size
    if size is None:
        if fixed is None:
            raise ValueError(
                f"{bundle.root}: the bundle's input size is dynamic; give the size the live loop "
                "feeds (--width W --height H)"
            )
        return fixed
    if fixed is not None and fixed != size:
        raise ValueError(f"{bundle.root}: the graph only accepts {fixed} input, not {size}")
    return size


def _parse_onnx(trt: Any, logger: Any, model_path: Path) -> tuple[Any, Any, Any]:
    """TensorRT's builder, the network parsed from ``model_path`` and the parser that made it."""
    builder = trt.Builder(logger)
    network = builder.create_network(0)  # explicit batch is the only mode in TensorRT 10
    parser = trt.OnnxParser(network, logger)
    if not parser.parse_from_file(str(model_path)):
        errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
        raise EngineBuildError(f"{model_path}: TensorRT cannot parse the graph: {errors}")
    return builder, network, parser


def _fixed_size_config(
    trt: Any, builder: Any, bundle: Bundle, size: Size, workspace_bytes: int
) -> tuple[Any, Any, tuple[int, ...]]:
    """A builder config with one optimisation profile fixed at ``size``, the profile, the shape."""
    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, workspace_bytes)
    input_name = bundle.meta.input.name
    shape = (1, *size.shape, bundle.meta.input.channels)
    profile = builder.create_optimization_profile()
    profile.set_shape(input_name, shape, shape, shape)
    config.add_optimization_profile(profile)
    return config, profile, shape


def _calibration_frames(
    bundle: Bundle, size: Size, images: Sequence[np.ndarray] | None, limit: int
) -> tuple[list[np.ndarray], str]:
    """INT8 calibration frames at the engine's input size, and where they came from."""
    if images is None:
        frames, source = bundle_frames(bundle, "train", limit)
    else:
        frames, source = list(images), "given images"
    if not frames:
        raise ValueError("int8 calibration needs at least one frame")
    return [_resize(f, size) for f in frames], source


def _build_and_save(
    trt: Any,
    cuda: Any,
    bundle: Bundle,
    path: Path,
    size: Size,
    precision: Precision,
    gpu_name: str,
    workspace_bytes: int,
    calibration_images: Sequence[np.ndarray] | None,
    max_calibration_frames: int,
) -> dict[str, Any]:
    """Build the engine, write it to ``path`` and return how it was built."""
    logger = trt.Logger(trt.Logger.WARNING)
    # the parser owns the network's weights: it must live until the engine is built
    builder, network, _parser = _parse_onnx(trt, logger, bundle.model_path)
    config, profile, shape = _fixed_size_config(trt, builder, bundle, size, workspace_bytes)
    info: dict[str, Any] = {"input_shape": list(shape)}
    if precision in ("fp16", "int8"):
        if not getattr(builder, "platform_has_fast_fp16", True):
            log.warning("%s has no fast fp16; TensorRT may stay in fp32", gpu_name)
        config.set_flag(trt.BuilderFlag.FP16)
    calibrator = None
    if precision == "int8":
        if not getattr(builder, "platform_has_fast_int8", True):
            log.warning("%s has no fast int8; the engine may not be faster", gpu_name)
        frames, source = _calibration_frames(
            bundle, size, calibration_images, max_calibration_frames
        )
        cache_file = path.with_suffix(".calib")
        cache_file.unlink(missing_ok=True)  # a new build calibrates afresh
        calibrator = _make_calibrator(trt, cuda, frames, cache_file)
        config.set_flag(trt.BuilderFlag.INT8)
        config.int8_calibrator = calibrator
        config.set_calibration_profile(profile)
        info["calibration"] = {
            "method": "IInt8EntropyCalibrator2",
            "frames": len(frames),
            "source": source,
        }
    serialized = builder.build_serialized_network(network, config)
    if serialized is None:
        raise EngineBuildError(
            f"{bundle.model_path}: TensorRT failed to build a {precision} engine at "
            f"{size} (see TensorRT's messages above)"
        )
    tmp = path.with_suffix(".engine.partial")
    tmp.write_bytes(bytes(serialized))
    tmp.replace(path)
    return info


def _build_facts(
    bundle: Bundle, gpu_name: str, trt_version: str, precision: Precision, build_s: float
) -> dict[str, Any]:
    """What the engine's JSON records about the build besides its input and calibration."""
    return {
        "bundle": bundle.meta.name,
        "model_sha256": bundle.model_sha256(),
        "gpu": gpu_name,
        "tensorrt": trt_version,
        "precision": precision,
        "build_s": round(build_s, 2),
    }


def build_engine(
    bundle: Bundle,
    *,
    size: Size | None = None,
    precision: Precision = "fp16",
    calibration_images: Sequence[np.ndarray] | None = None,
    max_calibration_frames: int = 64,
    workspace_bytes: int = 1 << 30,
    device_id: int = 0,
    check: bool = True,
) -> EngineBuild:
    """Build (or rebuild) the TensorRT engine of ``bundle`` for the local GPU.

    Parameters
    ----------
    bundle
        A loaded bundle; its ``model.onnx`` is parsed by TensorRT's ONNX parser.
    size
        Network input size; default the bundle's fixed size (required when it has none).
    precision
        ``"fp32"``, ``"fp16"`` (TensorRT may keep layers in fp32 where faster) or ``"int8"``
        (entropy calibration; fp16 allowed as a fallback per layer).
    calibration_images
        RGB uint8 frames for INT8; default up to ``max_calibration_frames`` training-split
        frames of the bundle's project, else synthetic frames.
    workspace_bytes
        TensorRT's workspace memory limit.
    device_id
        CUDA device.
    check
        Run the engine once built and record its keypoint difference from ONNX Runtime.

    Raises
    ------
    realtime_pose.engines.base.EngineUnavailableError
        When tensorrt, pycuda or an NVIDIA GPU is missing (one line, says what to install).
    EngineBuildError
        When TensorRT cannot parse or build the graph.
    """
    from realtime_pose.engines.cache import engine_cache_path
    from realtime_pose.engines.tensorrt import _import_gpu_stack

    _refuse_onnxruntime_int8(bundle)
    trt, cuda = _import_gpu_stack()
    size = _engine_size(bundle, size)
    if precision not in ("fp32", "fp16", "int8"):
        raise ValueError(f"precision must be fp32, fp16 or int8, got {precision!r}")

    device = cuda.Device(device_id)
    gpu_name = device.name()
    path = engine_cache_path(bundle, gpu_name, trt.__version__, size, precision)
    path.parent.mkdir(parents=True, exist_ok=True)
    ctx = device.retain_primary_context()
    ctx.push()
    t0 = time.perf_counter()
    try:
        info = _build_and_save(
            trt,
            cuda,
            bundle,
            path,
            size,
            precision,
            gpu_name,
            workspace_bytes,
            calibration_images,
            max_calibration_frames,
        )
    finally:
        ctx.pop()
    build_s = time.perf_counter() - t0
    info.update(_build_facts(bundle, gpu_name, trt.__version__, precision, build_s))
    if check:
        frames, _ = bundle_frames(bundle, "test", 4)
        info["vs_onnxruntime"] = _engine_parity(bundle, path, size, frames)
    # the engine's description goes with the engine it describes (a rebuilt cache entry)
    write_text(path.with_suffix(".json"), json.dumps(info, indent=2) + "\n", overwrite=True)
    log.info("built %s in %.1f s", path, build_s)
    return EngineBuild(path, precision, size, gpu_name, trt.__version__, build_s, info)
