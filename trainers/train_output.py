"""The training-output folder the exporters read (the trainer's side of the contract).

::

    TRAIN_DIR/
      model.keras         Keras 3 model: input ``image`` uint8 [b, H, W, 3] RGB (normalisation
                          inside); outputs, in order, ``scmap`` (sigmoid, NHWC [b, H/s, W/s, K])
                          and ``locref`` (NHWC [b, H/s, W/s, 2K], channel 2j = dx, 2j+1 = dy in
                          units of ``locref_stdev``)
      train_config.json   net, keypoints, skeleton, stride, locref_stdev, steps, wall time,
                          project path, data hash, test error, train_fraction
      split.json          ``{"train": [...], "test": [...]}``: image paths relative to the project
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import AliasChoices, BaseModel, ConfigDict, Field, ValidationError

MODEL_FILENAME = "model.keras"
CONFIG_FILENAME = "train_config.json"
SPLIT_FILENAME = "split.json"


class TrainOutputError(ValueError):
    """A training-output folder that cannot be exported; the message names the file."""


class TrainConfig(BaseModel):
    """``train_config.json``; fields the exporter does not know are kept for provenance."""

    model_config = ConfigDict(extra="allow", populate_by_name=True, protected_namespaces=())

    keypoints: list[str] = Field(min_length=1)
    skeleton: list[tuple[str, str]] = Field(default_factory=list)
    stride: float = Field(gt=0)
    locref_stdev: float = Field(default=7.2801, gt=0)
    net: str | None = Field(default=None, validation_alias=AliasChoices("net", "backbone"))
    steps: int | None = Field(default=None, validation_alias=AliasChoices("steps", "iterations"))
    project: str | None = Field(
        default=None, validation_alias=AliasChoices("project", "project_path", "project_dir")
    )
    data_hash: str | None = Field(
        default=None, validation_alias=AliasChoices("data_hash", "data_sha256", "dataset_hash")
    )
    test_error_px: float | None = Field(
        default=None, validation_alias=AliasChoices("test_error_px", "test_error")
    )
    train_fraction: float | None = None
    animals: dict[str, Any] | None = None
    label_distances: dict[str, Any] | None = None
    input_scale: float = Field(default=1.0, gt=0, le=4)


@dataclass(frozen=True)
class TrainOutput:
    """A validated training-output folder."""

    root: Path
    config: TrainConfig
    split: dict[str, list[str]]

    @property
    def model_path(self) -> Path:
        """The Keras model file."""
        return self.root / MODEL_FILENAME

    @property
    def project_dir(self) -> Path | None:
        """The training project folder when it is reachable from here, else ``None``."""
        if not self.config.project:
            return None
        path = Path(self.config.project).expanduser()
        if not path.is_absolute():
            path = (self.root / path).resolve()
        return path if path.is_dir() else None

    def images(self, subset: str) -> list[Path]:
        """Absolute paths of the ``"train"`` or ``"test"`` images that exist on this machine."""
        project = self.project_dir
        if project is None:
            return []
        paths = [project / p for p in self.split.get(subset, [])]
        return [p for p in paths if p.is_file()]

    def provenance(self) -> dict[str, Any]:
        """What a bundle records about its training."""
        cfg = self.config
        known = {
            "net": cfg.net,
            "steps": cfg.steps,
            "data_hash": cfg.data_hash,
            "test_error_px": cfg.test_error_px,
            "train_fraction": cfg.train_fraction,
            "project": str(self.project_dir) if self.project_dir else cfg.project,
            "train_dir": str(self.root.resolve()),
            "split": self.split,
        }
        extra = {k: v for k, v in (cfg.model_extra or {}).items() if k not in known}
        return {**{k: v for k, v in known.items() if v is not None}, "training": extra}


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except FileNotFoundError as exc:
        raise TrainOutputError(f"{path}: missing (expected in a training-output folder)") from exc
    except json.JSONDecodeError as exc:
        raise TrainOutputError(f"{path}: not valid JSON ({exc})") from exc


def _normalise_split(raw: Any, where: Path) -> dict[str, list[str]]:
    if not isinstance(raw, dict):
        raise TrainOutputError(f'{where}: expected an object {{"train": [...], "test": [...]}}')
    split: dict[str, list[str]] = {}
    for subset in ("train", "test"):
        value = raw.get(subset, raw.get(f"{subset}_images", []))
        if not isinstance(value, list) or not all(isinstance(p, str) for p in value):
            raise TrainOutputError(f"{where}: field '{subset}' must be a list of image paths")
        split[subset] = value
    return split


def read_train_output(train_dir: str | Path) -> TrainOutput:
    """Read and validate a training-output folder.

    Raises
    ------
    TrainOutputError
        Naming the missing file or the invalid field.
    """
    root = Path(train_dir).expanduser()
    if not root.is_dir():
        raise TrainOutputError(f"{root}: not a folder (expected a training-output folder)")
    if not (root / MODEL_FILENAME).is_file():
        raise TrainOutputError(f"{root / MODEL_FILENAME}: missing; was training finished?")
    cfg_path = root / CONFIG_FILENAME
    try:
        config = TrainConfig.model_validate(_read_json(cfg_path))
    except ValidationError as exc:
        fields = "; ".join(
            f"field '{'.'.join(map(str, e['loc']))}': {e['msg']}" for e in exc.errors()
        )
        raise TrainOutputError(f"{cfg_path}: {fields}") from exc
    split_path = root / SPLIT_FILENAME
    split = (
        _normalise_split(_read_json(split_path), split_path)
        if split_path.is_file()
        else {"train": [], "test": []}
    )
    return TrainOutput(root=root, config=config, split=split)
