"""Training a network for animals that look alike: part-affinity graph, targets, evaluation.

A look-alike project (``animals.decoding: part_affinity`` in its ``config.yaml``, written by
``realtime-pose train`` from labels without identities) lays its keypoints out as slots
(``animal0/head`` ... ``animal1/head`` ...) whose order carries no meaning. The network it
trains has one score map per *bodypart*, shared by every animal, location refinement, and one
part-affinity field per edge of a spanning tree of the skeleton
(:func:`~realtime_pose.inference.assembly.paf_graph`); each frame's peaks are grouped into
animals after the network (:mod:`realtime_pose.inference.assembly`).

This module is what the trainer needs beyond the single-animal path: the graph of a project,
the batch targets (:func:`~realtime_pose.trainers.group_targets.make_group_targets` on the
slots), and predictions matched to the labels for the held-out error (slots are unordered, so
each predicted animal is compared with the labelled animal it matches best).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from realtime_pose.bundle import bodypart_edges
from realtime_pose.trainers.project import Project

PAF_LOSS_WEIGHT = 1.0
"""Weight of the part-affinity loss (mean squared error over the cells where the field is
known) beside the score maps' cross-entropy."""


def is_grouped(animals: dict[str, Any] | None) -> bool:
    """Whether a project's (or run's) ``animals`` are look-alikes grouped after the network."""
    return bool(animals) and animals.get("decoding") == "part_affinity"  # type: ignore[union-attr]


def bodypart_skeleton(project: Project) -> list[tuple[str, str]]:
    """The skeleton between bodyparts (the slot prefixes of the project's edges removed,
    each edge once)."""
    # paf_graph takes edges in either direction and repeated, but refuses a part joined to itself
    return [(a, b) for a, b in bodypart_edges(project.skeleton) if a != b]


def project_edges(project: Project) -> list[tuple[int, int]]:
    """The part-affinity graph of a look-alike project: a spanning tree of its skeleton over
    the bodyparts, (parent, child) index pairs in assembly order."""
    from realtime_pose.inference.assembly import paf_graph

    assert project.animals is not None
    return [
        (int(a), int(b))
        for a, b in paf_graph(project.animals["bodyparts"], bodypart_skeleton(project))
    ]


def slot_shape(project: Project) -> tuple[int, int]:
    """``(A, K)``: the slots and bodyparts of a multi-animal project."""
    assert project.animals is not None
    return len(project.animals["names"]), len(project.animals["bodyparts"])


def grouped_batch_targets(
    keypoints: np.ndarray,
    slots: tuple[int, int],
    side: int,
    edges: list[tuple[int, int]],
    *,
    stride: float,
    pos_dist_thresh: float,
    locref_stdev: float,
    kind: str,
) -> tuple[np.ndarray, ...]:
    """``(scmap, locref, locref_mask, paf, paf_mask)`` for a batch of slot keypoints
    ``[B, A·K, 2]`` (crop pixels, NaN where absent) on ``side × side`` maps."""
    from realtime_pose.trainers.group_targets import make_group_targets

    a, k = slots
    kp = np.asarray(keypoints, dtype=np.float32).reshape(len(keypoints), a, k, 2)
    t = make_group_targets(
        kp,
        (side, side),
        edges,
        stride=stride,
        pos_dist_thresh=pos_dist_thresh,
        locref_stdev=locref_stdev,
        kind=kind,
    )
    return t.scmap, t.locref, t.locref_mask, t.paf, t.paf_mask


def grouped_decoder(
    num_bodyparts: int,
    edges: list[tuple[int, int]],
    max_animals: int,
    stride: float,
    locref_stdev: float,
) -> Callable[[list[np.ndarray]], np.ndarray]:
    """NHWC network outputs (scmap, locref, paf; batch axis dropped) → animals ``[A, K, 3]``
    in network-input pixels, the best first (missing animals and parts: NaN, likelihood 0)."""
    from realtime_pose.inference.assembly import BottomUpDecoder

    decoder = BottomUpDecoder(
        num_bodyparts,
        np.asarray(edges, dtype=np.int32).reshape(-1, 2),
        stride,
        locref_stdev,
        "NHWC",
        max_animals,
    )

    def decode(outputs: list[np.ndarray]) -> np.ndarray:
        scmap, locref, paf = outputs
        animals, _ = decoder.decode(scmap, locref, paf)
        return animals.copy()

    return decode


def match_to_labels(
    predictions: np.ndarray, labels: np.ndarray, slots: tuple[int, int]
) -> np.ndarray:
    """Predicted animals reordered to the labelled animals they match best.

    Parameters
    ----------
    predictions
        ``[F, A·K, 3]`` decoded animals in any order (NaN where none).
    labels
        ``[F, A·K, 2]`` the project's slot labels (NaN where absent).
    slots
        ``(A, K)``.

    Returns
    -------
    np.ndarray
        ``[F, A·K, 3]``: slot ``j`` holds the predicted animal matched to labelled animal ``j``
        (Hungarian on the mean keypoint distance), or NaN with likelihood 0 when none matched,
        so that per-keypoint errors and PCK compare each animal with its own labels.
    """
    from realtime_pose.trainers.animal_evaluation import best_assignment

    a, k = slots
    f = len(predictions)
    pred = predictions.reshape(f, a, k, 3)
    truth = labels.reshape(f, a, k, 2)
    # parts an animal lacks have likelihood 0: a cut-off above it leaves them out of the cost
    assignment = best_assignment(pred, truth, cutoff=1e-6)
    out = np.full_like(pred, np.nan)
    out[..., 2] = 0.0
    for frame in range(f):
        for j, i in enumerate(assignment[frame]):
            if i >= 0:
                out[frame, j] = pred[frame, i]
    return out.reshape(f, a * k, 3)
