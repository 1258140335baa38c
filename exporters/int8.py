"""CPU int8: ONNX Runtime static quantisation (QDQ) calibrated on training frames.

The fp32 graph is first run through ``quant_pre_process`` (shape inference and graph
optimisation, so Conv+BatchNorm+ReLU fuse before quantisation), then ``quantize_static`` inserts
QuantizeLinear/DequantizeLinear pairs: uint8 activations, int8 weights, per output channel.
ONNX Runtime's CPU provider turns each Q→Conv→DQ into an integer convolution (VNNI where the
CPU has it).

The input ``Cast`` (uint8 → float) and normalisation stay in float; with ``keep_heads_fp32`` the
two output convolutions stay in float too, so the score maps and the location refinement are
not rounded to 256 levels (the refinement scales by ``locref_stdev`` ≈ 7 px, where one uint8
step is already a sizeable fraction of a pixel).

:func:`held_out_change` judges an int8 graph the way a user would: both graphs as bundles,
evaluated against the project's labelled held-out frames in original-frame pixels; the exporter
makes int8 the bundle's model only when it loses no more than the stated tolerance.
"""

from __future__ import annotations

import contextlib
import logging
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np

from realtime_pose.bundle import Bundle, load_bundle, write_bundle
from realtime_pose.exporters.frames import load_frames
from realtime_pose.exporters.parity import check_parity, ort_network
from realtime_pose.exporters.provenance import tool_versions
from realtime_pose.exporters.staging import check_target, staged_folder
from realtime_pose.offline.precision import DEFAULT_PRECISION_TOLERANCE_PX, accuracy_verdict

log = logging.getLogger(__name__)

CalibrationMethod = Literal["minmax", "percentile", "entropy"]
#: The default calibration. Measured on the openfield network's 20 held-out frames
#: (benchmarks/results/int8.json): int8 adds 0.094 px of mean error with percentile (99.999 %),
#: 0.137 px with minmax; keeping the first convolution in float made both worse (0.151, 0.164).
#: ONNX Runtime's ``quantize_static`` runs its entropy calibrator with 128 histogram bins for
#: 128 quantised bins, which leaves a single candidate threshold, the full range: "entropy"
#: gave exactly minmax's graph there.
DEFAULT_CALIBRATION: CalibrationMethod = "percentile"


def _calibration_reader(input_name: str, frames: Sequence[np.ndarray]) -> Any:
    from onnxruntime.quantization import CalibrationDataReader

    class FrameReader(CalibrationDataReader):
        """Feeds each frame once, batch 1."""

        def __init__(self) -> None:
            self._it: Iterator[np.ndarray] = iter(frames)

        def get_next(self) -> dict[str, np.ndarray] | None:
            frame = next(self._it, None)
            return None if frame is None else {input_name: np.ascontiguousarray(frame[None])}

        def rewind(self) -> None:
            self._it = iter(frames)

    return FrameReader()


def _has_sympy() -> bool:
    """ORT's symbolic shape inference needs sympy; ONNX's own shape inference is enough for
    these convolutional graphs when it is absent."""
    import importlib.util

    return importlib.util.find_spec("sympy") is not None


def _first_conv(model: Any) -> list[str]:
    """The name of the first convolution in the (topologically sorted) graph, as a list."""
    first = next((n for n in model.graph.node if n.op_type == "Conv"), None)
    return [first.name] if first is not None else []


def _head_nodes(model: Any) -> list[str]:
    """Names of the nodes whose outputs feed the graph outputs through elementwise/layout ops."""
    producers = {out: node for node in model.graph.node for out in node.output}
    passthrough = {"Sigmoid", "Transpose", "Identity", "Cast", "Reshape", "Relu", "Pad", "Slice"}
    heads: list[str] = []
    for output in model.graph.output:
        node = producers.get(output.name)
        while node is not None and node.op_type in passthrough:
            node = producers.get(node.input[0])
        if node is not None and node.op_type in ("Conv", "ConvTranspose", "MatMul", "Gemm"):
            heads.append(node.name)
    return heads


