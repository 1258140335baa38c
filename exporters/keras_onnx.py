"""Keras training output → ONNX bundle, checked against TensorFlow before it is written.

The graph takes ``image``: uint8 RGB ``[1, H, W, 3]`` with dynamic ``H, W`` (the cast and the
normalisation are inside), and returns ``scmap`` ``[1, K, H/8, W/8]`` and ``locref``
``[1, 2K, H/8, W/8]`` in NCHW, where peak finding is fastest; with ``in_graph_peaks`` it returns
only ``keypoints`` ``[1, K, 3]``.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

import numpy as np

from realtime_pose.bundle import Bundle, load_bundle, write_bundle
from realtime_pose.exporters.frames import (
    ImagesArg,
    load_frames,
    read_rgb_frames,
    synthetic_frames,
)
from realtime_pose.exporters.int8 import (
    DEFAULT_CALIBRATION,
    DEFAULT_INT8_TOLERANCE_PX,
    CalibrationMethod,
)
from realtime_pose.exporters.parity import (
    NetworkFn,
    ParityError,
    ParityReport,
    check_parity,
    ort_network,
    require_parity,
)
from realtime_pose.exporters.provenance import tool_versions
from realtime_pose.exporters.staging import check_target, staged_folder
from realtime_pose.trainers.part_affinity import is_grouped
from realtime_pose.trainers.train_output import TrainOutput, TrainOutputError, read_train_output

log = logging.getLogger(__name__)

INPUT_NAME = "image"
SCOREMAP_NAME = "scmap"
LOCREF_NAME = "locref"
PAF_NAME = "paf"
KEYPOINTS_NAME = "keypoints"
MIN_OPSET, MAX_OPSET = 13, 18  # tf2onnx 1.17 refuses opset 19+


def import_tensorflow() -> tuple[Any, Any]:
    """Import TensorFlow and tf2onnx quietly, or raise an ImportError saying what to install."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    try:
        import tensorflow as tf
        import tf2onnx
    except ImportError as exc:
        raise ImportError(
            f"exporting needs TensorFlow and tf2onnx ({exc.name} is missing); install them with "
            "pip install 'realtime-pose[train,export]'"
        ) from exc
    return tf, tf2onnx


def name_dynamic_dims(model: Any) -> None:
    """Give the dynamic input/output dimensions readable names (``height``, ``grid_width``...)."""
    inp = model.graph.input[0].type.tensor_type.shape.dim
    if len(inp) == 4:
        for i, label in ((1, "height"), (2, "width")):
            if not inp[i].HasField("dim_value"):
                inp[i].dim_param = label
    for out in model.graph.output:
        dims = out.type.tensor_type.shape.dim
        if len(dims) == 4:
            for i, label in ((2, "grid_height"), (3, "grid_width")):
                if not dims[i].HasField("dim_value"):
                    dims[i].dim_param = label


def _serving_function(
    tf: Any, model: Any, num_keypoints: int, call: Any = None, paf: bool = False
) -> Any:
    """A ``tf.function`` from uint8 images to ``{"scmap", "locref"}`` NHWC maps (and ``paf``,
    the part-affinity fields of a network for animals that look alike).

    ``call`` replaces ``model(x, training=False)`` (an export-time rewrite of the same model).
    """
    input_dtype = model.inputs[0].dtype
    input_dtype = getattr(input_dtype, "name", input_dtype)
    n_out = len(model.outputs)
    if n_out != 2 + paf:
        raise TrainOutputError(
            f"the model has {n_out} outputs; the exporter expects {2 + paf}, in order scmap (K "
            "channels) and locref (2K channels)" + (" and paf (2 per edge)" if paf else "")
        )
    shapes = [tuple(o.shape) for o in model.outputs]
    if shapes[0][-1] not in (None, num_keypoints) or shapes[1][-1] not in (
        None,
        2 * num_keypoints,
    ):
        raise TrainOutputError(
            f"the model's outputs have shapes {shapes}, but train_config.json lists "
            f"{num_keypoints} keypoints: expected scmap with {num_keypoints} channels and locref "
            f"with {2 * num_keypoints}"
        )
    if call is None:

        def call(x: Any) -> Any:
            return model(x, training=False)

    @tf.function
    def serve(image: Any) -> dict[str, Any]:
        x = image if str(input_dtype) == "uint8" else tf.cast(image, input_dtype)
        outputs = call(x)
        names = [SCOREMAP_NAME, LOCREF_NAME, PAF_NAME][: 2 + paf]
        if isinstance(outputs, dict):
            outputs = [outputs[name] for name in names]
        return {name: tf.cast(o, tf.float32) for name, o in zip(names, outputs, strict=True)}

    return serve


