"""3D poses in anipose's table: the columns anipose's ``triangulate`` writes, in its order; values
and gaps survive a round trip; a table made the way anipose makes it reads; movement loads ours."""

import numpy as np
import pandas as pd
import pytest

from realtime_pose.formats.anipose import Poses3D, read_anipose_csv, write_anipose_csv
from realtime_pose.util.safe_write import OutputExistsError

KEYPOINTS = ("snout", "ear_left", "tail")
FRAME_SETS = np.array([10, 11, 12, 14, 15, 16])  # frame set 13 was dropped
PERIOD_NS = 10_000_000  # 100 frame sets per second


def make_poses3d(seed: int = 0, cameras: bool = True) -> Poses3D:
    """Six frame sets of three keypoints seen by cameras a, b, c: ``ear_left`` not triangulated
    in the third (one view), camera c missing from the fourth."""
    rng = np.random.default_rng(seed)
    T, K = len(FRAME_SETS), len(KEYPOINTS)
    points = rng.normal(0.0, 80.0, (T, K, 3))
    errors = rng.uniform(0.1, 3.0, (T, K))
    n_views = np.full((T, K), 3)
    scores = rng.uniform(0.5, 1.0, (T, K))
    points[2, 1], errors[2, 1], scores[2, 1], n_views[2, 1] = np.nan, np.nan, np.nan, 1
    n_views[3] = 2
    t_ns = 5_000_000_000 + (FRAME_SETS - FRAME_SETS[0]) * PERIOD_NS
    camera_t_ns = np.stack([t_ns - 300, t_ns + 200, t_ns + 1_000], 1).astype(np.float64)
    camera_t_ns[3, 2] = np.nan
    return Poses3D(
        keypoints=KEYPOINTS,
        points=points,
        errors=errors,
        n_views=n_views,
        scores=scores,
        frame_index=FRAME_SETS,
        t_ns=t_ns,
        camera_names=("a", "b", "c") if cameras else None,
        camera_t_ns=camera_t_ns if cameras else None,
        skeleton=(("snout", "ear_left"), ("snout", "tail")),
    )


def test_the_header_is_anipose_s_columns_in_anipose_s_order(tmp_path):
    path = write_anipose_csv(tmp_path / "session.csv", make_poses3d())
    header = path.read_text().splitlines()[0].split(",")
    per_keypoint = ["x", "y", "z", "error", "ncams", "score"]
    assert header == [
        *(f"snout_{c}" for c in per_keypoint),
        *(f"ear_left_{c}" for c in per_keypoint),
        *(f"tail_{c}" for c in per_keypoint),
        "M_00", "M_01", "M_02", "M_10", "M_11", "M_12", "M_20", "M_21", "M_22",
        "center_0", "center_1", "center_2",
        "fnum",
    ]  # fmt: skip
    rows = pd.read_csv(path)
    assert rows["fnum"].tolist() == FRAME_SETS.tolist()
    assert rows.filter(like="M_").iloc[0].tolist() == [1, 0, 0, 0, 1, 0, 0, 0, 1]
    assert rows.filter(like="center_").to_numpy().tolist() == [[0, 0, 0]] * len(FRAME_SETS)
    line = path.read_text().splitlines()[3]  # frame set 12: ear_left not triangulated
    assert line.split(",")[6:12] == ["", "", "", "", "1.0", ""]  # anipose: ncams as a float


def test_round_trip_keeps_values_gaps_and_order(tmp_path):
    poses = make_poses3d()
    path = write_anipose_csv(tmp_path / "session.csv", poses)
    back = read_anipose_csv(path, t_ns=poses.t_ns)
    assert back.keypoints == KEYPOINTS  # the file's order, not sorted
    np.testing.assert_array_equal(back.points, poses.points)  # exact, NaN where NaN
    np.testing.assert_array_equal(back.errors, poses.errors)
    np.testing.assert_array_equal(back.scores, poses.scores)
    np.testing.assert_array_equal(back.n_views, poses.n_views)
    np.testing.assert_array_equal(back.frame_index, FRAME_SETS)
    np.testing.assert_array_equal(back.t_ns, poses.t_ns)
    assert np.isnan(back.points[2, 1]).all() and not np.isnan(back.points[2, 0]).any()
    by_fps = read_anipose_csv(path, fps=100.0)
    np.testing.assert_array_equal(by_fps.t_ns, FRAME_SETS * PERIOD_NS)  # fnum / fps


