"""DeepLabCut exported model (``pose_cfg.yaml`` + frozen ``snapshot-N.pb``) → bundle.

A DeepLabCut TensorFlow export (``deeplabcut.export_model``) holds a frozen graph whose input is
its first ``Placeholder`` (float32 ``[batch, H, W, 3]``, raw RGB pixel values: the mean-pixel
subtraction or scaling is inside the graph) and whose outputs are ``Sigmoid`` (score maps, NHWC)
and ``pose/locref_pred/block4/BiasAdd`` (location refinement, NHWC). DeepLabCut-Live feeds it the
camera frame as it comes (uint8 RGB, batch 1). A model exported with ``TFGPUinference=True`` ends
in ``concat_1``: ``[K, 3]`` rows of ``y, x, likelihood``, computed from the same two tensors.

The import puts a uint8 ``image`` input with a Cast in front of the graph and takes the two map
tensors as outputs (NCHW). For a ``concat_1`` model, whose ``UnravelIndex`` has no ONNX
counterpart, the maps are taken from inside the graph and the peaks appended with
:func:`.in_graph_peaks.append_peaks`, giving the same ``keypoints`` output (as
``x, y, likelihood``), checked against the frozen graph's own ``concat_1``.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from realtime_pose.bundle import Bundle, load_bundle, write_bundle
from realtime_pose.exporters.frames import synthetic_frames
from realtime_pose.exporters.parity import NetworkFn, ParityReport, ort_network, require_parity
from realtime_pose.exporters.provenance import tool_versions
from realtime_pose.exporters.staging import check_target, staged_folder
from realtime_pose.geometry import Size

log = logging.getLogger(__name__)

POSE_CFG = "pose_cfg.yaml"
SCOREMAP_NODE = "Sigmoid"
LOCREF_NODE = "pose/locref_pred/block4/BiasAdd"
IN_GRAPH_POSE_NODE = "concat_1"


class DlcImportError(ValueError):
    """A DeepLabCut export folder that cannot be imported; the message names the file."""


class DlcPoseConfig(BaseModel):
    """The fields of ``pose_cfg.yaml`` the import needs (others are kept for provenance)."""

    model_config = ConfigDict(extra="allow")

    all_joints_names: list[str] = Field(min_length=1)
    stride: float = Field(default=8.0, gt=0)
    locref_stdev: float = Field(default=7.2801, gt=0)
    location_refinement: bool = True
    net_type: str | None = None
    mean_pixel: list[float] | None = None
    num_outputs: int = 1
    dataset_type: str | None = None


@dataclass(frozen=True)
class DlcExport:
    """A DeepLabCut exported-model folder, read."""

    root: Path
    config: DlcPoseConfig
    snapshot: Path
    graph_def: Any  # tf.compat.v1.GraphDef
    input_name: str
    input_dtype: Any  # tf.DType
    in_graph_pose: bool


def _snapshot_iteration(path: Path) -> int:
    match = re.search(r"snapshot-(\d+)", path.name)
    return int(match.group(1)) if match else -1


def read_dlc_export(folder: str | Path) -> DlcExport:
    """Read ``pose_cfg.yaml`` and the frozen graph of a DeepLabCut export folder.

    Raises
    ------
    DlcImportError
        When the config or graph is missing, or the graph lacks the expected nodes.
    """
    import yaml

    from realtime_pose.exporters.keras_onnx import import_tensorflow

    root = Path(folder).expanduser()
    cfg_path = root / POSE_CFG
    if not cfg_path.is_file():
        raise DlcImportError(
            f"{cfg_path}: missing; expected a DeepLabCut exported-model folder "
            "(exported-models/DLC_<Task>_<net>_iteration-<i>_shuffle-<s>/)"
        )
    try:
        raw = yaml.safe_load(cfg_path.read_text()) or {}
        config = DlcPoseConfig.model_validate(raw)
    except yaml.YAMLError as exc:
        raise DlcImportError(f"{cfg_path}: not valid YAML ({exc})") from exc
    except ValidationError as exc:
        fields = "; ".join(
            f"field '{'.'.join(map(str, e['loc']))}': {e['msg']}" for e in exc.errors()
        )
        raise DlcImportError(f"{cfg_path}: {fields}") from exc
    if config.dataset_type and "multi" in config.dataset_type:
        raise DlcImportError(
            f"{cfg_path}: dataset_type {config.dataset_type!r} is a multi-animal model; only "
            "single-animal DeepLabCut models can be imported"
        )
    graphs = sorted(root.glob("*.pb"), key=_snapshot_iteration)
    if not graphs:
        raise DlcImportError(f"{root}: no frozen graph (*.pb) beside {POSE_CFG}")
    snapshot = graphs[-1]
    tf, _ = import_tensorflow()
    graph_def = tf.compat.v1.GraphDef()
    try:
        graph_def.ParseFromString(snapshot.read_bytes())
    except Exception as exc:  # protobuf's DecodeError
        raise DlcImportError(f"{snapshot}: not a frozen TensorFlow graph ({exc})") from exc
    placeholders = [n for n in graph_def.node if n.op == "Placeholder"]
    if not placeholders:
        raise DlcImportError(f"{snapshot}: the graph has no Placeholder input")
    node_names = {n.name for n in graph_def.node}
    missing = [n for n in (SCOREMAP_NODE,) if n not in node_names]
    if config.location_refinement and LOCREF_NODE not in node_names:
        missing.append(LOCREF_NODE)
    if missing:
        raise DlcImportError(
            f"{snapshot}: the graph has no node {missing}; is this a DeepLabCut TensorFlow "
            "export (deeplabcut.export_model)?"
        )
    in_graph = graph_def.node[-1].name == IN_GRAPH_POSE_NODE or (
        IN_GRAPH_POSE_NODE in node_names and graph_def.node[-1].op == "ConcatV2"
    )
    dtype = tf.dtypes.as_dtype(placeholders[0].attr["dtype"].type)
    return DlcExport(root, config, snapshot, graph_def, placeholders[0].name, dtype, in_graph)


def _rename_tensor(model: Any, old: str, new: str) -> None:
    for node in model.graph.node:
        node.input[:] = [new if x == old else x for x in node.input]
        node.output[:] = [new if x == old else x for x in node.output]
    for value in [*model.graph.input, *model.graph.output]:
        if value.name == old:
            value.name = new


def _tf_reference(tf: Any, dlc: DlcExport) -> NetworkFn:
    """The frozen graph run as DeepLabCut-Live runs it: the frame, batch 1, as the input."""
    graph = tf.Graph()
    with graph.as_default():
        tf.compat.v1.import_graph_def(dlc.graph_def, name="")
    fetch = [f"{SCOREMAP_NODE}:0"]
    if dlc.config.location_refinement:
        fetch.append(f"{LOCREF_NODE}:0")
    if dlc.in_graph_pose:
        fetch.append(f"{IN_GRAPH_POSE_NODE}:0")
    session = tf.compat.v1.Session(graph=graph)
    feed = graph.get_tensor_by_name(f"{dlc.input_name}:0")
    np_dtype = dlc.input_dtype.as_numpy_dtype

    def run(frame: np.ndarray) -> dict[str, np.ndarray]:
        values = session.run(fetch, {feed: frame[None].astype(np_dtype)})
        out = {"scmap": np.transpose(values[0][0], (2, 0, 1))}
        if dlc.config.location_refinement:
            out["locref"] = np.transpose(values[1][0], (2, 0, 1))
        if dlc.in_graph_pose:
            out["dlc_pose_xyp"] = np.asarray(values[-1])[:, [1, 0, 2]]
        return out

    return run


def _warn_if_multi_output(dlc: DlcExport) -> None:
    """Warn that a model trained for several outputs per keypoint is read as single-animal."""
    cfg = dlc.config
    if cfg.num_outputs > 1:
        log.warning(
            "%s: num_outputs=%d; the bundle finds one peak per keypoint (single animal)",
            dlc.root,
            cfg.num_outputs,
        )


def _map_names(dlc: DlcExport) -> list[str]:
    """The bundle's map outputs: ``scmap``, and ``locref`` when the model refines locations."""
    return ["scmap"] + (["locref"] if dlc.config.location_refinement else [])