def tf_network(tf: Any, concrete: Any) -> NetworkFn:
    """A concrete TF function returning NHWC ``scmap``/``locref`` as an NCHW :data:`NetworkFn`."""

    def run(frame: np.ndarray) -> dict[str, np.ndarray]:
        outputs = concrete(tf.constant(frame[None]))
        return {k: np.transpose(v.numpy()[0], (2, 0, 1)) for k, v in outputs.items()}

    return run


def _parity_frames(
    train: TrainOutput, images: ImagesArg | None, limit: int
) -> tuple[list[np.ndarray], str]:
    if images is not None:
        frames = load_frames(images)
        if not frames:
            raise ValueError("parity_images is empty; give at least one frame or None")
        return frames, "given images"
    test = train.images("test")
    if test:
        return read_rgb_frames(test, limit), "project test split"
    log.warning(
        "no test frames reachable (project %r); checking parity on synthetic frames",
        train.config.project,
    )
    return synthetic_frames(4), "synthetic"


def calibration_frames(train: TrainOutput, limit: int) -> tuple[list[np.ndarray], str]:
    """Training-set frames for int8 calibration (synthetic when the project is unreachable)."""
    paths = train.images("train")
    if paths:
        return read_rgb_frames(paths, limit), "project train split"
    log.warning("no training frames reachable; calibrating int8 on synthetic frames")
    return synthetic_frames(min(limit, 16), seed=1), "synthetic"


def _judge_int8(
    train: TrainOutput,
    fp32_model: bytes,
    int8_model: bytes,
    meta: dict[str, Any],
    tolerance_px: float,
) -> dict[str, Any] | None:
    """:func:`.int8.held_out_change` on the training project, or ``None`` (with a warning) when
    its labelled test frames cannot be reached."""
    from realtime_pose.exporters.int8 import held_out_change
    from realtime_pose.trainers.project import ProjectError

    project = train.project_dir
    split_file = train.root / "split.json"
    if project is None or not train.images("test"):
        log.warning("int8 not judged: no labelled test frame of the project is reachable from here")
        return None
    try:
        held_out = held_out_change(
            fp32_model,
            int8_model,
            meta,
            project,
            split_file if split_file.is_file() else None,
            tolerance_px,
        )
    except (ProjectError, ValueError) as exc:
        log.warning("int8 not judged on the held-out frames: %s", exc)
        return None
    log.info("int8 on %d held-out frames: %s", held_out["frames"], held_out)
    return held_out


def check_opset(opset: int) -> None:
    """Refuse an ONNX opset outside what tf2onnx converts to."""
    if not MIN_OPSET <= opset <= MAX_OPSET:
        raise ValueError(f"opset {opset} is not supported: use {MIN_OPSET}–{MAX_OPSET}")


def maps_outputs(locref: bool = True, paf: bool = False) -> dict[str, Any]:
    """The bundle's ``outputs`` for NCHW score maps (and location refinement, and
    part-affinity fields) graphs."""
    outputs: dict[str, Any] = {"scoremap": {"name": SCOREMAP_NAME, "layout": "NCHW"}}
    if locref:
        outputs["locref"] = {"name": LOCREF_NAME, "layout": "NCHW"}
    if paf:
        outputs["paf"] = {"name": PAF_NAME, "layout": "NCHW"}
    return outputs


