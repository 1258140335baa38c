"""Labels of several animals per frame: one data model, read from SLEAP or multi-animal DeepLabCut.

:class:`AnimalLabels` holds ``[F, A, K, 2]`` keypoints (frames × animals × keypoints × x/y,
frame pixels, NaN where not labelled), the animals' names, whether those names are identities
(the same name is the same animal in every frame), the bodyparts and the skeleton, and where
each labelled frame's image comes from (a frame of a video, or an image file).

Readers, chosen by :func:`load_animal_labels` from the path:

- ``.slp``: SLEAP labels, read with sleap-io (``sleap_io.load_slp``); only the instances a
  person labelled (predictions are not labels). Instances on a track are that track's animal;
  untracked instances fill the remaining animal slots in order. The names are identities only
  when every instance is on a track.
- ``CollectedData_*.h5`` / ``.csv`` with an ``individuals`` column level: a multi-animal
  DeepLabCut labels table. Its individuals (``individual1``, ``mouse2``) are slot names, not
  identities, unless the project's ``config.yaml`` (two folders above the table) says
  ``identity: true``. Columns of the ``single`` individual (DeepLabCut's unique bodyparts) are
  not animals and are left out, with a warning.
- a folder whose ``config.yaml`` says ``multianimalproject: true``: every
  ``labeled-data/<video>/CollectedData_*`` table of that DeepLabCut project, in one model.

:meth:`AnimalLabels.identity_keypoints` flattens the animals into one keypoint list
(``female/head``, ``female/thorax``, …, ``male/head``, …): the layout of an *identity-channel*
network, which gives every (animal, bodypart) its own score map, so a known animal's keypoints
need no grouping and no identity step after the network. :meth:`AnimalLabels.as_lookalikes`
drops the names for animals that look alike (see :func:`canonical_slots`).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from realtime_pose.bundle import animal_keypoint_names
from realtime_pose.trainers.project import normalise_relpath

log = logging.getLogger(__name__)

SEPARATOR = "/"
"""Between animal and bodypart in flattened keypoint names (``female/head``)."""

SLOT_PREFIX = "animal"
"""Names of slots without identity: ``animal0``, ``animal1``, …"""

UNIQUE_INDIVIDUAL = "single"
"""DeepLabCut's pseudo-individual holding the unique bodyparts (not an animal)."""


class LabelsError(ValueError):
    """A labels file that cannot be used; the message names the file and what is wrong."""


