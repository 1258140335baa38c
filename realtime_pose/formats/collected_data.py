"""DeepLabCut's labels of one ``labeled-data/<video>/`` folder: read them, merge new ones in.

A folder holds the frames (``img00042.png``), the machine's labels of them when they were
captured or extracted as outliers (``machinelabels-iter<N>.h5``: ``x, y, likelihood``), and the
human labels: ``CollectedData_<scorer>.h5`` (key ``df_with_missing``) with its ``.csv`` twin
(``x, y``; NaN where a keypoint is not visible). Both tables have pandas MultiIndex columns
``scorer / bodyparts / coords`` (``scorer / individuals / bodyparts / coords`` for several
animals) and, as DeepLabCut 2.3+ writes them, rows indexed by ``("labeled-data", <video>,
<image>)``. Older single-string rows (``labeled-data/<video>/<image>``) are read too.

:func:`read_folder_labels` gives the human labels where a frame has any, the machine's as the
starting guess elsewhere. :func:`save_collected_data` merges labels into the folder's
``CollectedData`` files: other frames' rows are kept, a frame whose saved labels differ is
refused unless replacing was asked for, and both files are written whole and renamed into place.

A row whose every value is NaN holds no label: DeepLabCut's older labelling tool writes such a
row for every frame it was shown, so it counts as not labelled, and replacing it is no conflict.
"""

from __future__ import annotations

import contextlib
import csv
import json
import logging
import re
import threading
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from realtime_pose.formats.dlc import H5_KEY
from realtime_pose.util.safe_write import writing_all

log = logging.getLogger(__name__)

LABELED_DATA = "labeled-data"
"""The first level of DeepLabCut's row index, and the name of the folder of video folders."""
MACHINE_LABELS = re.compile(r"machinelabels-iter(\d+)\.h5")
FRAME_NUMBER = re.compile(r"img(\d+)\.png")
SCORER_NAME = re.compile(r"[^\W][\w.-]*")
CAPTURES_FILE = "captures.json"
"""Optional: why each frame was captured (``{image: [reasons]}`` or a list of
``{"image": ..., "reasons": [...]}``)."""
SAME_LABEL_PX = 1e-6
DLC_LEVELS = ["scorer", "bodyparts", "coords"]

_save_locks: dict[Path, threading.Lock] = {}
_save_locks_guard = threading.Lock()


class LabelConflictError(ValueError):
    """Saving would replace labels a frame already has in the CollectedData files."""

    def __init__(self, path: Path, images: Sequence[str]) -> None:
        self.path = path
        self.images = list(images)
        shown = ", ".join(self.images[:10]) + (" …" if len(self.images) > 10 else "")
        super().__init__(
            f"{path} already holds different labels for {len(self.images)} frame(s): {shown}; "
            "confirm to replace them (overwrite_existing=True)"
        )


@dataclass(frozen=True)
class FolderLabels:
    """What a ``labeled-data/<video>/`` folder holds.

    Attributes
    ----------
    folder
        The folder.
    scorer
        Whose human labels these are (``CollectedData_<scorer>``); ``None`` when that cannot be
        told yet (:func:`resolve_scorer`).
    bodyparts, animals
        The keypoints: ``bodyparts`` for one animal (``animals`` ``None``), or every animal in
        ``animals`` with every bodypart (DeepLabCut's ``individuals`` level).
    images
        The folder's PNG frames, in frame order.
    collected
        Human labels, ``image → [N, 2]`` (NaN: not visible), of the frames that have any.
    machine
        Machine labels, ``image → [N, 3]`` (``x, y, likelihood``).
    """

    folder: Path
    scorer: str | None
    bodyparts: list[str]
    animals: list[str] | None
    images: list[str]
    collected: dict[str, np.ndarray]
    machine: dict[str, np.ndarray]

    @property
    def keypoint_names(self) -> list[str]:
        """One name per keypoint, in the order of the label arrays (``animal/bodypart`` for
        several animals)."""
        if self.animals is None:
            return list(self.bodyparts)
        return [f"{a}/{b}" for a in self.animals for b in self.bodyparts]

    def starting_point(self, image: str) -> tuple[np.ndarray, np.ndarray | None, str]:
        """``(points [N, 2], likelihood [N] or None, source)`` for ``image``: its human labels
        (``"collected"``), else the machine's guess (``"machine"``), else all NaN (``"none"``)."""
        if image in self.collected:
            return self.collected[image], None, "collected"
        if image in self.machine:
            guess = self.machine[image]
            return guess[:, :2], guess[:, 2], "machine"
        return np.full((len(self.keypoint_names), 2), np.nan), None, "none"


