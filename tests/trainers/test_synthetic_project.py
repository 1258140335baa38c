"""The DeepLabCut project of synthetic frames that the trainer tests and the demo bundle use."""

from __future__ import annotations

import numpy as np

from realtime_pose.sources.synthetic_scene import KEYPOINTS
from realtime_pose.trainers.synthetic_project import write_synthetic_project


def test_write_synthetic_project_is_a_dlc_project(tmp_path):
    import pandas as pd
    import yaml

    root = write_synthetic_project(tmp_path / "proj", 4, width=96, height=64, seed=1)
    config = yaml.safe_load((root / "config.yaml").read_text())
    assert config["bodyparts"] == list(KEYPOINTS)
    df = pd.read_csv(
        root / "labeled-data/synthetic/CollectedData_synthetic.csv", header=[0, 1, 2], index_col=0
    )
    h5 = pd.read_hdf(root / "labeled-data/synthetic/CollectedData_synthetic.h5")
    assert df.shape == (4, 8) and np.allclose(df.to_numpy(), h5.to_numpy())
    assert list(df.columns.get_level_values(1)[::2]) == list(KEYPOINTS)
    for rel in df.index:
        assert (root / rel).is_file()
