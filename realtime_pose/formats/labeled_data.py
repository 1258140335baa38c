"""Captured frames in the folders the field's labelling tools open.

DeepLabCut: ``<project>/labeled-data/<name>/img<frame index>.png`` with the model's labels in
``machinelabels-iter<iteration>.h5`` (and ``machinelabels.csv``), as
``deeplabcut.extract_outlier_frames`` leaves them for ``refine_labels``. The table is pandas,
key ``df_with_missing``, columns ``scorer / bodyparts / coords`` (coords ``x, y, likelihood``;
``scorer / individuals / bodyparts / coords`` for several animals) and one row per image,
indexed as DeepLabCut 2.3+ indexes labelled images: a three-level MultiIndex of
``("labeled-data", <name>, "img00042.png")``.

SLEAP: a ``.slp`` holding one image-sequence video over the captured PNGs, the model's
``PredictedInstance`` of each frame and every frame as a suggestion, written with sleap-io; the
SLEAP GUI opens it with the frames listed under "Labeling Suggestions".
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from realtime_pose.bundle import animal_layout, bodypart_edges
from realtime_pose.util.safe_write import writing, writing_all

H5_KEY = "df_with_missing"
LABELED_DATA = "labeled-data"
MACHINE_LABELS_CSV = "machinelabels.csv"
IMAGE_DIGITS = 5
COORDS = ("x", "y", "likelihood")


def frame_image_name(frame_index: int, digits: int = IMAGE_DIGITS) -> str:
    """``img00042.png``: the image name of frame ``frame_index`` (at least ``digits`` digits,
    more when the index needs them), as DeepLabCut names extracted frames."""
    if frame_index < 0:
        raise ValueError(f"frame_index must be non-negative, got {frame_index}")
    return f"img{int(frame_index):0{digits}d}.png"


def labels_folder(folder: str | Path, name: str) -> Path:
    """``<folder>/labeled-data/<name>``: where the images and labels of ``name`` go."""
    return Path(folder) / LABELED_DATA / name


def machine_labels_path(folder: str | Path, name: str, iteration: int = 0) -> Path:
    """``<folder>/labeled-data/<name>/machinelabels-iter<iteration>.h5``."""
    return labels_folder(folder, name) / f"machinelabels-iter{int(iteration)}.h5"


def pose_layout(
    keypoints: Sequence[str], animals: Sequence[str] | None, rows: int
) -> tuple[list[str] | None, list[str]]:
    """``(animals or None, bodyparts)`` of ``rows`` pose rows named by ``keypoints``.

    ``keypoints`` name every row (``animal/bodypart`` for several animals: their animals then
    need not be given), or, with ``animals``, the bodyparts of one animal. Raises
    :class:`ValueError` when the names do not fit ``rows``.
    """
    keypoints = [str(k) for k in keypoints]
    if animals is None:
        layout = animal_layout(keypoints)
        if layout is not None and len(layout[0]) > 1:
            if len(keypoints) != rows:
                raise ValueError(f"poses have {rows} rows but there are {len(keypoints)} names")
            return layout
        if len(keypoints) != rows:
            raise ValueError(f"poses have {rows} rows but there are {len(keypoints)} keypoints")
        return None, keypoints
    animals = [str(a) for a in animals]
    if len(keypoints) * len(animals) == rows:  # bodyparts of one animal
        return animals, keypoints
    layout = animal_layout(keypoints)
    if layout is not None and layout[0] == animals and len(keypoints) == rows:
        return layout
    raise ValueError(
        f"poses have {rows} rows; keypoints must be the bodyparts of one of the animals "
        f"{animals} or animal/bodypart for each of them, got {keypoints[:4]}..."
    )


def machine_labels_table(
    name: str,
    frame_indices: Sequence[int] | np.ndarray,
    poses: np.ndarray,
    keypoints: Sequence[str],
    scorer: str,
    animals: Sequence[str] | None = None,
):
    """The machine-labels DataFrame of frames ``frame_indices`` (``poses``: ``[F, N, 3]``).

    ``keypoints`` name the ``N`` rows (``animal/bodypart`` for several animals), or, with
    ``animals``, the bodyparts of one animal.
    """
    import pandas as pd

    poses = np.asarray(poses, dtype=np.float64)
    if poses.ndim != 3 or poses.shape[2] != 3:
        raise ValueError(f"poses must have shape [frames, keypoints, 3], got {list(poses.shape)}")
    frame_indices = [int(i) for i in frame_indices]
    if len(frame_indices) != len(poses):
        raise ValueError(f"{len(frame_indices)} frame indices for {len(poses)} poses")
    individuals, bodyparts = pose_layout(keypoints, animals, poses.shape[1])
    if individuals is None:
        columns = pd.MultiIndex.from_product(
            [[scorer], bodyparts, list(COORDS)], names=["scorer", "bodyparts", "coords"]
        )
    else:
        columns = pd.MultiIndex.from_product(
            [[scorer], individuals, bodyparts, list(COORDS)],
            names=["scorer", "individuals", "bodyparts", "coords"],
        )
    index = pd.MultiIndex.from_tuples(
        [(LABELED_DATA, name, frame_image_name(i)) for i in frame_indices]
    )
    return pd.DataFrame(poses.reshape(len(poses), -1), index=index, columns=columns)


def write_machine_labels(
    folder: str | Path,
    name: str,
    frame_indices: Sequence[int] | np.ndarray,
    poses: np.ndarray,
    keypoints: Sequence[str],
    scorer: str,
    iteration: int = 0,
    animals: Sequence[str] | None = None,
) -> Path:
    """(Re)write ``machinelabels-iter<iteration>.h5`` and ``machinelabels.csv`` in
    ``<folder>/labeled-data/<name>/`` for ``frame_indices``; return the ``.h5`` path.

    Both files are replaced whole (a temporary file renamed over the old one), so a reader, or
    a crash, never sees half a table. See :func:`machine_labels_table` for the arguments.
    """
    df = machine_labels_table(name, frame_indices, poses, keypoints, scorer, animals)
    h5_path = machine_labels_path(folder, name, iteration)
    with writing_all([h5_path, h5_path.with_name(MACHINE_LABELS_CSV)], overwrite=True) as (
        h5_tmp,
        csv_tmp,
    ):
        df.to_hdf(h5_tmp, key=H5_KEY, mode="w")
        df.to_csv(csv_tmp)
    return h5_path


def read_machine_labels(path: str | Path) -> tuple[list[str], list[str], np.ndarray]:
    """``(image names, keypoints, poses [F, N, 3])`` of a DeepLabCut labels table (``.h5``).

    Image names are the files' names (``img00042.png``); keypoints are bodyparts, or
    ``individual/bodypart`` for the multi-animal layout; rows indexed by path strings (older
    DeepLabCut) are read too, and tables without likelihoods (human labels) get NaN there.
    """
    import pandas as pd

    df = pd.read_hdf(Path(path), key=H5_KEY)
    if isinstance(df.index, pd.MultiIndex):
        images = [str(row[-1]) for row in df.index]
    else:
        images = [str(row).replace("\\", "/").rsplit("/", 1)[-1] for row in df.index]
    names = df.columns.names
    parts = df.columns.get_level_values("bodyparts")
    if "individuals" in names:
        who = df.columns.get_level_values("individuals")
        keys = list(zip(who, parts, strict=True))
    else:
        keys = [(None, p) for p in parts]
    order = list(dict.fromkeys(keys))
    poses = np.full((len(df), len(order), 3), np.nan)
    where = {key: i for i, key in enumerate(order)}
    values = df.to_numpy(dtype=np.float64)
    for column, (key, coord) in enumerate(
        zip(keys, df.columns.get_level_values("coords"), strict=True)
    ):
        if coord in COORDS:
            poses[:, where[key], COORDS.index(coord)] = values[:, column]
    keypoints = [p if a is None else f"{a}/{p}" for a, p in order]
    return images, keypoints, poses


def write_sleap_suggestions(
    path: str | Path,
    image_paths: Sequence[str | Path],
    poses: np.ndarray,
    keypoints: Sequence[str],
    skeleton_edges: Sequence[Sequence[str]] = (),
    scores: np.ndarray | Sequence[float] | None = None,
    *,
    animals: Sequence[str] | None = None,
    grayscale: bool | None = False,
) -> Path:
    """(Re)write ``path`` (``.slp``): the images as one image-sequence video, ``poses``
    ``[F, N, 3]`` as predicted instances (image ``f`` ↔ ``poses[f]``) and every image as a
    suggestion to label.

    Each keypoint's likelihood is its point score; ``scores`` (``[F]``, or ``[F, animals]``)
    are the instances' scores (default: the mean likelihood). Non-finite points are left out.
    Several animals (``animal/bodypart`` keypoints, or bodyparts with ``animals``) get one
    track each. ``skeleton_edges`` may name keypoints with or without their animal. The images
    must exist (the video reads the first one for its shape); ``grayscale=None`` lets sleap-io
    guess from the first image. The file is replaced whole.
    """
    import sleap_io as sio

    poses = np.asarray(poses, dtype=np.float64)
    if poses.ndim != 3 or poses.shape[2] != 3:
        raise ValueError(f"poses must have shape [frames, keypoints, 3], got {list(poses.shape)}")
    if len(image_paths) != len(poses) or not len(poses):
        raise ValueError(
            f"need one pose per image and at least one: {len(image_paths)} images, "
            f"{len(poses)} poses"
        )
    individuals, bodyparts = pose_layout(keypoints, animals, poses.shape[1])
    tracks = [sio.Track(name=a) for a in individuals] if individuals else []
    groups = len(individuals) if individuals else 1
    k = len(bodyparts)
    grouped = poses.reshape(len(poses), groups, k, 3)
    instance_scores = None
    if scores is not None:
        instance_scores = np.broadcast_to(
            np.asarray(scores, dtype=np.float64).reshape(len(poses), -1), (len(poses), groups)
        )
    edges = [[a, b] for a, b in bodypart_edges(skeleton_edges) if a in bodyparts and b in bodyparts]
    skeleton = sio.Skeleton(nodes=bodyparts, edges=edges)
    video = sio.Video.from_filename(
        [str(Path(p).resolve()) for p in image_paths], grayscale=grayscale
    )
    frames = []
    for f, pose_group in enumerate(grouped):
        instances = []
        for g, pose in enumerate(pose_group):
            seen = np.isfinite(pose[:, :2]).all(axis=1)
            if not seen.any():
                continue
            likelihood = np.where(np.isfinite(pose[:, 2]), pose[:, 2], 0.0)
            score = likelihood[seen].mean() if instance_scores is None else instance_scores[f, g]
            instances.append(
                sio.PredictedInstance.from_numpy(
                    np.where(seen[:, None], pose[:, :2], np.nan),
                    skeleton,
                    point_scores=likelihood,
                    score=float(score),
                    track=tracks[g] if tracks else None,
                )
            )
        frames.append(sio.LabeledFrame(video=video, frame_idx=f, instances=instances))
    labels = sio.Labels(
        labeled_frames=frames,
        videos=[video],
        skeletons=[skeleton],
        tracks=tracks,
        suggestions=[sio.SuggestionFrame(video=video, frame_idx=f) for f in range(len(poses))],
    )
    with writing(path, overwrite=True) as tmp:
        sio.save_slp(labels, str(tmp), verbose=False)
    return Path(path)