def quantize_model(
    model: bytes,
    calibration_frames: Sequence[np.ndarray],
    *,
    per_channel: bool = True,
    method: CalibrationMethod = DEFAULT_CALIBRATION,
    keep_heads_fp32: bool = True,
    keep_first_fp32: bool = False,
) -> tuple[bytes, dict[str, Any]]:
    """Quantise an fp32 ONNX graph with uint8 RGB input to int8 (QDQ).

    Parameters
    ----------
    model
        The serialised fp32 graph.
    calibration_frames
        RGB uint8 ``[H, W, 3]`` frames, ideally from the training set (tens are enough).
    per_channel
        Per-output-channel weight scales (better accuracy, same speed on CPU).
    method
        Calibration of the activation ranges (see :data:`DEFAULT_CALIBRATION`).
    keep_heads_fp32
        Leave the output convolutions in float (see the module docstring).
    keep_first_fp32
        Leave the first convolution (the one that reads the normalised image) in float too.

    Returns
    -------
    tuple
        The quantised graph and a provenance dict describing how it was made.
    """
    import onnx
    from onnxruntime.quantization import (
        CalibrationMethod as OrtMethod,
    )
    from onnxruntime.quantization import (
        QuantFormat,
        QuantType,
        quant_pre_process,
        quantize_static,
    )

    if not calibration_frames:
        raise ValueError("int8 calibration needs at least one frame")
    ort_method = {
        "minmax": OrtMethod.MinMax,
        "percentile": OrtMethod.Percentile,
        "entropy": OrtMethod.Entropy,
    }[method]
    with tempfile.TemporaryDirectory(prefix="rtpose-int8-") as tmp:
        src, pre, dst = Path(tmp, "fp32.onnx"), Path(tmp, "pre.onnx"), Path(tmp, "int8.onnx")
        src.write_bytes(model)
        try:
            # when it gives up, ORT's symbolic shape inference saves its partial model (and a
            # uuid-named .data file) into the working folder: make that our temporary one
            with contextlib.chdir(tmp):
                quant_pre_process(str(src), str(pre), skip_symbolic_shape=not _has_sympy())
        except Exception as exc:  # ORT's symbolic shape inference gives up on some graphs
            log.info("symbolic shape inference failed (%s); pre-processing without it", exc)
            quant_pre_process(str(src), str(pre), skip_symbolic_shape=True)
        pre_model = onnx.load(str(pre))
        input_name = pre_model.graph.input[0].name
        exclude = _head_nodes(pre_model) if keep_heads_fp32 else []
        if keep_first_fp32:
            exclude += _first_conv(pre_model)
        quantize_static(
            str(pre),
            str(dst),
            _calibration_reader(input_name, calibration_frames),
            quant_format=QuantFormat.QDQ,
            activation_type=QuantType.QUInt8,
            weight_type=QuantType.QInt8,
            per_channel=per_channel,
            calibrate_method=ort_method,
            nodes_to_exclude=exclude,
            extra_options={"CalibTensorRangeSymmetric": False},
        )
        quantised = dst.read_bytes()
    provenance = {
        "method": "onnxruntime.quantization.quantize_static",
        "format": "QDQ",
        "activations": "uint8",
        "weights": "int8",
        "per_channel": per_channel,
        "calibration": method,
        "calibration_frames": len(calibration_frames),
        "fp32_nodes": exclude,
        "tools": tool_versions("onnxruntime", "onnx"),
    }
    return quantised, provenance


