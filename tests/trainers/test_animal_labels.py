"""Multi-animal labels: SLEAP .slp (sleap-io) and DeepLabCut multi-animal tables, one model."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from realtime_pose.trainers.animal_labels import (
    LabelsError,
    load_animal_labels,
    split_identity_name,
)

FLIES = (
    Path(__file__).resolve().parents[3] / "shared" / "datasets" / "sleap-flies-clip" / "clip.slp"
)


def write_madlc(folder: Path, suffix: str, single: bool = False) -> tuple[Path, np.ndarray]:
    """A DeepLabCut multi-animal CollectedData table: 3 frames, 2 mice, 2 bodyparts."""
    rng = np.random.default_rng(0)
    individuals = ["mouse1", "mouse2"] + (["single"] if single else [])
    columns = pd.MultiIndex.from_tuples(
        [("me", ind, bp, c) for ind in individuals for bp in ("nose", "tail") for c in ("x", "y")],
        names=["scorer", "individuals", "bodyparts", "coords"],
    )
    values = rng.uniform(0, 640, (3, len(columns)))
    values[1, 4:6] = np.nan  # mouse2's nose not labelled in frame 1
    index = pd.MultiIndex.from_tuples(
        [("labeled-data", "vid", f"img{i:03d}.png") for i in range(3)]
    )
    df = pd.DataFrame(values, index=index, columns=columns)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"CollectedData_me{suffix}"
    if suffix == ".h5":
        df.to_hdf(path, key="df_with_missing")
    else:
        df.to_csv(path)
    return path, values[:, :8].reshape(3, 2, 2, 2)


@pytest.mark.skipif(not FLIES.is_file(), reason=f"dataset absent: {FLIES}")
def test_the_flies_slp_reads_into_frames_animals_keypoints_with_identities():
    labels = load_animal_labels(FLIES)
    assert labels.animals == ("female", "male") and labels.identities_known
    assert labels.keypoints.shape == (1200, 2, 13, 2)
    assert labels.bodyparts[:3] == ("head", "thorax", "abdomen")
    assert ("thorax", "head") in labels.skeleton and len(labels.skeleton) == 12
    assert labels.video.name == "clip.mp4" and labels.video.is_file()
    assert labels.frame_indices[0] == 0 and labels.frame_indices[-1] == 1199
    # frame 0: the male's head as SLEAP's own API reads it
    assert labels.keypoints[0, 1, 0].tolist() == [335.25, 444.75]
    assert 0.005 < np.isnan(labels.keypoints).mean() < 0.03  # README: ~1.6 % missing
    train, held = labels.frames_between(0, 959), labels.frames_between(960, 1199)
    assert (train.num_frames, held.num_frames) == (960, 240)
    names, flat = labels.identity_keypoints()
    assert names[0] == "female/head" and names[13] == "male/head" and flat.shape == (1200, 26, 2)
    np.testing.assert_array_equal(flat[:, 13:], labels.keypoints[:, 1])


@pytest.mark.parametrize("suffix", [".h5", ".csv"])
def test_a_multi_animal_deeplabcut_table_reads_into_the_same_model(tmp_path, suffix):
    path, expected = write_madlc(tmp_path / "proj" / "labeled-data" / "vid", suffix)
    labels = load_animal_labels(path)
    assert labels.animals == ("mouse1", "mouse2") and labels.bodyparts == ("nose", "tail")
    assert not labels.identities_known  # no config.yaml saying 'identity: true'
    np.testing.assert_allclose(labels.keypoints, expected)
    assert np.isnan(labels.keypoints[1, 1, 0]).all()
    assert labels.images[2].name == "img002.png" and labels.video is None


def test_deeplabcut_unique_bodyparts_are_left_out_with_a_warning(tmp_path, caplog):
    path, expected = write_madlc(tmp_path / "labeled-data" / "vid", ".h5", single=True)
    labels = load_animal_labels(path)
    assert labels.animals == ("mouse1", "mouse2")
    np.testing.assert_allclose(labels.keypoints, expected)
    assert "'single'" in caplog.text


def test_single_animal_tables_and_unknown_files_are_refused_naming_the_file(tmp_path):
    single = tmp_path / "CollectedData_me.h5"
    columns = pd.MultiIndex.from_tuples(
        [("me", "nose", "x"), ("me", "nose", "y")], names=["scorer", "bodyparts", "coords"]
    )
    pd.DataFrame([[1.0, 2.0]], columns=columns).to_hdf(single, key="df_with_missing")
    with pytest.raises(LabelsError, match=r"CollectedData_me\.h5: no 'individuals'"):
        load_animal_labels(single)
    other = tmp_path / "labels.json"
    other.write_text("{}")
    with pytest.raises(LabelsError, match=r"labels\.json: unknown labels format"):
        load_animal_labels(other)
    broken = tmp_path / "broken.slp"
    broken.write_bytes(b"not hdf5")
    with pytest.raises(LabelsError, match=r"broken\.slp: cannot be read as SLEAP labels"):
        load_animal_labels(broken)
    with pytest.raises(LabelsError, match="no such labels file"):
        load_animal_labels(tmp_path / "missing.slp")


def test_identity_names_split_and_refuse_plain_bodyparts():
    assert split_identity_name("female/head") == ("female", "head")
    with pytest.raises(ValueError, match="not an animal/bodypart"):
        split_identity_name("head")


def test_sided_pairs_cover_both_naming_habits():
    from realtime_pose.trainers.identity_project import sided_pairs

    parts = ["head", "wingL", "wingR", "forelegL4", "forelegR4", "leftear", "rightear", "Lonely"]
    assert sorted(sided_pairs(parts)) == sorted(
        [("wingL", "wingR"), ("forelegL4", "forelegR4"), ("leftear", "rightear")]
    )


def test_a_synthetic_two_animal_clip_becomes_an_identity_project_with_a_time_split(tmp_path):
    from realtime_pose.trainers.identity_project import write_identity_project, write_time_split
    from realtime_pose.trainers.project import load_project
    from realtime_pose.trainers.synthetic_project import write_two_animal_clip

    labels = load_animal_labels(write_two_animal_clip(tmp_path / "clip", 12, 96, 64))
    project = load_project(write_identity_project(labels, tmp_path / "project"))
    assert project.animals == {
        "names": ["dark", "light"],
        "bodyparts": list(labels.bodyparts),
        "decoding": "identity_channels",
    }
    assert project.bodyparts[4] == "light/snout" and project.keypoints.shape == (12, 8, 2)
    np.testing.assert_allclose(project.keypoints, labels.keypoints.reshape(12, 8, 2))
    assert project.load_image(0).shape == (64, 96, 3)
    split = write_time_split(tmp_path / "split.json", labels.frame_indices, (0, 7), (8, 11))
    chosen = json.loads(split.read_text())
    assert len(chosen["train"]) == 8 and chosen["test"][0].endswith("img000008.png")
    with pytest.raises(LabelsError, match="no labelled frames in the training range"):
        write_time_split(tmp_path / "none.json", labels.frame_indices, (50, 60), (61, 70))


def test_labels_without_identities_are_refused_for_identity_channels(tmp_path):
    import sleap_io as sio

    from realtime_pose.trainers.identity_project import write_identity_project

    skeleton = sio.Skeleton(nodes=["a", "b"])
    video = sio.Video(filename=str(tmp_path / "v.avi"))
    frame = sio.LabeledFrame(
        video=video,
        frame_idx=0,
        instances=[sio.Instance.from_numpy(np.ones((2, 2)) * i, skeleton) for i in (1, 2)],
    )
    slp = tmp_path / "untracked.slp"
    sio.save_slp(sio.Labels(labeled_frames=[frame], videos=[video], skeletons=[skeleton]), str(slp))
    labels = load_animal_labels(slp)
    assert labels.animals == ("animal0", "animal1") and not labels.identities_known
    with pytest.raises(LabelsError, match="carry no identities"):
        write_identity_project(labels, tmp_path / "project")


def test_train_refuses_frame_ranges_it_cannot_use(tmp_path, capsys):
    from realtime_pose.cli import main

    args = ["train", str(tmp_path), "-o", str(tmp_path / "out"), "--steps", "1"]
    assert main([*args, "--train-frames", "0-9"]) == 2
    assert "split labels on a video" in capsys.readouterr().err
    assert main([*args, "--train-frames", "9-3"]) == 2
    assert "--train-frames: expected FIRST-LAST with 0 <= FIRST <= LAST" in capsys.readouterr().err
