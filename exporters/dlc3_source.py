"""Find and read a DeepLabCut 3 (PyTorch) model: an exported ``.pt`` or a project snapshot.

DeepLabCut 3 keeps a model in one of two forms, and neither is recognised by its file name:

- ``deeplabcut.export_model`` writes ``torch.save({"config": <pytorch_config as a dict>,
  "pose": <state_dict>[, "detector": <state_dict>]})`` under ``exported-models-pytorch/``;
- training writes ``snapshot-<epoch>.pt`` (``{"model": <state_dict>, "metadata": ...}``, also
  ``snapshot-best-<epoch>.pt``) into the shuffle's ``train/`` folder beside its
  ``pytorch_config.yaml``.

Files are read with ``torch.load(weights_only=True)``: tensors and plain containers only, never
arbitrary pickled code. What can be imported is decided from the config alone
(:func:`check_supported`), so an unsupported model is refused before any network is built.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

PYTORCH_CONFIG = "pytorch_config.yaml"
TF_POSE_CONFIG = "pose_cfg.yaml"
HEAD = "bodypart"
SUPPORTED = (
    "single-animal bottom-up models with one HeatmapHead ('bodypart') decoded by a "
    "HeatmapPredictor, on any backbone DeepLabCut builds (ResNet, HRNet, CSPNeXt, ...)"
)


class Dlc3ImportError(ValueError):
    """A DeepLabCut 3 model that cannot be imported; the message names the file and field."""


@dataclass(frozen=True)
class Dlc3Model:
    """A DeepLabCut 3 model, read but not built.

    Attributes
    ----------
    path
        The ``.pt`` file the weights came from.
    kind
        ``"export"`` (``deeplabcut.export_model``) or ``"snapshot"`` (a training snapshot).
    config
        The ``pytorch_config`` as a dict (from the export, or the ``pytorch_config.yaml``).
    config_path
        Where the config was read: the ``.pt`` itself for an export.
    state_dict
        The pose model's weights.
    has_detector
        The export also carries a detector (a top-down model).
    """

    path: Path
    kind: str
    config: dict[str, Any]
    config_path: Path
    state_dict: dict[str, Any]
    has_detector: bool

    @property
    def bodyparts(self) -> list[str]:
        """Keypoint names, in the heads' channel order."""
        return list(self.config["metadata"]["bodyparts"])

    @property
    def head(self) -> dict[str, Any]:
        """The config of the (one, supported) pose head."""
        return self.config["model"]["heads"][HEAD]

    @property
    def net_type(self) -> str | None:
        """DeepLabCut's name of the network (``resnet_50``, ``hrnet_w18``, ...)."""
        value = self.config.get("net_type")
        return None if value is None else str(value)


def is_dlc3_model(path: str | Path) -> bool:
    """True when ``path`` is a DeepLabCut 3 model (a ``.pt`` file, a folder with a
    ``pytorch_config.yaml``, or a folder of exported ``.pt`` files), False for anything else
    (such as a DeepLabCut 2 TensorFlow export folder)."""
    path = Path(path).expanduser()
    if path.is_file():
        return path.suffix == ".pt"
    if not path.is_dir() or (path / TF_POSE_CONFIG).is_file():
        return False
    return (path / PYTORCH_CONFIG).is_file() or any(path.glob("*.pt"))


def require_dlc3() -> None:
    """Raise :class:`ImportError` with the install line when PyTorch or DeepLabCut is missing."""
    import importlib.util

    missing = [m for m in ("torch", "deeplabcut") if importlib.util.find_spec(m) is None]
    if missing:
        raise ImportError(
            f"importing a DeepLabCut 3 model needs {' and '.join(missing)}, which this "
            "environment lacks: pip install 'realtime-pose[dlc3]' on the machine that imports "
            "(never needed on a rig)"
        )


def _epoch(path: Path) -> int:
    match = re.search(r"(\d+)\.pt$", path.name)
    return int(match.group(1)) if match else -1


def pick_model_file(path: str | Path) -> Path:
    """The ``.pt`` to import for a file or folder.

    A folder with ``pytorch_config.yaml`` (a shuffle's ``train/`` folder): its best snapshot
    (``snapshot-best-*.pt``) if there is one, else the latest; detector snapshots are skipped.
    A folder of exported models: its one ``.pt`` (several are refused, listed).
    """
    path = Path(path).expanduser()
    if path.is_file():
        return path
    if not path.is_dir():
        raise Dlc3ImportError(f"{path}: no such file or folder")
    if (path / PYTORCH_CONFIG).is_file():
        snapshots = [
            p for p in path.glob("snapshot-*.pt") if not p.name.startswith("snapshot-detector")
        ]
        if not snapshots:
            raise Dlc3ImportError(f"{path}: no snapshot-*.pt beside {PYTORCH_CONFIG}")
        best = [p for p in snapshots if p.name.startswith("snapshot-best")]
        return max(best or snapshots, key=lambda p: (_epoch(p), p.name))
    found = sorted(path.glob("*.pt"))
    if len(found) == 1:
        return found[0]
    if not found:
        raise Dlc3ImportError(f"{path}: no DeepLabCut model (.pt) in this folder")
    names = ", ".join(p.name for p in found)
    raise Dlc3ImportError(f"{path}: holds {len(found)} models ({names}); name the one to import")


