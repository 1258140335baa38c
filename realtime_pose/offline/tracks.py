"""Tracked slots as one animal per track: what analysis files of look-alike animals hold.

Live, a look-alike bundle's pose keeps each followed animal in one *slot* for as long as its
track lives, and says which track with ``track_ids`` (a slot is reused by a later track once its
animal is lost). Files read by other tools want one individual per animal instead: a
DeepLabCut table's ``individuals``, a SLEAP track, an NWB ``PoseEstimation`` per animal. This
module turns ``[N, S·K, 3]`` slots plus ``[N, S]`` track ids into ``[N, T·K, 3]``, one block of
rows per track (named ``track<id>``; NaN and likelihood 0 in the frames the track did not live),
and the matching bundle description, so the existing writers write one individual per track.
"""

from __future__ import annotations

import numpy as np

from realtime_pose.bundle import AnimalsSpec, Bundle, bodypart_edges

TRACK_PREFIX = "track"
"""Individual names in analysis files: ``track<track_id>``."""


def per_track(
    poses: np.ndarray, track_ids: np.ndarray, bundle: Bundle
) -> tuple[np.ndarray, Bundle]:
    """Slots to tracks.

    Parameters
    ----------
    poses
        ``[N, S·K, 3]`` tracked slots (x, y, likelihood).
    track_ids
        ``int [N, S]``: the track each slot held in each frame, −1 where empty.
    bundle
        The look-alike bundle the poses came from (``animals.decoding: part_affinity``).

    Returns
    -------
    poses, bundle
        ``[N, T·K, 3]`` with one block per track, in order of ``track_id``, and a bundle whose
        ``keypoints`` are ``track<id>/<bodypart>`` and whose skeleton is repeated per track
        (no track at all: one block named ``track0``, all NaN).
    """
    meta = bundle.meta
    animals = meta.animals
    if animals is None or not animals.grouped:
        raise ValueError("per_track needs a look-alike bundle (animals.decoding: part_affinity)")
    n, s, k = len(poses), len(animals.names), len(animals.bodyparts)
    slots = np.asarray(poses).reshape(n, s, k, 3)
    ids = np.asarray(track_ids).reshape(n, s)
    tracks = sorted({int(t) for t in ids.ravel() if t >= 0}) or [0]
    column = {t: i for i, t in enumerate(tracks)}
    out = np.full((n, len(tracks), k, 3), np.nan, dtype=slots.dtype)
    out[..., 2] = 0.0
    frames, slot = np.nonzero(ids >= 0)
    out[frames, [column[int(t)] for t in ids[frames, slot]]] = slots[frames, slot]
    names = [f"{TRACK_PREFIX}{t}" for t in tracks]
    edges = bodypart_edges(meta.skeleton)
    track_animals = AnimalsSpec(
        decoding="part_affinity", names=names, bodyparts=animals.bodyparts, edges=animals.edges
    )
    track_meta = meta.model_copy(
        update={
            "animals": track_animals,
            "keypoints": track_animals.keypoint_names(),
            "skeleton": [(f"{t}/{a}", f"{t}/{b}") for t in names for a, b in edges],
        }
    )
    return out.reshape(n, len(tracks) * k, 3), Bundle(bundle.root, track_meta)


def analysis_tables(
    poses: np.ndarray, track_ids: np.ndarray | None, bundle: Bundle
) -> tuple[np.ndarray, Bundle]:
    """What an analysis writes to its files: the poses as they are, or, for look-alikes (the
    tracking stage gave ``track_ids``), one individual per track (:func:`per_track`)."""
    return (poses, bundle) if track_ids is None else per_track(poses, track_ids, bundle)