def _uint8_input_graph(tf: Any, dlc: DlcExport, input_size: Size | None) -> Any:
    """A TF graph: uint8 ``image`` → Cast → the frozen graph → float32 map outputs by name."""
    cfg = dlc.config
    graph = tf.Graph()
    with graph.as_default():
        shape = [1, None, None, 3] if input_size is None else [1, *Size(*input_size).shape, 3]
        image = tf.compat.v1.placeholder(tf.uint8, shape, name="image")
        x = tf.cast(image, dlc.input_dtype)
        sources = [f"{SCOREMAP_NODE}:0"] + ([f"{LOCREF_NODE}:0"] if cfg.location_refinement else [])
        tensors = tf.compat.v1.import_graph_def(
            dlc.graph_def,
            input_map={f"{dlc.input_name}:0": x},
            return_elements=sources,
            name="dlc",
        )
        for out_name, tensor in zip(_map_names(dlc), tensors, strict=True):
            tf.identity(tf.cast(tensor, tf.float32), name=out_name)
    return graph


def _convert_to_onnx(
    tf: Any, tf2onnx: Any, dlc: DlcExport, opset: int, input_size: Size | None
) -> bytes:
    """The frozen graph, with a uint8 input, as ONNX maps-graph bytes (NCHW outputs)."""
    from realtime_pose.exporters.keras_onnx import name_dynamic_dims

    wanted = _map_names(dlc)
    graph = _uint8_input_graph(tf, dlc, input_size)
    tf_names = [f"{n}:0" for n in wanted]
    proto, _ = tf2onnx.convert.from_graph_def(
        graph.as_graph_def(),
        input_names=["image:0"],
        output_names=tf_names,
        opset=opset,
        outputs_as_nchw=tf_names,
    )
    _rename_tensor(proto, "image:0", "image")
    for n in wanted:
        _rename_tensor(proto, f"{n}:0", n)
    name_dynamic_dims(proto)
    return proto.SerializeToString()


