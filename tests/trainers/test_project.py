"""Reading DeepLabCut projects: csv and h5, old and new row index, and the error paths."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from realtime_pose.sources.synthetic_scene import KEYPOINTS
from realtime_pose.trainers.project import (
    ProjectError,
    data_hash,
    load_project,
    read_split,
    split_indices,
    write_split,
)
from realtime_pose.trainers.synthetic_project import write_synthetic_project

OPENFIELD = Path("/work/shared/datasets/openfield-Pranav-2018-10-30")
LABELS = "labeled-data/synthetic/CollectedData_synthetic"


@pytest.fixture()
def project_dir(tmp_path: Path) -> Path:
    return write_synthetic_project(tmp_path / "proj", 6, width=64, height=48, seed=2)


def test_h5_and_csv_give_the_same_labels(project_dir: Path):
    from_h5 = load_project(project_dir)
    (project_dir / f"{LABELS}.h5").unlink()
    from_csv = load_project(project_dir)
    assert from_h5.bodyparts == KEYPOINTS and from_h5.images == from_csv.images
    assert from_h5.keypoints.shape == (6, 4, 2)
    np.testing.assert_allclose(from_h5.keypoints, from_csv.keypoints)
    assert from_h5.images[0] == "labeled-data/synthetic/img00000.png"
    assert from_h5.load_image(0).shape == (48, 64, 3)


def test_new_style_multiindex_rows_and_empty_cells(project_dir: Path):
    import pandas as pd

    df = pd.read_hdf(project_dir / f"{LABELS}.h5")
    parts = [tuple(p.split("/")) for p in df.index]
    df.index = pd.MultiIndex.from_tuples(parts)
    df.iloc[1, 2:4] = np.nan  # leftear not visible in frame 1
    (project_dir / f"{LABELS}.h5").unlink()
    df.to_csv(project_dir / f"{LABELS}.csv")  # three index columns in the csv
    project = load_project(project_dir)
    assert project.images[1] == "labeled-data/synthetic/img00001.png"
    assert np.isnan(project.keypoints[1, 1]).all() and np.isfinite(project.keypoints[1, 0]).all()
    df.to_hdf(project_dir / f"{LABELS}.h5", key="df_with_missing")
    assert load_project(project_dir).images == project.images


def test_unknown_bodypart_names_the_file(project_dir: Path):
    import yaml

    path = project_dir / "config.yaml"
    config = yaml.safe_load(path.read_text())
    config["bodyparts"][-1] = "tail_base"
    config["skeleton"] = []
    path.write_text(yaml.safe_dump(config))
    with pytest.raises(ProjectError, match=r"CollectedData_synthetic\.h5.*tailbase"):
        load_project(project_dir)


def test_missing_image_names_file_and_row(project_dir: Path):
    (project_dir / "labeled-data/synthetic/img00003.png").unlink()
    with pytest.raises(ProjectError, match=r"row 4 names image .*img00003\.png"):
        load_project(project_dir)


def test_garbage_in_a_csv_cell_names_row_and_column(project_dir: Path):
    (project_dir / f"{LABELS}.h5").unlink()
    csv = project_dir / f"{LABELS}.csv"
    lines = csv.read_text().splitlines()
    cells = lines[4].split(",")
    cells[3] = "oops"
    lines[4] = ",".join(cells)
    csv.write_text("\n".join(lines) + "\n")
    with pytest.raises(ProjectError, match=r"row 5 .*'oops' is not a number"):
        load_project(project_dir)


def test_unreadable_label_file_and_missing_config(project_dir: Path):
    (project_dir / f"{LABELS}.h5").write_bytes(b"not hdf5")
    with pytest.raises(ProjectError, match=r"CollectedData_synthetic\.h5: cannot be read"):
        load_project(project_dir)
    (project_dir / "config.yaml").unlink()
    with pytest.raises(ProjectError, match=r"config\.yaml: missing"):
        load_project(project_dir)


def test_split_is_deterministic_disjoint_and_saved(project_dir: Path, tmp_path: Path):
    train, test = split_indices(20, 0.8, seed=3)
    assert (train, test) == split_indices(20, 0.8, seed=3)
    assert len(train) == 16 and len(test) == 4 and not set(train) & set(test)
    assert split_indices(20, 0.8, seed=4) != (train, test)
    assert split_indices(3, 0.95, 0)[1] != []  # something is always held out
    project = load_project(project_dir)
    write_split(tmp_path / "split.json", project, [0, 1, 2, 3], [4, 5])
    saved = read_split(tmp_path / "split.json")
    assert project.indices_of(saved["test"]) == [4, 5]
    with pytest.raises(ProjectError, match="not labelled frames"):
        project.indices_of(["labeled-data/other/img.png"])


def test_data_hash_changes_with_an_image(project_dir: Path):
    project = load_project(project_dir)
    before = data_hash(project)
    image = project_dir / project.images[0]
    image.write_bytes(image.read_bytes() + b"\0")
    assert data_hash(project) != before


@pytest.mark.skipif(not OPENFIELD.is_dir(), reason="openfield dataset not on this machine")
def test_reads_the_openfield_project():
    project = load_project(OPENFIELD)
    assert project.bodyparts == ("snout", "leftear", "rightear", "tailbase")
    assert len(project.images) == 96 and project.pcutoff == 0.4
    assert np.isfinite(project.keypoints).all()


def test_symmetric_pairs_from_config(project_dir: Path):
    import yaml

    from realtime_pose.trainers.augment import flip_permutation

    path = project_dir / "config.yaml"
    config = yaml.safe_load(path.read_text())
    config["symmetric_pairs"] = [[1, "rightear"]]
    path.write_text(yaml.safe_dump(config))
    project = load_project(project_dir)
    assert project.flip_pairs == (("leftear", "rightear"),)
    assert flip_permutation(project.bodyparts, project.flip_pairs).tolist() == [0, 2, 1, 3]
    config["symmetric_pairs"] = [["leftear", "nose"]]
    path.write_text(yaml.safe_dump(config))
    with pytest.raises(ProjectError, match="symmetric_pairs' names 'nose'"):
        load_project(project_dir)