def _score_channels(train: TrainOutput) -> int:
    """The run's score maps: one per bodypart when animals are grouped after the network."""
    if is_grouped(train.config.animals):
        return len(train.config.animals["bodyparts"])  # type: ignore[index]
    return len(train.config.keypoints)


def _convert_to_onnx(train: TrainOutput, opset: int) -> tuple[bytes, NetworkFn, int]:
    """The Keras model as ONNX maps-graph bytes, its TF reference and its rewritten-conv count."""
    k = _score_channels(train)
    paf = is_grouped(train.config.animals)
    tf, tf2onnx = import_tensorflow()
    import keras

    from realtime_pose.exporters.keras_rewrite import native_dilation_call

    model = keras.models.load_model(train.model_path, compile=False)
    serve = _serving_function(tf, model, k, paf=paf)
    rewritten_call, n_rewritten = native_dilation_call(model)
    export_fn = _serving_function(tf, model, k, rewritten_call, paf) if n_rewritten else serve
    spec = tf.TensorSpec([1, None, None, 3], tf.uint8, name=INPUT_NAME)
    proto, _ = tf2onnx.convert.from_function(
        export_fn,
        input_signature=[spec],
        opset=opset,
        outputs_as_nchw=[SCOREMAP_NAME, LOCREF_NAME, PAF_NAME][: 2 + paf],
    )
    name_dynamic_dims(proto)
    maps_model = proto.SerializeToString()
    reference = tf_network(tf, serve.get_concrete_function(spec))
    return maps_model, reference, n_rewritten


def _quantize(
    train: TrainOutput,
    maps_model: bytes,
    frames: list[np.ndarray],
    source: str,
    pose: dict[str, float],
    method: CalibrationMethod,
    max_calibration_frames: int,
) -> tuple[bytes, dict[str, Any]]:
    """The int8 graph and its ``quantization`` record, compared with the fp32 graph."""
    from realtime_pose.exporters.int8 import quantize_model

    calib, calib_source = calibration_frames(train, max_calibration_frames)
    int8_model, quantization = quantize_model(maps_model, calib, method=method)
    quantization["calibration_source"] = calib_source
    q_report = check_parity(
        ort_network(maps_model),
        ort_network(int8_model),
        frames,
        raw_tolerance=None,
        tolerance_px=None,
        source=source,
        **pose,
    )
    quantization["vs_fp32"] = q_report.to_dict()
    log.info("int8 vs fp32: %s", q_report.describe())
    return int8_model, quantization


def _int8_or_fp32(
    train: TrainOutput,
    maps_model: bytes,
    int8_model: bytes,
    quantization: dict[str, Any],
    provenance: dict[str, Any],
    fp32_meta: dict[str, Any],
    tolerance_px: float,
) -> tuple[bytes, str]:
    """The graph to write and its precision: int8 unless held-out frames refuse it (recorded)."""
    held_out = _judge_int8(train, maps_model, int8_model, fp32_meta, tolerance_px)
    quantization["held_out"] = held_out
    if held_out is not None and not held_out["accepted"]:
        provenance["int8_refused"] = quantization  # "quantization" marks an int8 graph
        log.warning(
            "int8 is not this bundle's model: it adds %.3g px of mean error on %d held-out "
            "frames (fp32 %.3g px, int8 %.3g px), more than the tolerance of %.3g px; the "
            "fp32 graph was written (a larger --int8-tolerance-px accepts it)",
            held_out["change_px"],
            held_out["frames"],
            held_out["fp32_mean_px"],
            held_out["int8_mean_px"],
            tolerance_px,
        )
        return maps_model, "fp32"
    provenance["quantization"] = quantization
    return int8_model, "int8"


def _provenance(
    train: TrainOutput, opset: int, n_rewritten: int, parity: dict[str, Any]
) -> dict[str, Any]:
    """The bundle's ``provenance``: the training run, the conversion and its parity checks."""
    return {
        **train.provenance(),
        "exported_from": "keras",
        "opset": opset,
        "native_dilated_convs": n_rewritten,
        "tools": tool_versions("tensorflow", "keras", "tf2onnx", "onnx", "onnxruntime"),
        "parity": parity,
    }