def _parity_frames(parity_images: Any, input_size: Size | None) -> tuple[list[np.ndarray], str]:
    """The frames for the parity check (resized to ``input_size``) and where they came from."""
    from realtime_pose.exporters.frames import load_frames

    if parity_images is not None:
        frames, source = load_frames(parity_images), "given images"
    else:
        frames, source = synthetic_frames(4, 240, 320, seed=4), "synthetic"
    if input_size is not None:
        import cv2

        fixed = Size(*input_size)
        frames = [cv2.resize(f, fixed, interpolation=cv2.INTER_AREA) for f in frames]
    return frames, source


def _append_keypoints(
    maps_model: bytes,
    reference: NetworkFn,
    dlc: DlcExport,
    frames: list[np.ndarray],
    pose: dict[str, float],
    tolerances: dict[str, Any],
) -> tuple[bytes, ParityReport]:
    """``maps_model`` with in-graph peaks appended, checked against the frozen graph."""
    from realtime_pose.exporters.in_graph_peaks import append_checked_peaks

    cfg = dlc.config
    if dlc.in_graph_pose:
        # judge the appended peaks against DeepLabCut's own in-graph pose (concat_1)

        def dlc_pose_reference(frame: np.ndarray) -> dict[str, np.ndarray]:
            ref = reference(frame)
            return {**ref, "keypoints": ref["dlc_pose_xyp"]}

    else:
        dlc_pose_reference = reference
    return append_checked_peaks(
        maps_model,
        dlc_pose_reference,
        ort_network,
        frames,
        what=str(dlc.root),
        parity={**tolerances, **pose},
        num_keypoints=len(cfg.all_joints_names),
        locref_name="locref" if cfg.location_refinement else None,
        **pose,
    )


def _bundle_meta(
    dlc: DlcExport,
    name: str | None,
    input_size: Size | None,
    outputs: dict[str, Any],
    opset: int,
    parity: dict[str, Any],
) -> dict[str, Any]:
    """The bundle's ``bundle.json``, with the export's ``pose_cfg.yaml`` in its provenance."""
    cfg = dlc.config
    extra = {
        key: v
        for key, v in (cfg.model_extra or {}).items()
        if isinstance(v, (str, int, float, bool)) and key not in ("project_path",)
    }
    return {
        "name": name or dlc.root.name,
        "keypoints": cfg.all_joints_names,
        "skeleton": [],
        "stride": cfg.stride,
        "locref_stdev": cfg.locref_stdev,
        "input": {
            "name": "image",
            "layout": "HWC",
            "dtype": "uint8",
            "color": "RGB",
            **({} if input_size is None else {"width": input_size[0], "height": input_size[1]}),
        },
        "outputs": outputs,
        "provenance": {
            "exported_from": "deeplabcut",
            "dlc_export_dir": str(dlc.root.resolve()),
            "snapshot": dlc.snapshot.name,
            "steps": _snapshot_iteration(dlc.snapshot),
            "net": cfg.net_type,
            "mean_pixel": cfg.mean_pixel,
            "dlc_in_graph_pose": dlc.in_graph_pose,
            "pose_cfg": extra,
            "opset": opset,
            "tools": tool_versions("tensorflow", "tf2onnx", "onnx", "onnxruntime"),
            "parity": parity,
        },
    }


