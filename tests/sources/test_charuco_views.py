"""Rendered ChArUco views: the board appears exactly where the camera model puts it."""

from __future__ import annotations

import math

import cv2
import numpy as np
import pytest

from realtime_pose.calibration import CameraModel, CameraRig
from realtime_pose.charuco import BoardSpec
from realtime_pose.sources.charuco_views import (
    BoardPose,
    CharucoRenderer,
    board_poses,
    distort_normalised,
    render_calibration_set,
    ring_rig,
    undistort_normalised,
)
from realtime_pose.util.safe_write import OutputExistsError

BOARD = BoardSpec(
    board_x=5, board_y=7, square_length=20.0, marker_length=15.0, marker_bits=4, dict_size=50
)


# Small markers leave the corners' neighbourhoods plain squares, so a corner refined on the
# image measures the rendering, not the markers' pull on the refinement.
CLEAN = BoardSpec(
    board_x=5, board_y=7, square_length=20.0, marker_length=8.0, marker_bits=4, dict_size=50
)


def _detect(board: BoardSpec, image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    detector = cv2.aruco.CharucoDetector(board.opencv_board())
    corners, ids, _, _ = detector.detectBoard(image)
    if ids is None:
        return np.zeros((0, 2)), np.zeros(0, int)
    return corners.reshape(-1, 2), ids.ravel()


def _refined(image: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """The image's corners found by ``cornerSubPix``, started off the truth by up to ~0.8 px."""
    start = (np.round(truth) + 0.3).astype(np.float32).reshape(-1, 1, 2)
    criteria = (cv2.TERM_CRITERIA_EPS | cv2.TERM_CRITERIA_COUNT, 100, 1e-5)
    return cv2.cornerSubPix(image, start, (3, 3), (-1, -1), criteria).reshape(-1, 2)


@pytest.mark.parametrize("k1", [0.0, -0.25])
def test_rendered_corners_are_where_the_camera_model_puts_them(k1):
    rig = ring_rig(2, k1=k1, focal_px=600.0, distance_mm=500.0)
    poses = board_poses(rig, CLEAN, 3, seed=4, max_tilt_deg=20.0)
    renderer = CharucoRenderer(CLEAN)
    shifts = []
    for camera in rig.cameras:
        for pose in poses:
            truth = renderer.corners_px(camera, pose)
            shifts.append(_refined(renderer.render(camera, pose), truth) - truth)
    shift = np.concatenate(shifts)
    err = np.linalg.norm(shift, axis=1)
    assert np.median(err) < 0.07 and err.max() < 0.2, np.percentile(err, [50, 100])
    # No systematic offset (a half-pixel convention slip would show here).
    assert np.all(np.abs(shift.mean(axis=0)) < 0.02), shift.mean(axis=0)


def test_the_detector_finds_every_corner_with_its_id():
    rig = ring_rig(2, k1=-0.1, focal_px=600.0)
    poses = board_poses(rig, BOARD, 2, seed=4)
    renderer = CharucoRenderer(BOARD)
    errors, found = [], 0
    for camera in rig.cameras:
        for pose in poses:
            corners, ids = _detect(BOARD, renderer.render(camera, pose))
            errors.append(np.linalg.norm(corners - renderer.corners_px(camera, pose)[ids], axis=1))
            found += len(ids)
    err = np.concatenate(errors)
    assert found >= 0.8 * len(rig) * len(poses) * BOARD.n_corners
    # A wrong id would be a square (~25 px) off; the detector's own error is a few tenths.
    assert np.median(err) < 0.1 and err.max() < 1.0, np.percentile(err, [50, 100])


def test_distortion_moves_the_board_as_project_points_says():
    camera = ring_rig(1, k1=-0.25, focal_px=450.0).cameras[0]
    pinhole = CameraModel(
        "pinhole", camera.size, camera.matrix, np.zeros(5), camera.rotation, camera.translation
    )
    rig = CameraRig((camera,))
    renderer = CharucoRenderer(CLEAN)
    corners = CLEAN.corner_points()

    def moved(pose: BoardPose) -> float:
        shift = camera.project(pose.world_points(corners)) - pinhole.project(
            pose.world_points(corners)
        )
        return float(np.max(np.linalg.norm(shift, axis=1)))

    pose = max(board_poses(rig, CLEAN, 12, seed=2, spread_mm=150.0), key=moved)
    assert moved(pose) > 3.0  # the distortion is large enough to matter…
    truth = renderer.corners_px(camera, pose)
    refined = _refined(renderer.render(camera, pose), truth)
    assert np.max(np.linalg.norm(refined - truth, axis=1)) < 0.2  # …and it is rendered


@pytest.mark.parametrize("dist", [[-0.3, 0.05, 0, 0, 0.01], [0.1, -0.02, 0.001, -0.002, 0.0]])
def test_undistortion_inverts_opencv_distortion(dist):
    k = np.array([[700.0, 0.0, 330.0], [0.0, 690.0, 250.0], [0.0, 0.0, 1.0]])
    rng = np.random.default_rng(0)
    xy = rng.uniform(-0.6, 0.6, (200, 2))
    pts = np.concatenate([xy, np.ones((200, 1))], axis=1)
    px, _ = cv2.projectPoints(pts, np.zeros(3), np.zeros(3), k, np.asarray(dist, float))
    px = px.reshape(-1, 2)
    distorted = distort_normalised(xy, np.asarray(dist, float))
    np.testing.assert_allclose(distorted[:, 0] * 700.0 + 330.0, px[:, 0], atol=1e-9)
    np.testing.assert_allclose(undistort_normalised(px, k, dist), xy, atol=1e-9)


def test_board_poses_are_varied_and_seen_whole_by_every_camera():
    rig = ring_rig(3)
    poses = board_poses(rig, BOARD, 8, seed=1)
    assert len(poses) == 8
    normals = []
    for pose in poses:
        corners = pose.world_points(BOARD.corner_points())
        for camera in rig.cameras:
            px = camera.project(corners)
            w, h = camera.size
            assert np.all((px >= 0) & (px < [w, h]))
            r_bc, t_bc = pose.in_camera(camera)
            assert -r_bc[:, 2] @ -(t_bc + r_bc @ [50.0, 70.0, 0.0]) > 0  # the face is seen
        normals.append(pose.rotation_matrix[:, 2])
    spread = max(math.degrees(math.acos(np.clip(a @ b, -1, 1))) for a in normals for b in normals)
    assert spread > 15.0
    again = board_poses(rig, BOARD, 8, seed=1)
    assert all(
        np.array_equal(a.translation, b.translation) for a, b in zip(poses, again, strict=True)
    )


def test_no_pose_for_cameras_that_face_away_from_each_other():
    front = ring_rig(1).cameras[0]
    back = CameraModel(
        "back",
        front.size,
        front.matrix,
        front.distortions,
        cv2.Rodrigues(cv2.Rodrigues(front.rotation)[0] @ np.diag([-1.0, 1.0, -1.0]))[0].ravel(),
        front.translation * [1, 1, -1],
    )
    with pytest.raises(ValueError, match="every camera sees"):
        board_poses(CameraRig((front, back)), BOARD, 2, max_tries=300)


def test_a_calibration_set_is_one_folder_per_camera_and_not_overwritten(tmp_path):
    rig = ring_rig(2, size=(320, 240), focal_px=500.0)
    made = render_calibration_set(rig, BOARD, 2, tmp_path, supersample=1)
    assert list(made.folders) == ["cam0", "cam1"]
    assert [p.name for p in made.images["cam1"]] == ["cam1-0.png", "cam1-1.png"]
    image = cv2.imread(str(made.images["cam0"][1]), cv2.IMREAD_GRAYSCALE)
    assert image.shape == (240, 320)
    assert len(_detect(BOARD, image)[1]) > 10
    with pytest.raises(OutputExistsError, match=r"cam0-0\.png"):
        render_calibration_set(rig, BOARD, 2, tmp_path, poses=made.poses)


def test_a_board_pose_needs_three_numbers():
    with pytest.raises(ValueError, match="translation"):
        BoardPose(np.zeros(3), np.zeros(2))
