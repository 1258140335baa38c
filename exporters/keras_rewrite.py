"""Export-time rewrite of dilated convolutions into single ONNX ``Conv`` nodes.

TensorFlow runs a dilated ``Conv2D``/``DepthwiseConv2D`` with ``padding="same"`` as
SpaceToBatchND → convolution → BatchToSpaceND, and with a dynamic input size tf2onnx turns each
into ~50 shape-computing nodes (Concat, Slice, Mul, Split, SpaceToDepth, DepthToSpace...). The
DeepLabCut-style backbones keep stride 8 by dilating their last stage, so that is several
hundred nodes and a fifth of the CPU time. Here each such layer is traced instead as one
``tf.nn.conv2d`` with ``dilations`` and explicit padding (grouped for depthwise), which tf2onnx
maps to one ``Conv`` with ``dilations`` and ``pads``.

TensorFlow on the CPU cannot *run* a grouped convolution, so the rewritten function is only
traced for conversion; the parity check compares the ONNX graph with the original model.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


def _same_pads(kernel: int, dilation: int) -> tuple[int, int]:
    total = dilation * (kernel - 1)
    return total // 2, total - total // 2


def _rewritable(keras: Any, layer: Any) -> bool:
    if type(layer) not in (keras.layers.Conv2D, keras.layers.DepthwiseConv2D):
        return False
    return (
        max(layer.dilation_rate) > 1
        and layer.data_format == "channels_last"
        and tuple(layer.strides) == (1, 1)
    )


def native_dilation_call(model: Any) -> tuple[Callable[[Any], Any], int]:
    """A function equivalent to ``model(x, training=False)`` that traces dilated convolutions
    as single dilated ``Conv2D`` ops.

    Returns
    -------
    tuple
        The function, and how many layers were rewritten (0: it is the model itself).
    """
    import keras
    import tensorflow as tf

    targets = {id(layer) for layer in model.layers if _rewritable(keras, layer)}
    if not targets:
        return (lambda x: model(x, training=False)), 0

    class NativeDilatedConv(keras.layers.Layer):
        """Calls ``source``'s weights through one dilated, explicitly padded ``conv2d``."""

        def __init__(self, source: Any) -> None:
            super().__init__(name=f"{source.name}_native_dilation", dtype=source.dtype_policy)
            self.source = source

        def call(self, x: Any) -> Any:
            src = self.source
            kernel = src.kernel
            kh, kw = src.kernel_size
            dh, dw = src.dilation_rate
            if isinstance(src, keras.layers.DepthwiseConv2D):
                # [kh, kw, C, M] → grouped [kh, kw, 1, C*M]; output channel c*M + m as Keras
                kernel = tf.reshape(kernel, (kh, kw, 1, -1))
            if src.padding == "same":
                pads = [[0, 0], list(_same_pads(kh, dh)), list(_same_pads(kw, dw)), [0, 0]]
            else:
                pads = [[0, 0], [0, 0], [0, 0], [0, 0]]
            y = tf.nn.conv2d(x, kernel, strides=1, padding=pads, dilations=[dh, dw])
            if src.use_bias:
                y = tf.nn.bias_add(y, src.bias)
            return src.activation(y) if src.activation is not None else y

    def clone(layer: Any) -> Any:
        return NativeDilatedConv(layer) if id(layer) in targets else layer

    rewritten = keras.models.clone_model(model, clone_function=clone)
    return (lambda x: rewritten(x, training=False)), len(targets)