def quantize_bundle(
    bundle: Bundle,
    output_dir: str | Path,
    calibration_images: Sequence[str | Path | np.ndarray],
    *,
    parity_images: Sequence[str | Path | np.ndarray] | None = None,
    per_channel: bool = True,
    method: CalibrationMethod = DEFAULT_CALIBRATION,
    keep_heads_fp32: bool = True,
    keep_first_fp32: bool = False,
    overwrite: bool = False,
) -> Bundle:
    """Write an int8 variant of a bundle that outputs maps (not in-graph keypoints).

    The variant's ``provenance.quantization`` records how it was calibrated and how far its
    keypoints moved from the fp32 bundle's on ``parity_images`` (default: the calibration
    frames). An existing bundle at ``output_dir`` is refused unless ``overwrite``.
    """
    check_target(output_dir, overwrite)
    if bundle.meta.outputs.keypoints is not None:
        raise ValueError(
            f"{bundle.root}: quantise the map-output bundle, then add in-graph peaks; this one "
            "already outputs keypoints"
        )
    calib = load_frames(calibration_images)
    model = bundle.model_path.read_bytes()
    quantised, quantization = quantize_model(
        model,
        calib,
        per_channel=per_channel,
        method=method,
        keep_heads_fp32=keep_heads_fp32,
        keep_first_fp32=keep_first_fp32,
    )
    check_frames = load_frames(parity_images) if parity_images is not None else calib
    report = check_parity(
        ort_network(model),
        ort_network(quantised),
        check_frames,
        stride=bundle.meta.stride,
        locref_stdev=bundle.meta.locref_stdev,
        raw_tolerance=None,
        tolerance_px=None,
        source="given images" if parity_images is not None else "calibration frames",
    )
    quantization["vs_fp32"] = report.to_dict()
    meta = bundle.meta.model_dump()
    meta["name"] = f"{bundle.meta.name}-int8"
    meta["provenance"] = {**meta["provenance"], "quantization": quantization}
    with staged_folder(output_dir, overwrite) as tmp:
        write_bundle(tmp, quantised, meta)
    return load_bundle(output_dir)


#: How much mean held-out error (original-frame px) int8 may add before the exporter refuses it:
#: the rule and figure every reduced precision is judged by.
DEFAULT_INT8_TOLERANCE_PX = DEFAULT_PRECISION_TOLERANCE_PX


def held_out_change(
    fp32_model: bytes,
    int8_model: bytes,
    meta: dict[str, Any],
    project_dir: Path,
    split_file: Path | None,
    tolerance_px: float = DEFAULT_INT8_TOLERANCE_PX,
) -> dict[str, Any]:
    """Mean error of the fp32 and int8 graphs on the project's labelled test frames.

    Both graphs are written as bundles with ``meta`` (maps outputs) into a temporary folder and
    evaluated as ``realtime-pose evaluate`` would (:func:`realtime_pose.trainers.evaluate.evaluate`,
    original-frame pixels, the bundle's input scale applied).

    Returns
    -------
    dict
        ``frames``, ``keypoints``, ``fp32_mean_px``, ``int8_mean_px``, their medians,
        ``change_px`` (int8 minus fp32 mean), ``tolerance_px`` and ``accepted``
        (``change_px <= tolerance_px``).

    Raises
    ------
    realtime_pose.trainers.project.ProjectError
        When the project or its test split cannot be read.
    """
    from realtime_pose.trainers.evaluate import evaluate

    metrics = {}
    with tempfile.TemporaryDirectory(prefix="rtpose-int8-judge-") as tmp:
        for precision, model in (("fp32", fp32_model), ("int8", int8_model)):
            folder = Path(tmp, precision)
            write_bundle(folder, model, meta)
            metrics[precision] = evaluate(folder, project_dir, split="test", split_file=split_file)
    return accuracy_verdict(
        metrics["fp32"], metrics["int8"], tolerance_px, source=project_dir, name="int8"
    )


__all__ = [
    "DEFAULT_CALIBRATION",
    "DEFAULT_INT8_TOLERANCE_PX",
    "held_out_change",
    "quantize_bundle",
    "quantize_model",
]
