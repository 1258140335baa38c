"""Live triangulation: OpenCV parity of the camera kernels, aniposelib parity of the DLT, and the
behaviour of outlier-view rejection, likelihood cut-off and missing views."""

from __future__ import annotations

import math
from pathlib import Path

import cv2
import numpy as np
import pytest

from realtime_pose.calibration import CameraModel, CameraRig, load_calibration
from realtime_pose.formats.slp import read_analysis_h5
from realtime_pose.inference.triangulate import (
    Triangulator,
    project_points,
    rig_arrays,
    smallest_right_singular_vector,
    triangulate_sequence,
    undistort_points,
)

DATASET = Path(__file__).resolve().parents[3] / "shared" / "datasets" / "anipose-mouse-4cam"
CALIBRATION = DATASET / "calibration.fd57457.toml"


def ring_rig(n_cams: int = 5, radius_mm: float = 600.0) -> CameraRig:
    """``n_cams`` cameras on a tilted ring, all looking at the origin, with all five distortion
    coefficients non-zero."""
    cameras = []
    for c in range(n_cams):
        angle = 2 * math.pi * c / n_cams
        centre = np.array(
            [radius_mm * math.cos(angle), radius_mm * math.sin(angle), 250.0 + 40.0 * c]
        )
        forward = -centre / np.linalg.norm(centre)
        right = np.cross(forward, [0.0, 0.0, 1.0])
        right /= np.linalg.norm(right)
        down = np.cross(forward, right)
        rotation = np.stack([right, down, forward])  # world → camera
        cameras.append(
            CameraModel(
                name=f"cam{c}",
                size=(1280, 1024),
                matrix=np.array(
                    [[900.0 + 20 * c, 0, 640.5], [0, 900.0 + 20 * c, 511.0], [0, 0, 1]]
                ),
                distortions=np.array([-0.21, 0.06, 0.0012, -0.0008, -0.01]),
                rotation=cv2.Rodrigues(rotation)[0].ravel(),
                translation=-rotation @ centre,
            )
        )
    return CameraRig(tuple(cameras))


def with_likelihood(pixels: np.ndarray, likelihood: float | np.ndarray = 1.0) -> np.ndarray:
    """``[C, ..., 2]`` pixels → ``[C, ..., 3]`` with a likelihood column."""
    lik = np.broadcast_to(np.asarray(likelihood, np.float64), pixels.shape[:-1])
    return np.concatenate([pixels, lik[..., None]], axis=-1)


@pytest.fixture(scope="module")
def real_rig() -> CameraRig:
    if not CALIBRATION.exists():
        pytest.skip(f"{DATASET} is absent")
    return load_calibration(CALIBRATION)


@pytest.fixture(scope="module")
def camera_group():
    anipose = pytest.importorskip("aniposelib.cameras")
    if not CALIBRATION.exists():
        pytest.skip(f"{DATASET} is absent")
    return anipose.CameraGroup.load(str(CALIBRATION))


@pytest.fixture(scope="module")
def real_keypoints(real_rig) -> np.ndarray:
    """The dataset's 2D keypoints ``[C, T, K, 3]`` (x, y, score), nodes in the first view's
    order, cameras in the calibration's order."""
    pytest.importorskip("h5py")
    views, names = [], None
    for camera in real_rig.names:
        path = DATASET / camera / f"minimal_{camera}_proofread.analysis.h5"
        names, view = read_analysis_h5(path, names)
        views.append(view)
    return np.stack(views)


@pytest.fixture(scope="module")
def working_volume(real_rig) -> tuple[np.ndarray, float]:
    """Centre and spread (mm) of the dataset's mouse, where the real cameras all look."""
    h5py = pytest.importorskip("h5py")
    with h5py.File(DATASET / "points3d.h5", "r") as f:
        points = f["tracks"][:].reshape(-1, 3)
    return points.mean(axis=0), float(points.std(axis=0).max())


def image_grid(camera: CameraModel, n: int = 41) -> np.ndarray:
    """Pixels ``[n*n, 2]`` across the whole image, corners included."""
    w, h = camera.size
    xs, ys = np.meshgrid(np.linspace(0, w - 1, n), np.linspace(0, h - 1, n))
    return np.stack([xs.ravel(), ys.ravel()], axis=1)


