"""Multi-animal labels as a training project: identity channels or look-alike slots.

:func:`write_animal_project` turns :class:`~trainers.animal_labels.AnimalLabels` into a
DeepLabCut-format project that the single-animal trainer reads unchanged: one keypoint per
(animal, bodypart), named ``animal/bodypart``, the skeleton and the left/right pairs repeated
per animal, and ``animals: {names, bodyparts, decoding}`` in ``config.yaml``, which training
copies into ``train_config.json`` and export into ``bundle.json``. Video frames are written as
PNG images (lossless: the network trains on the pixels the labels were made on); labels on image
files have their images copied.

``decoding`` says how a network tells the animals apart:

- ``identity_channels`` (:func:`write_identity_project`): the animals are identities (SLEAP
  tracks, DeepLabCut ``identity: true``) that look different; each keeps its name and its own
  score maps.
- ``part_affinity``: the animals look alike, so names would be noise. The project has slots
  ``animal0``… filled per frame in an order set by where the animals are
  (:func:`~trainers.animal_labels.canonical_slots`), never by the source's names, and keypoints
  are grouped into animals by part-affinity fields after the network.

:func:`choose_decoding` picks one from the labels (and ``--no-identities``) and says why.
:func:`write_time_split` writes a split by video frame number (neighbouring frames of a video are
near-identical, so a random split would measure memory), for ``realtime-pose train --split``.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np

from realtime_pose.bundle import animal_keypoint_names
from realtime_pose.trainers.animal_labels import AnimalLabels, LabelsError
from realtime_pose.trainers.project import DECODINGS, Decoding

VIDEO_FOLDER = "video"
"""``labeled-data/<VIDEO_FOLDER>/``: where the extracted frames go."""


def image_name(frame_index: int) -> str:
    """The project-relative image path of video frame ``frame_index``."""
    return f"labeled-data/{VIDEO_FOLDER}/img{frame_index:06d}.png"


def sided_pairs(bodyparts: tuple[str, ...] | list[str]) -> list[tuple[str, str]]:
    """Left/right bodypart pairs for mirroring augmentation: those the trainer infers
    (``leftear``/``rightear``, ``paw_L``/``paw_R``) and names that differ by one ``L``/``R``
    letter (``wingL``/``wingR``, ``forelegL4``/``forelegR4``)."""
    from realtime_pose.trainers.augment import flip_permutation

    names = set(bodyparts)
    perm = flip_permutation(bodyparts)
    pairs = (
        [] if perm is None else [(bodyparts[i], bodyparts[j]) for i, j in enumerate(perm) if j > i]
    )
    paired = {n for pair in pairs for n in pair}
    for name in bodyparts:
        if name in paired:
            continue
        for i, char in enumerate(name):
            if char == "L" and (other := f"{name[:i]}R{name[i + 1 :]}") in names:
                pairs.append((name, other))
                break
    return pairs


def _extract_frames(video: Path, frame_indices: np.ndarray, folder: Path) -> None:
    import cv2

    capture = cv2.VideoCapture(str(video))
    if not capture.isOpened():
        raise LabelsError(f"{video}: cannot open the labelled video")
    wanted = set(int(i) for i in frame_indices)
    last = max(wanted)
    try:
        index = 0
        while index <= last:
            ok, image = capture.read()  # sequential reads: exact frames, unlike seeking
            if not ok:
                raise LabelsError(
                    f"{video}: ends at frame {index}, but the labels name frame {last}"
                )
            if index in wanted:
                cv2.imwrite(str(folder / Path(image_name(index)).name), image)
            index += 1
    finally:
        capture.release()


def choose_decoding(labels: AnimalLabels, use_identities: bool = True) -> tuple[Decoding, str]:
    """How a network should tell ``labels``' animals apart, and why, in words for a log line.

    Parameters
    ----------
    labels
        The labels to train on.
    use_identities
        ``False`` (``--no-identities``): treat the animals as look-alikes even where the labels
        name them consistently.

    Returns
    -------
    tuple
        ``(decoding, reason)``: ``"identity_channels"`` where the labels' animals are identities
        and ``use_identities``, else ``"part_affinity"``.
    """
    named = ", ".join(labels.animals)
    if not use_identities:
        return (
            "part_affinity",
            f"--no-identities: the animals ({named}) are treated as look-alikes; their names "
            "are not trained on",
        )
    if labels.identities_known:
        return (
            "identity_channels",
            f"the labels name the same animal the same in every frame ({named}), so each "
            "animal gets its own score maps",
        )
    return (
        "part_affinity",
        f"the labels' animals ({named}) are slots, not identities (SLEAP instances without a "
        "track, or a DeepLabCut project without 'identity: true'), so they are treated as "
        "look-alikes",
    )


def write_identity_project(
    labels: AnimalLabels, folder: str | Path, frames: tuple[int, int] | None = None
) -> Path:
    """:func:`write_animal_project` with ``decoding="identity_channels"``."""
    return write_animal_project(labels, folder, "identity_channels", frames)


def write_animal_project(
    labels: AnimalLabels,
    folder: str | Path,
    decoding: Decoding,
    frames: tuple[int, int] | None = None,
) -> Path:
    """Write ``labels`` (video frames ``frames[0]``–``frames[1]``, default all) as a
    DeepLabCut-format multi-animal project in ``folder``; return the folder.

    Parameters
    ----------
    labels
        Labels on a video (frames become ``labeled-data/video/img######.png``) or on image files
        (copied to ``labeled-data/<their folder>/<name>``).
    folder
        Where the project goes (created).
    decoding
        ``"identity_channels"``: one keypoint per (named animal, bodypart), in the labels'
        order. ``"part_affinity"``: slots ``animal0``…``animal{A-1}``, ``A`` the most animals
        in any labelled frame, each frame's animals in
        :func:`~trainers.animal_labels.canonical_slots` order, so the project is the same
        whatever the source called its animals or in which order it listed them.
    frames
        Video frames to keep (labels on a video only).

    Raises
    ------
    LabelsError
        Identity channels for animals without identities, an unknown ``decoding``, no labelled
        frame or animal, or an image that cannot be read or copied.
    """
    import pandas as pd
    import yaml

    if decoding not in DECODINGS:
        raise LabelsError(f"decoding {decoding!r}: expected one of {', '.join(DECODINGS)}")
    if frames is not None:
        labels = labels.frames_between(*frames)
    if labels.num_frames == 0:
        raise LabelsError(f"{labels.source}: no labelled frames in {frames}")
    if decoding == "identity_channels":
        names, keypoints = labels.identity_keypoints()
    else:
        labels = labels.as_lookalikes()
        if not labels.animals:
            raise LabelsError(f"{labels.source}: no animal is labelled in any frame")
        names = tuple(animal_keypoint_names(labels.animals, labels.bodyparts))
        keypoints = labels.keypoints.reshape(labels.num_frames, -1, 2)
    folder = Path(folder)
    rows = _write_images(labels, folder)
    scorer = "labels"
    columns = pd.MultiIndex.from_product(
        [[scorer], list(names), ["x", "y"]], names=["scorer", "bodyparts", "coords"]
    )
    flat = keypoints.reshape(labels.num_frames, -1)
    video_folders = list(dict.fromkeys(Path(r).parent for r in rows))
    for video_folder in video_folders:  # one table per folder, as DeepLabCut keeps them
        mine = [i for i, r in enumerate(rows) if Path(r).parent == video_folder]
        df = pd.DataFrame(flat[mine], index=[rows[i] for i in mine], columns=columns)
        df.to_hdf(
            folder / video_folder / f"CollectedData_{scorer}.h5", key="df_with_missing", mode="w"
        )
    skeleton = [[f"{a}/{s}", f"{a}/{d}"] for a in labels.animals for s, d in labels.skeleton]
    pairs = sided_pairs(labels.bodyparts)
    symmetric = [[f"{a}/{left}", f"{a}/{right}"] for a in labels.animals for left, right in pairs]
    config = {
        "Task": labels.source.stem,
        "scorer": scorer,
        "date": "converted",
        "project_path": str(folder.resolve()),
        "video_sets": {} if labels.video is None else {str(labels.video): {}},
        "bodyparts": list(names),
        "skeleton": skeleton,
        # mirrored images swap each animal's left and right; without any pair found, the
        # trainer's own inference (leftear/rightear...) decides, and leaves mirroring off for
        # names that look sided but have no partner
        **({"symmetric_pairs": symmetric} if symmetric else {}),
        "animals": {
            "names": list(labels.animals),
            "bodyparts": list(labels.bodyparts),
            "decoding": decoding,
        },
        "pcutoff": 0.6,
        "TrainingFraction": [0.8],
        "iteration": 0,
        "labels_source": str(labels.source),
    }
    (folder / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    return folder


def _write_images(labels: AnimalLabels, folder: Path) -> list[str]:
    """Put every labelled frame's image in the project; return their project-relative paths."""
    if labels.video is not None and labels.frame_indices is not None:
        images = folder / "labeled-data" / VIDEO_FOLDER
        images.mkdir(parents=True, exist_ok=True)
        _extract_frames(labels.video, labels.frame_indices, images)
        return [image_name(int(i)) for i in labels.frame_indices]
    if labels.images is None:
        raise LabelsError(f"{labels.source}: the labels name neither a video nor images")
    rows = [f"labeled-data/{image.parent.name}/{image.name}" for image in labels.images]
    seen: dict[str, Path] = {}
    for row, image in zip(rows, labels.images, strict=True):
        if row in seen and seen[row] != image:
            raise LabelsError(
                f"{labels.source}: images {seen[row]} and {image} would both become {row}; "
                "give them distinct folder or file names"
            )
        seen[row] = image
        if not image.is_file():
            raise LabelsError(
                f"{labels.source}: labelled image {image} is missing; restore it or remove its row"
            )
        target = folder / row
        target.parent.mkdir(parents=True, exist_ok=True)
        if not (target.exists() and target.samefile(image)):
            shutil.copyfile(image, target)
    return rows


def write_time_split(
    path: str | Path, frame_indices: np.ndarray, train: tuple[int, int], test: tuple[int, int]
) -> Path:
    """A split file training on video frames ``train`` and testing on ``test`` (inclusive
    ranges) of the labelled ``frame_indices``."""

    def pick(lo: int, hi: int) -> list[str]:
        return [image_name(int(i)) for i in frame_indices if lo <= i <= hi]

    chosen = {"train": pick(*train), "test": pick(*test)}
    if not chosen["train"]:
        raise LabelsError(f"no labelled frames in the training range {train[0]}-{train[1]}")
    path = Path(path)
    path.write_text(json.dumps(chosen, indent=1) + "\n")
    return path
