"""Network shapes, the stride-8 map size, and loading backbone weights from a local file."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

tf = pytest.importorskip("tensorflow", reason="the networks need TensorFlow (the train extra)")
pytestmark = [
    pytest.mark.tf,
    # Keras 3 converts its variables with np.array(copy=False) internally (NumPy 2 warns)
    pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning"),
]


@pytest.mark.parametrize("net", ["mobilenet_v2_0.35", "resnet_50"])
def test_outputs_are_stride_8_maps_with_k_and_2k_channels(net):
    from realtime_pose.trainers.networks import build_model

    model = build_model(net, 5)
    assert model.output_names == ["scmap", "locref"]
    for h, w in ((64, 96), (80, 48)):
        scmap, locref = model(np.zeros((1, h, w, 3), np.uint8), training=False)
        assert scmap.shape == (1, h // 8, w // 8, 5) and locref.shape == (1, h // 8, w // 8, 10)
        assert 0.0 <= float(tf.reduce_min(scmap)) <= float(tf.reduce_max(scmap)) <= 1.0


def test_batchnorm_momentum_is_not_keras_default():
    import keras

    from realtime_pose.trainers.networks import BN_MOMENTUM, build_model

    model = build_model("mobilenet_v2_0.5", 2)
    bns = [layer for layer in model.layers if isinstance(layer, keras.layers.BatchNormalization)]
    assert bns and all(layer.momentum == BN_MOMENTUM < 0.999 for layer in bns)


def test_backbone_weights_load_by_layer_name(tmp_path: Path):
    import keras

    from realtime_pose.trainers.networks import build_model

    reference = keras.applications.MobileNetV2(
        input_shape=(96, 96, 3), alpha=0.35, include_top=False, weights=None
    )
    path = tmp_path / "mobilenet_v2_0.35_no_top.weights.h5"
    reference.save_weights(path)
    model = build_model("mobilenet_v2_0.35", 3, weights=path)
    for name in ("Conv1", "block_13_depthwise", "block_16_project"):
        np.testing.assert_array_equal(
            model.get_layer(name).get_weights()[0], reference.get_layer(name).get_weights()[0]
        )
    with pytest.raises(ValueError, match="Conv_1"):  # the 1280-channel top conv is left out
        model.get_layer("Conv_1")
    with pytest.raises(ValueError, match="no such file"):
        build_model("mobilenet_v2_0.35", 3, weights=tmp_path / "missing.h5")


def test_unknown_net_is_refused():
    from realtime_pose.trainers.networks import parse_net

    with pytest.raises(ValueError, match="unknown net 'vgg16'"):
        parse_net("vgg16")
