"""Our Keras network written as a DeepLabCut exported model: the frozen graph DeepLabCut-Live
reads gives the network's keypoints, and importing it back gives a bundle with the same."""

from __future__ import annotations

import numpy as np
import pytest

from realtime_pose.exporters.frames import synthetic_frames
from realtime_pose.util.safe_write import OutputExistsError

from .conftest import KEYPOINTS
from .test_dlc_import import _dlclive_pose
from .test_keras_onnx import _keras_keypoints

pytestmark = pytest.mark.tf


def test_dlc_export_runs_like_the_keras_model_and_imports_back(tiny_train_dir, tmp_path):
    from realtime_pose.exporters.dlc_format import write_dlc_export
    from realtime_pose.exporters.dlc_import import import_dlc, read_dlc_export

    folder = write_dlc_export(tiny_train_dir, tmp_path / "dlc")
    export = read_dlc_export(folder)  # what import-dlc (and DeepLabCut-Live) look for
    assert export.config.all_joints_names == KEYPOINTS and not export.in_graph_pose
    assert export.input_name == "Placeholder"
    frames = synthetic_frames(3, 96, 128, seed=21)
    for frame in frames:
        want = _keras_keypoints(tiny_train_dir, frame)
        np.testing.assert_allclose(_dlclive_pose(folder, frame), want, atol=1e-3)
    bundle = import_dlc(folder, tmp_path / "bundle", parity_images=frames)
    assert bundle.meta.provenance["parity"]["tf_vs_onnx"]["passed"]
    with pytest.raises(OutputExistsError):
        write_dlc_export(tiny_train_dir, folder)


def test_the_graph_is_laid_out_as_deeplabcut_live_reads_it(tiny_train_dir, tmp_path):
    """DeepLabCut-Live feeds the graph's first operation and reads its last two as (scores,
    location refinement): tensorflow's own import order is what it sees."""
    import tensorflow as tf

    from realtime_pose.exporters.dlc_format import write_dlc_export

    folder = write_dlc_export(tiny_train_dir, tmp_path / "dlc")
    graph_def = tf.compat.v1.GraphDef()
    graph_def.ParseFromString(next(folder.glob("*.pb")).read_bytes())
    graph = tf.Graph()
    with graph.as_default():
        tf.import_graph_def(graph_def, name="DLC")
    names = [op.name for op in graph.get_operations()]
    assert names[0] == "DLC/Placeholder"
    assert names[-2:] == ["DLC/pose/locref_pred/block4/BiasAdd", "DLC/Sigmoid"]
