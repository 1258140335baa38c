"""The tracking stage a bundle needs, and a whole video through it.

:func:`tracking_for` chooses by the bundle's animals: identity channels keep each animal under
its name (:class:`~realtime_pose.inference.tracking.IdentityChannelTracking`), animals that look
alike keep one slot per followed animal
(:class:`~realtime_pose.inference.unmarked_tracking.LookAlikeTracking`), one animal needs none.
The live loop, the offline analysis and the chunked analysis all take their stage from here.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from realtime_pose.inference.tracking import IdentityChannelTracking

IDENTITY_OPTIONS = (
    "max_distance_px",
    "identity_weight_px",
    "identity_memory_frames",
    "max_missed_s",
)
"""The ``tracking:`` options that apply to identity-channel bundles."""
LOOKALIKE_OPTIONS = (
    "max_distance_px",
    "max_missed_s",
    "min_hits",
    "motion",
    "size_weight_px",
    "max_animals",
)
"""The ``tracking:`` options that apply to look-alike (part-affinity) bundles."""


def tracking_for(bundle_meta: Any, **options: Any) -> Any:
    """The tracking stage for a bundle: identity channels keep each animal under its name
    (:class:`IdentityChannelTracking`), animals that look alike keep a slot per followed animal
    (:class:`~realtime_pose.inference.unmarked_tracking.LookAlikeTracking`); ``None`` for one
    animal. ``options`` (the run config's ``tracking:``) that do not apply to the bundle's
    kind are left out; ``None`` values mean the stage's default. Both stages have
    ``update(pose, t_ns) -> pose`` and ``track_ids`` (``None`` for identity channels)."""
    animals = getattr(bundle_meta, "animals", None)
    if animals is None:
        return None
    if animals.grouped:
        from realtime_pose.inference.unmarked_tracking import unmarked_tracking_for

        chosen = {k: v for k, v in options.items() if k in LOOKALIKE_OPTIONS and v is not None}
        return unmarked_tracking_for(bundle_meta, **chosen)
    chosen = {k: v for k, v in options.items() if k in IDENTITY_OPTIONS and v is not None}
    return IdentityChannelTracking(animals.names, len(animals.bodyparts), **chosen)


def video_time_ns(index: int, fps: float) -> int:
    """The time of video frame ``index`` at ``fps`` frames a second (30 where it is unknown),
    what offline analysis gives the tracking stage for capture time."""
    return int(round(index * 1e9 / (fps if fps and fps > 0 else 30.0)))


def track_sequence(
    poses: np.ndarray, bundle_meta: Any, fps: float
) -> tuple[np.ndarray, np.ndarray | None]:
    """A whole video's poses ``[N, A·K, 3]`` through the tracking stage, frame ``i`` at
    ``i / fps`` s, and for animals that look alike each slot's track id ``[N, A]`` (else
    ``None``); unchanged for a single-animal bundle. The stage is causal, so this gives what
    tracking frame by frame gives (the sequential and the chunked analyses agree)."""
    stage = tracking_for(bundle_meta)
    if stage is None:
        return poses, None
    out = np.empty_like(poses)
    ids = None
    for i, pose in enumerate(poses):
        out[i] = stage.update(pose, video_time_ns(i, fps))
        if stage.track_ids is not None:
            if ids is None:
                ids = np.full((len(poses), len(stage.track_ids)), -1, np.int64)
            ids[i] = stage.track_ids
    return out, ids