# ---------------------------------------------------------------- camera kernels vs OpenCV


def test_undistort_matches_opencv_on_the_real_calibrations(real_rig):
    intrinsics, distortions, _ = rig_arrays(real_rig)
    for c, camera in enumerate(real_rig.cameras):
        pixels = image_grid(camera)
        ours = undistort_points(pixels, intrinsics[c], distortions[c], np.empty_like(pixels))
        np.testing.assert_allclose(ours, camera.undistort(pixels), rtol=0, atol=1e-9)


def test_undistort_matches_opencv_with_every_coefficient():
    rig = ring_rig(2)
    intrinsics, _, _ = rig_arrays(rig)
    camera = rig.cameras[0]
    pixels = image_grid(camera)
    for dist in ([-0.3, 0.12, 0.002, -0.003, -0.04], [0.15, -0.05, -0.001, 0.002, 0.01]):
        dist = np.array(dist)
        expected = cv2.undistortPoints(pixels.reshape(-1, 1, 2), camera.matrix, dist)
        ours = undistort_points(pixels, intrinsics[0], dist, np.empty_like(pixels))
        np.testing.assert_allclose(ours, expected.reshape(-1, 2), rtol=0, atol=1e-9)


def test_project_matches_opencv(real_rig, working_volume):
    centre, spread = working_volume
    points = centre + np.random.default_rng(3).uniform(-3, 3, (500, 3)) * spread
    intrinsics, distortions, extrinsics = rig_arrays(real_rig)
    ours = project_points(points, extrinsics, intrinsics, distortions, np.empty((4, 500, 2)))
    np.testing.assert_allclose(ours, real_rig.project(points), rtol=0, atol=1e-9)

    rig = ring_rig(3)
    points = np.random.default_rng(4).uniform(-150, 150, (300, 3))
    intrinsics, distortions, extrinsics = rig_arrays(rig)
    ours = project_points(points, extrinsics, intrinsics, distortions, np.empty((3, 300, 2)))
    np.testing.assert_allclose(ours, rig.project(points), rtol=0, atol=1e-9)


def test_smallest_right_singular_vector_matches_lapack():
    rng = np.random.default_rng(5)
    for trial in range(300):
        rows = (4, 6, 8, 16)[trial % 4]
        a = rng.standard_normal((rows, 4)) * np.array([1.0, 1.0, 1.0, 300.0])
        if trial % 3 == 0:  # a DLT system: nearly rank 3, as real views give
            point = np.append(rng.uniform(-200, 200, 3), 1.0)
            a -= np.outer(a @ point, point) / (point @ point)
            a += rng.standard_normal(a.shape) * 1e-3
        if trial % 5 == 0:  # exactly rank 3: noise-free views
            point = np.append(rng.uniform(-200, 200, 3), 1.0)
            a -= np.outer(a @ point, point) / (point @ point)
        _, sv, vt = np.linalg.svd(a)
        v = np.empty((4, 4))
        col = smallest_right_singular_vector(a.copy(), rows, v)
        ours = v[:, col] * np.sign(v[:, col] @ vt[-1])
        # A singular vector is only defined to within eps * s1 / (s3 - s4).
        tol = 50 * np.finfo(float).eps * sv[0] / (sv[2] - sv[3])
        np.testing.assert_allclose(ours, vt[-1], rtol=0, atol=tol)


# ---------------------------------------------------------------- DLT vs aniposelib


