"""Fixtures: small real Keras training outputs in the trainer's folder layout."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

KEYPOINTS = ["snout", "leftear", "rightear"]
STRIDE = 8
LOCREF_STDEV = 7.2801


def _tf():
    pytest.importorskip("tensorflow", reason="TensorFlow is not installed (train extra)")
    pytest.importorskip("tf2onnx", reason="tf2onnx is not installed (export extra)")
    import keras

    return keras


def build_tiny_model(num_keypoints: int = len(KEYPOINTS), seed: int = 0):
    """A DeepLabCut-shaped Keras model: uint8 image → stride-8 scmap (sigmoid) and locref."""
    keras = _tf()
    keras.utils.set_random_seed(seed)
    image = keras.Input((None, None, 3), dtype="uint8", name="image")
    x = keras.layers.Rescaling(1 / 127.5, offset=-1.0)(image)
    for filters in (8, 16, 16):
        x = keras.layers.Conv2D(filters, 3, strides=2, padding="same", activation="relu")(x)
        x = keras.layers.BatchNormalization()(x)
    scmap = keras.layers.Conv2D(
        num_keypoints, 3, padding="same", activation="sigmoid", name="scmap"
    )(x)
    locref = keras.layers.Conv2D(2 * num_keypoints, 1, name="locref")(x)
    return keras.Model(image, [scmap, locref])


def write_train_dir(
    root: Path, model, *, project: Path | None = None, split: dict | None = None
) -> Path:
    """Save ``model`` and a ``train_config.json`` (+ ``split.json``) in the trainer's layout."""
    root.mkdir(parents=True, exist_ok=True)
    model.save(root / "model.keras")
    config = {
        "net": "tiny_test_net",
        "keypoints": KEYPOINTS[: model.outputs[0].shape[-1]],
        "skeleton": [["snout", "leftear"]],
        "stride": STRIDE,
        "locref_stdev": LOCREF_STDEV,
        "steps": 0,
        "wall_time_s": 0.0,
        "project": str(project) if project else None,
        "data_hash": "0" * 64,
        "test_error_px": None,
        "train_fraction": 0.95,
    }
    (root / "train_config.json").write_text(json.dumps(config))
    (root / "split.json").write_text(json.dumps(split or {"train": [], "test": []}))
    return root


@pytest.fixture(scope="session")
def tiny_train_dir(tmp_path_factory) -> Path:
    """A training-output folder with a tiny random network and a small image project."""
    import cv2

    from exporters.frames import synthetic_frames

    base = tmp_path_factory.mktemp("train")
    project = base / "project"
    images = project / "labeled-data" / "video1"
    images.mkdir(parents=True)
    names = []
    for i, frame in enumerate(synthetic_frames(10, 96, 128, seed=3)):
        name = f"labeled-data/video1/img{i:03d}.png"
        cv2.imwrite(str(project / name), np.ascontiguousarray(frame[:, :, ::-1]))
        names.append(name)
    split = {"train": names[:7], "test": names[7:]}
    return write_train_dir(base / "run", build_tiny_model(), project=project, split=split)


@pytest.fixture(scope="session")
def tiny_bundle(tiny_train_dir, tmp_path_factory):
    """The tiny network exported as a maps bundle."""
    from exporters.keras_onnx import export_bundle

    return export_bundle(tiny_train_dir, tmp_path_factory.mktemp("bundles") / "tiny")
