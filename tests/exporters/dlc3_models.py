"""DeepLabCut 3 models made in the test with DeepLabCut's own code, no downloads.

A tiny DeepLabCut project of synthetic-scene frames (``deeplabcut.create_new_project`` and
``create_training_dataset`` with the PyTorch engine) gets one shuffle per backbone. Each network
is built from its ``pytorch_config.yaml`` with ``PoseModel.build(..., pretrained_backbone=False)``,
given weights whose maps have distinct peaks (BatchNorm statistics re-estimated on scene frames:
untrained statistics blow activations up to ~1e7; the heads' last layers scaled to O(1) outputs
instead of DeepLabCut's std-0.001 initialisation, which leaves near-tied maps), saved as a training
``snapshot-005.pt`` and exported with ``deeplabcut.export_model``.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from realtime_pose.sources.synthetic_scene import KEYPOINTS, SKELETON

#: net_type → shuffle; the heatmap backbones the importer supports
NETS = {"resnet_50": 1, "hrnet_w18": 2, "cspnext_s": 3}
#: unsupported heads, for the refusal tests
UNSUPPORTED_NETS = {"rtmpose_s": 4, "dekr_w18": 5}
HEIGHT, WIDTH = 96, 128
SCORER = "rp"
VIDEO = "arena"


@dataclass(frozen=True)
class Dlc3Project:
    """The project and, per net type, its snapshot and its exported model."""

    config: Path
    snapshots: dict[str, Path]
    exports: dict[str, Path]

    @property
    def root(self) -> Path:
        return self.config.parent


def scene_samples(
    count: int, height: int = HEIGHT, width: int = WIDTH, seed: int = 0
) -> list[tuple[np.ndarray, np.ndarray]]:
    """BGR frames of the synthetic arena with their exact keypoints ``[K, 2]``."""
    from realtime_pose.sources.synthetic_scene import random_sample

    rng = np.random.default_rng([seed, 0xD1C3])
    return [random_sample(rng, width, height) for _ in range(count)]


def scene_frames(count: int, height: int = HEIGHT, width: int = WIDTH, seed: int = 0) -> list:
    """BGR frames of the synthetic arena."""
    return [frame for frame, _ in scene_samples(count, height, width, seed)]


def _write_labels(project: Path, samples: list) -> None:
    import pandas as pd

    folder = project / "labeled-data" / VIDEO
    folder.mkdir(parents=True, exist_ok=True)
    rows, coords = [], []
    for i, (frame, keypoints) in enumerate(samples):
        name = f"img{i:04d}.png"
        cv2.imwrite(str(folder / name), frame)
        rows.append(("labeled-data", VIDEO, name))
        coords.append(np.asarray(keypoints, np.float64).reshape(-1))
    columns = pd.MultiIndex.from_product(
        [[SCORER], list(KEYPOINTS), ["x", "y"]], names=["scorer", "bodyparts", "coords"]
    )
    df = pd.DataFrame(np.asarray(coords), index=pd.MultiIndex.from_tuples(rows), columns=columns)
    df.to_hdf(folder / f"CollectedData_{SCORER}.h5", key="df_with_missing", mode="w")


def make_project(base: Path, nets: dict[str, int], n_frames: int = 6) -> Path:
    """A DeepLabCut project (``config.yaml``) with one PyTorch shuffle per net type."""
    import deeplabcut
    from deeplabcut.core.engine import Engine
    from deeplabcut.utils import auxiliaryfunctions

    base.mkdir(parents=True, exist_ok=True)
    samples = scene_samples(n_frames, seed=1)
    frames = [frame for frame, _ in samples]
    video = base / f"{VIDEO}.mp4"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"mp4v"), 10, (WIDTH, HEIGHT))
    for frame in frames:
        writer.write(frame)
    writer.release()
    config = Path(
        deeplabcut.create_new_project(
            "arena", SCORER, [str(video)], working_directory=str(base), copy_videos=False
        )
    )
    cfg = auxiliaryfunctions.read_config(config)
    cfg["bodyparts"] = list(KEYPOINTS)
    cfg["skeleton"] = [list(edge) for edge in SKELETON]
    auxiliaryfunctions.write_config(config, cfg)
    _write_labels(config.parent, samples)
    for net, shuffle in nets.items():
        deeplabcut.create_training_dataset(
            str(config), Shuffles=[shuffle], net_type=net, engine=Engine.PYTORCH
        )
    return config


def train_folder(config: Path, shuffle: int) -> Path:
    """The shuffle's ``train/`` folder (``pytorch_config.yaml``, snapshots)."""
    return next(config.parent.glob(f"dlc-models-pytorch/iteration-0/*shuffle{shuffle}/train"))