@dataclass(frozen=True)
class AnimalLabels:
    """Labelled frames with several animals each.

    Attributes
    ----------
    source
        The labels file (or DeepLabCut project folder) read.
    bodyparts
        ``K`` keypoint names, in the skeleton's node order.
    animals
        ``A`` animal names: identities (``female``, ``male``) where ``identities_known``, else
        slot names that mean nothing across frames (DeepLabCut's ``individual1``, or
        ``animal0``, ``animal1``, … for untracked SLEAP instances).
    identities_known
        Whether the same name is the same animal in every frame.
    skeleton
        Pairs of bodypart names.
    keypoints
        float64 ``[F, A, K, 2]`` frame pixels; NaN where not labelled (or the animal is absent).
    video
        The video the frames come from, or ``None`` when each frame is an image file.
    frame_indices
        int64 ``[F]``: the video frame of each labelled frame (``video`` set).
    images
        Image paths, one per labelled frame (``video`` is ``None``).
    """

    source: Path
    bodyparts: tuple[str, ...]
    animals: tuple[str, ...]
    identities_known: bool
    skeleton: tuple[tuple[str, str], ...]
    keypoints: np.ndarray
    video: Path | None = None
    frame_indices: np.ndarray | None = None
    images: tuple[Path, ...] | None = None

    @property
    def num_frames(self) -> int:
        """``F``."""
        return int(self.keypoints.shape[0])

    def subset(self, frames: Sequence[int] | np.ndarray) -> AnimalLabels:
        """The same labels restricted to labelled frames ``frames`` (positions, not video
        frame numbers)."""
        idx = np.asarray(frames, dtype=np.int64)
        return replace(
            self,
            keypoints=self.keypoints[idx],
            frame_indices=None if self.frame_indices is None else self.frame_indices[idx],
            images=None if self.images is None else tuple(self.images[i] for i in idx),
        )

    def frames_between(self, first: int, last: int) -> AnimalLabels:
        """Labelled video frames ``first``–``last`` (inclusive): a split by time."""
        if self.frame_indices is None:
            raise LabelsError(f"{self.source}: frames are image files, not video frames")
        keep = np.flatnonzero((self.frame_indices >= first) & (self.frame_indices <= last))
        return self.subset(keep)

    def identity_keypoints(self) -> tuple[tuple[str, ...], np.ndarray]:
        """Animals flattened into one keypoint list: names ``animal/bodypart`` and ``[F, A·K, 2]``.

        Raises
        ------
        LabelsError
            The animals have no fixed identity: an identity-channel layout would ask a network
            to tell apart animals nothing distinguishes.
        """
        if not self.identities_known:
            raise LabelsError(
                f"{self.source}: the animals carry no identities (no tracks / individuals), so "
                "they cannot be given one score map each"
            )
        names = tuple(animal_keypoint_names(self.animals, self.bodyparts))
        flat = self.keypoints.reshape(self.num_frames, -1, 2)
        return names, flat

    def as_lookalikes(self) -> AnimalLabels:
        """The same frames with the animals' names dropped: slots ``animal0``…``animal{A-1}``
        (``A`` the most animals labelled in any frame), filled per frame in
        :func:`canonical_slots` order, so no slot follows a name of the source."""
        slots = canonical_slots(self.keypoints)
        return replace(
            self,
            animals=tuple(f"{SLOT_PREFIX}{i}" for i in range(slots.shape[1])),
            identities_known=False,
            keypoints=slots,
        )


def canonical_slots(keypoints: np.ndarray) -> np.ndarray:
    """Each frame's animals in an order fixed by where they are, not by what they were called.

    Parameters
    ----------
    keypoints
        ``[F, A, K, 2]`` frame pixels, NaN where not labelled.

    Returns
    -------
    numpy.ndarray
        float64 ``[F, S, K, 2]``, ``S`` the most animals with a labelled keypoint (x and y) in any
        frame. In each frame those animals come first, sorted by the x of their centroid (mean
        of their labelled keypoints), then its y, then their keypoints (NaN last); the other
        slots are NaN. The order depends only on the coordinates, so renaming or reordering the
        source's animals cannot change it.
    """
    kp = np.asarray(keypoints, dtype=np.float64)
    labelled = np.isfinite(kp).all(axis=-1)  # [F, A, K]
    present = labelled.any(axis=-1)  # [F, A]
    slots = int(present.sum(axis=1).max()) if kp.shape[0] and kp.shape[1] else 0
    out = np.full((kp.shape[0], slots, *kp.shape[2:]), np.nan)
    for f in range(kp.shape[0]):
        animals = np.flatnonzero(present[f])
        keys = []
        for a in animals:
            centroid = kp[f, a][labelled[f, a]].mean(axis=0)
            filled = np.where(labelled[f, a][:, None], kp[f, a], np.inf).ravel()
            keys.append((float(centroid[0]), float(centroid[1]), tuple(filled.tolist())))
        order = sorted(range(len(animals)), key=keys.__getitem__)
        out[f, : len(animals)] = kp[f, animals[order]]
    return out


def split_identity_name(name: str) -> tuple[str, str]:
    """``"female/head"`` → ``("female", "head")``."""
    animal, sep, bodypart = name.partition(SEPARATOR)
    if not sep or not animal or not bodypart:
        raise ValueError(f"{name!r} is not an animal{SEPARATOR}bodypart keypoint name")
    return animal, bodypart