def frame_index(image: str) -> int | None:
    """The frame number in a DeepLabCut frame name (``img00042.png`` → 42), or ``None``."""
    match = FRAME_NUMBER.fullmatch(image)
    return int(match.group(1)) if match else None


def list_images(folder: str | Path) -> list[str]:
    """The PNG frames of ``folder`` (plain files, not links or hidden files), in frame order."""
    folder = Path(folder)
    names = [
        p.name
        for p in folder.iterdir()
        if p.suffix.lower() == ".png"
        and not p.name.startswith(".")
        and not p.is_symlink()
        and p.is_file()
    ]
    return sorted(names, key=lambda n: (frame_index(n) is None, frame_index(n) or 0, n))


def collected_paths(folder: str | Path, scorer: str) -> tuple[Path, Path]:
    """``CollectedData_<scorer>.h5`` and ``.csv`` in ``folder``."""
    check_scorer_name(scorer)
    folder = Path(folder)
    return folder / f"CollectedData_{scorer}.h5", folder / f"CollectedData_{scorer}.csv"


def check_scorer_name(scorer: str) -> str:
    """``scorer`` if it can name a CollectedData file; ``ValueError`` otherwise."""
    if not isinstance(scorer, str) or not SCORER_NAME.fullmatch(scorer):
        raise ValueError(
            f"scorer {scorer!r} cannot name a CollectedData file: use letters, digits, '_', "
            "'.' and '-' (e.g. the labeller's name, as in DeepLabCut's config.yaml 'scorer')"
        )
    return scorer


def project_config(folder: str | Path) -> tuple[Path, dict[str, Any]] | None:
    """``(config.yaml path, its settings)`` when ``folder`` is ``<project>/labeled-data/<video>``
    of a DeepLabCut project, else ``None``."""
    import yaml

    folder = Path(folder).resolve()
    if folder.parent.name != LABELED_DATA:
        return None
    path = folder.parent.parent / "config.yaml"
    if not path.is_file():
        return None
    try:
        config = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise ValueError(f"{path}: cannot be read as DeepLabCut's config ({exc})") from exc
    if not isinstance(config, dict):
        raise ValueError(f"{path}: expected a mapping of settings at the top level")
    return path, config


def resolve_scorer(folder: str | Path, given: str | None = None) -> str | None:
    """Whose labels the folder's CollectedData files are.

    The project's ``config.yaml`` ``scorer`` when the folder is in a DeepLabCut project
    (DeepLabCut reads only ``CollectedData_<that scorer>``; a different ``given`` one is
    refused), else ``given``, else the scorer of the folder's one CollectedData file, else
    ``None``.
    """
    project = project_config(folder)
    if project is not None and project[1].get("scorer"):
        path, config = project
        scorer = check_scorer_name(str(config["scorer"]))
        if given is not None and given != scorer:
            raise ValueError(
                f"scorer {given!r} is not the project's scorer {scorer!r} ({path}); DeepLabCut "
                f"reads only CollectedData_{scorer}: leave the scorer out"
            )
        return scorer
    if given is not None:
        return check_scorer_name(given)
    files = [*Path(folder).glob("CollectedData_*.h5"), *Path(folder).glob("CollectedData_*.csv")]
    found = sorted({p.stem[len("CollectedData_") :] for p in files} - {""})
    if len(found) > 1:
        raise ValueError(
            f"{folder} holds labels of several scorers ({', '.join(found)}); give the scorer"
        )
    return found[0] if found else None


def read_label_table(path: str | Path):
    """A DeepLabCut label table (``.h5`` or ``.csv``) with rows as ``(labeled-data, video,
    image)`` tuples of strings."""
    import pandas as pd

    path = Path(path)
    try:
        if path.suffix == ".h5":
            with pd.HDFStore(path, mode="r") as store:
                keys = store.keys()
                key = (
                    f"/{H5_KEY}" if f"/{H5_KEY}" in keys else (keys[0] if len(keys) == 1 else None)
                )
                if key is None:
                    raise ValueError(f"no table '{H5_KEY}' among {keys}")
                table = store[key]
        else:
            table = _read_csv(path)
    except (OSError, ValueError, KeyError, TypeError, IndexError) as exc:
        raise ValueError(f"{path}: cannot be read as a DeepLabCut label table ({exc})") from exc
    if table.columns.nlevels not in (3, 4):
        raise ValueError(
            f"{path}: expected column levels scorer/bodyparts/coords (or scorer/individuals/"
            f"bodyparts/coords), got {table.columns.nlevels} levels"
        )
    table.index = pd.MultiIndex.from_tuples([_row(r, path) for r in table.index])
    return table


