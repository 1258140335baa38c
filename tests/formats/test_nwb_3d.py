"""3D poses in NWB (ndx-pose ``MultiCameraPoseEstimation``): the file passes the checks every NWB
file of ours passes, pynwb reads back every value, the cameras and their calibration, and each
camera's frame times; movement loads the poses with three space dimensions."""

import datetime

import numpy as np
import pytest

from realtime_pose.calibration import CameraModel, CameraRig
from realtime_pose.formats.nwb import POSE_3D_NAME, poses3d_nwbfile, read_poses3d_nwb, write_nwb
from tests.formats.test_anipose_3d import KEYPOINTS, make_poses3d
from tests.nwb_checks import assert_valid_nwb

pynwb = pytest.importorskip("pynwb", reason="the nwb extra is not installed")
pytest.importorskip("ndx_pose", reason="the nwb extra is not installed")
NWBHDF5IO = pynwb.NWBHDF5IO

START = datetime.datetime(2026, 3, 2, 9, 30, tzinfo=datetime.timezone.utc)


def make_rig() -> CameraRig:
    K = np.array([[800.0, 0, 320], [0, 810, 240], [0, 0, 1]])
    return CameraRig(
        tuple(
            CameraModel(
                name=name,
                size=(640, 480),
                matrix=K,
                distortions=np.array([-0.1, 0.01, 0.0, 0.0, 0.0]),
                rotation=np.array([0.0, 0.3 * i, 0.0]),
                translation=np.array([-100.0 * i, 0.0, 500.0]),
            )
            for i, name in enumerate(["c", "b", "a"])  # file order differs from the session's
        )
    )


def write(tmp_path, poses, name="rig.nwb", **kwargs):
    nwbfile = poses3d_nwbfile(poses, identifier="session1", session_start=START, **kwargs)
    return write_nwb(nwbfile, tmp_path / name)


def test_the_file_is_valid_and_pynwb_reads_every_value_back(tmp_path):
    poses = make_poses3d()
    rig = make_rig()
    path = write(tmp_path, poses, rig=rig, calibration_file="/rigs/box2/calibration.toml")
    assert_valid_nwb(path)
    t0 = poses.camera_t_ns[poses.camera_t_ns >= 0].min()  # camera a's first frame
    with NWBHDF5IO(str(path), "r") as io:
        nwbfile = io.read()
        assert nwbfile.session_start_time == START
        estimation = nwbfile.processing["behavior"][POSE_3D_NAME]
        assert type(estimation).__name__ == "MultiCameraPoseEstimation"
        assert list(estimation.skeleton.nodes[:]) == list(KEYPOINTS)
        assert estimation.skeleton.edges[:].tolist() == [[0, 1], [0, 2]]
        for k, name in enumerate(KEYPOINTS):
            series = estimation.pose_estimation_series[name]
            assert series.data.shape == (6, 3) and series.unit == "millimeters"
            np.testing.assert_array_equal(series.data[:], poses.points[:, k])
            np.testing.assert_array_equal(series.confidence[:], poses.scores[:, k])
            np.testing.assert_allclose(series.timestamps[:], (poses.t_ns - t0) / 1e9, atol=1e-12)
            assert "calibration.toml" in series.reference_frame
        np.testing.assert_array_equal(
            nwbfile.processing["behavior"]["reprojection_error"].data[:], poses.errors
        )
        np.testing.assert_array_equal(
            nwbfile.processing["behavior"]["triangulation_views"].data[:], poses.n_views
        )
        # one camera device per camera, each linked from its view, with its calibration
        assert sorted(estimation.pose_estimations) == ["a", "b", "c"]
        for name in "abc":
            camera = nwbfile.devices[name]
            assert type(camera).__name__ == "CalibratedCamera"
            assert estimation.pose_estimations[name].device is camera
            assert "calibration.toml" in camera.description
            model = rig.camera(name)
            np.testing.assert_allclose(camera.intrinsic_matrix[:], model.matrix, rtol=1e-6)
            np.testing.assert_allclose(camera.rotation_matrix[:], model.rotation_matrix, atol=1e-6)
            np.testing.assert_allclose(camera.translation_vector[:], model.translation)
        # each camera's frames at their own capture times; camera c skipped frame set 14
        frames_c = nwbfile.acquisition["camera_frames_c"]
        assert frames_c.data[:].tolist() == [10, 11, 12, 15, 16]
        expected = np.delete(poses.camera_t_ns[:, 2], 3)
        np.testing.assert_allclose(frames_c.timestamps[:], (expected - t0) / 1e9, atol=1e-12)
        assert nwbfile.acquisition["camera_frames_a"].timestamps[0] == 0.0
        assert nwbfile.acquisition["frame_sets"].data[:].tolist() == [10, 11, 12, 14, 15, 16]

    back = read_poses3d_nwb(path)
    assert back.keypoints == KEYPOINTS and back.camera_names == ("a", "b", "c")
    assert back.skeleton == poses.skeleton
    for name in ("points", "errors", "scores", "n_views", "frame_index", "t_ns", "camera_t_ns"):
        np.testing.assert_array_equal(getattr(back, name), getattr(poses, name), err_msg=name)