def _bundle_meta(
    train: TrainOutput,
    name: str | None,
    outputs: dict[str, Any],
    precision: str,
    provenance: dict[str, Any],
) -> dict[str, Any]:
    """The bundle's ``bundle.json`` for a graph with ``outputs`` at ``precision``."""
    cfg = train.config
    project_name = Path(cfg.project).name if cfg.project else train.root.name
    meta = {
        "name": name or f"{project_name}-{cfg.net or 'net'}" + "-int8" * (precision == "int8"),
        "keypoints": cfg.keypoints,
        "skeleton": cfg.skeleton,
        "stride": cfg.stride,
        "locref_stdev": cfg.locref_stdev,
        "input": {
            "name": INPUT_NAME,
            "layout": "HWC",
            "dtype": "uint8",
            "color": "RGB",
            "scale": cfg.input_scale,
            "pad_to": 2 * round(cfg.stride),  # the stride-16 stage (NetworkInput.pad)
        },
        "outputs": outputs,
        "provenance": provenance,
    }
    if cfg.animals is not None:  # several animals: identity channels or part affinity
        meta["animals"] = cfg.animals
    distances = cfg.label_distances or _project_label_distances(train)
    if distances is not None:  # live capture judges body shapes by it
        meta["label_distances"] = distances
    return meta


def _project_label_distances(train: TrainOutput) -> dict[str, Any] | None:
    """Body-part distances from the training frames of a run older than ``label_distances``
    in ``train_config.json``, when its project is reachable from here."""
    from realtime_pose.trainers.label_distances import label_distances
    from realtime_pose.trainers.project import ProjectError, load_project

    if train.project_dir is None:
        return None
    try:
        project = load_project(train.project_dir)
        indices = project.indices_of(train.split["train"]) if train.split["train"] else []
    except ProjectError as exc:
        log.warning("no body-part distance ranges in the bundle: %s", exc)
        return None
    if not indices:
        return None
    return label_distances(
        project.keypoints[indices], project.bodyparts, project.skeleton, project.animals
    )


def _append_keypoints(
    model: bytes,
    maps_reference: NetworkFn,
    train: TrainOutput,
    frames: list[np.ndarray],
    pose: dict[str, float],
    tolerances: dict[str, Any],
) -> tuple[bytes, ParityReport]:
    """``model`` with in-graph peaks appended, checked against ``maps_reference``."""
    from realtime_pose.exporters.in_graph_peaks import append_checked_peaks

    return append_checked_peaks(
        model,
        maps_reference,
        ort_network,
        frames,
        what=str(train.root),
        parity={**tolerances, **pose},
        num_keypoints=len(train.config.keypoints),
        output_name=KEYPOINTS_NAME,
        **pose,
    )