def import_dlc(
    export_dir: str | Path,
    output_dir: str | Path,
    *,
    opset: int = 17,
    in_graph_peaks: bool | None = None,
    parity_images: Any = None,
    tolerance_px: float = 0.01,
    raw_tolerance: float = 1e-3,
    name: str | None = None,
    overwrite: bool = False,
    input_size: Size | None = None,
) -> Bundle:
    """Convert a DeepLabCut exported model to a bundle, after a TF parity check.

    Parameters
    ----------
    export_dir
        The DeepLabCut export folder (``pose_cfg.yaml`` + ``snapshot-N.pb``).
    output_dir
        The bundle folder to write (appears only when the check passed).
    opset
        ONNX opset, 13–18.
    in_graph_peaks
        Output ``keypoints`` ``[1, K, 3]`` instead of maps. Default: as the DeepLabCut export
        was made (yes for a ``concat_1`` graph).
    parity_images
        Frames (paths or RGB uint8 arrays) for the check; default synthetic 240x320 frames.
    tolerance_px, raw_tolerance
        Limits of the parity check (keypoints in network pixels, raw outputs).
    name
        Bundle name (default the export folder's name).
    overwrite
        Replace an existing bundle at ``output_dir`` (else refused before any work).
    input_size
        Fix the network input to this size (the rig's ``input_size``): with a dynamic size,
        every dilated convolution of a DeepLabCut backbone (SpaceToBatchND, convolution,
        BatchToSpaceND) converts to dozens of shape-computing nodes; with a fixed one it is
        one dilated ``Conv``. Crop windows are then resized to it.

    Raises
    ------
    DlcImportError
        When the folder is not a usable DeepLabCut export.
    ParityError
        When ONNX Runtime disagrees with TensorFlow beyond tolerance (nothing is written).
    """
    from realtime_pose.exporters.keras_onnx import check_opset, import_tensorflow, maps_outputs

    check_opset(opset)
    check_target(output_dir, overwrite)
    dlc = read_dlc_export(export_dir)
    cfg = dlc.config
    _warn_if_multi_output(dlc)
    tf, tf2onnx = import_tensorflow()
    maps_model = _convert_to_onnx(tf, tf2onnx, dlc, opset, input_size)

    reference = _tf_reference(tf, dlc)
    frames, source = _parity_frames(parity_images, input_size)
    pose = {"stride": cfg.stride, "locref_stdev": cfg.locref_stdev}
    tolerances = {"raw_tolerance": raw_tolerance, "tolerance_px": tolerance_px, "source": source}
    report = require_parity(
        reference,
        ort_network(maps_model),
        frames,
        label="TF vs ONNX Runtime",
        what=f"import of {dlc.root}",
        **tolerances,
        **pose,
    )
    parity: dict[str, Any] = {"tf_vs_onnx": report.to_dict()}

    final_model = maps_model
    outputs = maps_outputs(cfg.location_refinement)
    if in_graph_peaks is None:
        in_graph_peaks = dlc.in_graph_pose
    if in_graph_peaks:
        final_model, peaks_report = _append_keypoints(
            maps_model, reference, dlc, frames, pose, tolerances
        )
        parity["in_graph_peaks"] = peaks_report.to_dict()
        outputs = {"keypoints": {"name": "keypoints"}}

    meta = _bundle_meta(dlc, name, input_size, outputs, opset, parity)
    with staged_folder(output_dir, overwrite) as tmp:
        write_bundle(tmp, final_model, meta)
    return load_bundle(output_dir)