def load_animal_labels(path: str | Path) -> AnimalLabels:
    """Read multi-animal labels from a SLEAP ``.slp``, a multi-animal DeepLabCut table, or a
    multi-animal DeepLabCut project folder (or its ``config.yaml``)."""
    path = Path(path)
    if path.is_dir() or path.name == "config.yaml":
        return read_dlc_multianimal_project(path if path.is_dir() else path.parent)
    if not path.is_file():
        raise LabelsError(f"{path}: no such labels file")
    if path.suffix == ".slp":
        return read_slp(path)
    if path.suffix in (".h5", ".csv"):
        return read_dlc_multianimal(path)
    raise LabelsError(
        f"{path}: unknown labels format; expected a SLEAP .slp, a DeepLabCut "
        "CollectedData_*.h5/.csv or a multi-animal DeepLabCut project folder"
    )


def is_multianimal_project(folder: str | Path) -> bool:
    """Whether ``folder`` is a DeepLabCut project whose ``config.yaml`` says
    ``multianimalproject: true`` (an unreadable config is left to the project reader)."""
    try:
        config = _dlc_config(Path(folder))
    except LabelsError:
        return False
    return config is not None and config.get("multianimalproject") is True


def read_slp(path: Path) -> AnimalLabels:
    """SLEAP labels (one video, one skeleton) via sleap-io."""
    try:
        import sleap_io
    except ImportError:
        raise LabelsError(
            f"{path}: reading SLEAP files needs sleap-io: pip install 'realtime-pose[train]'"
        ) from None
    try:
        labels = sleap_io.load_slp(str(path))
    except Exception as exc:  # h5py and sleap-io raise many kinds
        raise LabelsError(f"{path}: cannot be read as SLEAP labels ({exc})") from exc
    if len(labels.videos) != 1 or len(labels.skeletons) != 1:
        raise LabelsError(
            f"{path}: holds {len(labels.videos)} videos and {len(labels.skeletons)} skeletons; "
            "one of each is supported (split the project per video in SLEAP)"
        )
    skeleton = labels.skeletons[0]
    bodyparts = tuple(skeleton.node_names)
    edges = tuple((e.source.name, e.destination.name) for e in skeleton.edges)
    tracks = [t.name for t in labels.tracks]
    # predicted instances are a model's guesses, and next to a person's label of the same
    # animal they would be a second, phantom animal
    frames = sorted(
        (f for f in labels.labeled_frames if f.user_instances), key=lambda f: f.frame_idx
    )
    if not frames:
        raise LabelsError(f"{path}: no frames with instances labelled by a person")
    most_untracked = max(sum(i.track is None for i in f.user_instances) for f in frames)
    slots = len(tracks) + most_untracked
    animals = tuple(tracks) + tuple(f"{SLOT_PREFIX}{i}" for i in range(len(tracks), slots))
    keypoints = np.full((len(frames), slots, len(bodyparts), 2), np.nan)
    for f, frame in enumerate(frames):
        free = len(tracks)
        for instance in frame.user_instances:
            if instance.track is not None:
                slot = tracks.index(instance.track.name)
            else:
                slot, free = free, free + 1
            keypoints[f, slot] = instance.numpy()[:, :2]
    video = Path(labels.videos[0].filename)
    if not video.is_absolute():
        video = path.parent / video
    if not video.is_file() and (path.parent / video.name).is_file():
        video = path.parent / video.name  # labels moved with their video
    return AnimalLabels(
        source=path,
        bodyparts=bodyparts,
        animals=animals,
        identities_known=bool(tracks) and most_untracked == 0,
        skeleton=edges,
        keypoints=keypoints,
        video=video,
        frame_indices=np.array([f.frame_idx for f in frames], dtype=np.int64),
    )


def read_dlc_multianimal(path: Path) -> AnimalLabels:
    """A DeepLabCut multi-animal labels table (``scorer/individuals/bodyparts/coords``).

    The individuals are identities only where ``config.yaml`` two folders above the table
    (``PROJECT/labeled-data/VIDEO/CollectedData_x.h5``) says ``identity: true``.
    """
    path = Path(path)
    root = path.parents[2] if len(path.parents) > 2 else path.parent
    config = _dlc_config(root) or {}
    table = _read_dlc_table(path, root)
    if table.had_single:
        _warn_unique_bodyparts(path)
    return AnimalLabels(
        source=path,
        bodyparts=table.bodyparts,
        animals=table.individuals,
        identities_known=config.get("identity") is True,
        skeleton=_dlc_skeleton(config, table.bodyparts),
        keypoints=table.keypoints,
        images=table.images,
    )


