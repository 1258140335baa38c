"""Multi-animal labels as a training project for an identity-channel network.

:func:`write_identity_project` turns :class:`~trainers.animal_labels.AnimalLabels` whose animals
have identities (SLEAP tracks, DeepLabCut individuals) into a DeepLabCut-format project that the
single-animal trainer reads unchanged: one keypoint per (animal, bodypart), named
``animal/bodypart``, the skeleton repeated per animal, and ``animals: {names, bodyparts}`` in
``config.yaml``, which training copies into ``train_config.json`` and export into
``bundle.json``. Video frames are written as PNG images (lossless: the network trains on the
pixels the labels were made on).

:func:`write_time_split` writes a split by video frame number (neighbouring frames of a video are
near-identical, so a random split would measure memory), for ``realtime-pose train --split``.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from realtime_pose.trainers.animal_labels import AnimalLabels, LabelsError

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


def write_identity_project(
    labels: AnimalLabels, folder: str | Path, frames: tuple[int, int] | None = None
) -> Path:
    """Write ``labels`` (video frames ``frames[0]``–``frames[1]``, default all) as a
    DeepLabCut-format identity-channel project in ``folder``; return the folder.

    Raises
    ------
    LabelsError
        The animals have no identities, the labels are not on a video, or a frame cannot be read.
    """
    import pandas as pd
    import yaml

    if labels.video is None or labels.frame_indices is None:
        raise LabelsError(f"{labels.source}: labels on image files; train on their project")
    if frames is not None:
        labels = labels.frames_between(*frames)
    if labels.num_frames == 0:
        raise LabelsError(f"{labels.source}: no labelled frames in {frames}")
    names, keypoints = labels.identity_keypoints()
    folder = Path(folder)
    images = folder / "labeled-data" / VIDEO_FOLDER
    images.mkdir(parents=True, exist_ok=True)
    _extract_frames(labels.video, labels.frame_indices, images)
    scorer = "labels"
    columns = pd.MultiIndex.from_product(
        [[scorer], list(names), ["x", "y"]], names=["scorer", "bodyparts", "coords"]
    )
    rows = [image_name(int(i)) for i in labels.frame_indices]
    df = pd.DataFrame(keypoints.reshape(labels.num_frames, -1), index=rows, columns=columns)
    df.to_hdf(images / f"CollectedData_{scorer}.h5", key="df_with_missing", mode="w")
    skeleton = [[f"{a}/{s}", f"{a}/{d}"] for a in labels.animals for s, d in labels.skeleton]
    pairs = sided_pairs(labels.bodyparts)
    symmetric = [[f"{a}/{left}", f"{a}/{right}"] for a in labels.animals for left, right in pairs]
    config = {
        "Task": labels.source.stem,
        "scorer": scorer,
        "date": "converted",
        "project_path": str(folder.resolve()),
        "video_sets": {str(labels.video): {}},
        "bodyparts": list(names),
        "skeleton": skeleton,
        # mirrored images swap each animal's left and right; without any pair found, the
        # trainer's own inference (leftear/rightear...) decides, and leaves mirroring off for
        # names that look sided but have no partner
        **({"symmetric_pairs": symmetric} if symmetric else {}),
        "animals": {"names": list(labels.animals), "bodyparts": list(labels.bodyparts)},
        "pcutoff": 0.6,
        "TrainingFraction": [0.8],
        "iteration": 0,
        "labels_source": str(labels.source),
    }
    (folder / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    return folder


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
