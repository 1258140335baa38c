"""In-graph peak extraction on hand-built ONNX graphs (no TensorFlow needed)."""

from __future__ import annotations

import numpy as np
import pytest

from realtime_pose.inference.peaks import find_peaks_reference

onnx = pytest.importorskip("onnx", reason="onnx is not installed (export extra)")
ort = pytest.importorskip("onnxruntime")

K, STRIDE, LOCREF_STDEV = 3, 8.0, 7.2801


def _maps_graph(layout: str, with_locref: bool) -> onnx.ModelProto:
    """Identity graph: inputs ``s``/``l`` are passed through as outputs ``scmap``/``locref``."""
    from onnx import TensorProto, helper

    if layout == "NCHW":
        s_shape, l_shape = [1, K, "h", "w"], [1, 2 * K, "h", "w"]
    else:
        s_shape, l_shape = [1, "h", "w", K], [1, "h", "w", 2 * K]
    inputs = [helper.make_tensor_value_info("s", TensorProto.FLOAT, s_shape)]
    outputs = [helper.make_tensor_value_info("scmap", TensorProto.FLOAT, s_shape)]
    nodes = [helper.make_node("Identity", ["s"], ["scmap"])]
    if with_locref:
        inputs.append(helper.make_tensor_value_info("l", TensorProto.FLOAT, l_shape))
        outputs.append(helper.make_tensor_value_info("locref", TensorProto.FLOAT, l_shape))
        nodes.append(helper.make_node("Identity", ["l"], ["locref"]))
    graph = helper.make_graph(nodes, "maps", inputs, outputs)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    return model


@pytest.mark.parametrize("layout", ["NCHW", "NHWC"])
@pytest.mark.parametrize("with_locref", [True, False])
def test_appended_peaks_equal_numpy_pose_math(layout, with_locref):
    from realtime_pose.exporters.in_graph_peaks import append_peaks

    model = append_peaks(
        _maps_graph(layout, with_locref),
        num_keypoints=K,
        stride=STRIDE,
        locref_stdev=LOCREF_STDEV,
        locref_name="locref" if with_locref else None,
        layout=layout,
    )
    assert [o.name for o in model.graph.output] == ["keypoints"]
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(0)
    for h, w in [(30, 40), (7, 5), (1, 1)]:
        s = rng.random((K, h, w), dtype=np.float32)
        s[1] = 0.5  # a flat map: the first maximum in raster order wins, as in np.argmax
        lr = rng.normal(0, 1, (2 * K, h, w)).astype(np.float32)
        feeds = {"s": (s if layout == "NCHW" else s.transpose(1, 2, 0))[None]}
        if with_locref:
            feeds["l"] = (lr if layout == "NCHW" else lr.transpose(1, 2, 0))[None]
        (got,) = sess.run(None, feeds)
        want = find_peaks_reference(
            s, lr if with_locref else None, STRIDE, LOCREF_STDEV, dtype=np.float64
        )
        assert got.shape == (1, K, 3)
        np.testing.assert_allclose(got[0], want, rtol=1e-6, atol=1e-4)
        assert got[0, 1, 0] == pytest.approx(
            STRIDE / 2 + (LOCREF_STDEV * lr[2, 0, 0] if with_locref else 0), abs=1e-4
        )


def test_append_peaks_names_missing_outputs():
    from realtime_pose.exporters.in_graph_peaks import append_peaks

    with pytest.raises(ValueError, match=r"no output named \['heatmap'\]"):
        append_peaks(
            _maps_graph("NCHW", True),
            num_keypoints=K,
            stride=STRIDE,
            locref_stdev=LOCREF_STDEV,
            scoremap_name="heatmap",
        )
