"""Several animals that look alike: multi-animal DeepLabCut slots without identity, DeepLabCut
project folders, the look-alike (part-affinity) project, and the choice `realtime-pose train`
makes and logs."""

from __future__ import annotations

import logging
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest
import yaml

from realtime_pose.trainers.animal_labels import (
    LabelsError,
    canonical_slots,
    load_animal_labels,
)
from realtime_pose.trainers.identity_project import (
    choose_decoding,
    write_animal_project,
)
from realtime_pose.trainers.project import ProjectError, load_project

BODYPARTS = ("snout", "leftear", "rightear", "tailbase")
SCORER = "me"
CLI_LOG = "realtime_pose.cli.train"


def poses(rng: np.random.Generator, counts: list[int], slots: int, w: int, h: int) -> np.ndarray:
    """``[F, slots, K, 2]`` random poses, ``counts[f]`` animals present in frame ``f`` (in random
    slots: the others entirely empty), one keypoint of each present animal unlabelled."""
    out = np.full((len(counts), slots, len(BODYPARTS), 2), np.nan)
    for f, n in enumerate(counts):
        for a in rng.choice(slots, size=n, replace=False):
            out[f, a] = rng.uniform((2, 2), (w - 2, h - 2), (len(BODYPARTS), 2))
            out[f, a, rng.integers(len(BODYPARTS))] = np.nan
    return out


def write_table(
    folder: Path,
    images: list[str],
    points: np.ndarray,
    individuals: list[str],
    *,
    suffix: str = ".h5",
    multiindex: bool = True,
    single: bool = False,
    key: str = "df_with_missing",
) -> Path:
    """A multi-animal DeepLabCut ``CollectedData_me`` table of ``points`` ``[F, A, K, 2]`` for
    the images ``labeled-data/<folder>/<name>``; ``single`` adds DeepLabCut's unique bodypart."""
    columns = [(SCORER, i, b, c) for i in individuals for b in BODYPARTS for c in ("x", "y")]
    values = points.reshape(len(images), -1)
    if single:
        columns += [(SCORER, "single", "arena_corner", c) for c in ("x", "y")]
        values = np.hstack([values, np.full((len(images), 2), 5.0)])
    rows = [f"labeled-data/{folder.name}/{name}" for name in images]
    index = pd.MultiIndex.from_tuples([tuple(r.split("/")) for r in rows]) if multiindex else rows
    df = pd.DataFrame(
        values,
        index=index,
        columns=pd.MultiIndex.from_tuples(
            columns, names=["scorer", "individuals", "bodyparts", "coords"]
        ),
    )
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"CollectedData_{SCORER}{suffix}"
    if suffix == ".h5":
        df.to_hdf(path, key=key, mode="w")
    else:
        df.to_csv(path)
    return path


def write_config(root: Path, individuals: list[str], identity: bool | None = None) -> None:
    """A multi-animal DeepLabCut ``config.yaml`` (``identity`` left out where ``None``)."""
    config = {
        "Task": "mice",
        "scorer": SCORER,
        "multianimalproject": True,
        **({} if identity is None else {"identity": identity}),
        "individuals": individuals,
        "uniquebodyparts": ["arena_corner"],
        "multianimalbodyparts": list(BODYPARTS),
        "bodyparts": "MULTI!",
        "skeleton": [["snout", "leftear"], ["snout", "rightear"], ["arena_corner", "snout"]],
    }
    root.mkdir(parents=True, exist_ok=True)
    (root / "config.yaml").write_text(yaml.safe_dump(config))


def write_images(folder: Path, names: list[str], width: int, height: int) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for i, name in enumerate(names):
        image = np.full((height, width, 3), 40 * i % 255, np.uint8)
        cv2.imwrite(str(folder / name), image)


INDIVIDUALS = ["mouse_a", "xyz7", "m3"]
VIDEOS = {  # video: (width, height, animals per frame, table format)
    "arena1": (64, 48, [1, 2, 3], dict(suffix=".h5", multiindex=True)),
    "arena2": (80, 40, [3, 1], dict(suffix=".csv", multiindex=False)),
}


def write_project(
    root: Path, identity: bool | None = None, swap: tuple[int, int] | None = None
) -> dict[str, np.ndarray]:
    """A multi-animal DeepLabCut project of :data:`VIDEOS` with single-animal-free slots; with
    ``swap`` the data of two individuals trade names. Returns each video's ``[F, A, K, 2]``."""
    write_config(root, INDIVIDUALS, identity)
    rng = np.random.default_rng(3)
    written = {}
    for video, (width, height, counts, form) in VIDEOS.items():
        names = [f"img{i:03d}.png" for i in range(len(counts))]
        folder = root / "labeled-data" / video
        write_images(folder, names, width, height)
        points = poses(rng, counts, len(INDIVIDUALS), width, height)
        stored = points.copy()
        if swap is not None:
            stored[:, list(swap)] = points[:, list(swap[::-1])]
        write_table(folder, names, stored, INDIVIDUALS, single=True, **form)
        written[video] = points
    return written


