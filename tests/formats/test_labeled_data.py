"""DeepLabCut labeled-data machine labels and SLEAP suggestions, read back by pandas and
sleap-io as DeepLabCut and SLEAP read them."""

from __future__ import annotations

import cv2
import numpy as np
import pandas as pd
import pytest

from realtime_pose.formats.labeled_data import (
    frame_image_name,
    machine_labels_path,
    read_machine_labels,
    write_machine_labels,
    write_sleap_suggestions,
)

KP = ["snout", "leftear", "rightear"]


def poses(frames: int, rows: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    out = rng.uniform(0, 300, (frames, rows, 3)).astype(np.float32)
    out[..., 2] = rng.uniform(0, 1, (frames, rows))
    return out


def test_frame_image_names_pad_to_five_digits_and_grow_beyond():
    assert frame_image_name(0) == "img00000.png"
    assert frame_image_name(42) == "img00042.png"
    assert frame_image_name(123456) == "img123456.png"
    with pytest.raises(ValueError, match="non-negative"):
        frame_image_name(-1)


def test_machine_labels_have_deeplabcuts_exact_layout(tmp_path):
    p = poses(3, 3)
    h5 = write_machine_labels(tmp_path, "mouse1", [7, 120, 99999], p, KP, "DLC_resnet50_x")
    assert h5 == tmp_path / "labeled-data" / "mouse1" / "machinelabels-iter0.h5"
    df = pd.read_hdf(h5, key="df_with_missing")
    # rows: the tuples extract_outlier_frames builds, unnamed levels
    assert isinstance(df.index, pd.MultiIndex) and df.index.nlevels == 3
    assert list(df.index) == [
        ("labeled-data", "mouse1", "img00007.png"),
        ("labeled-data", "mouse1", "img00120.png"),
        ("labeled-data", "mouse1", "img99999.png"),
    ]
    assert list(df.index.names) == [None, None, None]
    assert list(df.columns.names) == ["scorer", "bodyparts", "coords"]
    assert list(df.columns[:4]) == [
        ("DLC_resnet50_x", "snout", "x"),
        ("DLC_resnet50_x", "snout", "y"),
        ("DLC_resnet50_x", "snout", "likelihood"),
        ("DLC_resnet50_x", "leftear", "x"),
    ]
    assert (df.dtypes == np.float64).all()
    np.testing.assert_allclose(df.to_numpy().reshape(3, 3, 3), p, rtol=1e-6)
    # DeepLabCut writes machinelabels.csv beside the .h5 (the same table)
    csv = pd.read_csv(h5.with_name("machinelabels.csv"), header=[0, 1, 2], index_col=[0, 1, 2])
    assert list(csv.index) == list(df.index)
    np.testing.assert_allclose(csv.to_numpy(), df.to_numpy())


def test_machine_labels_round_trip_and_rewrite_in_place(tmp_path):
    p = poses(2, 3)
    write_machine_labels(tmp_path, "s", [3, 5], p, KP, "m", iteration=2)
    p3 = poses(3, 3, seed=1)
    h5 = write_machine_labels(tmp_path, "s", [3, 5, 8], p3, KP, "m", iteration=2)
    assert h5.name == "machinelabels-iter2.h5"
    assert h5 == machine_labels_path(tmp_path, "s", 2)
    images, keypoints, back = read_machine_labels(h5)
    assert images == ["img00003.png", "img00005.png", "img00008.png"]
    assert keypoints == KP
    np.testing.assert_allclose(back, p3, rtol=1e-6)
    # no temporary files left behind
    assert sorted(f.name for f in h5.parent.iterdir()) == [
        "machinelabels-iter2.h5",
        "machinelabels.csv",
    ]


def test_several_animals_use_the_individuals_level(tmp_path):
    p = poses(2, 6)
    full = [f"{a}/{b}" for a in ("female", "male") for b in KP]
    h5 = write_machine_labels(tmp_path, "pair", [0, 1], p, full, "m")
    df = pd.read_hdf(h5, key="df_with_missing")
    assert list(df.columns.names) == ["scorer", "individuals", "bodyparts", "coords"]
    assert list(dict.fromkeys(df.columns.get_level_values("individuals"))) == ["female", "male"]
    assert df.columns[3] == ("m", "female", "leftear", "x")
    assert df.columns[9] == ("m", "male", "snout", "x")
    _, keypoints, back = read_machine_labels(h5)
    assert keypoints == full
    np.testing.assert_allclose(back, p, rtol=1e-6)
    # bodyparts plus the animals' names make the same table
    h5b = write_machine_labels(tmp_path, "pair2", [0, 1], p, KP, "m", animals=["female", "male"])
    df_b = pd.read_hdf(h5b, key="df_with_missing")
    assert list(df_b.columns) == list(df.columns)


def test_read_machine_labels_accepts_older_path_rows_and_human_labels(tmp_path):
    columns = pd.MultiIndex.from_product(
        [["me"], ["snout", "tail"], ["x", "y"]], names=["scorer", "bodyparts", "coords"]
    )
    df = pd.DataFrame(
        [[1.0, 2.0, 3.0, 4.0]], index=["labeled-data\\v1\\img0042.png"], columns=columns
    )
    path = tmp_path / "CollectedData_me.h5"
    df.to_hdf(path, key="df_with_missing", mode="w")
    images, keypoints, back = read_machine_labels(path)
    assert images == ["img0042.png"]
    assert keypoints == ["snout", "tail"]
    np.testing.assert_array_equal(back[0, :, :2], [[1, 2], [3, 4]])
    assert np.isnan(back[..., 2]).all()


@pytest.mark.parametrize(
    ("keypoints", "animals", "rows", "message"),
    [
        (KP, None, 4, "4 rows"),
        (KP, ["a", "b"], 4, "bodyparts of one of the animals"),
    ],
)
def test_keypoints_that_do_not_fit_the_poses_are_refused(
    tmp_path, keypoints, animals, rows, message
):
    with pytest.raises(ValueError, match=message):
        write_machine_labels(tmp_path, "x", [0], poses(1, rows), keypoints, "m", animals=animals)
    with pytest.raises(ValueError, match="frame indices"):
        write_machine_labels(tmp_path, "x", [0, 1], poses(1, 3), KP, "m")


def write_images(folder, count: int) -> list:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(3)
    paths = []
    for i in range(count):
        path = folder / frame_image_name(10 * i)
        cv2.imwrite(str(path), rng.integers(0, 255, (24, 32, 3), dtype=np.uint8))
        paths.append(path)
    return paths


def test_sleap_reads_the_suggestions_with_the_same_points(tmp_path):
    sio = pytest.importorskip("sleap_io")
    images = write_images(tmp_path / "labeled-data" / "s", 3)
    p = poses(3, 3)
    p[1, 2, :2] = np.nan  # a point the model did not place
    path = write_sleap_suggestions(
        images[0].parent / "suggestions.slp",
        images,
        p,
        KP,
        [("snout", "leftear"), ("leftear", "nose?")],
        scores=[0.1, 0.2, 0.3],
    )
    labels = sio.load_slp(str(path))
    assert len(labels.videos) == 1
    video = labels.videos[0]
    assert [str(f) for f in video.filename] == [str(i.resolve()) for i in images]
    assert [(s.video is video, s.frame_idx) for s in labels.suggestions] == [
        (True, 0),
        (True, 1),
        (True, 2),
    ]
    assert labels.skeletons[0].node_names == KP
    assert [(e.source.name, e.destination.name) for e in labels.skeletons[0].edges] == [
        ("snout", "leftear")
    ]
    frames = sorted(labels.labeled_frames, key=lambda f: f.frame_idx)
    assert [f.frame_idx for f in frames] == [0, 1, 2]
    for f, frame in enumerate(frames):
        (instance,) = frame.instances
        assert isinstance(instance, sio.PredictedInstance)
        got = instance.numpy(scores=True)
        np.testing.assert_allclose(got[:, :2], p[f, :, :2], rtol=1e-6)
        np.testing.assert_allclose(got[:, 2], p[f, :, 2], rtol=1e-6)
        assert instance.score == pytest.approx([0.1, 0.2, 0.3][f])
    # the video is the images themselves, in colour
    np.testing.assert_array_equal(video[2], cv2.imread(str(images[2]))[..., ::-1])


def test_sleap_suggestions_of_several_animals_have_one_track_each(tmp_path):
    sio = pytest.importorskip("sleap_io")
    images = write_images(tmp_path / "imgs", 2)
    p = poses(2, 6)
    p[1, 3:, :2] = np.nan  # the male is not there in the second frame
    full = [f"{a}/{b}" for a in ("female", "male") for b in KP]
    path = write_sleap_suggestions(tmp_path / "s.slp", images, p, full, [("female/snout", "ear")])
    labels = sio.load_slp(str(path))
    assert [t.name for t in labels.tracks] == ["female", "male"]
    first, second = sorted(labels.labeled_frames, key=lambda f: f.frame_idx)
    assert [i.track.name for i in first.instances] == ["female", "male"]
    assert [i.track.name for i in second.instances] == ["female"]
    np.testing.assert_allclose(first.instances[1].numpy(), p[0, 3:, :2], rtol=1e-6)
    assert first.instances[1].score == pytest.approx(p[0, 3:, 2].mean(), rel=1e-6)
    assert labels.skeletons[0].node_names == KP


def test_sleap_suggestions_need_one_pose_per_image(tmp_path):
    pytest.importorskip("sleap_io")
    images = write_images(tmp_path, 2)
    with pytest.raises(ValueError, match="one pose per image"):
        write_sleap_suggestions(tmp_path / "s.slp", images, poses(3, 3), KP)