def _read_csv(path: Path):
    import pandas as pd

    with path.open(newline="") as f:
        head = [row for _, row in zip(range(2), csv.reader(f), strict=False)]
    if len(head) < 2 or head[0][:1] != ["scorer"]:
        raise ValueError("expected DeepLabCut's header rows 'scorer', 'bodyparts', 'coords'")
    n_header = 4 if head[1][:1] == ["individuals"] else 3
    n_index = 1
    while n_index < len(head[0]) and head[0][n_index] == "":
        n_index += 1
    return pd.read_csv(path, header=list(range(n_header)), index_col=list(range(n_index)))


def _row(label: Any, path: Path) -> tuple[str, ...]:
    parts = label if isinstance(label, tuple) else str(label).replace("\\", "/").split("/")
    parts = tuple(str(p) for p in parts)
    if not parts[-1].lower().endswith(".png"):
        raise ValueError(f"{path}: row {label!r} does not name a PNG frame of labeled-data")
    return parts


def _layout(table) -> tuple[list[str] | None, list[str]]:
    """``(animals or None, bodyparts)`` of a label table, in column order."""
    if table.columns.nlevels == 4:
        pairs = list(dict.fromkeys((str(c[1]), str(c[2])) for c in table.columns))
        animals = list(dict.fromkeys(a for a, _ in pairs))
        bodyparts = list(dict.fromkeys(b for _, b in pairs))
        if len(pairs) != len(animals) * len(bodyparts):
            raise ValueError(
                "the table's individuals do not all have the same bodyparts (DeepLabCut's "
                "'uniquebodyparts'); labelling such folders is not supported yet"
            )
        return animals, bodyparts
    return None, list(dict.fromkeys(str(c[1]) for c in table.columns))


def _keypoint_columns(
    bodyparts: Sequence[str], animals: Sequence[str] | None, coords: Sequence[str]
) -> list[tuple[str, ...]]:
    if animals is None:
        return [(b, c) for b in bodyparts for c in coords]
    return [(a, b, c) for a in animals for b in bodyparts for c in coords]


def _points(table, bodyparts, animals, coords) -> dict[str, np.ndarray]:
    """``image → [N, len(coords)]`` from a label table (keypoints it lacks are NaN)."""
    import pandas as pd

    n = len(bodyparts) * (len(animals) if animals else 1)
    wanted = pd.MultiIndex.from_tuples(_keypoint_columns(bodyparts, animals, coords))
    values = table.droplevel(0, axis=1)
    values.columns = pd.MultiIndex.from_tuples([tuple(str(v) for v in c) for c in values.columns])
    if values.columns.nlevels != wanted.nlevels:
        return {}
    values = values.loc[:, ~values.columns.duplicated()].reindex(columns=wanted)
    array = values.to_numpy(dtype=np.float64, na_value=np.nan).reshape(len(values), n, len(coords))
    return {row[-1]: array[i] for i, row in enumerate(values.index)}


def _machine_labels_file(folder: Path) -> Path | None:
    found = [
        (int(m.group(1)), p)
        for p in folder.glob("machinelabels-iter*.h5")
        if (m := MACHINE_LABELS.fullmatch(p.name))
    ]
    return max(found)[1] if found else None


def _project_layout(folder: Path) -> tuple[list[str] | None, list[str]] | None:
    project = project_config(folder)
    if project is None:
        return None
    path, config = project
    if config.get("multianimalproject"):
        animals, parts = config.get("individuals"), config.get("multianimalbodyparts")
        if config.get("uniquebodyparts"):
            raise ValueError(
                f"{path}: 'uniquebodyparts' are not supported by the labelling page yet"
            )
        if isinstance(animals, list) and isinstance(parts, list) and animals and parts:
            return [str(a) for a in animals], [str(p) for p in parts]
        return None
    parts = config.get("bodyparts")
    if isinstance(parts, list) and parts:
        return None, [str(p) for p in parts]
    return None


