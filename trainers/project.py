"""Reading a DeepLabCut project: ``config.yaml`` and the labelled frames.

Labels live in ``labeled-data/<video>/CollectedData_<scorer>.h5`` (pandas, key
``df_with_missing``) or ``.csv`` (three header rows ``scorer``, ``bodyparts``, ``coords``). The row
index is the image path relative to the project: one string in older DeepLabCut, or several
columns (``labeled-data``, ``<video>``, ``<image>``) in newer versions. An empty cell means the
keypoint is not visible.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np

from realtime_pose.bundle import animal_keypoint_names

_COORDS = ("x", "y")

Decoding = Literal["identity_channels", "part_affinity"]
"""How a network tells several animals apart (``animals.decoding`` in ``config.yaml``)."""

DECODINGS: tuple[Decoding, ...] = ("identity_channels", "part_affinity")
"""``identity_channels`` (default): one score map per named animal and bodypart.
``part_affinity``: look-alike animals in slots without identity, grouped by part-affinity
fields."""


class ProjectError(ValueError):
    """A DeepLabCut project that cannot be used; the message names the file (and row)."""


@dataclass(frozen=True)
class Project:
    """A DeepLabCut project's labelled frames.

    Attributes
    ----------
    root
        Project folder.
    bodyparts
        Keypoint names in ``config.yaml`` order (the network's channel order).
    skeleton
        Pairs of bodypart names.
    images
        Image paths relative to ``root`` (forward slashes), one per labelled frame.
    keypoints
        float64 ``[N, K, 2]`` frame-pixel ``x, y``; NaN where not visible.
    label_files
        The label files read (for hashing and error messages).
    animals
        Several animals (``config.yaml`` ``animals``): identity channels or look-alike slots,
        per ``decoding``; ``None`` for one animal.
    """

    root: Path
    bodyparts: tuple[str, ...]
    skeleton: tuple[tuple[str, str], ...]
    scorer: str
    pcutoff: float
    train_fraction: float
    images: tuple[str, ...]
    keypoints: np.ndarray
    label_files: tuple[Path, ...] = field(default=())
    config_path: Path | None = None
    flip_pairs: tuple[tuple[str, str], ...] | None = None
    animals: dict | None = None
    """Several animals: ``{"names": [...], "bodyparts": [...], "decoding": ...}`` from
    ``config.yaml`` (``bodyparts`` are then ``animal/bodypart``; ``decoding`` one of
    :data:`DECODINGS`; see trainers/identity_project.py)."""

    @property
    def num_keypoints(self) -> int:
        """K, the number of bodyparts."""
        return len(self.bodyparts)

    def image_path(self, index: int) -> Path:
        """Absolute path of labelled frame ``index``."""
        return self.root / self.images[index]

    def load_image(self, index: int) -> np.ndarray:
        """Labelled frame ``index`` as RGB uint8 ``[H, W, 3]``."""
        return read_rgb(self.image_path(index))

    def subset(self, indices: Sequence[int]) -> Project:
        """The same project restricted to frames ``indices``."""
        idx = list(indices)
        return Project(
            root=self.root,
            bodyparts=self.bodyparts,
            skeleton=self.skeleton,
            scorer=self.scorer,
            pcutoff=self.pcutoff,
            train_fraction=self.train_fraction,
            images=tuple(self.images[i] for i in idx),
            keypoints=self.keypoints[idx],
            label_files=self.label_files,
            config_path=self.config_path,
            flip_pairs=self.flip_pairs,
            animals=self.animals,
        )

    def indices_of(self, images: Sequence[str], where: str = "split") -> list[int]:
        """Indices of the frames named in ``images`` (paths relative to the project)."""
        lookup = {p: i for i, p in enumerate(self.images)}
        missing = [p for p in images if normalise_relpath(p) not in lookup]
        if missing:
            raise ProjectError(
                f"{where}: {len(missing)} image(s) are not labelled frames of {self.root} "
                f"(first: {missing[0]!r}); was the split made for another project?"
            )
        return [lookup[normalise_relpath(p)] for p in images]


def read_rgb(path: Path) -> np.ndarray:
    """Read an image file as RGB uint8 ``[H, W, 3]`` (grey images are expanded)."""
    import cv2

    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        raise ProjectError(f"{path}: cannot be read as an image (missing or corrupt file)")
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def normalise_relpath(path: str) -> str:
    path = str(path).replace("\\", "/")
    while path.startswith("./"):
        path = path[2:]
    return path


def _read_config(root: Path) -> dict:
    import yaml

    path = root / "config.yaml"
    if not path.is_file():
        raise ProjectError(
            f"{path}: missing; a DeepLabCut project folder has a config.yaml at its top level"
        )
    try:
        config = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise ProjectError(f"{path}: not valid YAML ({exc})") from exc
    if not isinstance(config, dict):
        raise ProjectError(f"{path}: expected a mapping of settings at the top level")
    return config


def _config_bodyparts(config: dict, path: Path) -> tuple[str, ...]:
    parts = config.get("bodyparts")
    if config.get("multianimalproject") or parts == "MULTI!":
        raise ProjectError(
            f"{path}: this is a multi-animal project; realtime-pose trains single-animal models "
            "(set multianimalproject: false and list 'bodyparts')"
        )
    if not isinstance(parts, list) or not parts or not all(isinstance(p, str) for p in parts):
        raise ProjectError(f"{path}: field 'bodyparts' must be a non-empty list of names")
    dupes = sorted({p for p in parts if parts.count(p) > 1})
    if dupes:
        raise ProjectError(f"{path}: field 'bodyparts' repeats {dupes}")
    return tuple(parts)


def _config_animals(config: dict, bodyparts: Sequence[str], path: Path) -> dict | None:
    """``animals: {names: [...], bodyparts: [...], decoding: ...}``: several animals, checked
    against ``bodyparts`` (which must be ``animal/bodypart`` for every animal and bodypart, in
    order); ``decoding`` is one of :data:`DECODINGS`, ``identity_channels`` where absent."""
    raw = config.get("animals")
    if raw is None:
        return None
    names, parts = (raw.get(k) if isinstance(raw, dict) else None for k in ("names", "bodyparts"))
    if not (isinstance(names, list) and names and isinstance(parts, list) and parts):
        raise ProjectError(
            f"{path}: field 'animals' must be a mapping with lists 'names' and 'bodyparts'"
        )
    decoding = raw.get("decoding", DECODINGS[0])
    if decoding not in DECODINGS:
        raise ProjectError(
            f"{path}: field 'animals.decoding' is {decoding!r}; expected one of "
            f"{', '.join(DECODINGS)} (or no 'decoding' for {DECODINGS[0]})"
        )
    expected = animal_keypoint_names(names, parts)
    if list(bodyparts) != expected:
        raise ProjectError(
            f"{path}: field 'bodyparts' must be animal/bodypart for every entry of "
            f"'animals' ({expected[:2]}...), got {list(bodyparts)[:2]}..."
        )
    return {
        "names": [str(n) for n in names],
        "bodyparts": [str(b) for b in parts],
        "decoding": decoding,
    }


def _config_skeleton(config: dict, bodyparts: Sequence[str], path: Path) -> tuple:
    edges = []
    for edge in config.get("skeleton") or []:
        if not isinstance(edge, (list, tuple)) or len(edge) != 2:
            raise ProjectError(f"{path}: field 'skeleton' holds {edge!r}; expected [name, name]")
        unknown = [n for n in edge if n not in bodyparts]
        if unknown:
            raise ProjectError(
                f"{path}: field 'skeleton' names {unknown}, which are not in 'bodyparts'"
            )
        edges.append((str(edge[0]), str(edge[1])))
    return tuple(edges)


def _config_flip_pairs(config: dict, bodyparts: Sequence[str], path: Path) -> tuple | None:
    """Left/right pairs swapped when mirroring: ``symmetric_pairs`` (as in DeepLabCut's
    ``pose_cfg.yaml``: bodypart names or indices), or ``None`` to infer them from the names."""
    raw = config.get("symmetric_pairs")
    if raw is None:
        return None
    pairs = []
    for pair in raw:
        if not isinstance(pair, (list, tuple)) or len(pair) != 2:
            raise ProjectError(f"{path}: field 'symmetric_pairs' holds {pair!r}; expected [a, b]")
        names = []
        for item in pair:
            if isinstance(item, int) and 0 <= item < len(bodyparts):
                names.append(bodyparts[item])
            elif isinstance(item, str) and item in bodyparts:
                names.append(item)
            else:
                raise ProjectError(
                    f"{path}: field 'symmetric_pairs' names {item!r}, which is not a bodypart "
                    "(or an index into 'bodyparts')"
                )
        pairs.append((names[0], names[1]))
    return tuple(pairs)


def label_files(root: Path, scorer: str | None) -> list[Path]:
    """One label table per ``labeled-data/<video>/`` folder of a project: ``CollectedData_<scorer>``
    where there is one, ``.h5`` before ``.csv``, DeepLabCut's ``*_labeled`` folders skipped."""
    labeled = root / "labeled-data"
    if not labeled.is_dir():
        raise ProjectError(f"{labeled}: missing; label frames in DeepLabCut first")
    files = []
    for folder in sorted(p for p in labeled.iterdir() if p.is_dir()):
        if folder.name.endswith("_labeled"):  # DeepLabCut's check_labels output
            continue
        candidates = sorted(folder.glob("CollectedData_*.h5")) or sorted(
            folder.glob("CollectedData_*.csv")
        )
        if scorer:
            preferred = [p for p in candidates if p.stem == f"CollectedData_{scorer}"]
            candidates = preferred or candidates
        files.extend(candidates[:1])
    if not files:
        raise ProjectError(
            f"{labeled}: no CollectedData_<scorer>.h5 or .csv in any video folder; label frames "
            "and save them in DeepLabCut first"
        )
    return files


def _read_table(path: Path):
    """Return ``(row labels, {(bodypart, coord): values})`` from an ``.h5`` or ``.csv``."""
    import pandas as pd

    if path.suffix == ".h5":
        try:
            df = pd.read_hdf(path)
        except Exception as exc:  # pandas/tables raise many kinds
            raise ProjectError(
                f"{path}: cannot be read as a DeepLabCut label table ({exc})"
            ) from exc
        names = [str(n) for n in (df.columns.names or [])]
        if df.columns.nlevels == 4 or "individuals" in names:
            raise ProjectError(
                f"{path}: has an 'individuals' level (multi-animal labels); "
                "realtime-pose trains single-animal models"
            )
        if df.columns.nlevels != 3:
            raise ProjectError(
                f"{path}: expected 3 column levels (scorer, bodyparts, coords), got "
                f"{df.columns.nlevels}"
            )
        rows = [
            "/".join(str(p) for p in idx) if isinstance(idx, tuple) else str(idx)
            for idx in df.index
        ]
        columns = [(str(c[1]), str(c[2])) for c in df.columns]
        values = df.to_numpy(dtype=np.float64, na_value=np.nan)
        return rows, columns, values
    try:
        raw = pd.read_csv(path, header=None, dtype=str, keep_default_na=False)
    except Exception as exc:
        raise ProjectError(f"{path}: cannot be read as CSV ({exc})") from exc
    if len(raw) < 3 or raw.iat[0, 0] != "scorer":
        raise ProjectError(
            f"{path}: expected DeepLabCut's header rows 'scorer', 'bodyparts', 'coords' "
            "(found " + (repr(raw.iat[0, 0]) if len(raw) else "an empty file") + ")"
        )
    if raw.iat[1, 0] == "individuals":
        raise ProjectError(
            f"{path}: has an 'individuals' row (multi-animal labels); "
            "realtime-pose trains single-animal models"
        )
    if raw.iat[1, 0] != "bodyparts" or raw.iat[2, 0] != "coords":
        raise ProjectError(f"{path}: rows 2 and 3 must be 'bodyparts' and 'coords'")
    coords_row = list(raw.iloc[2])
    n_index = 1
    while n_index < len(coords_row) and coords_row[n_index] not in (*_COORDS, "likelihood"):
        n_index += 1
    body = raw.iloc[3:]
    rows = ["/".join(p for p in r if p) for r in body.iloc[:, :n_index].itertuples(index=False)]
    columns = [(str(raw.iat[1, c]), str(raw.iat[2, c])) for c in range(n_index, raw.shape[1])]
    values = np.full((len(body), len(columns)), np.nan)
    for c in range(len(columns)):
        for r, text in enumerate(body.iloc[:, n_index + c]):
            text = text.strip()
            if not text:
                continue
            try:
                values[r, c] = float(text)
            except ValueError as exc:
                raise ProjectError(
                    f"{path}: row {r + 4} ({rows[r]!r}), column {columns[c]}: {text!r} is not a "
                    "number"
                ) from exc
    return rows, columns, values


def _resolve_image(root: Path, rel: str, label_file: Path) -> str | None:
    """The image's path relative to ``root``; tolerates projects moved between machines."""
    rel = normalise_relpath(rel)
    if (root / rel).is_file():
        return rel
    candidate = label_file.parent / Path(rel).name
    if candidate.is_file():
        return candidate.relative_to(root).as_posix()
    return None


def load_project(path: str | Path, train_fraction: float | None = None) -> Project:
    """Read a DeepLabCut project's configuration and labelled frames.

    Parameters
    ----------
    path
        Project folder (holding ``config.yaml`` and ``labeled-data/``), or its ``config.yaml``.
    train_fraction
        Overrides the first ``TrainingFraction`` of ``config.yaml``.

    Raises
    ------
    ProjectError
        Naming the file (and row) at fault and what to do.
    """
    root = Path(path).expanduser()
    if root.is_file() and root.name.endswith((".yaml", ".yml")):
        root = root.parent
    if not root.is_dir():
        raise ProjectError(f"{root}: not a folder; pass a DeepLabCut project folder")
    root = root.resolve()
    config_path = root / "config.yaml"
    config = _read_config(root)
    bodyparts = _config_bodyparts(config, config_path)
    skeleton = _config_skeleton(config, bodyparts, config_path)
    flip_pairs = _config_flip_pairs(config, bodyparts, config_path)
    animals = _config_animals(config, bodyparts, config_path)
    scorer = str(config.get("scorer") or "")
    pcutoff = float(config.get("pcutoff") or 0.6)
    if train_fraction is None:
        fractions = config.get("TrainingFraction") or [0.95]
        train_fraction = float(fractions[0] if isinstance(fractions, list) else fractions)
    if not 0.0 < train_fraction <= 1.0:
        raise ProjectError(
            f"{config_path}: training fraction {train_fraction} must be in (0, 1]; "
            "fix 'TrainingFraction' or pass --train-fraction"
        )
    index = {name: k for k, name in enumerate(bodyparts)}
    images: list[str] = []
    blocks: list[np.ndarray] = []
    files = label_files(root, scorer)
    for label_file in files:
        rows, columns, values = _read_table(label_file)
        unknown = sorted({bp for bp, _ in columns if bp not in index})
        if unknown:
            raise ProjectError(
                f"{label_file}: bodyparts {unknown} are not in {config_path} 'bodyparts' "
                f"({list(bodyparts)}); add them to config.yaml or relabel"
            )
        kp = np.full((len(rows), len(bodyparts), 2), np.nan)
        for c, (bp, coord) in enumerate(columns):
            if coord in _COORDS:
                kp[:, index[bp], _COORDS.index(coord)] = values[:, c]
        for r, rel in enumerate(rows):
            resolved = _resolve_image(root, rel, label_file)
            if resolved is None:
                raise ProjectError(
                    f"{label_file}: row {r + 1} names image {rel!r}, which is not in {root} "
                    "(nor in the label file's folder); restore the image or remove the row"
                )
            images.append(resolved)
        both = np.isfinite(kp).all(axis=2)
        kp[~both] = np.nan  # a keypoint with only x or only y is not usable
        blocks.append(kp)
    keypoints = np.concatenate(blocks) if blocks else np.empty((0, len(bodyparts), 2))
    if len(images) == 0:
        raise ProjectError(f"{root / 'labeled-data'}: the label files hold no frames")
    if len(set(images)) != len(images):
        dupes = sorted({p for p in images if images.count(p) > 1})
        raise ProjectError(f"{root}: frames labelled twice: {dupes[:3]}; remove the duplicates")
    return Project(
        root=root,
        bodyparts=bodyparts,
        skeleton=skeleton,
        scorer=scorer,
        pcutoff=pcutoff,
        train_fraction=train_fraction,
        images=tuple(images),
        keypoints=keypoints,
        label_files=tuple(files),
        config_path=config_path,
        flip_pairs=flip_pairs,
        animals=animals,
    )


def split_indices(n: int, train_fraction: float, seed: int = 0) -> tuple[list[int], list[int]]:
    """A deterministic shuffled train/test split of ``n`` frames.

    At least one frame is trained on; with ``train_fraction < 1`` at least one is held out
    (when ``n >= 2``).
    """
    order = np.random.default_rng(seed).permutation(n)
    n_train = max(1, min(n, math.floor(train_fraction * n + 1e-9)))
    if train_fraction < 1.0 and n >= 2:
        n_train = min(n_train, n - 1)
    return sorted(order[:n_train].tolist()), sorted(order[n_train:].tolist())


def write_split(path: Path, project: Project, train: Sequence[int], test: Sequence[int]) -> None:
    """Save a split as ``{"train": [...], "test": [...]}`` of project-relative image paths."""
    payload = {
        "train": [project.images[i] for i in train],
        "test": [project.images[i] for i in test],
    }
    path.write_text(json.dumps(payload, indent=1) + "\n")


def read_split(path: Path) -> dict[str, list[str]]:
    """Read a split file written by :func:`write_split`."""
    try:
        raw = json.loads(Path(path).read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise ProjectError(f"{path}: cannot read the split ({exc})") from exc
    if not isinstance(raw, dict) or not all(isinstance(raw.get(k, []), list) for k in raw):
        raise ProjectError(f'{path}: expected {{"train": [...], "test": [...]}}')
    return {k: [str(p) for p in raw.get(k, [])] for k in ("train", "test")}


def data_hash(project: Project) -> str:
    """SHA-256 over the label files and every labelled image (in frame order)."""
    digest = hashlib.sha256()
    for path in project.label_files:
        digest.update(path.read_bytes())
    for rel in project.images:
        digest.update(rel.encode())
        digest.update((project.root / rel).read_bytes())
    return digest.hexdigest()


__all__: Sequence[str] = (
    "DECODINGS",
    "Decoding",
    "Project",
    "ProjectError",
    "data_hash",
    "load_project",
    "read_rgb",
    "read_split",
    "split_indices",
    "write_split",
)
