"""How far apart body parts are in the training labels: the range a live pose is judged by.

The exporter stores it in the bundle (``label_distances``), and live capture
(:mod:`realtime_pose.inference.doubt`) flags a pose whose body parts are closer or farther
apart than any labelled frame showed them, an outlier criterion that needs no ground truth.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import Any

import numpy as np

from realtime_pose.bundle import bodypart_edges


def label_distances(
    keypoints: np.ndarray,
    bodyparts: Sequence[str],
    skeleton: Sequence[tuple[str, str]] = (),
    animals: dict[str, Any] | None = None,
) -> dict[str, Any] | None:
    """The smallest and largest distance between body parts over the labelled frames.

    Parameters
    ----------
    keypoints
        ``[N, K, 2]`` labelled ``x, y`` in frame pixels, NaN where not visible.
    bodyparts
        The K keypoint names (``animal/bodypart`` with several animals).
    skeleton
        Pairs of names; the pairs measured. Without a skeleton every pair is.
    animals
        Several animals as identity channels (``{"names": [...], "bodyparts": [...]}``): each
        animal's rows are measured alike and the pairs name bodyparts.

    Returns
    -------
    dict or None
        ``{"pairs", "min_px", "max_px", "labelled_frames"}`` (``bundle.json``'s
        ``label_distances``), with only pairs seen together in at least one frame; ``None`` when
        no pair was.
    """
    points = np.asarray(keypoints, dtype=np.float64)
    names = list(bodyparts)
    if animals is not None:
        parts = list(animals["bodyparts"])
        points = points.reshape(points.shape[0] * len(animals["names"]), len(parts), 2)
        edges = bodypart_edges(skeleton)
        names = parts
    else:
        edges = [tuple(e) for e in skeleton]
    pairs = list(dict.fromkeys(edges)) or list(itertools.combinations(names, 2))
    index = {n: i for i, n in enumerate(names)}
    kept, lows, highs = [], [], []
    for a, b in pairs:
        d = np.linalg.norm(points[:, index[a]] - points[:, index[b]], axis=1)
        d = d[np.isfinite(d)]
        if d.size:
            kept.append([a, b])
            lows.append(round(float(d.min()), 3))
            highs.append(round(float(d.max()), 3))
    if not kept:
        return None
    return {
        "pairs": kept,
        "min_px": lows,
        "max_px": highs,
        "labelled_frames": int(keypoints.shape[0]),
    }
