"""Small DeepLabCut-format exported models, built with TF1-style graphs and frozen for real."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import yaml

KEYPOINTS = ["snout", "leftear", "rightear", "tailbase"]
STRIDE = 8
LOCREF_STDEV = 7.2801
MEAN_PIXEL = [123.68, 116.779, 103.939]


def build_dlc_graph(
    num_keypoints: int = len(KEYPOINTS), in_graph_pose: bool = False, seed: int = 0
):
    """A frozen GraphDef shaped like ``deeplabcut.export_model`` output.

    float32 ``Placeholder`` → mean-pixel subtraction → three stride-2 convs → ``pose/part_pred``
    and ``pose/locref_pred/block4/BiasAdd`` heads → ``Sigmoid``; with ``in_graph_pose`` the
    DeepLabCut ``TFGPUinference`` argmax ending in ``concat_1`` (rows of y, x, likelihood).
    """
    import tensorflow as tf

    tf1 = tf.compat.v1
    rng = np.random.default_rng(seed)
    graph = tf.Graph()
    with graph.as_default():
        inputs = tf1.placeholder(tf.float32, [None, None, None, 3], name="Placeholder")
        mean = tf.constant(MEAN_PIXEL, dtype=tf.float32, shape=[1, 1, 1, 3], name="img_mean")
        x = inputs - mean

        def conv(x, filters, stride, scope, relu=True):
            with tf1.variable_scope(scope):
                w0 = rng.normal(0, 0.08, (3, 3, int(x.shape[-1]), filters)).astype(np.float32)
                b0 = rng.normal(0, 0.1, filters).astype(np.float32)
                w = tf1.get_variable("weights", initializer=tf.constant(w0), use_resource=False)
                b = tf1.get_variable("biases", initializer=tf.constant(b0), use_resource=False)
                y = tf.nn.conv2d(x, w, [1, stride, stride, 1], "SAME")
                y = tf.nn.bias_add(y, b, name="BiasAdd")
                return tf.nn.relu(y) if relu else y

        for i, filters in enumerate((8, 16, 16)):
            x = conv(x, filters, 2, f"resnet_v1_50/block{i + 1}")
        with tf1.variable_scope("pose"):
            part = conv(x, num_keypoints, 1, "part_pred/block4", relu=False)
            locref = conv(x, 2 * num_keypoints, 1, "locref_pred/block4", relu=False)
        probs = tf.sigmoid(part, name="Sigmoid")
        outputs = ["Sigmoid", "pose/locref_pred/block4/BiasAdd"]
        if in_graph_pose:  # DeepLabCut's BasePoseNet.inference, batch size 1
            p = tf.squeeze(probs, axis=0)
            lr = tf.squeeze(locref, axis=0)
            shape = tf.shape(p)
            lr = tf.reshape(lr, (shape[0] * shape[1], -1, 2))
            p = tf.reshape(p, (shape[0] * shape[1], -1))
            maxloc = tf.argmax(p, axis=0)
            loc = tf.unravel_index(
                maxloc, (tf.cast(shape[0], tf.int64), tf.cast(shape[1], tf.int64))
            )
            maxloc = tf.reshape(maxloc, (1, -1))
            joints = tf.reshape(tf.range(0, tf.cast(shape[2], tf.int64)), (1, -1))
            indices = tf.transpose(tf.concat([maxloc, joints], axis=0))
            offset = tf.gather(tf.gather_nd(lr, indices), [1, 0], axis=1)
            likelihood = tf.reshape(tf.gather_nd(p, indices), (-1, 1))
            pose = STRIDE * tf.cast(tf.transpose(loc), tf.float32) + STRIDE * 0.5
            pose = pose + offset * LOCREF_STDEV
            pose = tf.concat([pose, likelihood], axis=1)
            assert pose.op.name == "concat_1", pose.op.name
            outputs = ["concat_1"]
        with tf1.Session(graph=graph) as sess:
            sess.run(tf1.global_variables_initializer())
            frozen = tf1.graph_util.convert_variables_to_constants(
                sess, graph.as_graph_def(), outputs
            )
    return frozen


def write_dlc_export(folder: Path, *, in_graph_pose: bool = False, seed: int = 0) -> Path:
    """Write ``pose_cfg.yaml`` + ``snapshot-1030000.pb`` like a DeepLabCut export folder."""
    folder.mkdir(parents=True, exist_ok=True)
    graph = build_dlc_graph(in_graph_pose=in_graph_pose, seed=seed)
    (folder / "snapshot-1030000.pb").write_bytes(graph.SerializeToString())
    cfg = {
        "all_joints": [[i] for i in range(len(KEYPOINTS))],
        "all_joints_names": KEYPOINTS,
        "dataset_type": "imgaug",
        "global_scale": 0.8,
        "location_refinement": True,
        "locref_stdev": LOCREF_STDEV,
        "mean_pixel": MEAN_PIXEL,
        "net_type": "resnet_50",
        "num_joints": len(KEYPOINTS),
        "num_outputs": 1,
        "stride": STRIDE,
        "init_weights": "/nonexistent/snapshot-1030000",
    }
    (folder / "pose_cfg.yaml").write_text(yaml.safe_dump(cfg))
    return folder
