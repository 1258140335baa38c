"""``realtime-pose calibrate``: a rig calibrated from rendered ChArUco views recovers the truth;
the real four-camera rig agrees with anipose's calibration; bad inputs are refused by name."""

from __future__ import annotations

import contextlib
import io
import json
import math
from pathlib import Path

import cv2
import numpy as np
import pytest

from realtime_pose.calibration import CameraModel, CameraRig, load_calibration, save_calibration
from realtime_pose.cli import main
from realtime_pose.offline.calibrate import (
    BoardSpec,
    CalibrationInputError,
    calibrate,
    compare_calibrations,
    corner_errors,
    report_path,
    triangulate_corners,
)
from realtime_pose.sources.charuco_views import render_calibration_set, ring_rig

DATASET = Path(__file__).resolve().parents[3] / "shared" / "datasets" / "anipose-mouse-4cam"

BOARD = BoardSpec(
    board_x=6, board_y=8, square_length=20.0, marker_length=15.0, marker_bits=4, dict_size=50
)
N_POSES = 10

aniposelib = pytest.importorskip("aniposelib", reason="calibrate needs the calibrate extra")


def _write_video(images: list[Path], path: Path) -> Path:
    """The images as a lossless (FFV1) video, frame k = image k."""
    first = cv2.imread(str(images[0]), cv2.IMREAD_GRAYSCALE)
    h, w = first.shape
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"FFV1"), 10, (w, h), False)
    assert writer.isOpened(), "OpenCV cannot write FFV1 here"
    for image in images:
        writer.write(cv2.imread(str(image), cv2.IMREAD_GRAYSCALE))
    writer.release()
    return path


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory):
    """A 3-camera ring rig (640×480, k1 < 0) and its rendered views: cam0 as a video, cam1 as
    an image folder, cam2 as a glob; the truth and the board as files."""
    root = tmp_path_factory.mktemp("synthetic_rig")
    truth = ring_rig(3, size=(640, 480), focal_px=520.0, k1=-0.06)
    views = render_calibration_set(truth, BOARD, N_POSES, root / "views", seed=3)
    (root / "board.toml").write_text(BOARD.toml_text())
    save_calibration(truth, root / "truth.toml")
    video = _write_video(views.images["cam0"], root / "cam0.avi")
    return {
        "root": root,
        "truth": truth,
        "views": views,
        "cameras": {
            "cam0": str(video),
            "cam1": str(views.folders["cam1"]),
            "cam2": str(views.folders["cam2"] / "*.png"),
        },
    }


@pytest.fixture(scope="module")
def cli_run(synthetic):
    """``realtime-pose calibrate`` run once on the synthetic views, with the truth as reference."""
    out = synthetic["root"] / "calibration.toml"
    argv = ["calibrate", "--board", str(synthetic["root"] / "board.toml"), "-o", str(out)]
    for name, path in synthetic["cameras"].items():
        argv += ["--camera", f"{name}={path}"]
    argv += ["--reference", str(synthetic["root"] / "truth.toml")]
    stdout = io.StringIO()
    with contextlib.redirect_stdout(stdout):
        code = main(argv)
    return {"code": code, "stdout": stdout.getvalue(), "output": out, "argv": argv}


def test_calibration_from_rendered_views_recovers_the_rig(cli_run, synthetic):
    assert cli_run["code"] == 0, cli_run["stdout"]
    found = load_calibration(cli_run["output"])
    assert found.names == ["cam0", "cam1", "cam2"]
    comparison = compare_calibrations(found, synthetic["truth"])
    for name, c in comparison["cameras"].items():
        assert c["centre_distance_mm"] < 1.0, (name, c)
        assert c["rotation_deg"] < 0.2, (name, c)
        assert abs(c["focal_change_percent"]) < 0.5, (name, c)
        assert abs(c["distortion_change"][0]) < 0.03, (name, c)
    assert abs(comparison["similarity_scale"] - 1.0) < 0.005  # the board sets the millimetre
    for camera in found.cameras:  # aniposelib's model: principal point fixed at the centre
        np.testing.assert_allclose(camera.matrix[:2, 2], [319.5, 239.5])


def test_errors_are_printed_and_stored_in_the_toml_and_the_report(cli_run):
    out = cli_run["output"]
    meta = load_calibration(out).metadata
    assert meta["camera_order"] == ["cam0", "cam1", "cam2"]
    assert all(0 < e < 0.2 for e in meta["reprojection_median_px"])
    assert all(
        m >= e
        for m, e in zip(meta["reprojection_mean_px"], meta["reprojection_median_px"], strict=True)
    )
    assert all(v >= N_POSES - 2 for v in meta["views_used"])
    report = json.loads(report_path(out).read_text())
    assert [c["name"] for c in report["cameras"]] == ["cam0", "cam1", "cam2"]
    assert report["cameras"][0]["views_examined"] == N_POSES
    assert report["reference"]["max_centre_distance_mm"] < 1.0
    assert report["views_matched_by"].startswith("file-name frame number")
    stdout = cli_run["stdout"]
    for name in ("cam0", "cam1", "cam2"):
        assert f"{name}: reprojection median" in stdout
        assert f"  {name}: centre" in stdout  # the comparison with --reference
    assert "cam0: board found in" in stdout and "frames" in stdout  # cam0 was a video