def test_random_points_match_aniposelib(real_rig, camera_group, working_volume):
    centre, spread = working_volume
    rng = np.random.default_rng(6)
    truth = centre + rng.uniform(-2, 2, (400, 3)) * spread
    pixels = real_rig.project(truth) + rng.normal(0, 2.0, (4, 400, 2))
    # Drop views so that every subset of two, three and four cameras is triangulated.
    dropped = rng.random((4, 400)) < 0.3
    pixels[dropped] = np.nan
    expected = camera_group.triangulate(pixels)
    expected_error = camera_group.reprojection_error(expected, pixels, mean=True)

    result = Triangulator(real_rig, min_likelihood=0.0, outlier_px=None).triangulate(
        with_likelihood(pixels)
    )
    views = (~dropped).sum(axis=0)
    seen = views >= 2
    np.testing.assert_array_equal(np.isnan(result[:, 0]), ~seen)
    np.testing.assert_allclose(result[seen, :3], expected[seen], rtol=0, atol=1e-6)
    np.testing.assert_allclose(result[seen, 3], expected_error[seen], rtol=0, atol=1e-6)
    np.testing.assert_array_equal(result[:, 4], np.where(seen, views, 0))
    assert set(views[seen]) == {2, 3, 4}
    # Noise-free points come back where they were, within OpenCV's five undistortion
    # iterations: these lenses' k1 (about -0.29) folds the image over beyond ~550 px from the
    # centre, and the iteration converges slowly well before that, so keep to 400 px.
    exact = real_rig.project(truth)
    centres = np.array([c.matrix[:2, 2] for c in real_rig.cameras])[:, None, :]
    inside = (np.linalg.norm(exact - centres, axis=-1) < 400).all(axis=0)
    assert inside.sum() > 50
    clean = Triangulator(real_rig, 0.0, None).triangulate(with_likelihood(exact))
    np.testing.assert_allclose(clean[inside, :3], truth[inside], rtol=0, atol=0.05)


def test_real_keypoints_match_aniposelib(real_rig, camera_group, real_keypoints):
    n_cams, n_frames, n_keypoints, _ = real_keypoints.shape
    pixels = real_keypoints[..., :2].reshape(n_cams, -1, 2)
    expected = camera_group.triangulate(pixels).reshape(n_frames, n_keypoints, 3)
    expected_error = camera_group.reprojection_error(
        expected.reshape(-1, 3), pixels, mean=True
    ).reshape(n_frames, n_keypoints)

    # aniposelib uses every non-NaN point: no likelihood cut-off, no outlier rejection.
    result = triangulate_sequence(real_rig, real_keypoints, min_likelihood=0.0, outlier_px=None)
    assert result.shape == (n_frames, n_keypoints, 5)
    np.testing.assert_array_equal(np.isnan(result[..., 0]), np.isnan(expected[..., 0]))
    np.testing.assert_allclose(result[..., :3], expected, rtol=0, atol=1e-6)
    np.testing.assert_allclose(result[..., 3], expected_error, rtol=0, atol=1e-6)
    views = np.isfinite(real_keypoints[..., 0]).sum(axis=0)
    np.testing.assert_array_equal(result[..., 4], np.where(views >= 2, views, 0))


def test_views_are_matched_by_name_not_by_file_order(real_rig, real_keypoints):
    """The rig's camera order is the poses' camera order: reordering both gives the same
    points; reordering only the rig does not."""
    frames = real_keypoints[:, :10]
    expected = triangulate_sequence(real_rig, frames, 0.0, None)
    order = [2, 0, 3, 1]
    reordered = real_rig.subset([real_rig.names[i] for i in order])
    np.testing.assert_allclose(
        triangulate_sequence(reordered, frames[order], 0.0, None), expected, atol=1e-9
    )
    shuffled = triangulate_sequence(reordered, frames, 0.0, None)
    assert np.nanmedian(np.abs(shuffled[..., :3] - expected[..., :3])) > 1.0


# ---------------------------------------------------------------- behaviour


@pytest.fixture(scope="module")
def ring():
    rig = ring_rig(5)
    truth = np.random.default_rng(7).uniform(-80, 80, (12, 3))
    return rig, truth, rig.project(truth)


def test_ransac_rejects_a_corrupted_view(ring):
    rig, truth, pixels = ring
    noisy = pixels + np.random.default_rng(8).normal(0, 0.5, pixels.shape)
    corrupted = noisy.copy()
    corrupted[2, :, 0] += 60.0  # camera 2 found something else, 60 px away
    poses = with_likelihood(corrupted)

    plain = Triangulator(rig, 0.5, outlier_px=None).triangulate(poses)
    robust = Triangulator(rig, 0.5, outlier_px=10.0).triangulate(poses)
    without_camera_2 = poses.copy()
    without_camera_2[2, :, 2] = 0.0
    expected = Triangulator(rig, 0.5, outlier_px=None).triangulate(without_camera_2)

    np.testing.assert_array_equal(robust[:, 4], 4)
    np.testing.assert_allclose(robust, expected, rtol=0, atol=1e-9)
    assert np.abs(robust[:, :3] - truth).max() < 1.0
    assert robust[:, 3].max() < 2.0
    # The same frame without rejection is pulled off by millimetres and reprojects badly.
    np.testing.assert_array_equal(plain[:, 4], 5)
    assert np.linalg.norm(plain[:, :3] - truth, axis=1).min() > 2.0
    assert plain[:, 3].min() > 10.0


