"""Checks every NWB file we write must pass: pynwb's schema validation, no NWB Inspector
message at CRITICAL or above, and movement loads the poses (returned for comparison)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

SUBJECT_FACTS = {"check_subject_age"}
"""The one CRITICAL inspector check left: the animal's age, which a video or a pose log does not
tell (DANDI asks for it; a lab adds it, with the species, when it assembles the session)."""


def assert_valid_nwb(path: Path) -> None:
    """pynwb.validate finds nothing; nwbinspector finds nothing CRITICAL or worse except the
    animal's age (:data:`SUBJECT_FACTS`)."""
    import pynwb
    from nwbinspector import Importance, inspect_nwbfile

    assert pynwb.validate(path=str(path)) == []
    serious = [
        m
        for m in inspect_nwbfile(nwbfile_path=str(path))
        if m.importance.value >= Importance.CRITICAL.value
        and m.check_function_name not in SUBJECT_FACTS
    ]
    assert serious == [], [f"{m.check_function_name}: {m.message}" for m in serious]


def movement_poses(path: Path, keypoints: list[str], pose_estimation: str = "PoseEstimation"):
    """``[N, K, 3]`` (x, y, confidence) of the first individual as movement reads ``path``
    (DeepLabCut .h5/.csv or NWB), keypoints in ``keypoints`` order."""
    from movement.io import load_poses

    if path.suffix == ".nwb":
        ds = load_poses.from_nwb_file(path, pose_estimation_key=pose_estimation)
    else:
        ds = load_poses.from_dlc_file(path)
    ds = ds.isel(individuals=0).sel(keypoints=keypoints)
    xy = ds.position.transpose("time", "keypoints", "space").values
    return np.concatenate([xy, ds.confidence.transpose("time", "keypoints").values[..., None]], -1)