@pytest.mark.parametrize(
    ("suffix", "multiindex"), [(".h5", True), (".h5", False), (".csv", True), (".csv", False)]
)
@pytest.mark.parametrize("identity", [None, False, True])
def test_deeplabcut_individuals_are_identities_only_where_the_project_says_so(
    tmp_path, suffix, multiindex, identity
):
    root = tmp_path / "proj"
    write_config(root, ["mouse_a", "xyz7"], identity)
    points = poses(np.random.default_rng(0), [2, 0, 1], 2, 640, 480)
    names = ["a.png", "b.png", "c.png"]
    path = write_table(
        root / "labeled-data" / "v1", names, points, ["mouse_a", "xyz7"], suffix=suffix,
        multiindex=multiindex,
    )  # fmt: skip
    labels = load_animal_labels(path)
    assert labels.identities_known is (identity is True)
    assert labels.animals == ("mouse_a", "xyz7") and labels.bodyparts == BODYPARTS
    np.testing.assert_allclose(labels.keypoints, points)
    assert np.isnan(labels.keypoints[1]).all()  # a frame with no animal stays, empty
    assert labels.images == tuple(root / "labeled-data" / "v1" / n for n in names)
    assert set(labels.skeleton) == {("snout", "leftear"), ("snout", "rightear")}


def test_a_table_without_a_project_around_it_has_no_identities(tmp_path):
    points = poses(np.random.default_rng(1), [2], 2, 100, 100)
    path = write_table(tmp_path / "loose", ["a.png"], points, ["mouse_a", "xyz7"])
    assert not load_animal_labels(path).identities_known


def test_an_h5_table_under_another_key_is_read_when_it_is_the_only_one(tmp_path):
    points = poses(np.random.default_rng(1), [2, 1], 2, 100, 100)
    path = write_table(tmp_path / "v", ["a.png", "b.png"], points, ["p", "q"], key="keypoints")
    np.testing.assert_allclose(load_animal_labels(path).keypoints, points)
    pd.DataFrame({"x": [1.0]}).to_hdf(path, key="other", mode="a")
    with pytest.raises(LabelsError, match=r"CollectedData_me\.h5: holds the tables"):
        load_animal_labels(path)


def test_twenty_animals_per_frame_with_some_entirely_empty(tmp_path):
    individuals = [f"individual{i}" for i in range(1, 21)]
    points = poses(np.random.default_rng(2), [20, 7, 13], 20, 1920, 1080)
    path = write_table(tmp_path / "p" / "labeled-data" / "v", ["a", "b", "c"], points, individuals)
    labels = load_animal_labels(path)
    assert labels.keypoints.shape == (3, 20, 4, 2)
    present = np.isfinite(labels.keypoints).all(-1).any(-1).sum(1)
    assert present.tolist() == [20, 7, 13]
    slots = labels.as_lookalikes()
    assert slots.animals[-1] == "animal19" and not slots.identities_known


def test_a_multi_animal_deeplabcut_project_folder_reads_all_videos_into_one_model(tmp_path, caplog):
    root = tmp_path / "mice-me-2024-01-01"
    written = write_project(root)
    (root / "labeled-data" / "arena1_labeled").mkdir()  # check_labels output: not labels
    with caplog.at_level(logging.WARNING):
        labels = load_animal_labels(root)
    assert labels.source == root and not labels.identities_known
    assert labels.animals == tuple(INDIVIDUALS) and labels.bodyparts == BODYPARTS
    np.testing.assert_allclose(
        labels.keypoints, np.concatenate([written["arena1"], written["arena2"]])
    )
    present = np.isfinite(labels.keypoints).all(-1).any(-1).sum(1)
    assert present.tolist() == [1, 2, 3, 3, 1]
    assert [p.relative_to(root).as_posix() for p in labels.images] == [
        "labeled-data/arena1/img000.png", "labeled-data/arena1/img001.png",
        "labeled-data/arena1/img002.png", "labeled-data/arena2/img000.png",
        "labeled-data/arena2/img001.png",
    ]  # fmt: skip
    assert all(p.is_file() for p in labels.images)
    unique = [r for r in caplog.records if "'single'" in r.getMessage()]
    assert len(unique) == 1 and unique[0].levelno == logging.WARNING  # one for both videos
    assert load_animal_labels(root / "config.yaml").num_frames == 5


