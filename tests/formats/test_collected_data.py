"""DeepLabCut's labels of a labeled-data folder: machine labels as the starting guess, human
labels merged into CollectedData (other frames kept, changed frames refused unless asked, both
files whole or not at all, h5 and csv the same table), the scorer taken from the project, and
older and multi-animal layouts."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest
import yaml

from realtime_pose.formats.collected_data import (
    LabelConflictError,
    capture_reasons,
    list_images,
    read_folder_labels,
    read_label_table,
    resolve_scorer,
    save_collected_data,
)

KEYPOINTS = ["snout", "leftear", "rightear", "tailbase"]
FRAME_W, FRAME_H = 320, 240


def machine_guess(frame: int, keypoints: int = len(KEYPOINTS)) -> np.ndarray:
    """``[K, 3]`` a machine's guess for ``frame``: distinct, well inside the image."""
    k = np.arange(keypoints)
    return np.stack(
        [60.0 + 50 * k + 3 * frame, 50.0 + 35 * k + 2 * frame, 0.3 + 0.15 * (k % 4)], axis=1
    )


def write_captured_folder(
    base: Path,
    frames: tuple[int, ...] = (12, 40, 41, 97),
    name: str = "session1",
    animals: list[str] | None = None,
    scorer: str = "DLC_resnet50_rigJan1shuffle1_5000",
) -> Path:
    """``<base>/labeled-data/<name>/`` as a capture writes it: ``img<frame>.png`` (a textured
    image with a marker at each guessed keypoint) and ``machinelabels-iter0.h5`` in DeepLabCut
    2.3+'s layout (3-level row index; ``individuals`` when ``animals`` are given)."""
    folder = base / "labeled-data" / name
    folder.mkdir(parents=True)
    n_animals = len(animals) if animals else 1
    rows, values = [], []
    rng = np.random.default_rng(0)
    for frame in frames:
        image = f"img{frame:05d}.png"
        pixels = rng.integers(40, 90, (FRAME_H, FRAME_W, 3), dtype=np.uint8)
        guess = np.concatenate([machine_guess(frame + 7 * a) for a in range(n_animals)])
        for x, y, _ in guess:
            cv2.circle(pixels, (round(x), round(y)), 6, (200, 220, 240), -1)
        cv2.imwrite(str(folder / image), pixels)
        rows.append(("labeled-data", name, image))
        values.append(guess.reshape(-1))
    if animals:
        columns = pd.MultiIndex.from_product(
            [[scorer], animals, KEYPOINTS, ["x", "y", "likelihood"]],
            names=["scorer", "individuals", "bodyparts", "coords"],
        )
    else:
        columns = pd.MultiIndex.from_product(
            [[scorer], KEYPOINTS, ["x", "y", "likelihood"]],
            names=["scorer", "bodyparts", "coords"],
        )
    table = pd.DataFrame(values, index=pd.MultiIndex.from_tuples(rows), columns=columns)
    table.to_hdf(folder / "machinelabels-iter0.h5", key="df_with_missing", mode="w")
    return folder


def write_project_config(base: Path, scorer: str = "Alice", **extra) -> Path:
    config = {"Task": "rig", "scorer": scorer, "bodyparts": KEYPOINTS, **extra}
    path = base / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def labels_of(frame: int, shift: float = 0.0) -> np.ndarray:
    points = machine_guess(frame)[:, :2] + shift + 0.25
    points[2] = np.nan  # rightear not visible
    return points


def test_machine_labels_are_the_starting_guess_until_a_frame_is_labelled(tmp_path):
    folder = write_captured_folder(tmp_path)
    labels = read_folder_labels(folder, "Alice")
    assert labels.images == ["img00012.png", "img00040.png", "img00041.png", "img00097.png"]
    assert labels.keypoint_names == KEYPOINTS and labels.animals is None
    assert labels.collected == {}
    points, likelihood, source = labels.starting_point("img00040.png")
    assert source == "machine"
    np.testing.assert_allclose(points, machine_guess(40)[:, :2])
    np.testing.assert_allclose(likelihood, machine_guess(40)[:, 2])

    save_collected_data(folder, "Alice", KEYPOINTS, {"img00040.png": labels_of(40)})
    labels = read_folder_labels(folder, "Alice")
    points, likelihood, source = labels.starting_point("img00040.png")
    assert source == "collected" and likelihood is None
    np.testing.assert_allclose(points, labels_of(40))
    assert labels.starting_point("img00041.png")[2] == "machine"


