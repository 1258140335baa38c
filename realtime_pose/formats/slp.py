"""SLEAP predictions (``.slp``) of an analysis, written with sleap-io.

One ``PredictedInstance`` per animal and frame, on a track named after the animal (its identity,
``female``), with each keypoint's likelihood as its point score and the mean as the instance
score; keypoints below the cut-off are left out (NaN), as SLEAP marks points it did not find.
A single-animal model writes one instance per frame on the track ``animal``. The analysis'
provenance is stored in the file's ``provenance`` (``Labels.provenance``), which SLEAP keeps.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from realtime_pose.bundle import animal_layout, bodypart_edges
from realtime_pose.util.safe_write import writing

INSTALL_HINT = "pip install sleap-io (or 'realtime-pose[train]')"


def write_slp(
    path: str | Path,
    poses: np.ndarray,
    keypoints: Sequence[str],
    skeleton: Sequence[Sequence[str]],
    video: Path,
    *,
    cutoff: float = 0.0,
    provenance: Mapping[str, Any] | None = None,
    overwrite: bool = False,
) -> Path:
    """Write ``poses`` ``[N, A·K, 3]`` (frame ``i`` = video frame ``i``) as SLEAP predictions.

    ``skeleton`` edges may name keypoints with or without their animal; each animal gets the
    same bodypart skeleton.
    """
    try:
        import sleap_io as sio
    except ImportError:
        raise RuntimeError(f"writing SLEAP files needs sleap-io: {INSTALL_HINT}") from None

    animals, bodyparts = animal_layout(keypoints) or (["animal"], list(keypoints))
    edges = [[a, b] for a, b in bodypart_edges(skeleton) if a in bodyparts and b in bodyparts]
    sk = sio.Skeleton(nodes=bodyparts, edges=edges)
    tracks = [sio.Track(name=a) for a in animals]
    sleap_video = sio.Video(filename=str(Path(video).resolve()), open_backend=False)
    K = len(bodyparts)
    grouped = np.asarray(poses, dtype=np.float64).reshape(len(poses), len(animals), K, 3)
    frames = []
    for index, frame in enumerate(grouped):
        instances = []
        for track, pose in zip(tracks, frame, strict=True):
            seen = pose[:, 2] >= cutoff
            if not seen.any():
                continue
            points = np.where(seen[:, None], pose[:, :2], np.nan)
            instances.append(
                sio.PredictedInstance.from_numpy(
                    points,
                    sk,
                    point_scores=pose[:, 2],
                    score=float(pose[seen, 2].mean()),
                    track=track,
                )
            )
        frames.append(sio.LabeledFrame(video=sleap_video, frame_idx=index, instances=instances))
    labels = sio.Labels(
        labeled_frames=frames,
        videos=[sleap_video],
        skeletons=[sk],
        tracks=tracks,
        provenance=dict(provenance or {}),
    )
    with writing(path, overwrite) as tmp:
        sio.save_slp(labels, str(tmp), verbose=False)
    return Path(path)


def read_slp_provenance(path: str | Path) -> tuple[dict[str, Any], int]:
    """The provenance stored by :func:`write_slp` and the number of frames in the file."""
    import sleap_io as sio

    labels = sio.load_slp(str(path), open_videos=False)
    return dict(labels.provenance), len(labels.labeled_frames)


def read_analysis_h5(
    path: str | Path, nodes: Sequence[str] | None = None, track: int = 0
) -> tuple[list[str], np.ndarray]:
    """One track of a SLEAP analysis file (``*.analysis.h5``: ``tracks``, ``point_scores``,
    ``node_names``) as ``(node names, [T, K, 3])`` (x, y, score); with ``nodes`` the keypoints
    come in that order (files of one session may each list their nodes in their own order)."""
    import h5py

    with h5py.File(path, "r") as f:
        names = [n.decode() if isinstance(n, bytes) else str(n) for n in f["node_names"][:]]
        order = [names.index(n) for n in nodes] if nodes is not None else list(range(len(names)))
        xy = f["tracks"][track][:, order, :].transpose(2, 1, 0)  # [T, K, 2]
        scores = f["point_scores"][track][order].T  # [T, K]
    return [names[i] for i in order], np.concatenate([xy, scores[..., None]], axis=-1)