def read_folder_labels(folder: str | Path, scorer: str | None = None) -> FolderLabels:
    """Read a ``labeled-data/<video>/`` folder: its frames, human and machine labels.

    The keypoints are those of the CollectedData file, else of the project's ``config.yaml``,
    else of the machine labels; machine labels are matched to them by name.

    Raises
    ------
    ValueError
        A table cannot be read, or nothing tells which keypoints to label (naming the folder).
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise ValueError(f"{folder}: not a folder; give a labeled-data/<video> folder of PNGs")
    scorer = resolve_scorer(folder, scorer)
    collected_table = None
    if scorer is not None:
        h5, csv_path = collected_paths(folder, scorer)
        source = h5 if h5.is_file() else csv_path if csv_path.is_file() else None
        if source is not None:
            collected_table = read_label_table(source)
    machine_path = _machine_labels_file(folder)
    machine_table = read_label_table(machine_path) if machine_path is not None else None
    if collected_table is not None:
        layout = _layout(collected_table)
    else:
        layout = _project_layout(folder)
        if layout is None and machine_table is not None:
            layout = _layout(machine_table)
    if layout is None:
        raise ValueError(
            f"{folder}: cannot tell which keypoints to label: no CollectedData_*.h5/.csv, no "
            "machinelabels-iter*.h5 and no DeepLabCut config.yaml two folders up"
        )
    animals, bodyparts = layout
    collected: dict[str, np.ndarray] = {}
    if collected_table is not None:
        collected = {
            image: points
            for image, points in _points(collected_table, bodyparts, animals, "xy").items()
            if np.isfinite(points).any()
        }
    machine: dict[str, np.ndarray] = {}
    if machine_table is not None:
        machine_animals, _ = _layout(machine_table)
        if (machine_animals is None) == (animals is None):
            machine = _points(machine_table, bodyparts, animals, ("x", "y", "likelihood"))
        else:
            log.warning("%s: its animals do not match the labels'; not used", machine_path)
    return FolderLabels(
        folder=folder,
        scorer=scorer,
        bodyparts=bodyparts,
        animals=animals,
        images=list_images(folder),
        collected=collected,
        machine=machine,
    )


def capture_reasons(folder: str | Path) -> dict[str, list[str]]:
    """Why each frame was captured, from the folder's ``captures.json`` when there is one
    (``{}`` when there is none or it cannot be understood, which is logged)."""
    path = Path(folder) / CAPTURES_FILE
    if not path.is_file():
        return {}
    try:
        raw = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        log.warning("%s: not readable JSON (%s); frames shown without reasons", path, exc)
        return {}
    if isinstance(raw, dict) and isinstance(raw.get("frames"), list):
        raw = raw["frames"]
    entries: list[tuple[Any, Any]] = []
    if isinstance(raw, dict):
        entries = list(raw.items())
    elif isinstance(raw, list):
        entries = [
            (e.get("image") or e.get("file"), e.get("reasons", e.get("reason")))
            for e in raw
            if isinstance(e, dict)
        ]
    reasons: dict[str, list[str]] = {}
    for image, why in entries:
        if not isinstance(image, str) or why is None:
            continue
        items = why if isinstance(why, list) else [why]
        reasons.setdefault(Path(image).name, []).extend(
            r if isinstance(r, str) else json.dumps(r, sort_keys=True) for r in items
        )
    return reasons


def _label_array(image: str, points: Any, n: int) -> np.ndarray:
    try:
        array = np.asarray(points, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError(f"labels of {image}: not numbers") from None
    if array.size != n * 2:
        raise ValueError(
            f"labels of {image}: expected {n} keypoints with x, y (shape [{n}, 2]), got shape "
            f"{list(array.shape)}"
        )
    if np.isinf(array).any():
        raise ValueError(f"labels of {image}: infinite coordinates (use NaN for not visible)")
    array = array.reshape(n, 2).copy()
    array[~np.isfinite(array).all(axis=1)] = np.nan  # an x without a y is not a label
    return array


@contextlib.contextmanager
def _folder_lock(folder: Path):
    with _save_locks_guard:
        lock = _save_locks.setdefault(folder.resolve(), threading.Lock())
    with lock:
        yield


def save_collected_data(
    folder: str | Path,
    scorer: str,
    keypoints: Sequence[str],
    labels: Mapping[str, Any],
    *,
    overwrite_existing: bool = False,
    animals: Sequence[str] | None = None,
) -> tuple[Path, Path]:
    """Merge ``labels`` into the folder's ``CollectedData_<scorer>.h5`` and ``.csv``.

    Parameters
    ----------
    folder
        The ``labeled-data/<video>`` folder holding the frames.
    scorer
        Whose labels (:func:`resolve_scorer` gives the project's).
    keypoints
        The bodyparts, in column order.
    labels
        ``image name → [N, 2]`` ``x, y`` in image pixels, NaN for a keypoint not visible;
        ``N`` is ``len(keypoints)``, or ``len(animals) * len(keypoints)`` (animal by animal).
    overwrite_existing
        Replace the saved labels of frames that have different ones.
    animals
        The individuals, for DeepLabCut's multi-animal layout; ``None`` for one animal.

    Returns
    -------
    The ``.h5`` and ``.csv`` paths.

    Raises
    ------
    LabelConflictError
        A frame already has different labels and ``overwrite_existing`` is false (nothing is
        written).
    ValueError
        An image that is not a PNG of the folder, labels of the wrong shape, or keypoints that
        are not those of the existing files.
    """
    import pandas as pd

    folder = Path(folder)
    h5_path, csv_path = collected_paths(folder, scorer)
    keypoints = [str(k) for k in keypoints]
    animals = [str(a) for a in animals] if animals is not None else None
    if not keypoints or len(set(keypoints)) != len(keypoints):
        raise ValueError(f"keypoints must be distinct names, got {keypoints}")
    if not labels:
        raise ValueError("no labelled frames to save")
    images = set(list_images(folder))
    unknown = sorted(set(labels) - images)
    if unknown:
        raise ValueError(
            f"{folder} has no frame {', '.join(map(repr, unknown[:5]))}: labels are saved only "
            "for the folder's own PNGs"
        )
    n = len(keypoints) * (len(animals) if animals else 1)
    arrays = {image: _label_array(image, points, n) for image, points in labels.items()}
    columns = pd.MultiIndex.from_tuples(
        [(scorer, *c) for c in _keypoint_columns(keypoints, animals, "xy")],
        names=["scorer", "individuals", "bodyparts", "coords"] if animals else DLC_LEVELS,
    )
    rows = pd.MultiIndex.from_tuples([(LABELED_DATA, folder.name, image) for image in arrays])
    new = pd.DataFrame(
        np.stack([a.reshape(-1) for a in arrays.values()]), index=rows, columns=columns
    )
    with _folder_lock(folder):
        source = h5_path if h5_path.is_file() else csv_path if csv_path.is_file() else None
        merged = new
        if source is not None:
            existing = _conform(read_label_table(source), new, source)
            new = new.reindex(columns=existing.columns)
            saved = {
                row[-1]: values
                for row, values in zip(existing.index, existing.to_numpy(), strict=True)
            }
            conflicts = [
                image
                for image, values in zip(arrays, new.to_numpy(), strict=True)
                if image in saved
                and np.isfinite(saved[image]).any()
                and not _same(saved[image], values)
            ]
            if conflicts and not overwrite_existing:
                raise LabelConflictError(source, conflicts)
            kept = existing[[row[-1] not in arrays for row in existing.index]]
            merged = pd.concat([kept, new]) if len(kept) else new
        merged = merged.sort_index()
        with writing_all([h5_path, csv_path], overwrite=True) as (h5_tmp, csv_tmp):
            with warnings.catch_warnings():  # the string row index is pickled, as in DLC's
                warnings.simplefilter("ignore", pd.errors.PerformanceWarning)
                merged.to_hdf(h5_tmp, key=H5_KEY, mode="w")
            merged.to_csv(csv_tmp)
    return h5_path, csv_path


def _conform(existing, new, path: Path):
    """``existing`` under the new table's scorer and column names, its own column order kept;
    ``ValueError`` when it labels other keypoints than ``new``."""
    import pandas as pd

    old_keys = [tuple(str(v) for v in c[1:]) for c in existing.columns]
    new_keys = [tuple(str(v) for v in c[1:]) for c in new.columns]
    if set(old_keys) != set(new_keys) or len(old_keys) != len(new_keys):
        old_parts = list(dict.fromkeys("/".join(k[:-1]) for k in old_keys))
        new_parts = list(dict.fromkeys("/".join(k[:-1]) for k in new_keys))
        raise ValueError(
            f"{path} labels keypoints {old_parts}, the new labels have {new_parts}; label with "
            "the same keypoints, or move the old file away"
        )
    scorer = new.columns[0][0]
    conformed = existing.astype(np.float64)
    conformed.columns = pd.MultiIndex.from_tuples(
        [(scorer, *k) for k in old_keys], names=new.columns.names
    )
    return conformed


def _same(old: np.ndarray, new: np.ndarray) -> bool:
    both_nan = np.isnan(old) & np.isnan(new)
    close = np.abs(np.nan_to_num(old - new, nan=np.inf)) <= SAME_LABEL_PX
    return bool((both_nan | close).all())