def export_bundle(
    train_dir: str | Path,
    output_dir: str | Path,
    *,
    opset: int = 17,
    in_graph_peaks: bool = False,
    parity_images: ImagesArg | None = None,
    tolerance_px: float = 0.01,
    raw_tolerance: float = 1e-3,
    int8: bool = False,
    int8_tolerance_px: float = DEFAULT_INT8_TOLERANCE_PX,
    int8_calibration: CalibrationMethod = DEFAULT_CALIBRATION,
    max_parity_frames: int = 32,
    max_calibration_frames: int = 64,
    name: str | None = None,
    overwrite: bool = False,
) -> Bundle:
    """Export a training-output folder to a bundle, after a TF-vs-ONNX Runtime parity check.

    Parameters
    ----------
    train_dir
        Folder with ``model.keras``, ``train_config.json`` and (optionally) ``split.json``.
    output_dir
        The bundle folder to write. It appears only when everything passed; an existing bundle
        there is refused before any work, or replaced with ``overwrite``.
    opset
        ONNX opset, 13–18.
    in_graph_peaks
        Append peak extraction so the graph returns ``keypoints`` ``[1, K, 3]`` only.
    parity_images
        Frames (paths or RGB uint8 arrays) for the parity check. Default: up to
        ``max_parity_frames`` test-split frames of the training project, or synthetic frames
        when the project is not reachable.
    tolerance_px
        Largest keypoint difference (network-input pixels) allowed between TF and the export.
    raw_tolerance
        Largest absolute difference allowed in the raw outputs.
    int8
        Quantise to int8 for the CPU (see :mod:`.int8`); calibrated on training-split
        frames. The int8 graph is compared with fp32, and both are evaluated on the project's
        labelled test frames (:func:`.int8.held_out_change`): when int8 adds more than
        ``int8_tolerance_px`` of mean error (original-frame px), the fp32 graph is written
        instead, with a warning; the figures are in ``provenance.quantization.held_out``
        (``provenance.int8_refused`` when refused; ``held_out`` is ``null`` when no labelled
        test frame is reachable: not judged, int8 kept).
    int8_calibration
        How activation ranges are set (:data:`.int8.DEFAULT_CALIBRATION`: percentile).
    max_parity_frames, max_calibration_frames
        How many project frames to use at most.
    name
        Bundle name (default ``<project>-<net>``).
    overwrite
        Replace an existing bundle at ``output_dir`` (a folder that is not a bundle never is).

    Returns
    -------
    Bundle
        The written bundle, loaded back from ``output_dir``.

    Raises
    ------
    ParityError
        When the export disagrees with TensorFlow beyond tolerance (nothing is written).
    TrainOutputError
        When the training-output folder is incomplete or inconsistent.
    """
    check_opset(opset)
    check_target(output_dir, overwrite)
    train = read_train_output(train_dir)
    cfg = train.config
    if is_grouped(train.config.animals) and (int8 or in_graph_peaks):
        raise TrainOutputError(
            f"{train.root}: animals that look alike (part-affinity fields) export as fp32 maps "
            "only; int8 and in-graph peaks are not built for them (leave out --int8 and "
            "--in-graph-peaks)"
        )
    maps_model, reference, n_rewritten = _convert_to_onnx(train, opset)

    frames, source = _parity_frames(train, parity_images, max_parity_frames)
    pose = {"stride": cfg.stride, "locref_stdev": cfg.locref_stdev}
    tolerances = {"raw_tolerance": raw_tolerance, "tolerance_px": tolerance_px, "source": source}
    report = require_parity(
        reference,
        ort_network(maps_model),
        frames,
        label="TF vs ONNX Runtime",
        what=f"export of {train.root}",
        **tolerances,
        **pose,
    )

    final_model = maps_model
    parity: dict[str, Any] = {"tf_vs_onnx": report.to_dict()}
    quantization: dict[str, Any] | None = None
    if int8:
        final_model, quantization = _quantize(
            train, maps_model, frames, source, pose, int8_calibration, max_calibration_frames
        )
    provenance = _provenance(train, opset, n_rewritten, parity)
    outputs = maps_outputs(paf=is_grouped(train.config.animals))
    precision = "fp32"
    if quantization is not None:
        fp32_meta = _bundle_meta(train, name, outputs, "fp32", provenance)
        final_model, precision = _int8_or_fp32(
            train, maps_model, final_model, quantization, provenance, fp32_meta, int8_tolerance_px
        )
    if in_graph_peaks:
        maps_reference = reference if precision == "fp32" else ort_network(final_model)
        final_model, peaks_report = _append_keypoints(
            final_model, maps_reference, train, frames, pose, tolerances
        )
        parity["in_graph_peaks"] = peaks_report.to_dict()
        outputs = {"keypoints": {"name": KEYPOINTS_NAME}}

    meta = _bundle_meta(train, name, outputs, precision, provenance)
    with staged_folder(output_dir, overwrite) as tmp:
        write_bundle(tmp, final_model, meta)
    return load_bundle(output_dir)


__all__ = ["ParityError", "ParityReport", "export_bundle"]