def _load_pt(path: Path) -> dict[str, Any]:
    import torch

    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # zip, pickle and weights-only errors have no common base
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise Dlc3ImportError(f"{path}: not a readable PyTorch model file ({reason})") from exc
    if not isinstance(data, dict):
        raise Dlc3ImportError(
            f"{path}: holds a {type(data).__name__}, not DeepLabCut's dict of config and weights"
        )
    return data


def _read_yaml(path: Path) -> dict[str, Any]:
    import yaml

    try:
        data = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise Dlc3ImportError(f"{path}: cannot be read as YAML ({exc})") from exc
    if not isinstance(data, dict):
        raise Dlc3ImportError(f"{path}: expected a mapping at the top level")
    return data


def _state_dict(data: dict[str, Any], key: str, path: Path) -> dict[str, Any]:
    weights = data.get(key)
    if not isinstance(weights, dict) or not weights:
        raise Dlc3ImportError(f"{path}: field '{key}' is missing or empty (the model's weights)")
    return weights


def read_dlc3_model(path: str | Path) -> Dlc3Model:
    """Read a DeepLabCut 3 model (file or folder, see :func:`pick_model_file`).

    Raises
    ------
    Dlc3ImportError
        A file that is not a DeepLabCut 3 model, or a snapshot without its config.
    """
    pt = pick_model_file(path)
    require_dlc3()
    data = _load_pt(pt)
    if "config" in data and "pose" in data:
        config = data["config"]
        if not isinstance(config, dict):
            raise Dlc3ImportError(f"{pt}: field 'config' is not a mapping")
        weights = _state_dict(data, "pose", pt)
        model = Dlc3Model(pt, "export", config, pt, weights, data.get("detector") is not None)
    elif "model" in data:
        config_path = pt.parent / PYTORCH_CONFIG
        if not config_path.is_file():
            raise Dlc3ImportError(
                f"{pt}: a training snapshot needs its {PYTORCH_CONFIG} beside it "
                f"({config_path} is missing)"
            )
        weights = _state_dict(data, "model", pt)
        model = Dlc3Model(pt, "snapshot", _read_yaml(config_path), config_path, weights, False)
    else:
        keys = ", ".join(sorted(map(str, data))) or "none"
        raise Dlc3ImportError(
            f"{pt}: not a DeepLabCut 3 model: expected keys 'config' and 'pose' (an export) or "
            f"'model' (a snapshot), found {keys}"
        )
    check_supported(model)
    return model


def _field(config: dict[str, Any], dotted: str, where: Path) -> Any:
    node: Any = config
    for part in dotted.split("."):
        if not isinstance(node, dict) or part not in node:
            raise Dlc3ImportError(f"{where}: field '{dotted}' is missing")
        node = node[part]
    return node


def check_supported(model: Dlc3Model) -> None:
    """Refuse, in one line naming the field, what this importer does not turn into a bundle."""
    cfg, where = model.config, model.config_path
    bodyparts = _field(cfg, "metadata.bodyparts", where)
    if not isinstance(bodyparts, list) or not bodyparts:
        raise Dlc3ImportError(f"{where}: field 'metadata.bodyparts' must be a non-empty list")
    method = str(cfg.get("method", "bu")).lower()
    if method != "bu" or model.has_detector or cfg.get("detector"):
        raise Dlc3ImportError(
            f"{where}: field 'method' is {method!r} with a detector: a top-down model "
            f"(detector + pose on crops) is not supported; supported: {SUPPORTED}"
        )
    heads = _field(cfg, "model.heads", where)
    if not isinstance(heads, dict) or set(heads) != {HEAD}:
        names = sorted(heads) if isinstance(heads, dict) else heads
        raise Dlc3ImportError(
            f"{where}: field 'model.heads' has heads {names} (unique bodyparts, identity or "
            f"several heads); supported: {SUPPORTED}"
        )
    head_type = _field(cfg, f"model.heads.{HEAD}.type", where)
    predictor = _field(cfg, f"model.heads.{HEAD}.predictor.type", where)
    if head_type != "HeatmapHead" or predictor != "HeatmapPredictor":
        raise Dlc3ImportError(
            f"{where}: field 'model.heads.{HEAD}' is a {head_type} with a {predictor} "
            f"(net_type {model.net_type}); supported: {SUPPORTED}"
        )
