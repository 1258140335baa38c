"""Tracked slots to one individual per track (what analysis files of look-alikes hold)."""

from pathlib import Path

import numpy as np
import pytest

from realtime_pose.bundle import AnimalsSpec, Bundle, BundleMeta
from realtime_pose.offline.tracks import per_track

ANIMALS = AnimalsSpec(
    decoding="part_affinity",
    names=["animal0", "animal1"],
    bodyparts=["head", "tail"],
    edges=[(0, 1)],
)


def bundle() -> Bundle:
    meta = BundleMeta(
        schema_version=1,
        keypoints=ANIMALS.keypoint_names(),
        skeleton=[("animal0/head", "animal0/tail"), ("animal1/head", "animal1/tail")],
        stride=8,
        outputs={"scoremap": {"name": "s"}, "locref": {"name": "l"}, "paf": {"name": "p"}},
        animals=ANIMALS,
    )
    return Bundle(root=Path("."), meta=meta)


def test_each_track_gets_its_own_rows_whatever_slot_it_held():
    # frame 0: track 4 in slot 0, track 7 in slot 1; frame 1: track 7 alone (slot 1);
    # frame 2: track 9 takes the freed slot 0
    ids = np.array([[4, 7], [-1, 7], [9, 7]])
    poses = np.arange(3 * 2 * 2 * 3, dtype=float).reshape(3, 4, 3)
    out, tracks = per_track(poses, ids, bundle())
    assert tracks.meta.animals.names == ["track4", "track7", "track9"]
    assert tracks.keypoints[:2] == ["track4/head", "track4/tail"]
    assert ("track9/head", "track9/tail") in tracks.meta.skeleton
    by_track = out.reshape(3, 3, 2, 3)
    slots = poses.reshape(3, 2, 2, 3)
    np.testing.assert_array_equal(by_track[0, 0], slots[0, 0])  # track 4 in frame 0
    np.testing.assert_array_equal(by_track[2, 1], slots[2, 1])  # track 7 in frame 2
    np.testing.assert_array_equal(by_track[2, 2], slots[2, 0])  # track 9 in slot 0
    assert np.isnan(by_track[1, 0, :, :2]).all() and (by_track[1, 0, :, 2] == 0).all()
    assert np.isnan(by_track[0, 2, :, :2]).all()  # track 9 not yet born


def test_a_video_without_any_track_still_has_one_empty_individual():
    out, tracks = per_track(np.zeros((2, 4, 3)), np.full((2, 2), -1), bundle())
    assert tracks.meta.animals.names == ["track0"] and np.isnan(out[..., :2]).all()


def test_only_look_alike_bundles_have_tracks():
    named = bundle().meta.model_copy(update={"animals": None})
    with pytest.raises(ValueError, match="look-alike bundle"):
        per_track(np.zeros((1, 4, 3)), np.zeros((1, 2), int), Bundle(bundle().root, named))