def test_ransac_keeps_every_view_that_agrees(ring):
    rig, _, pixels = ring
    poses = with_likelihood(pixels + np.random.default_rng(9).normal(0, 1.0, pixels.shape))
    robust = Triangulator(rig, 0.5, outlier_px=15.0).triangulate(poses)
    plain = Triangulator(rig, 0.5, outlier_px=None).triangulate(poses)
    np.testing.assert_allclose(robust, plain, rtol=0, atol=1e-9)


@pytest.mark.parametrize("noisy_pair", [(0, 1), (2, 3)])
def test_ransac_ties_go_to_the_lower_error(noisy_pair):
    """Cameras 0-1 see one point, 2-3 another: two consensus sets of two views each; the one
    that reprojects better wins."""
    rig = ring_rig(4)
    a, b = np.array([[30.0, -20.0, 10.0]]), np.array([[-60.0, 50.0, -30.0]])
    pixels = np.concatenate([rig.project(a)[:2], rig.project(b)[2:]])
    pixels[list(noisy_pair)] += np.array([[[2.5, -2.5]], [[-2.5, 2.5]]])
    result = Triangulator(rig, 0.5, outlier_px=30.0).triangulate(with_likelihood(pixels))
    winner = b if noisy_pair == (0, 1) else a
    assert result[0, 4] == 2
    np.testing.assert_allclose(result[0, :3], winner[0], atol=1e-6)
    assert result[0, 3] < 1e-6


def test_no_agreeing_pair_falls_back_to_every_view():
    rig = ring_rig(3)
    points = np.array([[0.0, 0.0, 0.0], [100.0, 0.0, 0.0], [0.0, 100.0, 0.0]])
    pixels = np.stack([rig.project(points[c])[c] for c in range(3)])[:, None, :]
    poses = with_likelihood(pixels)
    robust = Triangulator(rig, 0.5, outlier_px=1.0).triangulate(poses)
    plain = Triangulator(rig, 0.5, outlier_px=None).triangulate(poses)
    np.testing.assert_allclose(robust, plain, rtol=0, atol=1e-9)
    assert robust[0, 4] == 3 and robust[0, 3] > 1.0


@pytest.mark.parametrize("outlier_px", [None, 10.0])
def test_keypoints_seen_by_fewer_than_two_views_are_nan(ring, outlier_px):
    rig, truth, pixels = ring
    poses = with_likelihood(pixels)
    poses[:, 0, 2] = 0.0  # nobody sees keypoint 0
    poses[1:, 1, 2] = 0.1  # only camera 0 sees keypoint 1
    poses[1:, 2, :2] = np.nan  # only camera 0 has keypoint 2 (confident NaNs do not count)
    poses[2:, 3, 2] = 0.0  # cameras 0 and 1 see keypoint 3: enough
    result = Triangulator(rig, 0.5, outlier_px).triangulate(poses)
    assert np.isnan(result[:3, :4]).all()
    np.testing.assert_array_equal(result[:4, 4], [0, 0, 0, 2])
    np.testing.assert_allclose(result[3:, :3], truth[3:], atol=1e-3)


def test_the_likelihood_cut_off_is_respected(ring):
    rig, truth, pixels = ring
    poses = with_likelihood(pixels, 0.9)
    poses[4, :, 0] += 200.0  # a wrong camera 4 ...
    poses[4, :, 2] = 0.49  # ... that the network doubts
    kept = Triangulator(rig, min_likelihood=0.5, outlier_px=None).triangulate(poses)
    np.testing.assert_array_equal(kept[:, 4], 4)
    np.testing.assert_allclose(kept[:, :3], truth, atol=1e-3)
    used = Triangulator(rig, min_likelihood=0.49, outlier_px=None).triangulate(poses)
    np.testing.assert_array_equal(used[:, 4], 5)  # at the cut-off a view counts
    assert np.abs(used[:, :3] - truth).max() > 1.0


