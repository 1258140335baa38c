"""A trained Keras network → a DeepLabCut exported-model folder, with identical weights.

The folder is what ``deeplabcut.export_model`` writes for a TensorFlow model: ``pose_cfg.yaml``
and a frozen ``snapshot-<steps>.pb`` whose input is a float32 ``Placeholder`` of raw RGB pixels
and whose outputs are the nodes DeepLabCut-Live reads, ``Sigmoid`` (score maps, NHWC) and
``pose/locref_pred/block4/BiasAdd`` (location refinement, NHWC, interleaved x, y per keypoint).
DeepLabCut-Live runs it unchanged (``DLCLive(folder)``), and ``realtime-pose import-dlc`` turns it
back into a bundle: the same weights on both sides, which is what ``benchmarks/vs_dlclive.py``
needs to compare runtimes and not networks.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from realtime_pose.exporters.dlc_import import LOCREF_NODE, POSE_CFG, SCOREMAP_NODE
from realtime_pose.exporters.keras_onnx import _serving_function, import_tensorflow
from realtime_pose.exporters.staging import check_target, staged_folder
from realtime_pose.trainers.train_output import read_train_output

INPUT_NODE = "Placeholder"


def _rename(graph_def: Any, renames: dict[str, str]) -> None:
    """Rename nodes in a GraphDef and every reference to them (data and control inputs)."""
    for node in graph_def.node:
        if node.name in renames:
            node.name = renames[node.name]
        for i, ref in enumerate(node.input):
            control = ref.startswith("^")
            name, _, port = ref.lstrip("^").partition(":")
            if name in renames:
                new = renames[name] + (f":{port}" if port else "")
                node.input[i] = ("^" if control else "") + new


def _order_like_deeplabcut(graph_def: Any) -> None:
    """Input first, location refinement and score maps last: DeepLabCut-Live takes the graph's
    first operation as its input and its last two as (scores, location refinement)."""
    ends = [INPUT_NODE, LOCREF_NODE, SCOREMAP_NODE]
    nodes = {n.name: n for n in graph_def.node}
    middle = [n for n in graph_def.node if n.name not in ends]
    ordered = [nodes[INPUT_NODE], *middle, nodes[LOCREF_NODE], nodes[SCOREMAP_NODE]]
    copies = [type(n)() for n in ordered]
    for copy, node in zip(copies, ordered, strict=True):
        copy.CopyFrom(node)
    del graph_def.node[:]
    graph_def.node.extend(copies)


def write_dlc_export(
    train_dir: str | Path, output_dir: str | Path, overwrite: bool = False
) -> Path:
    """Write the DeepLabCut exported-model folder of a training output; return it.

    Raises
    ------
    TrainOutputError
        The training output is incomplete.
    OutputExistsError
        ``output_dir`` exists and ``overwrite`` is false.
    """
    check_target(output_dir, overwrite, marker=POSE_CFG)
    train = read_train_output(train_dir)
    cfg = train.config
    tf, _ = import_tensorflow()
    from tensorflow.python.framework.convert_to_constants import (
        convert_variables_to_constants_v2,
    )

    keras = tf.keras
    model = keras.models.load_model(train.model_path, compile=False)
    serve = _serving_function(tf, model, len(cfg.keypoints))

    @tf.function(input_signature=[tf.TensorSpec([None, None, None, 3], tf.float32, INPUT_NODE)])
    def dlc_graph(pixels: Any) -> Any:
        image = tf.cast(tf.clip_by_value(tf.round(pixels), 0, 255), tf.uint8)
        maps = serve(image)
        return (
            tf.identity(maps["scmap"], name="dlc_scores"),
            tf.identity(maps["locref"], name="dlc_locref"),
        )

    frozen = convert_variables_to_constants_v2(dlc_graph.get_concrete_function())
    graph_def = frozen.graph.as_graph_def()
    taken = {n.name for n in graph_def.node}
    renames = {name: f"{name}_inner" for name in (SCOREMAP_NODE, LOCREF_NODE) if name in taken}
    scores, locref = (t.name.split(":")[0] for t in frozen.outputs)
    renames.update({scores: SCOREMAP_NODE, locref: LOCREF_NODE})
    _rename(graph_def, renames)
    _order_like_deeplabcut(graph_def)
    pose_cfg = {
        "all_joints": [[i] for i in range(len(cfg.keypoints))],
        "all_joints_names": list(cfg.keypoints),
        "num_joints": len(cfg.keypoints),
        "stride": float(cfg.stride),
        "location_refinement": True,
        "locref_stdev": float(cfg.locref_stdev),
        "net_type": cfg.net or "mobilenet_v2_0.35",
        "mean_pixel": [0.0, 0.0, 0.0],  # normalisation is inside the graph
        "dataset_type": "imgaug",
        "num_outputs": 1,
        "exported_by": "realtime-pose (exporters/dlc_format.py)",
    }
    steps = int(cfg.steps or 0)
    with staged_folder(output_dir, overwrite, marker=POSE_CFG) as tmp:
        (tmp / POSE_CFG).write_text(yaml.safe_dump(pose_cfg, sort_keys=False))
        (tmp / f"snapshot-{steps}.pb").write_bytes(graph_def.SerializeToString())
    return Path(output_dir)