def _normalised(frames: list) -> object:
    import torch

    mean = np.array([0.485, 0.456, 0.406], np.float32)
    std = np.array([0.229, 0.224, 0.225], np.float32)
    x = np.stack([(f[:, :, ::-1].astype(np.float32) / 255 - mean) / std for f in frames])
    return torch.from_numpy(np.ascontiguousarray(x.transpose(0, 3, 1, 2)))


def _last_layer(module: object) -> object:
    import torch

    layers = [
        m for m in module.modules() if isinstance(m, (torch.nn.Conv2d, torch.nn.ConvTranspose2d))
    ]
    return layers[-1]


def peaky_weights(net: object, seed: int, target_std: float = 0.5) -> None:
    """Weights with distinct peaks: BatchNorm statistics re-estimated on scene frames, and the
    heads' last layers redrawn and scaled so that the heatmap and locref outputs have a standard
    deviation of ``target_std`` (a trained head's maps are O(1))."""
    import torch

    torch.manual_seed(seed)
    norms = [m for m in net.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    net.eval()
    for bn in norms:
        bn.reset_running_stats()
        bn.momentum = None  # cumulative average over the batches below
        bn.train()
    with torch.no_grad():
        for i in range(4):
            net(_normalised(scene_frames(4, seed=100 + 10 * seed + i)))
    net.eval()
    head = net.heads["bodypart"]
    with torch.no_grad():
        for part in ("heatmap", "locref"):
            layer = _last_layer(getattr(head, f"{part}_head"))
            torch.nn.init.normal_(layer.weight)
            torch.nn.init.zeros_(layer.bias)
            std = float(net(_normalised(scene_frames(4, seed=7)))["bodypart"][part].std())
            layer.weight.mul_(target_std / std)


def make_snapshot(config: Path, net_type: str, shuffle: int) -> Path:
    """Build the shuffle's network with DeepLabCut and save it as a training snapshot."""
    import torch
    import yaml
    from deeplabcut.pose_estimation_pytorch.models import PoseModel

    folder = train_folder(config, shuffle)
    cfg = yaml.safe_load((folder / "pytorch_config.yaml").read_text())
    net = PoseModel.build(copy.deepcopy(cfg["model"]), pretrained_backbone=False)
    peaky_weights(net, shuffle)
    path = folder / "snapshot-005.pt"
    torch.save({"model": net.state_dict(), "metadata": {"epoch": 5}}, path)
    return path


def make_dlc3_project(base: Path, nets: dict[str, int] = NETS) -> Dlc3Project:
    """The project, a snapshot per net and each exported with ``deeplabcut.export_model``."""
    import deeplabcut

    config = make_project(base, {**nets, **UNSUPPORTED_NETS})
    snapshots, exports = {}, {}
    for net, shuffle in nets.items():
        snapshots[net] = make_snapshot(config, net, shuffle)
        deeplabcut.export_model(str(config), shuffle=shuffle)
        (exported,) = config.parent.glob(f"exported-models-pytorch/*shuffle-{shuffle}/*.pt")
        exports[net] = exported
    return Dlc3Project(config, snapshots, exports)