def read_dlc_multianimal_project(folder: Path) -> AnimalLabels:
    """Every ``labeled-data/<video>/CollectedData_*`` table of a multi-animal DeepLabCut project,
    in folder order, as one :class:`AnimalLabels` of image files.

    Individuals missing from a video's table are absent (NaN) in its frames; the individuals are
    identities only where ``config.yaml`` says ``identity: true``.
    """
    folder = Path(folder)
    config = _dlc_config(folder)
    if config is None:
        raise LabelsError(f"{folder / 'config.yaml'}: missing; not a DeepLabCut project")
    if config.get("multianimalproject") is not True:
        raise LabelsError(
            f"{folder / 'config.yaml'}: multianimalproject is not true; a single-animal "
            "project is trained on directly"
        )
    tables = [_read_dlc_table(p, folder) for p in _project_tables(folder, config.get("scorer"))]
    individuals = tuple(dict.fromkeys(i for t in tables for i in t.individuals))
    bodyparts = tables[0].bodyparts
    blocks = []
    for table in tables:
        if set(table.bodyparts) != set(bodyparts):
            raise LabelsError(
                f"{table.path}: bodyparts {list(table.bodyparts)} differ from "
                f"{tables[0].path}'s {list(bodyparts)}; every video needs the same bodyparts"
            )
        block = np.full((table.keypoints.shape[0], len(individuals), len(bodyparts), 2), np.nan)
        parts = [table.bodyparts.index(b) for b in bodyparts]
        for a, animal in enumerate(table.individuals):
            block[:, individuals.index(animal)] = table.keypoints[:, a][:, parts]
        blocks.append(block)
    if any(t.had_single for t in tables):
        _warn_unique_bodyparts(folder)
    return AnimalLabels(
        source=folder,
        bodyparts=bodyparts,
        animals=individuals,
        identities_known=config.get("identity") is True,
        skeleton=_dlc_skeleton(config, bodyparts),
        keypoints=np.concatenate(blocks),
        images=tuple(image for t in tables for image in t.images),
    )


@dataclass(frozen=True)
class _Table:
    """One multi-animal DeepLabCut table, unique bodyparts left out."""

    path: Path
    individuals: tuple[str, ...]
    bodyparts: tuple[str, ...]
    keypoints: np.ndarray
    images: tuple[Path, ...]
    had_single: bool


def _warn_unique_bodyparts(where: Path) -> None:
    log.warning(
        "%s: the '%s' individual (unique bodyparts) is not an animal; left out",
        where,
        UNIQUE_INDIVIDUAL,
    )


def _dlc_config(root: Path) -> dict | None:
    """``root/config.yaml`` as a mapping, or ``None`` where there is none."""
    import yaml

    path = root / "config.yaml"
    if not path.is_file():
        return None
    try:
        config = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise LabelsError(f"{path}: not valid YAML ({exc})") from exc
    if not isinstance(config, dict):
        raise LabelsError(f"{path}: expected a mapping of settings at the top level")
    return config


def _dlc_skeleton(config: dict, bodyparts: tuple[str, ...]) -> tuple[tuple[str, str], ...]:
    """The config's skeleton edges between the animals' bodyparts (unique bodyparts dropped)."""
    edges = []
    for edge in config.get("skeleton") or []:
        if isinstance(edge, (list, tuple)) and len(edge) == 2 and set(edge) <= set(bodyparts):
            edges.append((str(edge[0]), str(edge[1])))
    return tuple(edges)


