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

    from realtime_pose.exporters.frames import synthetic_frames

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
    from realtime_pose.exporters.keras_onnx import export_bundle

    return export_bundle(tiny_train_dir, tmp_path_factory.mktemp("bundles") / "tiny")


def spot_samples(
    count: int, height: int = 96, width: int = 128, seed: int = 0
) -> tuple[list, np.ndarray]:
    """Dark noisy frames with one red, one green and one blue Gaussian spot each, and the spots'
    centres ``[count, 3, 2]`` (x, y px; red, green, blue)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    frames, centres = [], np.zeros((count, 3, 2))
    for i in range(count):
        img = rng.normal(20, 4, (height, width, 3)).astype(np.float32)
        for c in range(3):
            cx = 8 * rng.integers(2, width // 8 - 2) + rng.uniform(-2, 2)
            cy = 8 * rng.integers(2, height // 8 - 2) + rng.uniform(-2, 2)
            img[..., c] += 220 * np.exp(-((xx - cx) ** 2 + (yy - cy) ** 2) / (2 * 7.0**2))
            centres[i, c] = cx, cy
        frames.append(np.clip(img, 0, 255).astype(np.uint8))
    return frames, centres


def spot_frames(count: int, height: int = 96, width: int = 128, seed: int = 0) -> list:
    """The frames of :func:`spot_samples`."""
    return spot_samples(count, height, width, seed)[0]


def build_spot_model(seed: int = 0):
    """A network with hand-set weights whose score map j peaks on the colour-j spot.

    Real peaks (unlike a random network's flat maps) make int8 errors measurable in pixels.
    """
    keras = _tf()
    rng = np.random.default_rng(seed)
    image = keras.Input((None, None, 3), dtype="uint8", name="image")
    x = keras.layers.Rescaling(1 / 255.0)(image)
    cin = 3
    for _ in range(3):
        kernel = rng.normal(0, 0.02, (3, 3, cin, 8)).astype(np.float32)
        for c in range(3):
            kernel[:, :, c, c] += np.array([[0.05, 0.1, 0.05], [0.1, 0.4, 0.1], [0.05, 0.1, 0.05]])
        conv = keras.layers.Conv2D(8, 3, strides=2, padding="same", activation="relu")
        x = conv(x)
        conv.set_weights([kernel, np.zeros(8, np.float32)])
        cin = 8
    head = keras.layers.Conv2D(3, 3, padding="same", activation="sigmoid", name="scmap")
    scmap = head(x)
    kernel = np.zeros((3, 3, 8, 3), np.float32)
    for c in range(3):
        kernel[:, :, c, c] = 1.5 * np.array([[0.3, 0.6, 0.3], [0.6, 1.0, 0.6], [0.3, 0.6, 0.3]])
    head.set_weights([kernel, np.full(3, -3.0, np.float32)])
    lr = keras.layers.Conv2D(6, 1, name="locref")
    locref = lr(x)
    lr.set_weights([rng.normal(0, 0.3, (1, 1, 8, 6)).astype(np.float32), np.zeros(6, np.float32)])
    return keras.Model(image, [scmap, locref])


@pytest.fixture(scope="session")
def spot_train_dir(tmp_path_factory) -> Path:
    """A training output whose network finds coloured spots, with a project of spot frames."""
    import cv2

    base = tmp_path_factory.mktemp("spots")
    project = base / "project"
    images = project / "labeled-data" / "spots"
    images.mkdir(parents=True)
    names = []
    for i, frame in enumerate(spot_frames(24, seed=7)):
        name = f"labeled-data/spots/img{i:03d}.png"
        cv2.imwrite(str(project / name), np.ascontiguousarray(frame[:, :, ::-1]))
        names.append(name)
    split = {"train": names[:16], "test": names[16:]}
    return write_train_dir(base / "run", build_spot_model(), project=project, split=split)


@pytest.fixture(scope="session")
def labelled_spot_train_dir(tmp_path_factory) -> Path:
    """:func:`build_spot_model` with a DeepLabCut project whose labels are the spots' centres
    (keypoint j on the colour-j spot), so held-out errors are real pixel errors."""
    import cv2
    import pandas as pd
    import yaml

    base = tmp_path_factory.mktemp("labelled-spots")
    project = base / "project"
    images = project / "labeled-data" / "spots"
    images.mkdir(parents=True)
    frames, centres = spot_samples(24, seed=11)
    names = []
    for i, frame in enumerate(frames):
        names.append(f"labeled-data/spots/img{i:03d}.png")
        cv2.imwrite(str(project / names[-1]), np.ascontiguousarray(frame[:, :, ::-1]))
    columns = pd.MultiIndex.from_product(
        [["spots"], KEYPOINTS, ["x", "y"]], names=["scorer", "bodyparts", "coords"]
    )
    table = pd.DataFrame(centres.reshape(len(frames), -1), index=names, columns=columns)
    table.to_csv(images / "CollectedData_spots.csv")
    config = {"Task": "spots", "scorer": "spots", "bodyparts": KEYPOINTS, "pcutoff": 0.6}
    (project / "config.yaml").write_text(yaml.safe_dump(config))
    split = {"train": names[:16], "test": names[16:]}
    return write_train_dir(base / "run", build_spot_model(), project=project, split=split)
