"""Small real ONNX models with known outputs, built with ``onnx.helper`` for the tests.

The *marker model* turns each colour channel into one keypoint's score map: the input
``image`` (uint8 ``[1, H, W, 3]``, RGB) is cast to float, scaled to 0–1 and average-pooled over
``stride x stride`` cells. A saturated square of one colour drawn over one cell therefore makes
that keypoint's score peak (1.0) exactly at that cell. Its location refinement is a constant
``locref_value`` everywhere, so refined keypoints sit at a known offset from the cell centre.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

KEYPOINTS = ["red", "green", "blue"]


def marker_model(
    stride: int = 8,
    layout: str = "NCHW",
    locref_value: float = 0.25,
    with_locref: bool = True,
    in_graph_peaks: bool = False,
    opset: int = 17,
) -> bytes:
    """Serialised ONNX marker model (see module docstring)."""
    import onnx
    from onnx import TensorProto, helper

    nodes = [
        helper.make_node("Cast", ["image"], ["f"], to=TensorProto.FLOAT),
        helper.make_node("Transpose", ["f"], ["nchw"], perm=[0, 3, 1, 2]),
        helper.make_node("Mul", ["nchw", "inv255"], ["scaled"]),
        helper.make_node(
            "AveragePool",
            ["scaled"],
            ["pooled"],
            kernel_shape=[stride, stride],
            strides=[stride, stride],
        ),
    ]
    inits = [helper.make_tensor("inv255", TensorProto.FLOAT, [], [1 / 255.0])]
    outputs = []
    if with_locref:
        nodes += [
            helper.make_node("Concat", ["pooled", "pooled"], ["pp"], axis=1),
            helper.make_node("Mul", ["pp", "zero"], ["zeros"]),
            helper.make_node("Add", ["zeros", "lval"], ["locref_nchw"]),
        ]
        inits += [
            helper.make_tensor("zero", TensorProto.FLOAT, [], [0.0]),
            helper.make_tensor("lval", TensorProto.FLOAT, [], [locref_value]),
        ]
    if layout == "NCHW":
        nodes.append(helper.make_node("Identity", ["pooled"], ["scmap"]))
        if with_locref:
            nodes.append(helper.make_node("Identity", ["locref_nchw"], ["locref"]))
        dims = ["N", 3, "h", "w"], ["N", 6, "h", "w"]
    else:
        nodes.append(helper.make_node("Transpose", ["pooled"], ["scmap"], perm=[0, 2, 3, 1]))
        if with_locref:
            nodes.append(
                helper.make_node("Transpose", ["locref_nchw"], ["locref"], perm=[0, 2, 3, 1])
            )
        dims = ["N", "h", "w", 3], ["N", "h", "w", 6]
    if in_graph_peaks:
        # argmax over each flattened map, gather, x = ix*stride + stride/2 + 7.2801*locref
        nodes += [
            helper.make_node("Flatten", ["pooled"], ["flat_all"], axis=2),  # [1*3, h*w]
            helper.make_node("ArgMax", ["flat_all"], ["idx"], axis=1, keepdims=1),
            helper.make_node("GatherElements", ["flat_all", "idx"], ["score"], axis=1),
            helper.make_node("Shape", ["pooled"], ["shp"]),
            helper.make_node("Gather", ["shp", "three"], ["wdim"], axis=0),
            helper.make_node("Div", ["idx", "wdim"], ["iy"]),
            helper.make_node("Mod", ["idx", "wdim"], ["ix"]),
            helper.make_node("Cast", ["ix"], ["ixf"], to=TensorProto.FLOAT),
            helper.make_node("Cast", ["iy"], ["iyf"], to=TensorProto.FLOAT),
            helper.make_node("Mul", ["ixf", "stride_c"], ["x0"]),
            helper.make_node("Add", ["x0", "half_c"], ["x"]),
            helper.make_node("Mul", ["iyf", "stride_c"], ["y0"]),
            helper.make_node("Add", ["y0", "half_c"], ["y"]),
            helper.make_node("Concat", ["x", "y", "score"], ["kp2d"], axis=1),
            helper.make_node("Unsqueeze", ["kp2d", "axes0"], ["keypoints"]),
        ]
        inits += [
            helper.make_tensor("three", TensorProto.INT64, [], [3]),
            helper.make_tensor("stride_c", TensorProto.FLOAT, [], [float(stride)]),
            helper.make_tensor("half_c", TensorProto.FLOAT, [], [stride / 2.0]),
            helper.make_tensor("axes0", TensorProto.INT64, [1], [0]),
        ]
        outputs = [helper.make_tensor_value_info("keypoints", TensorProto.FLOAT, [1, 3, 3])]
    else:
        outputs.append(helper.make_tensor_value_info("scmap", TensorProto.FLOAT, dims[0]))
        if with_locref:
            outputs.append(helper.make_tensor_value_info("locref", TensorProto.FLOAT, dims[1]))
    graph = helper.make_graph(
        nodes,
        "marker",
        [helper.make_tensor_value_info("image", TensorProto.UINT8, ["N", "H", "W", 3])],
        outputs,
        initializer=inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model.SerializeToString()


def marker_meta(
    stride: int = 8,
    layout: str = "NCHW",
    with_locref: bool = True,
    in_graph_peaks: bool = False,
    **overrides,
) -> dict:
    """``bundle.json`` content matching :func:`marker_model`."""
    if in_graph_peaks:
        outputs: dict = {"keypoints": {"name": "keypoints"}}
    else:
        outputs = {"scoremap": {"name": "scmap", "layout": layout}}
        if with_locref:
            outputs["locref"] = {"name": "locref", "layout": layout}
    meta = {
        "schema_version": 1,
        "name": "marker",
        "keypoints": list(KEYPOINTS),
        "skeleton": [["red", "green"]],
        "stride": stride,
        "locref_stdev": 7.2801,
        "input": {"name": "image", "layout": "HWC", "dtype": "uint8", "color": "RGB"},
        "outputs": outputs,
        "provenance": {"source": "tests/builders.py marker model"},
    }
    meta.update(overrides)
    return meta


def write_marker_bundle(folder: Path, **kwargs) -> Path:
    """Write a marker bundle folder (model + bundle.json) and return it."""
    from realtime_pose.bundle import write_bundle

    model_keys = {"stride", "layout", "locref_value", "with_locref", "in_graph_peaks"}
    model_kwargs = {k: v for k, v in kwargs.items() if k in model_keys}
    meta_kwargs = {k: v for k, v in kwargs.items() if k in model_keys - {"locref_value"}}
    write_bundle(folder, marker_model(**model_kwargs), marker_meta(**meta_kwargs))
    return folder


def draw_markers(
    height: int, width: int, cells_xy: list[tuple[int, int]], stride: int = 8
) -> np.ndarray:
    """A black BGR frame with one saturated ``stride``-sized square per keypoint.

    ``cells_xy[k]`` is the score-map cell ``(ix, iy)`` of keypoint k (red, green, blue).
    """
    frame = np.zeros((height, width, 3), np.uint8)
    bgr_channel = [2, 1, 0]  # red, green, blue in a BGR frame
    for k, (ix, iy) in enumerate(cells_xy):
        frame[iy * stride : (iy + 1) * stride, ix * stride : (ix + 1) * stride, bgr_channel[k]] = (
            255
        )
    return frame


def dot_model(stride: int = 8) -> bytes:
    """Serialised ONNX model of identical animals that are one bright dot each: one score map,
    the brightest colour channel averaged over each ``stride`` × ``stride`` cell (so every white
    square of one cell is a peak of 1.0), and zero location refinement. Read with
    :func:`dot_meta` as a one-bodypart look-alike bundle: every peak is an animal."""
    import onnx
    from onnx import TensorProto, helper

    nodes = [
        helper.make_node("Cast", ["image"], ["f"], to=TensorProto.FLOAT),
        helper.make_node("Transpose", ["f"], ["nchw"], perm=[0, 3, 1, 2]),
        helper.make_node("ReduceMax", ["nchw"], ["bright"], axes=[1], keepdims=1),
        helper.make_node("Mul", ["bright", "inv255"], ["scaled"]),
        helper.make_node(
            "AveragePool", ["scaled"], ["scmap"], kernel_shape=[stride] * 2, strides=[stride] * 2
        ),
        helper.make_node("Concat", ["scmap", "scmap"], ["ss"], axis=1),
        helper.make_node("Mul", ["ss", "zero"], ["locref"]),
    ]
    inits = [
        helper.make_tensor("inv255", TensorProto.FLOAT, [], [1 / 255.0]),
        helper.make_tensor("zero", TensorProto.FLOAT, [], [0.0]),
    ]
    graph = helper.make_graph(
        nodes,
        "dots",
        [helper.make_tensor_value_info("image", TensorProto.UINT8, ["N", "H", "W", 3])],
        [
            helper.make_tensor_value_info("scmap", TensorProto.FLOAT, ["N", 1, "h", "w"]),
            helper.make_tensor_value_info("locref", TensorProto.FLOAT, ["N", 2, "h", "w"]),
        ],
        initializer=inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model.SerializeToString()


def dot_meta(slots: int, stride: int = 8) -> dict:
    """``bundle.json`` content for :func:`dot_model`: up to ``slots`` look-alike animals of one
    bodypart (``dot``)."""
    names = [f"animal{i}" for i in range(slots)]
    return {
        "schema_version": 1,
        "name": "dots",
        "keypoints": [f"{n}/dot" for n in names],
        "stride": stride,
        "locref_stdev": 7.2801,
        "input": {"name": "image", "layout": "HWC", "dtype": "uint8", "color": "RGB"},
        "outputs": {
            "scoremap": {"name": "scmap", "layout": "NCHW"},
            "locref": {"name": "locref", "layout": "NCHW"},
        },
        "animals": {"decoding": "part_affinity", "names": names, "bodyparts": ["dot"]},
        "provenance": {"source": "tests/builders.py dot model"},
    }
