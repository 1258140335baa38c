import numpy as np
import pandas as pd
import pytest

from realtime_pose.formats.dlc import pose_table, read_pose_table, write_pose_tables


def test_tables_have_dlc_layout_and_roundtrip(tmp_path):
    poses = np.random.default_rng(0).random((5, 2, 3))
    h5, csv = write_pose_tables(tmp_path / "v_scorer", poses, ["snout", "tail"], "me")
    df = pd.read_hdf(h5, key="df_with_missing")
    assert df.columns.names == ["scorer", "bodyparts", "coords"]
    assert list(df.columns.get_level_values("coords")[:3]) == ["x", "y", "likelihood"]
    assert len(df) == 5
    np.testing.assert_allclose(df.to_numpy().reshape(5, 2, 3), poses)
    np.testing.assert_allclose(read_pose_table(csv).to_numpy(), df.to_numpy())


def test_shape_mismatch_is_refused():
    with pytest.raises(ValueError, match="shape"):
        pose_table(np.zeros((3, 2, 3)), ["only_one"])