def _project_tables(root: Path, scorer: object) -> list[Path]:
    """One table per video folder (:func:`~realtime_pose.trainers.project.label_files`)."""
    from realtime_pose.trainers.project import ProjectError, label_files

    try:
        return label_files(root, str(scorer) if scorer else None)
    except ProjectError as exc:
        raise LabelsError(str(exc)) from exc


def _read_dlc_table(path: Path, root: Path) -> _Table:
    """A multi-animal table; image rows resolved against the project folder ``root``."""
    try:
        df = _read_dlc_h5(path) if path.suffix == ".h5" else _read_dlc_csv(path)
    except LabelsError:
        raise
    except Exception as exc:  # pandas/tables raise many kinds
        raise LabelsError(f"{path}: cannot be read as a DeepLabCut labels table ({exc})") from exc
    names = [str(n) for n in (df.columns.names or [])]
    if "individuals" not in names or df.columns.nlevels != 4:
        raise LabelsError(
            f"{path}: no 'individuals' column level; this is a single-animal table "
            "(train on the project folder instead)"
        )
    individuals = [str(i) for i in dict.fromkeys(df.columns.get_level_values("individuals"))]
    had_single = UNIQUE_INDIVIDUAL in individuals
    if had_single:
        individuals.remove(UNIQUE_INDIVIDUAL)
    if not individuals:
        raise LabelsError(f"{path}: no individuals besides '{UNIQUE_INDIVIDUAL}'")
    columns = df.columns.droplevel("scorer")
    first = columns[columns.get_level_values("individuals") == individuals[0]]
    bodyparts = tuple(str(b) for b in dict.fromkeys(first.get_level_values("bodyparts")))
    keypoints = np.full((len(df), len(individuals), len(bodyparts), 2), np.nan)
    values = df.to_numpy(dtype=np.float64, na_value=np.nan)
    position = {tuple(str(x) for x in c): i for i, c in enumerate(columns)}
    for a, animal in enumerate(individuals):
        for k, part in enumerate(bodyparts):
            for c, coord in enumerate(("x", "y")):
                column = position.get((animal, part, coord))
                if column is None:
                    raise LabelsError(
                        f"{path}: individual {animal!r} has no {coord!r} column for {part!r}; "
                        "every individual needs the same bodyparts"
                    )
                keypoints[:, a, k, c] = values[:, column]
    rows = [
        normalise_relpath("/".join(str(p) for p in idx) if isinstance(idx, tuple) else str(idx))
        for idx in df.index
    ]
    images = tuple(
        root / r
        if (root / r).is_file() or not (path.parent / Path(r).name).is_file()
        # labels moved without their project around them: the image sits beside the table
        else path.parent / Path(r).name
        for r in rows
    )
    return _Table(path, tuple(individuals), bodyparts, keypoints, images, had_single)


def _read_dlc_h5(path: Path):
    """The table under ``df_with_missing`` (DeepLabCut's key), or the file's only table."""
    import pandas as pd

    with pd.HDFStore(path, mode="r") as store:
        keys = store.keys()
        if "/df_with_missing" in keys:
            return store["df_with_missing"]
        if len(keys) == 1:
            return store[keys[0]]
    raise LabelsError(
        f"{path}: holds the tables {keys}; expected 'df_with_missing' or a single table"
    )


def _read_dlc_csv(path: Path):
    import pandas as pd

    raw = pd.read_csv(path, header=None, dtype=str, keep_default_na=False, nrows=4)
    if raw.shape[0] < 4 or list(raw.iloc[:4, 0]) != [
        "scorer",
        "individuals",
        "bodyparts",
        "coords",
    ]:
        raise LabelsError(
            f"{path}: expected the header rows 'scorer', 'individuals', 'bodyparts', 'coords'"
        )
    coords = list(raw.iloc[3])
    index_cols = 1
    while index_cols < len(coords) and coords[index_cols] not in ("x", "y", "likelihood"):
        index_cols += 1
    df = pd.read_csv(path, header=[0, 1, 2, 3], index_col=list(range(index_cols)))
    df.columns = df.columns.set_names(["scorer", "individuals", "bodyparts", "coords"])
    return df