def test_movement_loads_the_3d_poses(tmp_path):
    load_poses = pytest.importorskip("movement.io.load_poses")
    poses = make_poses3d()
    path = write(tmp_path, poses, rig=make_rig(), calibration_file="calibration.toml")
    ds = load_poses.from_nwb_file(path, pose_estimation_key=POSE_3D_NAME)
    assert ds.position.sizes == {"time": 6, "space": 3, "keypoints": 3, "individuals": 1}
    assert ds.space.values.tolist() == ["x", "y", "z"]
    ds = ds.isel(individuals=0).sel(keypoints=list(KEYPOINTS))
    xyz = ds.position.transpose("time", "keypoints", "space").values
    np.testing.assert_array_equal(xyz, poses.points)  # NaN where not triangulated
    np.testing.assert_array_equal(ds.confidence.transpose("time", "keypoints").values, poses.scores)
    # movement 0.15 keeps no timestamps: its time axis is row / (median rate), so the dropped
    # frame set 13 does not show (frame set 14 at 0.03 s, though it was captured at 0.04 s)
    assert ds.attrs["fps"] == 100.0
    np.testing.assert_allclose(ds.time.values, np.arange(6) / 100.0)


def test_without_a_calibration_the_cameras_are_plain_devices(tmp_path):
    poses = make_poses3d()
    path = write(tmp_path, poses, calibration_file="calibration.toml", t0_ns=poses.t_ns[0])
    assert_valid_nwb(path)
    with NWBHDF5IO(str(path), "r") as io:
        nwbfile = io.read()
        assert sorted(nwbfile.devices) == ["a", "b", "c"]
        assert {type(d).__name__ for d in nwbfile.devices.values()} == {"Device"}
        series = nwbfile.processing["behavior"][POSE_3D_NAME].pose_estimation_series["tail"]
        assert series.timestamps[0] == 0.0  # t0_ns as given
        assert nwbfile.acquisition["camera_frames_a"].timestamps[0] == pytest.approx(-3e-7)
    bare = make_poses3d(cameras=False)
    path = write(tmp_path, bare, name="bare.nwb")
    assert_valid_nwb(path)
    back = read_poses3d_nwb(path)
    assert back.camera_names is None and back.camera_t_ns is None
    np.testing.assert_array_equal(back.points, bare.points)


def test_two_animals_get_a_container_each(tmp_path):
    load_poses = pytest.importorskip("movement.io.load_poses")
    animals = [make_poses3d(seed=0), make_poses3d(seed=1)]
    path = write(tmp_path, animals, rig=make_rig())
    assert_valid_nwb(path)
    for i, poses in enumerate(animals):
        back = read_poses3d_nwb(path, animal=i)
        np.testing.assert_array_equal(back.points, poses.points)
        np.testing.assert_array_equal(back.errors, poses.errors)
        ds = load_poses.from_nwb_file(path, pose_estimation_key=f"{POSE_3D_NAME}_animal{i}")
        xyz = ds.isel(individuals=0).sel(keypoints=list(KEYPOINTS)).position
        np.testing.assert_array_equal(xyz.transpose("time", "keypoints", "space"), poses.points)
    with pytest.raises(ValueError, match="no realtime-pose 3D poses PoseEstimation3D"):
        read_poses3d_nwb(path)  # several animals: say which


def test_what_cannot_be_written_is_refused(tmp_path):
    poses = make_poses3d()
    other = make_poses3d()
    shifted = type(other)(
        **{**{n: getattr(other, n) for n in other.__dataclass_fields__}, "t_ns": other.t_ns + 1}
    )
    with pytest.raises(ValueError, match="animal 1 has other keypoints, frame sets or times"):
        poses3d_nwbfile([poses, shifted], identifier="x", session_start=START)
    small_rig = CameraRig(make_rig().cameras[:2])  # c and b only
    with pytest.raises(ValueError, match=r"calibration\.toml: no camera named 'a'"):
        poses3d_nwbfile(
            poses,
            identifier="x",
            session_start=START,
            rig=small_rig,
            calibration_file="calibration.toml",
        )
    assert not list(tmp_path.iterdir())