def test_a_single_animal_folder_is_not_read_as_a_multi_animal_project(tmp_path):
    from realtime_pose.trainers.animal_labels import is_multianimal_project
    from realtime_pose.trainers.synthetic_project import write_synthetic_project

    project = write_synthetic_project(tmp_path / "single", 2, 64, 48)
    assert not is_multianimal_project(project) and not is_multianimal_project(tmp_path / "none")
    with pytest.raises(LabelsError, match="multianimalproject is not true"):
        load_animal_labels(project)


def test_canonical_slots_order_animals_by_their_centroid_not_their_names():
    nan = np.nan
    kp = np.array(
        [
            [  # frame 0: the right-hand animal listed first, the third slot empty
                [[50.0, 1.0], [70.0, 1.0]],
                [[10.0, 9.0], [nan, nan]],
                [[nan, nan], [nan, nan]],
            ],
            [  # frame 1: same centroid x; y decides
                [[nan, nan], [nan, nan]],
                [[0.0, 8.0], [2.0, 8.0]],
                [[1.0, 3.0], [nan, 4.0]],  # half a keypoint is not a keypoint
            ],
        ]
    )
    out = canonical_slots(kp)
    assert out.shape == (2, 2, 2, 2)
    np.testing.assert_array_equal(out[0, 0], kp[0, 1])
    np.testing.assert_array_equal(out[0, 1], kp[0, 0])
    np.testing.assert_array_equal(out[1, 0], kp[1, 2])
    np.testing.assert_array_equal(out[1, 1], kp[1, 1])
    for perm in ([1, 2, 0], [2, 0, 1]):
        np.testing.assert_array_equal(canonical_slots(kp[:, perm]), out)


def test_the_lookalike_project_has_slots_part_affinity_and_reads_back(tmp_path):
    root = tmp_path / "src"
    written = write_project(root)
    labels = load_animal_labels(root)
    project_dir = write_animal_project(labels, tmp_path / "out", "part_affinity")
    config = yaml.safe_load((project_dir / "config.yaml").read_text())
    assert config["animals"] == {
        "names": ["animal0", "animal1", "animal2"],
        "bodyparts": list(BODYPARTS),
        "decoding": "part_affinity",
    }
    assert ["animal2/leftear", "animal2/rightear"] in config["symmetric_pairs"]
    assert ["animal1/snout", "animal1/leftear"] in config["skeleton"]
    project = load_project(project_dir)
    assert project.animals["decoding"] == "part_affinity"
    assert project.bodyparts[4] == "animal1/snout" and project.keypoints.shape == (5, 12, 2)
    expected = canonical_slots(np.concatenate([written["arena1"], written["arena2"]]))
    np.testing.assert_allclose(project.keypoints, expected.reshape(5, 12, 2))
    assert project.load_image(0).shape == (48, 64, 3) and project.load_image(4).shape == (40, 80, 3)
    assert project.images[3] == "labeled-data/arena2/img000.png"


def test_renaming_the_source_animals_changes_nothing_in_the_lookalike_project(tmp_path):
    sources, outputs = [], []
    for run, swap in (("plain", None), ("swapped", (0, 1))):
        write_project(tmp_path / run / "src", swap=swap)
        sources.append(load_animal_labels(tmp_path / run / "src"))
        outputs.append(write_animal_project(sources[-1], tmp_path / run / "out", "part_affinity"))
    assert not np.array_equal(sources[0].keypoints, sources[1].keypoints, equal_nan=True)
    plain, swapped = (sorted(p.rglob("*")) for p in outputs)
    assert [p.relative_to(outputs[0]) for p in plain] == [
        p.relative_to(outputs[1]) for p in swapped
    ]
    tables = 0
    for a, b in zip(plain, swapped, strict=True):
        if a.suffix == ".h5":
            pd.testing.assert_frame_equal(pd.read_hdf(a), pd.read_hdf(b))
            tables += 1
        elif a.name == "config.yaml":
            ca, cb = (yaml.safe_load(p.read_text()) for p in (a, b))
            for path_key in ("project_path", "labels_source"):
                ca.pop(path_key), cb.pop(path_key)
            assert ca == cb
        elif a.is_file():
            assert a.read_bytes() == b.read_bytes()
    assert tables == 2


def test_choose_decoding_follows_identities_and_the_option(tmp_path):
    root = tmp_path / "src"
    write_project(root, identity=True)
    named = load_animal_labels(root)
    assert choose_decoding(named)[0] == "identity_channels"
    decoding, reason = choose_decoding(named, use_identities=False)
    assert decoding == "part_affinity" and reason.startswith("--no-identities")
    write_config(root, INDIVIDUALS, identity=None)
    decoding, reason = choose_decoding(load_animal_labels(root))
    assert decoding == "part_affinity" and "not identities" in reason
    with pytest.raises(LabelsError, match="carry no identities"):
        write_animal_project(load_animal_labels(root), tmp_path / "x", "identity_channels")
    with pytest.raises(LabelsError, match="decoding 'paf'"):
        write_animal_project(named, tmp_path / "y", "paf")  # type: ignore[arg-type]


