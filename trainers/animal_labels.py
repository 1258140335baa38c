"""Labels of several animals per frame: one data model, read from SLEAP or multi-animal DeepLabCut.

:class:`AnimalLabels` holds ``[F, A, K, 2]`` keypoints (frames × animals × keypoints × x/y,
frame pixels, NaN where not labelled), the animals' names (identities where the labels know
them: SLEAP tracks, DeepLabCut ``individuals``), the bodyparts and the skeleton, and where each
labelled frame's image comes from (a frame of a video, or an image file).

Readers, chosen by :func:`load_animal_labels` from the file:

- ``.slp``: SLEAP labels, read with sleap-io (``sleap_io.load_slp``). Instances on a track are
  that track's animal; untracked instances fill the remaining animal slots in order (their
  identity is then unknown).
- ``CollectedData_*.h5`` / ``.csv`` with an ``individuals`` column level: a multi-animal
  DeepLabCut labels table. Columns of the ``single`` individual (DeepLabCut's unique bodyparts)
  are not animals and are left out, with a warning.

:meth:`AnimalLabels.identity_keypoints` flattens the animals into one keypoint list
(``female/head``, ``female/thorax``, …, ``male/head``, …): the layout of an *identity-channel*
network, which gives every (animal, bodypart) its own score map, so a known animal's keypoints
need no grouping and no identity step after the network.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from realtime_pose.bundle import animal_keypoint_names

log = logging.getLogger(__name__)

SEPARATOR = "/"
"""Between animal and bodypart in flattened keypoint names (``female/head``)."""


class LabelsError(ValueError):
    """A labels file that cannot be used; the message names the file and what is wrong."""


@dataclass(frozen=True)
class AnimalLabels:
    """Labelled frames with several animals each.

    Attributes
    ----------
    source
        The labels file read.
    bodyparts
        ``K`` keypoint names, in the skeleton's node order.
    animals
        ``A`` animal names: identities (``female``, ``male``) where ``identities_known``, else
        ``animal0``, ``animal1``, … (slots with no fixed identity).
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
        return AnimalLabels(
            source=self.source,
            bodyparts=self.bodyparts,
            animals=self.animals,
            identities_known=self.identities_known,
            skeleton=self.skeleton,
            keypoints=self.keypoints[idx],
            video=self.video,
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


def split_identity_name(name: str) -> tuple[str, str]:
    """``"female/head"`` → ``("female", "head")``."""
    animal, sep, bodypart = name.partition(SEPARATOR)
    if not sep or not animal or not bodypart:
        raise ValueError(f"{name!r} is not an animal{SEPARATOR}bodypart keypoint name")
    return animal, bodypart


def load_animal_labels(path: str | Path) -> AnimalLabels:
    """Read multi-animal labels from a SLEAP ``.slp`` or a multi-animal DeepLabCut table."""
    path = Path(path)
    if not path.is_file():
        raise LabelsError(f"{path}: no such labels file")
    if path.suffix == ".slp":
        return read_slp(path)
    if path.suffix in (".h5", ".csv"):
        return read_dlc_multianimal(path)
    raise LabelsError(
        f"{path}: unknown labels format; expected a SLEAP .slp or a DeepLabCut "
        "CollectedData_*.h5/.csv"
    )


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
    frames = sorted(labels.labeled_frames, key=lambda f: f.frame_idx)
    if not frames:
        raise LabelsError(f"{path}: no labelled frames")
    most_untracked = max(sum(i.track is None for i in f.instances) for f in frames)
    slots = len(tracks) + most_untracked
    animals = tuple(tracks) + tuple(f"animal{i}" for i in range(len(tracks), slots))
    keypoints = np.full((len(frames), slots, len(bodyparts), 2), np.nan)
    for f, frame in enumerate(frames):
        free = len(tracks)
        for instance in frame.instances:
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
    """A DeepLabCut multi-animal labels table (``scorer/individuals/bodyparts/coords``)."""
    import pandas as pd

    try:
        df = pd.read_hdf(path) if path.suffix == ".h5" else _read_dlc_csv(path)
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
    if "single" in individuals:
        log.warning(
            "%s: the 'single' individual (unique bodyparts) is not an animal; left out", path
        )
        individuals.remove("single")
    if not individuals:
        raise LabelsError(f"{path}: no individuals besides 'single'")
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
        "/".join(str(p) for p in idx) if isinstance(idx, tuple) else str(idx) for idx in df.index
    ]
    project = path.parents[2] if len(path.parents) > 2 else path.parent
    images = tuple(
        project / r if (project / r).is_file() else path.parent / Path(r).name for r in rows
    )
    return AnimalLabels(
        source=path,
        bodyparts=bodyparts,
        animals=tuple(individuals),
        identities_known=True,
        skeleton=(),
        keypoints=keypoints,
        images=images,
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