def test_saving_merges_with_the_existing_files_in_dlc_layout(tmp_path):
    folder = write_captured_folder(tmp_path)
    save_collected_data(folder, "Alice", KEYPOINTS, {"img00012.png": labels_of(12)})
    h5, csv = save_collected_data(
        folder, "Alice", KEYPOINTS, {"img00097.png": labels_of(97), "img00040.png": labels_of(40)}
    )
    assert (h5.name, csv.name) == ("CollectedData_Alice.h5", "CollectedData_Alice.csv")
    table = pd.read_hdf(h5, key="df_with_missing")
    assert list(table.index) == [
        ("labeled-data", "session1", "img00012.png"),  # the first save's frame is kept
        ("labeled-data", "session1", "img00040.png"),
        ("labeled-data", "session1", "img00097.png"),
    ]
    assert table.columns.names == ["scorer", "bodyparts", "coords"]
    assert list(table.columns) == [("Alice", k, c) for k in KEYPOINTS for c in "xy"]
    for row, frame in zip(table.index, (12, 40, 97), strict=True):
        np.testing.assert_allclose(table.loc[row].to_numpy().reshape(4, 2), labels_of(frame))
    assert table[("Alice", "rightear", "x")].isna().all()
    # the csv is the same table, as DeepLabCut reads it (header rows, 3 index columns)
    from_csv = pd.read_csv(csv, header=[0, 1, 2], index_col=[0, 1, 2])
    pd.testing.assert_frame_equal(from_csv, table, check_names=False)
    assert csv.read_text().splitlines()[3].startswith("labeled-data,session1,img00012.png,")
    assert not [p for p in folder.iterdir() if p.name.startswith(".")]  # no temporaries left


def test_a_frame_with_different_saved_labels_is_refused_by_name_unless_replacing(tmp_path):
    folder = write_captured_folder(tmp_path)
    h5, csv = save_collected_data(
        folder, "Alice", KEYPOINTS, {"img00012.png": labels_of(12), "img00040.png": labels_of(40)}
    )
    before = (h5.read_bytes(), csv.read_text())
    changed = {"img00040.png": labels_of(40, shift=3.0), "img00041.png": labels_of(41)}
    with pytest.raises(LabelConflictError, match=r"img00040\.png") as refused:
        save_collected_data(folder, "Alice", KEYPOINTS, changed)
    assert refused.value.images == ["img00040.png"]
    assert (h5.read_bytes(), csv.read_text()) == before  # nothing written, not even img00041

    save_collected_data(folder, "Alice", KEYPOINTS, changed, overwrite_existing=True)
    saved = read_folder_labels(folder, "Alice").collected
    assert sorted(saved) == ["img00012.png", "img00040.png", "img00041.png"]
    np.testing.assert_allclose(saved["img00040.png"], labels_of(40, shift=3.0))
    np.testing.assert_allclose(saved["img00012.png"], labels_of(12))


def test_saving_the_same_labels_again_or_over_an_empty_row_is_no_conflict(tmp_path):
    folder = write_captured_folder(tmp_path)
    save_collected_data(folder, "Alice", KEYPOINTS, {"img00012.png": labels_of(12)})
    save_collected_data(folder, "Alice", KEYPOINTS, {"img00012.png": labels_of(12)})
    # an all-NaN row (DeepLabCut's old GUI writes one for every frame shown) holds no label
    save_collected_data(folder, "Alice", KEYPOINTS, {"img00040.png": np.full((4, 2), np.nan)})
    assert "img00040.png" not in read_folder_labels(folder, "Alice").collected
    save_collected_data(folder, "Alice", KEYPOINTS, {"img00040.png": labels_of(40)})
    assert sorted(read_folder_labels(folder, "Alice").collected) == [
        "img00012.png",
        "img00040.png",
    ]


