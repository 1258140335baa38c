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


_IN_NAMESPACE = """
import json, logging, sys
import h5py, keras, numpy as np
from keras.src.legacy.saving import legacy_h5_format
from realtime_pose.trainers.networks import build_model

logging.basicConfig(level=logging.INFO)
cache = sys.argv[1]
if cache != "-":  # ImageNet weights as Keras caches them: the name it looks for, its h5 layout
    reference = keras.applications.MobileNetV2(
        input_shape=(224, 224, 3), alpha=0.35, include_top=False, weights=None
    )
    with h5py.File(cache, "w") as f:
        legacy_h5_format.save_weights_to_hdf5_group(f, reference)
    expected = reference.get_layer("Conv1").get_weights()[0]
model = build_model("mobilenet_v2_0.35", 3, weights="imagenet")
got = model.get_layer("Conv1").get_weights()[0]
print(json.dumps({"same": bool(cache != "-" and np.array_equal(got, expected))}))
"""


def _imagenet_in_a_namespace(tmp_path: Path, with_cache: bool):
    """Build a model with ImageNet weights in a network namespace of its own (no interface but
    a down loopback: nothing can be fetched), Keras' home in ``tmp_path``."""
    import shutil
    import subprocess
    import sys

    if shutil.which("unshare") is None:
        pytest.skip("needs unshare (util-linux)")
    probe = subprocess.run(["unshare", "-n", "true"], capture_output=True, text=True)
    if probe.returncode != 0:
        pytest.skip(f"cannot make a network namespace here: {probe.stderr.strip()}")
    models = tmp_path / "keras" / "models"
    models.mkdir(parents=True)
    cache = models / "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_0.35_224_no_top.h5"
    repo = Path(__file__).resolve().parents[2]
    env = {
        "PATH": "/usr/sbin:/usr/bin:/sbin:/bin",
        "PYTHONPATH": str(repo),
        "KERAS_HOME": str(tmp_path / "keras"),
        "TF_CPP_MIN_LOG_LEVEL": "3",
    }
    arg = str(cache) if with_cache else "-"
    return subprocess.run(
        ["unshare", "-n", sys.executable, "-c", _IN_NAMESPACE, arg],
        capture_output=True,
        text=True,
        timeout=240,
        cwd=repo,
        env=env,
    )


def test_imagenet_weights_come_from_keras_cache_without_a_network(tmp_path: Path):
    out = _imagenet_in_a_namespace(tmp_path, with_cache=True)
    assert out.returncode == 0, out.stderr[-3000:]
    assert '"same": true' in out.stdout.splitlines()[-1]
    assert "started the backbone from ImageNet" in out.stderr
    assert "cannot be had" not in out.stderr


def test_without_a_network_imagenet_falls_back_to_scratch_in_one_line(tmp_path: Path):
    out = _imagenet_in_a_namespace(tmp_path, with_cache=False)
    assert out.returncode == 0, out.stderr[-3000:]
    warnings = [line for line in out.stderr.splitlines() if "cannot be had" in line]
    assert len(warnings) == 1 and "training from scratch" in warnings[0]
    assert "--weights FILE" in warnings[0]