def test_a_table_made_as_anipose_makes_it_is_read(tmp_path):
    """anipose/triangulate.py (no ``optim``): keypoints seen by fewer than 2 cameras get NaN
    everywhere, ``ncams`` included; an ``axes`` change leaves M and center in every row."""
    rng = np.random.default_rng(1)
    n_frames, bodyparts = 4, ["paw_L", "nose"]
    points = rng.normal(size=(n_frames, 2, 3))
    num_cams = np.array([[3.0, 2.0], [1.0, 3.0], [3.0, 3.0], [2.0, 0.0]])
    errors, scores = rng.random((n_frames, 2)), rng.random((n_frames, 2))
    low = num_cams < 2
    points[low], errors[low], scores[low], num_cams[low] = np.nan, np.nan, np.nan, np.nan
    M, center = np.array([[0.0, 1, 0], [-1, 0, 0], [0, 0, 1]]), np.array([5.0, 6, 7])
    dout = pd.DataFrame()
    for bp_num, bp in enumerate(bodyparts):
        for ax_num, axis in enumerate(["x", "y", "z"]):
            dout[bp + "_" + axis] = points[:, bp_num, ax_num]
        dout[bp + "_error"] = errors[:, bp_num]
        dout[bp + "_ncams"] = num_cams[:, bp_num]
        dout[bp + "_score"] = scores[:, bp_num]
    for i in range(3):
        for j in range(3):
            dout[f"M_{i}{j}"] = M[i, j]
    for i in range(3):
        dout[f"center_{i}"] = center[i]
    dout["fnum"] = np.arange(n_frames)
    dout.to_csv(tmp_path / "anipose.csv", index=False)

    poses = read_anipose_csv(tmp_path / "anipose.csv", fps=50.0)
    assert poses.keypoints == ("paw_L", "nose")
    np.testing.assert_array_equal(poses.points, points)  # as the file holds them
    np.testing.assert_array_equal(poses.n_views, [[3, 2], [0, 3], [3, 3], [2, 0]])
    np.testing.assert_array_equal(poses.t_ns, [0, 20_000_000, 40_000_000, 60_000_000])
    write_anipose_csv(tmp_path / "ours.csv", poses)
    ours, theirs = pd.read_csv(tmp_path / "ours.csv"), pd.read_csv(tmp_path / "anipose.csv")
    assert list(ours.columns) == list(theirs.columns)
    kept = [c for c in theirs.columns if not c.startswith(("M_", "center_")) and "ncams" not in c]
    pd.testing.assert_frame_equal(ours[kept], theirs[kept])


def test_movement_loads_the_table_in_3d(tmp_path):
    load_poses = pytest.importorskip("movement.io.load_poses")
    poses = make_poses3d()
    path = write_anipose_csv(tmp_path / "session.csv", poses)
    ds = load_poses.from_anipose_file(path, fps=100.0)
    assert ds.position.sizes == {"time": 6, "space": 3, "keypoints": 3, "individuals": 1}
    assert ds.space.values.tolist() == ["x", "y", "z"]
    assert sorted(ds.keypoints.values.tolist()) == sorted(KEYPOINTS)
    ds = ds.isel(individuals=0).sel(keypoints=list(KEYPOINTS))
    xyz = ds.position.transpose("time", "keypoints", "space").values
    np.testing.assert_array_equal(xyz, poses.points)
    np.testing.assert_array_equal(ds.confidence.transpose("time", "keypoints").values, poses.scores)
    # movement 0.15 reads neither fnum nor error/ncams: time is the row number / fps, so the
    # dropped frame set 13 does not show (frame set 14 sits at 0.03 s, not 0.04 s)
    np.testing.assert_allclose(ds.time.values, np.arange(6) / 100.0)


def test_an_existing_table_is_not_replaced_unasked(tmp_path):
    path = write_anipose_csv(tmp_path / "session.csv", make_poses3d(seed=0))
    before = path.read_bytes()
    with pytest.raises(OutputExistsError, match=r"session\.csv exists"):
        write_anipose_csv(path, make_poses3d(seed=1))
    assert path.read_bytes() == before
    assert list(tmp_path.iterdir()) == [path]  # no temporary file left behind
    write_anipose_csv(path, make_poses3d(seed=1), overwrite=True)
    assert path.read_bytes() != before


def test_reading_needs_times_and_an_anipose_table(tmp_path):
    path = write_anipose_csv(tmp_path / "session.csv", make_poses3d())
    with pytest.raises(ValueError, match="no capture times: pass fps"):
        read_anipose_csv(path)
    with pytest.raises(ValueError, match="6 rows but 2 times"):
        read_anipose_csv(path, t_ns=[0, 1])
    dlc = tmp_path / "dlc.csv"
    dlc.write_text("scorer,me,me\nbodyparts,a,a\ncoords,x,y\n0,1,2\n")
    with pytest.raises(ValueError, match=r"not an anipose 3D table, no column\(s\) \['M_00'"):
        read_anipose_csv(dlc, fps=30.0)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"points": np.zeros((6, 2, 3))}, r"points must have shape \[6, 3, 3\]"),
        ({"scores": np.zeros((6, 3, 1))}, r"scores must have shape \[6, 3\]"),
        ({"t_ns": np.array([0, 2, 1, 3, 4, 5])}, "t_ns goes backwards at row 2"),
        ({"n_views": np.full((6, 3), 2.5)}, "n_views must be whole numbers"),
        ({"camera_names": None}, "camera_t_ns needs camera_names"),
        ({"camera_t_ns": np.zeros((6, 2))}, r"camera_t_ns must have shape \[6, 3\]"),
        ({"skeleton": (("snout", "paw"),)}, r"skeleton names \['paw'\]"),
        ({"keypoints": ("a", "a", "b")}, "keypoints must be unique"),
        ({"keypoints": ("a,b", "c", "d")}, "cannot be CSV column names"),
    ],
)
def test_poses_that_do_not_fit_are_refused(change, message):
    good = make_poses3d()
    fields = {name: getattr(good, name) for name in good.__dataclass_fields__}
    with pytest.raises(ValueError, match=message):
        Poses3D(**{**fields, **change})