def test_sequence_equals_frame_by_frame_and_float32(ring):
    rig, _, pixels = ring
    rng = np.random.default_rng(10)
    frames = np.stack([pixels + rng.normal(0, 3, pixels.shape) for _ in range(6)], axis=1)
    points2d = with_likelihood(frames, rng.uniform(0.3, 1.0, frames.shape[:-1]))
    points2d[0, 1, 0, 0] += 120.0
    sequence = triangulate_sequence(rig, points2d, min_likelihood=0.5, outlier_px=12.0)
    triangulator = Triangulator(rig, min_likelihood=0.5, outlier_px=12.0)
    out = np.empty((pixels.shape[1], 5))
    for t in range(points2d.shape[1]):
        assert triangulator.triangulate(points2d[:, t], out=out) is out
        np.testing.assert_array_equal(out, sequence[t])
    single = triangulator.triangulate(points2d[:, 0].astype(np.float32))
    np.testing.assert_allclose(single[:, :3], sequence[0, :, :3], atol=0.05)


def test_reproject_inverts_triangulation(ring):
    rig, truth, pixels = ring
    triangulator = Triangulator(rig)
    triangulator.warmup(num_keypoints=3)
    points = triangulator.triangulate(with_likelihood(pixels))[:, :3]
    points[5] = np.nan
    reprojected = triangulator.reproject(points)
    assert reprojected.shape == (5, len(truth), 2)
    assert np.isnan(reprojected[:, 5]).all()
    keep = np.arange(len(truth)) != 5
    np.testing.assert_allclose(reprojected[:, keep], pixels[:, keep], atol=1e-3)
    np.testing.assert_allclose(triangulator.reproject(truth), rig.project(truth), rtol=0, atol=1e-9)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"min_likelihood": float("nan")}, "min_likelihood"),
        ({"min_likelihood": "0.5"}, "min_likelihood"),
        ({"outlier_px": 0.0}, "outlier_px"),
        ({"outlier_px": -3.0}, "outlier_px"),
        ({"outlier_px": float("inf")}, "outlier_px"),
    ],
)
def test_bad_options_are_refused(kwargs, message):
    with pytest.raises(ValueError, match=message):
        Triangulator(ring_rig(3), **kwargs)
    with pytest.raises(ValueError, match=message):
        triangulate_sequence(ring_rig(3), np.zeros((3, 1, 1, 3)), **kwargs)


def test_bad_rigs_and_shapes_are_refused():
    with pytest.raises(ValueError, match="at least two cameras"):
        Triangulator(CameraRig(ring_rig(3).cameras[:1]))
    with pytest.raises(ValueError, match="CameraRig"):
        Triangulator("calibration.toml")  # type: ignore[arg-type]
    triangulator = Triangulator(ring_rig(3))
    with pytest.raises(ValueError, match=r"\[C, K, 3\] with C = 3"):
        triangulator.triangulate(np.zeros((2, 4, 3)))
    with pytest.raises(ValueError, match=r"\[C, T, K, 3\]"):
        triangulate_sequence(ring_rig(3), np.zeros((3, 4, 3)))
    with pytest.raises(ValueError, match=r"\[K, 3\]"):
        triangulator.reproject(np.zeros((4, 2)))


def test_rays_meeting_at_infinity_do_not_raise():
    """Two cameras side by side with the same pixel: parallel rays, a point at infinity. The
    live loop gets a non-finite or absurd point (and the error column), not an exception."""
    left = ring_rig(3).cameras[0]
    shift = left.rotation_matrix @ np.array([100.0, 0.0, 0.0])
    right = CameraModel(
        "right", left.size, left.matrix, left.distortions, left.rotation, left.translation - shift
    )
    rig = CameraRig((left, right))
    poses = with_likelihood(np.full((2, 1, 2), 700.0))
    result = Triangulator(rig, outlier_px=None).triangulate(poses)
    assert result[0, 4] == 2
    assert not (np.abs(result[0, :3]) < 1e6).all()