def test_aniposelib_and_our_reader_read_the_same_file(cli_run):
    from aniposelib.cameras import CameraGroup

    ours = load_calibration(cli_run["output"])
    theirs = CameraGroup.load(str(cli_run["output"]))
    assert theirs.get_names() == ours.names
    for camera, group_camera in zip(ours.cameras, theirs.cameras, strict=True):
        np.testing.assert_array_equal(camera.matrix, group_camera.get_camera_matrix())
        np.testing.assert_array_equal(camera.rotation, group_camera.get_rotation())
        np.testing.assert_array_equal(camera.translation, group_camera.get_translation())
        np.testing.assert_array_equal(camera.distortions, group_camera.get_distortions())
        point = np.array([[10.0, -20.0, 30.0]])
        np.testing.assert_allclose(
            camera.project(point).ravel(), group_camera.project(point).ravel(), atol=1e-9
        )
    assert theirs.metadata["camera_order"] == ours.names


def test_an_existing_calibration_is_not_replaced(cli_run, capsys):
    before = cli_run["output"].read_bytes()
    assert main(cli_run["argv"]) == 2
    err = capsys.readouterr().err
    assert str(cli_run["output"]) in err and "--overwrite" in err
    assert cli_run["output"].read_bytes() == before


def test_a_missing_camera_path_is_refused_naming_the_camera(synthetic, tmp_path):
    views = dict(synthetic["cameras"], cam1=str(tmp_path / "nowhere"))
    with pytest.raises(CalibrationInputError, match=r"camera 'cam1': .*nowhere does not exist"):
        calibrate(views, BOARD)
    with pytest.raises(CalibrationInputError, match=r"camera 'cam2': .*matches no file"):
        calibrate(dict(synthetic["cameras"], cam2=str(tmp_path / "*.png")), BOARD)


def test_a_camera_that_never_sees_the_board_is_named(synthetic, tmp_path):
    blank = tmp_path / "blank"
    blank.mkdir()
    for k in range(N_POSES):
        cv2.imwrite(str(blank / f"cam2-{k}.png"), np.full((480, 640), 110, np.uint8))
    views = {
        "cam0": synthetic["views"].folders["cam0"],
        "cam1": synthetic["views"].folders["cam1"],
        "cam2": blank,
    }
    with pytest.raises(CalibrationInputError, match=r"camera 'cam2': the board .* not found"):
        calibrate(views, BOARD)


def test_cameras_that_share_no_views_are_named(synthetic, tmp_path):
    images = synthetic["views"].images
    views = {"cam0": images["cam0"][:5], "cam1": images["cam1"][5:]}
    with pytest.raises(CalibrationInputError, match=r"camera\(s\) \['cam1'\] share fewer"):
        calibrate(views, BOARD)


def test_missing_aniposelib_is_one_line_naming_the_extra(synthetic, monkeypatch):
    monkeypatch.setitem(__import__("sys").modules, "aniposelib", None)
    with pytest.raises(ImportError, match=r"realtime-pose\[calibrate\]") as info:
        calibrate(synthetic["cameras"], BOARD)
    assert "\n" not in str(info.value) and "--no-deps aniposelib" in str(info.value)


def test_board_files_are_read_and_bad_ones_refused(tmp_path):
    sleap = tmp_path / "board.toml"
    sleap.write_text(BOARD.toml_text())
    assert BoardSpec.from_toml(sleap) == BOARD
    anipose = tmp_path / "config.toml"
    anipose.write_text(
        "[calibration]\nboard_type = 'charuco'\nboard_size = [6, 8]\nboard_marker_bits = 4\n"
        "board_marker_dict_number = 50\nboard_marker_length = 15\n"
        "board_square_side_length = 20\n"
    )
    assert BoardSpec.from_toml(anipose) == BOARD
    checker = tmp_path / "checker.toml"
    checker.write_text("board_x = 8\nboard_y = 11\nsquare_length = 24.0\n")
    with pytest.raises(CalibrationInputError, match=r"needs a ChArUco board.*checkerboard"):
        BoardSpec.from_toml(checker)
    wide = tmp_path / "wide.toml"
    wide.write_text(BOARD.toml_text().replace("marker_length = 15.0", "marker_length = 25.0"))
    with pytest.raises(CalibrationInputError, match=r"wide\.toml.*smaller than square_length"):
        BoardSpec.from_toml(wide)
    with pytest.raises(CalibrationInputError, match="no such board file"):
        BoardSpec.from_toml(tmp_path / "none.toml")