def test_a_write_that_fails_midway_leaves_the_old_files_and_no_temporaries(tmp_path, monkeypatch):
    folder = write_captured_folder(tmp_path)
    h5, csv = save_collected_data(folder, "Alice", KEYPOINTS, {"img00012.png": labels_of(12)})
    before = (h5.read_bytes(), csv.read_bytes())
    real_to_csv = pd.DataFrame.to_csv

    def disk_full(self, path, *args, **kwargs):
        real_to_csv(self.iloc[:1], path, *args, **kwargs)  # part of the file, then the error
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(pd.DataFrame, "to_csv", disk_full)
    with pytest.raises(OSError, match="No space left"):
        save_collected_data(folder, "Alice", KEYPOINTS, {"img00040.png": labels_of(40)})
    assert (h5.read_bytes(), csv.read_bytes()) == before  # the new .h5 was not put in place
    assert sorted(p.name for p in folder.iterdir() if "CollectedData" in p.name) == [
        "CollectedData_Alice.csv",
        "CollectedData_Alice.h5",
    ]


def test_the_scorer_is_the_projects_inside_a_deeplabcut_project(tmp_path):
    folder = write_captured_folder(tmp_path)
    assert resolve_scorer(folder) is None  # no project, no labels yet: ask
    assert resolve_scorer(folder, "Bob") == "Bob"
    with pytest.raises(ValueError, match="cannot name a CollectedData file"):
        resolve_scorer(folder, "../Bob")
    write_project_config(tmp_path, scorer="Alice")
    assert resolve_scorer(folder) == "Alice"
    with pytest.raises(ValueError, match="not the project's scorer 'Alice'"):
        resolve_scorer(folder, "Bob")
    labels = read_folder_labels(folder)
    assert labels.scorer == "Alice" and labels.keypoint_names == KEYPOINTS


def test_outside_a_project_the_folders_own_collected_data_names_the_scorer(tmp_path):
    folder = write_captured_folder(tmp_path)
    save_collected_data(folder, "Carol", KEYPOINTS, {"img00012.png": labels_of(12)})
    assert resolve_scorer(folder) == "Carol"
    assert read_folder_labels(folder).collected.keys() == {"img00012.png"}
    save_collected_data(folder, "Dan", KEYPOINTS, {"img00012.png": labels_of(12)})
    with pytest.raises(ValueError, match="several scorers"):
        resolve_scorer(folder)


def test_older_single_string_rows_and_csv_only_files_are_read(tmp_path):
    folder = write_captured_folder(tmp_path)
    columns = pd.MultiIndex.from_product(
        [["Alice"], KEYPOINTS, ["x", "y"]], names=["scorer", "bodyparts", "coords"]
    )
    old = pd.DataFrame(
        [labels_of(41).reshape(-1)], index=["labeled-data\\session1\\img00041.png"], columns=columns
    )
    old.to_csv(folder / "CollectedData_Alice.csv")  # DeepLabCut < 2.3 on Windows, csv only
    assert read_label_table(folder / "CollectedData_Alice.csv").index[0] == (
        "labeled-data",
        "session1",
        "img00041.png",
    )
    np.testing.assert_allclose(
        read_folder_labels(folder, "Alice").collected["img00041.png"], labels_of(41)
    )
    save_collected_data(folder, "Alice", KEYPOINTS, {"img00097.png": labels_of(97)})
    table = pd.read_hdf(folder / "CollectedData_Alice.h5")
    assert list(table.index) == [
        ("labeled-data", "session1", "img00041.png"),
        ("labeled-data", "session1", "img00097.png"),
    ]


