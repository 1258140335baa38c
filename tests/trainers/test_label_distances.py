"""Body-part distance ranges over the training labels (bundle ``label_distances``)."""

import numpy as np

from realtime_pose.bundle import LabelDistances
from realtime_pose.trainers.label_distances import label_distances


def test_skeleton_pairs_take_the_smallest_and_largest_labelled_distance():
    keypoints = np.array(
        [
            [[0, 0], [3, 4], [np.nan, np.nan]],
            [[0, 0], [6, 8], [1, 0]],
            [[1, 1], [1, 2], [1, 5]],
        ],
        dtype=float,
    )
    got = label_distances(keypoints, ["snout", "ear", "tail"], [("snout", "ear"), ("ear", "tail")])
    assert got["pairs"] == [["snout", "ear"], ["ear", "tail"]]
    assert got["min_px"] == [1.0, 3.0]
    assert got["max_px"] == [10.0, 9.434]  # ear (6, 8) to tail (1, 0)
    assert got["labelled_frames"] == 3
    LabelDistances.model_validate(got)  # what the bundle accepts


def test_without_a_skeleton_every_pair_seen_together_is_measured():
    keypoints = np.array([[[0, 0], [0, 2], [np.nan, np.nan]]], dtype=float)
    got = label_distances(keypoints, ["a", "b", "c"])
    assert got["pairs"] == [["a", "b"]]  # a-c and b-c were never seen together
    assert got["min_px"] == got["max_px"] == [2.0]
    assert label_distances(keypoints[:, 2:], ["c"]) is None


def test_several_animals_are_measured_alike_with_bodypart_names():
    keypoints = np.array([[[0, 0], [0, 1], [5, 5], [5, 8]]], dtype=float)
    animals = {"names": ["female", "male"], "bodyparts": ["head", "tail"]}
    got = label_distances(
        keypoints,
        ["female/head", "female/tail", "male/head", "male/tail"],
        [("female/head", "female/tail"), ("male/head", "male/tail")],
        animals,
    )
    assert got["pairs"] == [["head", "tail"]]
    assert got["min_px"] == [1.0] and got["max_px"] == [3.0]