def _moved(rig: CameraRig, rotation: np.ndarray, shift: np.ndarray, scale: float) -> CameraRig:
    """The same rig in another world frame: ``X' = scale · rotation · X + shift``."""
    cameras = []
    for c in rig.cameras:
        r_new = c.rotation_matrix @ rotation.T
        centre = scale * rotation @ c.position + shift
        cameras.append(
            CameraModel(
                c.name,
                c.size,
                c.matrix,
                c.distortions,
                cv2.Rodrigues(r_new)[0].ravel(),
                -r_new @ centre,
            )
        )
    return CameraRig(tuple(cameras))


def test_comparison_undoes_a_change_of_world_frame_and_finds_a_moved_camera():
    truth = ring_rig(3)
    rotation = cv2.Rodrigues(np.array([0.3, -1.1, 2.0]))[0]
    other = _moved(truth, rotation, np.array([120.0, -40.0, 900.0]), 1.0)
    same = compare_calibrations(other, truth)
    assert same["max_centre_distance_mm"] < 1e-9 and same["max_rotation_deg"] < 1e-6
    assert same["cameras_matched_by"] == "name"

    bumped = list(other.cameras)
    c = bumped[1]
    bumped[1] = CameraModel(
        c.name,
        c.size,
        c.matrix * [[1.01], [1.01], [1]],
        c.distortions + np.array([0.01, 0, 0, 0, 0]),
        c.rotation,
        c.translation + np.array([6.0, 0.0, 0.0]),
    )
    moved = compare_calibrations(CameraRig(tuple(bumped)), truth)
    distances = {n: v["centre_distance_mm"] for n, v in moved["cameras"].items()}
    assert max(distances, key=distances.get) == "cam1" and 2.0 < distances["cam1"] <= 6.0
    assert moved["cameras"]["cam1"]["focal_change_percent"] == pytest.approx(1.0)
    assert moved["cameras"]["cam1"]["distortion_change"][0] == pytest.approx(0.01)

    scaled = compare_calibrations(_moved(truth, rotation, np.zeros(3), 1.02), truth)
    assert scaled["similarity_scale"] == pytest.approx(1 / 1.02)
    assert (
        compare_calibrations(_moved(truth, rotation, np.zeros(3), 1.02), truth, with_scale=True)[
            "max_centre_distance_mm"
        ]
        < 1e-6
    )
    assert scaled["max_centre_distance_mm"] > 1.0  # rigid: the wrong unit shows


@pytest.mark.skipif(not DATASET.is_dir(), reason="anipose-mouse-4cam dataset not present")
def test_the_real_rig_agrees_with_anipose_calibration(tmp_path):
    reference = load_calibration(DATASET / "calibration.fd57457.toml")
    board = BoardSpec.from_toml(DATASET / "board.toml")
    views = {name: DATASET / name / "calibration_images" for name in reference.names}
    result = calibrate(views, board, tmp_path / "calibration.toml", reference=reference)
    assert result.matched_by == "file-name frame number"
    for e in result.errors:
        assert e.views_used >= 19 and e.median_px < 0.5, e
    comparison = result.comparison
    assert comparison is not None
    for name, c in comparison["cameras"].items():
        # anipose's own run (its video, older OpenCV detections) differs by a few mm / tenths
        # of a degree; a wrong pairing or frame match would be centimetres and degrees off.
        assert c["centre_distance_mm"] < 5.0, (name, c)
        assert c["rotation_deg"] < 1.0, (name, c)
        assert abs(c["focal_change_percent"]) < 2.0, (name, c)
        assert math.isclose(c["distortions"][0], c["reference_distortions"][0], abs_tol=0.03)
    assert abs(comparison["similarity_scale"] - 1.0) < 0.01


def test_corners_are_triangulated_exactly_through_strong_distortion():
    rig = ring_rig(3, k1=-0.3)
    points = np.random.default_rng(0).uniform(-80.0, 80.0, (40, 3))
    observations = rig.project(points)
    observations[0, :10] = np.nan
    observations[1, :5] = np.nan  # points 0-4: seen by cam2 only
    found = triangulate_corners(rig, observations)
    assert np.isnan(found[:5]).all()
    np.testing.assert_allclose(found[5:], points[5:], atol=1e-8)
    errors = corner_errors(rig, observations)
    assert [e.size for e in errors] == [30, 35, 35]
    assert max(e.max() for e in errors) < 1e-8
