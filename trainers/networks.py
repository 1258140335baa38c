"""Keras pose networks: a backbone at output stride 16 and DeepLabCut's stride-8 heads.

Backbones are MobileNetV2 (width α 0.35, 0.5, 0.75, 1.0) and ResNet-50, built here layer by
layer with the same layer names as ``keras.applications`` (so a local weights file for those
models loads by name) but with the last downsampling replaced by dilation, which keeps output
stride 16 as in DeepLabCut. One 3×3 transposed convolution with 3K output channels brings the
features to stride 8 and is split into the two maps: ``scmap`` (sigmoid, K channels) and
``locref`` (2K channels, dx/dy per keypoint in units of ``locref_stdev``); one kernel call
instead of two when the graph runs. The MobileNetV2 backbone ends at its last inverted
residual block: Keras' final 1×1 convolution to 1280 channels (1280 for every α) cost as much
as the rest of the α=0.35 network at stride 16, and its 1280-channel input made the head the
third most expensive layer; without both, the exported network runs at 320×240 in 2.2 ms
instead of 3.1 ms (ONNX Runtime, 2 CPU threads). The input is uint8 RGB of any size;
normalisation is a ``Rescaling`` layer inside the model, so exported graphs need no
preprocessing but a cast.

Map size: every stride-2 layer uses ``same`` padding, so the stride-16 features are
``ceil(H/16) × ceil(W/16)`` and the maps ``2·ceil(H/16) × 2·ceil(W/16)``, i.e. ``ceil(H/8)``
whenever that is even (640×480, 320×240, any multiple of 16) and one extra row or column,
beyond the image, otherwise. The pose math is unaffected.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

STRIDE = 8
BN_MOMENTUM = 0.99  # Keras' 0.999 leaves running statistics far off after a few k steps
NETS: tuple[str, ...] = (
    "mobilenet_v2_0.35",
    "mobilenet_v2_0.5",
    "mobilenet_v2_0.75",
    "mobilenet_v2_1.0",
    "resnet_50",
)


def _keras() -> Any:
    import os

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    try:
        import keras
    except ImportError as exc:
        raise ImportError(
            "training needs TensorFlow and Keras 3; install them with "
            "pip install 'realtime-pose[train]'"
        ) from exc
    return keras


def parse_net(net: str) -> tuple[str, float]:
    """``("mobilenet_v2", alpha)`` or ``("resnet_50", 1.0)`` from a net name."""
    match = re.fullmatch(r"mobilenet_v2_(0\.35|0\.5|0\.75|1\.0|1)", net)
    if match:
        return "mobilenet_v2", float(match.group(1))
    if net in ("resnet_50", "resnet50"):
        return "resnet_50", 1.0
    raise ValueError(f"unknown net {net!r}; choose one of {', '.join(NETS)}")


def _make_divisible(v: float, divisor: int = 8) -> int:
    new_v = max(divisor, int(v + divisor / 2) // divisor * divisor)
    if new_v < 0.9 * v:
        new_v += divisor
    return new_v


def _bn(keras: Any, name: str, epsilon: float) -> Any:
    return keras.layers.BatchNormalization(epsilon=epsilon, momentum=BN_MOMENTUM, name=name)


def _inverted_residual(
    keras: Any,
    x: Any,
    filters: int,
    alpha: float,
    stride: int,
    dilation: int,
    expansion: int,
    block_id: int,
) -> Any:
    layers = keras.layers
    in_channels = x.shape[-1]
    pointwise = _make_divisible(int(filters * alpha), 8)
    inputs = x
    prefix = f"block_{block_id}_"
    if block_id:
        x = layers.Conv2D(
            expansion * in_channels, 1, padding="same", use_bias=False, name=prefix + "expand"
        )(x)
        x = _bn(keras, prefix + "expand_BN", 1e-3)(x)
        x = layers.ReLU(6.0, name=prefix + "expand_relu")(x)
    else:
        prefix = "expanded_conv_"
    x = layers.DepthwiseConv2D(
        3,
        strides=stride,
        dilation_rate=dilation,
        use_bias=False,
        padding="same",
        name=prefix + "depthwise",
    )(x)
    x = _bn(keras, prefix + "depthwise_BN", 1e-3)(x)
    x = layers.ReLU(6.0, name=prefix + "depthwise_relu")(x)
    x = layers.Conv2D(pointwise, 1, padding="same", use_bias=False, name=prefix + "project")(x)
    x = _bn(keras, prefix + "project_BN", 1e-3)(x)
    if in_channels == pointwise and stride == 1:
        return layers.Add(name=prefix + "add")([inputs, x])
    return x


# (filters, stride, expansion) of MobileNetV2's 17 inverted residual blocks
_MOBILENET_BLOCKS = (
    (16, 1, 1),
    (24, 2, 6), (24, 1, 6),
    (32, 2, 6), (32, 1, 6), (32, 1, 6),
    (64, 2, 6), (64, 1, 6), (64, 1, 6), (64, 1, 6),
    (96, 1, 6), (96, 1, 6), (96, 1, 6),
    (160, 2, 6), (160, 1, 6), (160, 1, 6),
    (320, 1, 6),
)  # fmt: skip


def _mobilenet_v2(keras: Any, x: Any, alpha: float) -> Any:
    """MobileNetV2 features at output stride 16 (block 13 dilated instead of strided)."""
    layers = keras.layers
    x = layers.Conv2D(
        _make_divisible(32 * alpha, 8), 3, strides=2, padding="same", use_bias=False, name="Conv1"
    )(x)
    x = _bn(keras, "bn_Conv1", 1e-3)(x)
    x = layers.ReLU(6.0, name="Conv1_relu")(x)
    current_stride, dilation = 2, 1
    for block_id, (filters, stride, expansion) in enumerate(_MOBILENET_BLOCKS):
        if stride == 2 and current_stride == 16:
            stride, dilation = 1, 2
        elif stride == 2:
            current_stride *= 2
        x = _inverted_residual(keras, x, filters, alpha, stride, dilation, expansion, block_id)
    return x


def _resnet_block(
    keras: Any, x: Any, filters: int, stride: int, dilation: int, shortcut: bool, name: str
) -> Any:
    layers = keras.layers
    if shortcut:
        sc = layers.Conv2D(4 * filters, 1, strides=stride, name=name + "_0_conv")(x)
        sc = _bn(keras, name + "_0_bn", 1.001e-5)(sc)
    else:
        sc = x
    x = layers.Conv2D(filters, 1, strides=stride, name=name + "_1_conv")(x)
    x = _bn(keras, name + "_1_bn", 1.001e-5)(x)
    x = layers.Activation("relu", name=name + "_1_relu")(x)
    x = layers.Conv2D(filters, 3, padding="same", dilation_rate=dilation, name=name + "_2_conv")(x)
    x = _bn(keras, name + "_2_bn", 1.001e-5)(x)
    x = layers.Activation("relu", name=name + "_2_relu")(x)
    x = layers.Conv2D(4 * filters, 1, name=name + "_3_conv")(x)
    x = _bn(keras, name + "_3_bn", 1.001e-5)(x)
    x = layers.Add(name=name + "_add")([sc, x])
    return layers.Activation("relu", name=name + "_out")(x)


def _resnet_50(keras: Any, x: Any) -> Any:
    """ResNet-50 features at output stride 16 (conv5 dilated instead of strided)."""
    layers = keras.layers
    x = layers.Conv2D(64, 7, strides=2, padding="same", name="conv1_conv")(x)
    x = _bn(keras, "conv1_bn", 1.001e-5)(x)
    x = layers.Activation("relu", name="conv1_relu")(x)
    x = layers.MaxPooling2D(3, strides=2, padding="same", name="pool1_pool")(x)
    for stage, (filters, blocks, stride, dilation) in enumerate(
        ((64, 3, 1, 1), (128, 4, 2, 1), (256, 6, 2, 1), (512, 3, 1, 2)), start=2
    ):
        for b in range(1, blocks + 1):
            x = _resnet_block(
                keras,
                x,
                filters,
                stride if b == 1 else 1,
                dilation,
                b == 1,
                f"conv{stage}_block{b}",
            )
    return x


def build_model(
    net: str,
    num_keypoints: int,
    *,
    weights: str | Path | None = None,
    logits: bool = False,
    num_edges: int = 0,
) -> Any:
    """A Keras pose model.

    Parameters
    ----------
    net
        One of :data:`NETS`.
    num_keypoints
        K.
    weights
        ``"imagenet"`` (:func:`load_imagenet_weights`: fetched by Keras, or from scratch with a
        warning where they cannot be had), a local ``.h5`` of the matching
        ``keras.applications`` backbone (loaded layer by layer by name), or None (from scratch).
    logits
        Also return a training model whose first output is the score logits.
    num_edges
        Part-affinity edges ``L`` (animals that look alike, grouped after the network): a third
        output ``paf`` (``[b, h, w, 2L]``, linear) from the same transposed convolution; 0: none.

    Returns
    -------
    keras.Model or tuple
        The model with input ``image`` (uint8 ``[b, H, W, 3]`` RGB) and outputs ``scmap``
        (sigmoid, ``[b, h, w, K]``) and ``locref`` (``[b, h, w, 2K]``) (and ``paf``); with
        ``logits=True``, ``(model, training_model)`` sharing all weights.
    """
    keras = _keras()
    layers = keras.layers
    family, alpha = parse_net(net)
    if num_keypoints < 1:
        raise ValueError(f"num_keypoints must be >= 1, got {num_keypoints}")
    image = keras.Input((None, None, 3), dtype="uint8", name="image")
    if family == "mobilenet_v2":
        x = layers.Rescaling(1.0 / 127.5, offset=-1.0, name="normalise")(image)
        features = _mobilenet_v2(keras, x, alpha)
    else:
        # caffe-style ImageNet statistics, scaled to unit-ish range (weights from keras.applications
        # expect BGR mean-subtracted input; fine-tuning adapts to this small difference)
        x = layers.Rescaling(1.0 / 64.0, offset=-2.0, name="normalise")(image)
        features = _resnet_50(keras, x)
    if num_edges < 0:
        raise ValueError(f"num_edges must be >= 0, got {num_edges}")
    k = num_keypoints
    heads = layers.Conv2DTranspose(
        3 * k + 2 * num_edges, 3, strides=2, padding="same", name="pose_heads"
    )(features)
    score_logits = heads[..., :k]
    locref = layers.Identity(name="locref")(heads[..., k : 3 * k])
    scmap = layers.Activation("sigmoid", name="scmap", dtype="float32")(score_logits)
    extra = [layers.Identity(name="paf")(heads[..., 3 * k :])] if num_edges else []
    name = f"pose_{net.replace('.', '')}"
    model = keras.Model(image, [scmap, locref, *extra], name=name)
    if weights == IMAGENET:
        load_imagenet_weights(model, net)
    elif weights is not None:
        load_backbone_weights(model, net, weights)
    if logits:
        return model, keras.Model(image, [score_logits, locref, *extra], name=name + "_train")
    return model


IMAGENET = "imagenet"
"""``weights=IMAGENET``: keras.applications' ImageNet backbone, fetched once by Keras itself."""


