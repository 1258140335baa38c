"""Append single-animal peak extraction to an ONNX graph.

The appended nodes do DeepLabCut's pose math inside the graph (argmax over each score map, then a
gather of the location refinement at that cell), so the engine hands back ``K x 3`` numbers
instead of two full maps: what matters on a GPU, where copying the maps back costs more than
finding the peaks. The output ``keypoints`` is ``[1, K, 3]``: ``x, y, likelihood`` in
network-input pixels, first maximum in raster order (like ``numpy.argmax``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

if TYPE_CHECKING:
    import onnx

    from realtime_pose.exporters.parity import NetworkFn, ParityReport


def append_peaks(
    model: onnx.ModelProto,
    *,
    num_keypoints: int,
    stride: float,
    locref_stdev: float,
    scoremap_name: str = "scmap",
    locref_name: str | None = "locref",
    layout: Literal["NCHW", "NHWC"] = "NCHW",
    output_name: str = "keypoints",
) -> onnx.ModelProto:
    """Return a copy of ``model`` whose only output is in-graph keypoints.

    Parameters
    ----------
    model
        An ONNX graph with a batch-1 score-map output (and optionally a locref output).
    num_keypoints
        K; the score map has K channels, the locref map 2K.
    stride, locref_stdev
        Network-input pixels per cell; scale of the refinement.
    scoremap_name, locref_name
        Names of the map outputs (``locref_name=None``: no refinement).
    layout
        Memory layout of the map outputs.
    output_name
        Name of the new ``[1, K, 3]`` float32 output.
    """
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    out = onnx.ModelProto()
    out.CopyFrom(model)
    graph = out.graph
    names = [o.name for o in graph.output]
    wanted = [scoremap_name] + ([locref_name] if locref_name else [])
    missing = [n for n in wanted if n not in names]
    if missing:
        raise ValueError(f"the graph has no output named {missing}; its outputs are {names}")

    k = int(num_keypoints)
    prefix = "peaks/"

    def const(name: str, value: np.ndarray) -> str:
        graph.initializer.append(numpy_helper.from_array(value, prefix + name))
        return prefix + name

    def node(op: str, inputs: list[str], name: str, **attrs) -> str:
        graph.node.append(
            helper.make_node(op, inputs, [prefix + name], name=prefix + name, **attrs)
        )
        return prefix + name

    scmap = scoremap_name
    locref = locref_name
    if layout == "NHWC":
        scmap = node("Transpose", [scmap], "scmap_nchw", perm=[0, 3, 1, 2])
        if locref:
            locref = node("Transpose", [locref], "locref_nchw", perm=[0, 3, 1, 2])

    shape = node("Shape", [scmap], "shape")
    width = node("Gather", [shape, const("axis3", np.array(3, np.int64))], "width")
    flat = node("Reshape", [scmap, const("flat_shape", np.array([1, k, -1], np.int64))], "flat")
    idx = node("ArgMax", [flat], "idx", axis=2, keepdims=1)  # [1, K, 1]
    score = node("GatherElements", [flat, idx], "score", axis=2)
    iy = node("Div", [idx, width], "iy")
    ix = node("Sub", [idx, node("Mul", [iy, width], "iy_w")], "ix")
    cell = node("Concat", [ix, iy], "cell", axis=2)  # [1, K, 2] int64
    cell_f = node("Cast", [cell], "cell_f", to=TensorProto.FLOAT)
    xy = node(
        "Add",
        [
            node("Mul", [cell_f, const("stride", np.array(stride, np.float32))], "cell_px"),
            const("half_stride", np.array(stride / 2, np.float32)),
        ],
        "xy_coarse",
    )
    if locref:
        lr4 = node("Reshape", [locref, const("lr_shape", np.array([1, k, 2, -1], np.int64))], "lr4")
        idx4 = node("Unsqueeze", [idx, const("axis2", np.array([2], np.int64))], "idx4")
        idx4 = node("Expand", [idx4, const("idx_shape", np.array([1, k, 2, 1], np.int64))], "idx4e")
        offs = node("GatherElements", [lr4, idx4], "offsets4", axis=3)  # [1, K, 2, 1]
        offs = node("Reshape", [offs, const("off_shape", np.array([1, k, 2], np.int64))], "offs")
        offs_px = node(
            "Mul", [offs, const("locref_stdev", np.array(locref_stdev, np.float32))], "offs_px"
        )
        xy = node("Add", [xy, offs_px], "xy")
    score_f = node("Cast", [score], "score_f", to=TensorProto.FLOAT)
    graph.node.append(
        helper.make_node("Concat", [xy, score_f], [output_name], name=prefix + "keypoints", axis=2)
    )
    while len(graph.output):
        graph.output.pop()
    graph.output.append(helper.make_tensor_value_info(output_name, TensorProto.FLOAT, [1, k, 3]))
    onnx.checker.check_model(out)
    return out


def append_checked_peaks(
    maps_model: bytes,
    reference: NetworkFn,
    candidate: Callable[[bytes], NetworkFn],
    frames: Iterable[np.ndarray],
    *,
    what: str,
    parity: Mapping[str, Any],
    **peaks: Any,
) -> tuple[bytes, ParityReport]:
    """``maps_model`` (serialised ONNX) with in-graph peaks appended (``peaks``: the options of
    :func:`append_peaks`), run through ``candidate`` and checked against ``reference`` on
    ``frames`` (``parity``: :func:`~realtime_pose.exporters.parity.check_parity`'s options).

    Raises
    ------
    ParityError
        The appended peaks disagree with the reference; the message names ``what``.
    """
    import onnx

    from realtime_pose.exporters.parity import require_parity

    model = append_peaks(onnx.load_from_string(maps_model), **peaks).SerializeToString()
    report = require_parity(
        reference,
        candidate(model),
        frames,
        label="in-graph peaks",
        what=f"in-graph peaks of {what}",
        **parity,
    )
    return model, report