def test_several_animals_keep_deeplabcuts_individuals_level(tmp_path):
    animals = ["female", "male"]
    folder = write_captured_folder(tmp_path, animals=animals)
    labels = read_folder_labels(folder, "Alice")
    assert labels.animals == animals and labels.bodyparts == KEYPOINTS
    assert labels.keypoint_names[:2] == ["female/snout", "female/leftear"]
    guess, _, _ = labels.starting_point("img00040.png")
    np.testing.assert_allclose(guess[4:], machine_guess(47)[:, :2])  # the male's
    points = np.concatenate([labels_of(40), labels_of(40, shift=10)])
    h5, csv = save_collected_data(
        folder, "Alice", KEYPOINTS, {"img00040.png": points}, animals=animals
    )
    table = pd.read_hdf(h5)
    assert table.columns.names == ["scorer", "individuals", "bodyparts", "coords"]
    male_snout = [table[("Alice", "male", "snout", c)].iloc[0] for c in "xy"]
    np.testing.assert_allclose(male_snout, labels_of(40, shift=10)[0])
    from_csv = pd.read_csv(csv, header=[0, 1, 2, 3], index_col=[0, 1, 2])
    pd.testing.assert_frame_equal(from_csv, table, check_names=False)
    np.testing.assert_allclose(
        read_folder_labels(folder, "Alice").collected["img00040.png"], points
    )


def test_labels_for_other_files_other_keypoints_or_wrong_shapes_are_refused(tmp_path):
    folder = write_captured_folder(tmp_path)
    (tmp_path / "outside.png").write_bytes((folder / "img00012.png").read_bytes())
    with pytest.raises(ValueError, match=r"no frame '\.\./outside\.png'"):
        save_collected_data(folder, "Alice", KEYPOINTS, {"../outside.png": labels_of(12)})
    with pytest.raises(ValueError, match=r"img00012\.png: expected 4 keypoints"):
        save_collected_data(folder, "Alice", KEYPOINTS, {"img00012.png": labels_of(12)[:3]})
    with pytest.raises(ValueError, match="infinite"):
        save_collected_data(folder, "Alice", KEYPOINTS, {"img00012.png": np.full((4, 2), np.inf)})
    save_collected_data(folder, "Alice", KEYPOINTS, {"img00012.png": labels_of(12)})
    with pytest.raises(ValueError, match="labels keypoints"):
        save_collected_data(
            folder, "Alice", ["nose", *KEYPOINTS[1:]], {"img00040.png": labels_of(40)}
        )
    assert not list(folder.glob(".*"))


def test_the_project_loader_reads_what_the_page_saves(tmp_path):
    from realtime_pose.trainers.project import load_project

    folder = write_captured_folder(tmp_path)
    write_project_config(tmp_path, scorer="Alice")
    save_collected_data(
        folder, "Alice", KEYPOINTS, {"img00012.png": labels_of(12), "img00097.png": labels_of(97)}
    )
    project = load_project(tmp_path, train_fraction=0.5)
    assert project.images == (
        "labeled-data/session1/img00012.png",
        "labeled-data/session1/img00097.png",
    )
    np.testing.assert_allclose(project.keypoints[1], labels_of(97))


def test_capture_reasons_are_read_from_either_layout(tmp_path):
    folder = write_captured_folder(tmp_path)
    assert capture_reasons(folder) == {}
    (folder / "captures.json").write_text('{"img00012.png": ["likelihood drop"]}')
    assert capture_reasons(folder) == {"img00012.png": ["likelihood drop"]}
    (folder / "captures.json").write_text(
        '{"frames": [{"image": "img00040.png", "reasons": ["jump", {"lost": "snout"}]}]}'
    )
    assert capture_reasons(folder) == {"img00040.png": ["jump", '{"lost": "snout"}']}
    (folder / "captures.json").write_text("not json")
    assert capture_reasons(folder) == {}


def test_only_plain_png_files_are_frames(tmp_path):
    folder = write_captured_folder(tmp_path)
    (tmp_path / "elsewhere.png").write_bytes(b"x")
    (folder / "link.png").symlink_to(tmp_path / "elsewhere.png")
    (folder / ".hidden.png").write_bytes(b"x")
    (folder / "sub.png").mkdir()
    assert list_images(folder) == ["img00012.png", "img00040.png", "img00041.png", "img00097.png"]