def _application(keras: Any, net: str, weights: str) -> Any:
    """keras.applications' backbone of ``net`` without its top, with ``weights``."""
    family, alpha = parse_net(net)
    if family == "mobilenet_v2":
        return keras.applications.MobileNetV2(
            input_shape=(224, 224, 3), alpha=alpha, include_top=False, weights=weights
        )
    return keras.applications.ResNet50(
        input_shape=(224, 224, 3), include_top=False, weights=weights
    )


def _copy_layers(model: Any, reference: Any) -> int:
    """Copy every layer of ``reference`` into the layer of ``model`` with its name and shapes."""
    ours = {layer.name: layer for layer in model.layers}
    loaded = 0
    for layer in reference.layers:
        target = ours.get(layer.name)
        values = layer.get_weights()
        if target is None or not values:
            continue
        if [v.shape for v in values] != [tuple(w.shape) for w in target.weights]:
            continue
        target.set_weights(values)
        loaded += 1
    return loaded


def load_backbone_weights(model: Any, net: str, weights: str | Path) -> int:
    """Copy a ``keras.applications`` backbone's weights from a local ``.h5`` into ``model``.

    Returns the number of layers loaded; raises ``ValueError`` when none matches.
    """
    keras = _keras()
    path = Path(weights).expanduser()
    if not path.is_file():
        raise ValueError(f"--weights {path}: no such file")
    try:
        reference = _application(keras, net, str(path))
    except Exception as exc:  # Keras raises ValueError/OSError with varied messages
        raise ValueError(
            f"--weights {path}: cannot be loaded into keras.applications' {net} backbone without "
            f"its top ({exc}); use the matching '..._no_top.h5' file"
        ) from exc
    loaded = _copy_layers(model, reference)
    if loaded == 0:
        raise ValueError(f"--weights {path}: no layer matched the {net} backbone")
    log.info("loaded %d backbone layers from %s", loaded, path)
    return loaded


def load_imagenet_weights(model: Any, net: str) -> int:
    """Start ``model``'s backbone from ImageNet: keras.applications' weights, which Keras fetches
    once into its cache (``~/.keras/models``, or ``$KERAS_HOME/models``) and reads from there
    after. Where they cannot be had (no network, a proxy that refuses), one line says so and the
    backbone keeps its random initialisation. Returns the number of layers loaded (0: none)."""
    keras = _keras()
    try:
        reference = _application(keras, net, IMAGENET)
    except Exception as exc:  # URL fetch failure, a partial download, a bad cache entry
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        log.warning(
            "ImageNet weights for %s cannot be had (%s): training from scratch; --weights FILE "
            "takes a local copy of keras.applications' '..._no_top.h5'",
            net,
            reason,
        )
        return 0
    loaded = _copy_layers(model, reference)
    log.info("started the backbone from ImageNet (%d layers, keras.applications)", loaded)
    return loaded


__all__: Sequence[str] = (
    "BN_MOMENTUM",
    "IMAGENET",
    "NETS",
    "STRIDE",
    "build_model",
    "load_backbone_weights",
    "load_imagenet_weights",
    "parse_net",
)