def test_deeplabcut_identities_on_image_files_become_an_identity_project(tmp_path):
    from realtime_pose.trainers.identity_project import write_identity_project

    root = tmp_path / "src"
    written = write_project(root, identity=True)
    project = load_project(write_identity_project(load_animal_labels(root), tmp_path / "out"))
    assert project.animals == {
        "names": INDIVIDUALS,
        "bodyparts": list(BODYPARTS),
        "decoding": "identity_channels",
    }
    expected = np.concatenate([written["arena1"], written["arena2"]])
    np.testing.assert_allclose(project.keypoints, expected.reshape(5, 12, 2))  # names kept
    assert project.load_image(3).shape == (40, 80, 3)


def test_a_project_config_names_its_decoding_or_is_refused(tmp_path):
    root = tmp_path / "src"
    write_project(root)
    project_dir = write_animal_project(load_animal_labels(root), tmp_path / "out", "part_affinity")
    config_path = project_dir / "config.yaml"
    config = yaml.safe_load(config_path.read_text())
    config["animals"]["decoding"] = "bogus"
    config_path.write_text(yaml.safe_dump(config))
    with pytest.raises(ProjectError, match=r"config\.yaml: field 'animals\.decoding' is 'bogus'"):
        load_project(project_dir)
    del config["animals"]["decoding"]
    config_path.write_text(yaml.safe_dump(config))
    assert load_project(project_dir).animals["decoding"] == "identity_channels"


def _convert(argv: list[str]):
    """What `realtime-pose train ARGV` trains on, without training."""
    from realtime_pose.cli import build_parser
    from realtime_pose.cli.train import _project_and_split

    return _project_and_split(build_parser().parse_args(["train", *argv, "--steps", "1"]))


@pytest.fixture(scope="module")
def tracked_slp(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from realtime_pose.trainers.synthetic_project import write_two_animal_clip

    return write_two_animal_clip(tmp_path_factory.mktemp("clip"), 12, 96, 64)


def test_train_logs_the_identity_choice_for_tracked_slp(tracked_slp, tmp_path, caplog):
    caplog.set_level(logging.INFO, logger=CLI_LOG)
    project, split = _convert([str(tracked_slp), "-o", str(tmp_path / "out")])
    assert load_project(project).animals == {
        "names": ["dark", "light"],
        "bodyparts": list(BODYPARTS),
        "decoding": "identity_channels",
    }
    assert split is None
    assert (
        f"{tracked_slp}: identity_channels project: the labels name the same animal the same "
        "in every frame (dark, light)"
    ) in caplog.text


def test_no_identities_turns_a_tracked_slp_into_a_lookalike_project(tracked_slp, tmp_path, caplog):
    caplog.set_level(logging.INFO, logger=CLI_LOG)
    out = tmp_path / "out"
    project, split = _convert(
        [str(tracked_slp), "-o", str(out), "--no-identities", "--train-frames", "0-7"]
    )
    loaded = load_project(project)
    assert loaded.animals["names"] == ["animal0", "animal1"]
    assert loaded.animals["decoding"] == "part_affinity"
    assert f"{tracked_slp}: part_affinity project: --no-identities" in caplog.text
    labels = load_animal_labels(tracked_slp)
    np.testing.assert_allclose(
        loaded.keypoints, canonical_slots(labels.keypoints).reshape(12, 8, 2)
    )
    assert split is not None and split.is_file()
    with pytest.raises(ValueError, match="an earlier run converted the labels for part_affinity"):
        _convert([str(tracked_slp), "-o", str(out)])


def test_train_converts_a_multi_animal_deeplabcut_folder_and_logs_why(tmp_path, caplog):
    caplog.set_level(logging.INFO, logger=CLI_LOG)
    root = tmp_path / "mice"
    write_project(root)
    project, _ = _convert([str(root), "-o", str(tmp_path / "out")])
    assert load_project(project).animals["decoding"] == "part_affinity"
    assert (
        f"{root}: part_affinity project: the labels' animals (mouse_a, xyz7, m3) are slots, "
        "not identities"
    ) in caplog.text
    with pytest.raises(ValueError, match="labels image files, not frames of a video"):
        _convert([str(root), "-o", str(tmp_path / "out2"), "--train-frames", "0-1"])


def test_single_animal_projects_still_go_straight_to_training(tmp_path):
    from realtime_pose.trainers.synthetic_project import write_synthetic_project

    single = write_synthetic_project(tmp_path / "single", 2, 64, 48)
    assert _convert([str(single), "-o", str(tmp_path / "out")]) == (single, None)
    with pytest.raises(ValueError, match=r"--no-identities: .* is a single-animal project"):
        _convert([str(single), "-o", str(tmp_path / "out"), "--no-identities"])
