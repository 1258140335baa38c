"""Calibrate a camera rig from synchronised views of a ChArUco board, the way anipose does.

What ``realtime-pose calibrate`` runs. Each camera's input is a video, a folder of images or a
list of images of one ChArUco board that the cameras see at the same moments. The steps:

1. **Detection** (here, with aniposelib's ``CharucoBoard.detect_image``: OpenCV's
   ``CharucoDetector`` with anipose's detector settings) on every image, or every
   ``video_stride``-th video frame. Views are matched across cameras by frame: the video frame
   index, or for images the number that ends each file name (``top-…-7.jpg`` is frame 7) when
   every name ends in one, else the images' natural order.
2. **Checks** that make aniposelib's failures readable: every camera must see the board, and
   the cameras must be linked by views they share (a camera in no shared view cannot be
   placed).
3. **Calibration** by aniposelib's ``CameraGroup.calibrate_rows``: intrinsics initialised with
   ``cv2.initCameraMatrix2D`` (principal point at the image centre, which stays fixed), board
   poses by ``solvePnP``, initial extrinsics chained through the cameras' shared views, then
   ``bundle_adjust_iter`` (iteratively reweighted bundle adjustment over rotation, translation,
   one focal length and ``k1`` per camera; ``k2`` too with ``fit_k2``), the board's geometry
   tying the scale to ``square_length`` (millimetres by convention). Rows are built here rather
   than through ``calibrate_videos``, so image folders need no temporary video (which would add
   compression error to the corners) and every camera examines the same frames.
4. **Errors**: every corner seen by two or more cameras is triangulated (DLT on exactly
   undistorted points) and reprojected; per camera the median and mean pixel error over its
   corners, and how many views it gave.

The result is anipose's ``calibration.toml`` (our :func:`~realtime_pose.calibration.
save_calibration`, read by aniposelib's ``CameraGroup.load`` and by :func:`~realtime_pose.
calibration.load_calibration`) with the errors in its ``[metadata]``, and a JSON report beside
it. :func:`compare_calibrations` measures one calibration against another after aligning their
(arbitrary) world frames.

aniposelib is optional (the ``calibrate`` extra) and is imported inside the functions that need
it.
"""

from __future__ import annotations

import contextlib
import dataclasses
import glob
import io
import json
import logging
import math
import re
import time
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import cv2
import numpy as np

from realtime_pose.calibration import CameraModel, CameraRig, calibration_text
from realtime_pose.charuco import BoardSpec, CalibrationInputError
from realtime_pose.util.safe_write import check_free, writing_all

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp"})
"""File endings read as images; any other file is opened as a video."""

INSTALL_HINT = (
    "pip install 'realtime-pose[calibrate]' and then pip install --no-deps aniposelib==0.8.0 "
    "(its declared opencv-contrib-python would replace the headless OpenCV; `make setup` "
    "does both)"
)

MIN_CORNERS_POSE = 9
"""Corners a view needs to enter the calibration (aniposelib keeps views with >= 8 for the
extrinsics and needs >= 9 for the intrinsics)."""


def _aniposelib() -> tuple[Any, Any]:
    """aniposelib's ``boards`` and ``cameras`` modules, or one line saying how to install them."""
    try:
        import jax  # noqa: F401  (aniposelib triangulates with it, imported late)
        from aniposelib import boards, cameras
    except ImportError as exc:
        raise ImportError(
            f"realtime-pose calibrate needs aniposelib ({exc}): {INSTALL_HINT}"
        ) from None
    return boards, cameras


def aniposelib_board(board: BoardSpec) -> Any:
    """The board as aniposelib's ``CharucoBoard`` (needs aniposelib)."""
    boards, _ = _aniposelib()
    return boards.CharucoBoard(
        board.board_x,
        board.board_y,
        square_length=board.square_length,
        marker_length=board.marker_length,
        marker_bits=board.marker_bits,
        dict_size=board.dict_size,
    )


# -- inputs -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class CameraInput:
    """One camera's resolved input: its images, or its videos, in frame order."""

    name: str
    kind: Literal["images", "videos"]
    paths: tuple[Path, ...]
    given: str
    """What the caller named (for messages)."""


def _natural_key(path: Path) -> list[Any]:
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", path.name)]


def _trailing_number(path: Path) -> int | None:
    match = re.search(r"(\d+)$", path.stem)
    return int(match.group(1)) if match else None


def resolve_input(name: str, given: Path | str | Sequence[Path | str]) -> CameraInput:
    """A camera's input from what the user gave: a video, an image folder, a glob (``"*.png"``)
    or a list of images (or of videos). Folders and globs are taken in natural order
    (``-9`` before ``-10``), a list as given. Raises :class:`CalibrationInputError` naming the
    camera when a path does not exist, a folder or glob holds no images, or images and videos
    are mixed."""
    items = [given] if isinstance(given, (str, Path)) else list(given)
    described = ", ".join(str(i) for i in items)
    if not items:
        raise CalibrationInputError(f"camera {name!r}: no input given")
    paths: list[Path] = []
    for item in items:
        text = str(item)
        path = Path(item).expanduser()
        if isinstance(item, str) and any(ch in text for ch in "*?[") and not path.exists():
            found = sorted((Path(p) for p in glob.glob(str(path))), key=_natural_key)
            if not found:
                raise CalibrationInputError(f"camera {name!r}: {text} matches no file")
            paths.extend(p for p in found if p.is_file())
        elif path.is_dir():
            found = sorted(
                (p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES),
                key=_natural_key,
            )
            if not found:
                raise CalibrationInputError(
                    f"camera {name!r}: folder {path} holds no images "
                    f"({', '.join(sorted(IMAGE_SUFFIXES))}); give a video file instead"
                )
            paths.extend(found)
        elif path.is_file():
            paths.append(path)
        else:
            raise CalibrationInputError(f"camera {name!r}: {path} does not exist")
    images = [p for p in paths if p.suffix.lower() in IMAGE_SUFFIXES]
    if images and len(images) != len(paths):
        raise CalibrationInputError(
            f"camera {name!r}: give either images or videos, not both ({described})"
        )
    if images:
        return CameraInput(name, "images", tuple(images), described)
    return CameraInput(name, "videos", tuple(paths), described)


def _image_frame_keys(inputs: Sequence[CameraInput]) -> tuple[list[list[int]], str]:
    """Frame numbers of every image camera's images, and how they were matched.

    When every file name ends in a number, distinct within its camera (synchronised captures
    named ``<camera>-…-<frame>``), that number is the frame; otherwise the images are matched
    by natural order, which needs the same count in every camera.
    """
    numbers = [[_trailing_number(p) for p in i.paths] for i in inputs]
    if all(None not in ns and len(set(ns)) == len(ns) for ns in numbers):
        return numbers, "file-name frame number"  # type: ignore[return-value]
    counts = {i.name: len(i.paths) for i in inputs}
    if len(set(counts.values())) > 1:
        raise CalibrationInputError(
            f"the cameras have different numbers of images ({counts}) and their file names "
            "do not all end in a frame number, so views cannot be matched; name each image "
            "<camera>-<frame>.png with the frame number shared across cameras"
        )
    return [list(range(len(i.paths))) for i in inputs], "image order"


# -- detection --------------------------------------------------------------------------------


@dataclass
class _CameraDetections:
    name: str
    size: tuple[int, int]
    examined: int
    rows: list[dict[str, Any]] = field(default_factory=list)


def _gray(image: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(image, cv2.COLOR_BGR2GRAY) if image.ndim == 3 else image


def _detect_row(board: Any, gray: np.ndarray, key: tuple[int, int], source: str) -> dict | None:
    corners, ids = board.detect_image(gray)
    if corners is None or len(corners) == 0:
        return None
    return {"framenum": key, "corners": corners, "ids": ids, "fname": source}


def _detect_images(board: Any, cam: CameraInput, keys: Sequence[int]) -> _CameraDetections:
    size: tuple[int, int] | None = None
    rows = []
    for path, key in zip(cam.paths, keys, strict=True):
        image = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
        if image is None:
            raise CalibrationInputError(f"camera {cam.name!r}: cannot read image {path}")
        this = (image.shape[1], image.shape[0])
        if size is None:
            size = this
        elif this != size:
            raise CalibrationInputError(
                f"camera {cam.name!r}: {path} is {this[0]}x{this[1]}, its other images "
                f"{size[0]}x{size[1]}; one camera's images must share a size"
            )
        row = _detect_row(board, image, (0, key), str(path))
        if row is not None:
            rows.append(row)
    assert size is not None
    return _CameraDetections(cam.name, size, len(cam.paths), rows)


def _video_frames(path: Path) -> int:
    cap = cv2.VideoCapture(str(path))
    try:
        return int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) if cap.isOpened() else 0
    finally:
        cap.release()


def _detect_videos(board: Any, cam: CameraInput, stride: int) -> _CameraDetections:
    size: tuple[int, int] | None = None
    rows = []
    examined = 0
    for segment, path in enumerate(cam.paths):
        cap = cv2.VideoCapture(str(path))
        if not cap.isOpened():
            raise CalibrationInputError(
                f"camera {cam.name!r}: {path} is neither an image "
                f"({', '.join(sorted(IMAGE_SUFFIXES))}) nor a video OpenCV can open"
            )
        try:
            frame_index = 0
            while True:
                if frame_index % stride:
                    if not cap.grab():
                        break
                    frame_index += 1
                    continue
                ok, frame = cap.read()
                if not ok:
                    break
                this = (frame.shape[1], frame.shape[0])
                if size is None:
                    size = this
                elif this != size:
                    raise CalibrationInputError(
                        f"camera {cam.name!r}: {path} frame {frame_index} is {this[0]}x{this[1]}"
                        f", earlier frames {size[0]}x{size[1]}"
                    )
                examined += 1
                row = _detect_row(
                    board, _gray(frame), (segment, frame_index), f"{path}#{frame_index}"
                )
                if row is not None:
                    rows.append(row)
                frame_index += 1
        finally:
            cap.release()
    if size is None:
        raise CalibrationInputError(f"camera {cam.name!r}: no frame could be read from {cam.given}")
    return _CameraDetections(cam.name, size, examined, rows)


def _usable(row: Mapping[str, Any]) -> bool:
    """Whether a detection enters the calibration (aniposelib's own filter, and a pose)."""
    return row["ids"] is not None and row["ids"].size >= MIN_CORNERS_POSE


def _check_linked(detections: Sequence[_CameraDetections], board: BoardSpec) -> None:
    """Refuse, naming the cameras, a camera that never sees the board and a rig whose cameras
    are not linked by shared views (at least two per link: aniposelib averages pair poses)."""
    for det in detections:
        usable = [r for r in det.rows if _usable(r)]
        if not usable:
            seen = (
                f"{len(det.rows)} with fewer than {MIN_CORNERS_POSE} corners"
                if det.rows
                else "none"
            )
            raise CalibrationInputError(
                f"camera {det.name!r}: the board ({board.describe()}) was not found in any of "
                f"its {det.examined} views ({seen}); check that it is in view and sharp, and "
                "that the board file matches the printed board"
            )
    keys = [{r["framenum"] for r in det.rows if _usable(r)} for det in detections]
    names = [d.name for d in detections]
    group = {0}
    grew = True
    while grew:
        grew = False
        for j in range(len(names)):
            if j not in group and any(len(keys[i] & keys[j]) >= 2 for i in group):
                group.add(j)
                grew = True
    if len(group) < len(names):
        outside = [names[j] for j in range(len(names)) if j not in group]
        shared = {
            f"{names[i]}+{names[j]}": len(keys[i] & keys[j])
            for i in range(len(names))
            for j in range(i + 1, len(names))
        }
        raise CalibrationInputError(
            f"camera(s) {outside} share fewer than 2 board views with the cameras "
            f"{[names[i] for i in sorted(group)]}, so they cannot be placed in one rig "
            f"(views seen together: {shared}); record views where the board is seen by them "
            "and another camera at once, and check that the frames are matched"
        )


# -- calibration ------------------------------------------------------------------------------


@dataclass(frozen=True)
class CameraError:
    """One camera's reprojection error over the board corners, and what it contributed."""

    name: str
    median_px: float
    mean_px: float
    corners: int
    """Corner observations the error is over (seen by this and at least one other camera)."""
    views_used: int
    """Board views of this camera that entered the calibration."""
    views_detected: int
    """Views in which the board was found at all."""
    views_examined: int
    """Images (or video frames) looked at."""


@dataclass(frozen=True)
class CalibrationResult:
    """A calibrated rig with its errors; :meth:`report` is what the JSON report holds."""

    rig: CameraRig
    errors: tuple[CameraError, ...]
    board: BoardSpec
    aniposelib_error_px: float
    """aniposelib's own figure: the median over corners of the mean error over cameras."""
    matched_by: str
    inputs: dict[str, list[str]]
    comparison: dict[str, Any] | None = None
    output: Path | None = None
    observations: np.ndarray | None = field(default=None, repr=False)
    """The detected corners ``[C, P, 2]`` the errors are over (NaN: not seen by that camera):
    every corner of a view that two or more cameras used, for :func:`corner_errors` with
    another calibration."""

    def error(self, name: str) -> CameraError:
        """The errors of camera ``name``."""
        return next(e for e in self.errors if e.name == name)

    def report(self) -> dict[str, Any]:
        """Everything about the run, JSON-ready."""
        from realtime_pose import __version__

        doc: dict[str, Any] = {
            "created_by": f"realtime-pose {__version__} calibrate (aniposelib)",
            "created_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "board": self.board.model_dump(),
            "views_matched_by": self.matched_by,
            "aniposelib_error_px": self.aniposelib_error_px,
            "cameras": [
                {**dataclasses.asdict(e), **self.rig.camera(e.name).to_toml_table()}
                for e in self.errors
            ],
            "inputs": self.inputs,
        }
        if self.comparison is not None:
            doc["reference"] = self.comparison
        return doc

    def lines(self) -> list[str]:
        """Printable lines: one per camera, and the comparison with a reference if any."""
        out = []
        for e in self.errors:
            camera = self.rig.camera(e.name)
            out.append(
                f"{e.name}: reprojection median {e.median_px:.2f} px, mean {e.mean_px:.2f} px "
                f"over {e.corners} corners; {e.views_used} of {e.views_examined} views used "
                f"(board found in {e.views_detected}); f = {camera.matrix[0, 0]:.1f} px, "
                f"k1 = {camera.distortions[0]:+.4f}"
            )
        if self.comparison is not None:
            out.extend(comparison_lines(self.comparison))
        return out


def report_path(output: Path | str) -> Path:
    """The JSON report beside ``output``: ``calibration.toml`` → ``calibration.report.json``."""
    return Path(output).with_suffix(".report.json")


@contextlib.contextmanager
def _aniposelib_quietly(seed: int) -> Iterator[None]:
    """aniposelib prints and draws from NumPy's global generator: silence the one and seed the
    other (restoring it), so a calibration is reproducible and logs stay ours."""
    state = np.random.get_state()
    np.random.seed(seed)
    try:
        with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        np.random.set_state(state)


def calibrate(
    views: Mapping[str, Path | str | Sequence[Path | str]],
    board: BoardSpec,
    output: Path | str | None = None,
    *,
    overwrite: bool = False,
    reference: CameraRig | None = None,
    fit_k2: bool = False,
    video_stride: int | None = None,
    seed: int = 0,
    progress: Callable[[str], None] | None = None,
) -> CalibrationResult:
    """Calibrate the cameras ``views`` names (in that order) from their views of ``board``.

    Parameters
    ----------
    views
        Camera name → a video, an image folder, a glob, or a list of images (or videos).
    board
        The ChArUco board that was filmed.
    output
        Where to write ``calibration.toml`` (and ``<stem>.report.json`` beside it); refused
        before any work if either exists, unless ``overwrite``. ``None`` writes nothing.
    reference
        Another calibration of the same rig to compare with (:func:`compare_calibrations`).
    fit_k2
        Also fit ``k2`` (aniposelib fits ``k1`` only by default, as anipose does).
    video_stride
        Examine every n-th video frame (default: every frame up to 300 frames per video, else
        spaced to about 300).
    seed
        Seeds aniposelib's random resampling in bundle adjustment (results are reproducible).
    progress
        Called with one line per stage (the CLI prints them).

    Raises
    ------
    CalibrationInputError
        A camera's input is missing or unreadable, a camera never sees the board, or the
        cameras share too few views; the message names the camera.
    OutputExistsError
        ``output`` (or its report) exists and ``overwrite`` is false.
    ImportError
        aniposelib (the ``calibrate`` extra) is not installed.
    """
    say = progress or log.info
    if not views:
        raise CalibrationInputError("no cameras given")
    if video_stride is not None and video_stride < 1:
        raise CalibrationInputError(f"video_stride must be 1 or more, got {video_stride}")
    targets = [] if output is None else [Path(output), report_path(output)]
    for target in targets:
        check_free(target, overwrite)
    inputs = [resolve_input(name, given) for name, given in views.items()]
    boards, cameras_module = _aniposelib()
    detector = aniposelib_board(board)

    image_inputs = [i for i in inputs if i.kind == "images"]
    image_keys, matched_by = _image_frame_keys(image_inputs) if image_inputs else ([], "")
    video_inputs = [i for i in inputs if i.kind == "videos"]
    if video_inputs:
        longest = max(_video_frames(p) for i in video_inputs for p in i.paths)
        stride = video_stride or max(1, math.ceil(longest / 300))
        matched_by = ", ".join(m for m in (matched_by, f"video frame (every {stride})") if m)
    detections = []
    keys_of = dict(zip([i.name for i in image_inputs], image_keys, strict=True))
    for cam in inputs:
        if cam.kind == "images":
            det = _detect_images(detector, cam, keys_of[cam.name])
        else:
            det = _detect_videos(detector, cam, stride)
        say(
            f"{cam.name}: board found in {len(det.rows)} of {det.examined} "
            f"{'images' if cam.kind == 'images' else 'frames'}"
        )
        detections.append(det)
    _check_linked(detections, board)

    group = cameras_module.CameraGroup.from_names([d.name for d in detections])
    for camera, det in zip(group.cameras, detections, strict=True):
        camera.set_size(det.size)
        camera.extra_dist = bool(fit_k2)
    all_rows = [detector.fill_points_rows([r for r in d.rows if _usable(r)]) for d in detections]
    say("bundle adjustment (aniposelib)")
    with _aniposelib_quietly(seed):
        ba_error = float(group.calibrate_rows(all_rows, detector, verbose=False))
        rig = _rig_from_group(group)
        errors, observations = _camera_errors(boards, rig, detector, all_rows, detections)

    comparison = compare_calibrations(rig, reference) if reference is not None else None
    result = CalibrationResult(
        rig=rig,
        errors=errors,
        board=board,
        aniposelib_error_px=ba_error,
        matched_by=matched_by,
        inputs={i.name: [str(p) for p in i.paths] for i in inputs},
        comparison=comparison,
        output=Path(output) if output is not None else None,
        observations=observations,
    )
    if output is not None:
        _write(result, Path(output), overwrite)
    return result


def _rig_from_group(group: Any) -> CameraRig:
    cameras = []
    for camera in group.cameras:
        dist = np.zeros(5)
        d = np.asarray(camera.get_distortions(), np.float64).ravel()
        dist[: min(5, d.size)] = d[:5]
        cameras.append(
            CameraModel(
                name=camera.get_name(),
                size=tuple(int(v) for v in camera.get_size()),
                matrix=camera.get_camera_matrix(),
                distortions=dist,
                rotation=camera.get_rotation(),
                translation=camera.get_translation(),
            )
        )
    return CameraRig(tuple(cameras))


def _undistort(camera: CameraModel, pixels: np.ndarray) -> np.ndarray:
    """Pixels ``[N, 2]`` → normalised coordinates, iterated to convergence (OpenCV's default
    five iterations leave tenths of a pixel at the edge of a lens with ``k1 ≈ -0.3``)."""
    criteria = (cv2.TERM_CRITERIA_COUNT | cv2.TERM_CRITERIA_EPS, 50, 1e-12)
    pts = np.ascontiguousarray(pixels, np.float64).reshape(-1, 1, 2)
    iterate = getattr(cv2, "undistortPointsIter", None)  # OpenCV 4; 5 takes the criteria
    if iterate is not None:
        out = iterate(pts, camera.matrix, camera.distortions, None, None, criteria)
    else:
        out = cv2.undistortPoints(
            pts, camera.matrix, camera.distortions, None, None, None, criteria
        )
    return out.reshape(-1, 2)


def triangulate_corners(rig: CameraRig, observations: np.ndarray) -> np.ndarray:
    """World points ``[P, 3]`` of pixel observations ``[C, P, 2]`` (NaN: not seen) by linear
    triangulation (DLT on undistorted points, as aniposelib's); NaN where fewer than two
    cameras saw a point."""
    obs = np.asarray(observations, np.float64)
    n_cams, n_points, _ = obs.shape
    rows = np.zeros((n_points, 2 * n_cams, 4))
    seen = ~np.isnan(obs[..., 0])
    for c, camera in enumerate(rig.cameras):
        xy = np.full((n_points, 2), np.nan)
        if seen[c].any():
            xy[seen[c]] = _undistort(camera, obs[c, seen[c]])
        ext = camera.extrinsics
        block = np.stack(
            [xy[:, :1] * ext[2] - ext[0], xy[:, 1:] * ext[2] - ext[1]], axis=1
        )  # [P, 2, 4]
        rows[:, 2 * c : 2 * c + 2] = np.where(seen[c][:, None, None], block, 0.0)
    _, _, vt = np.linalg.svd(rows)
    homogeneous = vt[:, -1]
    points = homogeneous[:, :3] / homogeneous[:, 3:]
    points[seen.sum(axis=0) < 2] = np.nan
    return points


def corner_errors(rig: CameraRig, observations: np.ndarray) -> list[np.ndarray]:
    """Per camera, the reprojection errors (px) of its observations ``[C, P, 2]`` of points
    that two or more cameras saw, triangulated by :func:`triangulate_corners` with ``rig``."""
    obs = np.asarray(observations, np.float64)
    p3d = triangulate_corners(rig, obs)
    out = []
    for c, camera in enumerate(rig.cameras):
        seen = ~np.isnan(obs[c, :, 0]) & np.all(np.isfinite(p3d), axis=1)
        out.append(np.linalg.norm(camera.project(p3d[seen]) - obs[c, seen], axis=1))
    return out


def _camera_errors(
    boards: Any,
    rig: CameraRig,
    detector: Any,
    all_rows: Sequence[Sequence[dict]],
    detections: Sequence[_CameraDetections],
) -> tuple[tuple[CameraError, ...], np.ndarray]:
    """The corners that entered bundle adjustment (in views two or more cameras used), their
    errors per camera (:func:`corner_errors`), and the observations ``[C, P, 2]``."""
    rows = [[r for r in rows if r.get("rvec") is not None] for rows in all_rows]
    merged = boards.merge_rows(rows)
    imgp, extra = boards.extract_points(merged, detector, min_cameras=2)
    errors = corner_errors(rig, imgp)
    out = []
    for c, (err, det) in enumerate(zip(errors, detections, strict=True)):
        seen = ~np.isnan(imgp[c, :, 0])
        out.append(
            CameraError(
                name=det.name,
                median_px=float(np.median(err)) if err.size else math.nan,
                mean_px=float(np.mean(err)) if err.size else math.nan,
                corners=int(err.size),
                views_used=len(set(extra["ids"][seen].tolist())),
                views_detected=len(det.rows),
                views_examined=det.examined,
            )
        )
    return tuple(out), imgp


def _write(result: CalibrationResult, output: Path, overwrite: bool) -> None:
    from realtime_pose import __version__

    metadata = {
        "created_by": f"realtime-pose {__version__} calibrate (aniposelib)",
        "created_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "board": result.board.describe(),
        "views_matched_by": result.matched_by,
        "camera_order": [e.name for e in result.errors],
        "reprojection_median_px": [round(e.median_px, 4) for e in result.errors],
        "reprojection_mean_px": [round(e.mean_px, 4) for e in result.errors],
        "views_used": [e.views_used for e in result.errors],
        "corners_used": [e.corners for e in result.errors],
        "aniposelib_error_px": round(result.aniposelib_error_px, 4),
        "report": report_path(output).name,
    }
    rig = CameraRig(result.rig.cameras, metadata)
    with writing_all([output, report_path(output)], overwrite) as (toml_tmp, json_tmp):
        toml_tmp.write_text(calibration_text(rig), encoding="utf-8")
        json_tmp.write_text(json.dumps(result.report(), indent=2) + "\n", encoding="utf-8")


# -- comparison -------------------------------------------------------------------------------


def align_rigs(
    found: Sequence[CameraModel],
    reference: Sequence[CameraModel],
    lever_mm: float,
    with_scale: bool = False,
) -> tuple[float, np.ndarray, np.ndarray]:
    """The world change ``X_ref = s Q X_found + d`` that best maps the cameras ``found`` onto
    ``reference`` (paired in order).

    ``Q`` is the Kabsch solution for the camera centres (about their means) and orientations
    together, an orientation counting as its three axes' tips ``lever_mm`` from the centre: it
    maximises ``Σ b_iᵀ Q a_i + lever² Σ tr(R_ref,i Q R_found,iᵀ)``. ``s`` (1 unless
    ``with_scale``) is the least-squares scale of the centres given ``Q``; ``d`` matches the
    centres' means.
    """
    a = np.array([c.position for c in found])
    b = np.array([c.position for c in reference])
    mu_a, mu_b = a.mean(axis=0), b.mean(axis=0)
    a0, b0 = a - mu_a, b - mu_b
    h = b0.T @ a0
    for f, r in zip(found, reference, strict=True):
        h += lever_mm**2 * r.rotation_matrix.T @ f.rotation_matrix
    u, _, vt = np.linalg.svd(h)
    flip = np.diag([1.0, 1.0, float(np.sign(np.linalg.det(u @ vt)) or 1.0)])
    q = u @ flip @ vt
    spread = float(np.sum(a0 * a0))
    s = float(np.sum(b0 * (a0 @ q.T)) / spread) if with_scale and spread > 1e-12 else 1.0
    return s, q, mu_b - s * q @ mu_a


def compare_calibrations(
    found: CameraRig, reference: CameraRig, *, with_scale: bool = False
) -> dict[str, Any]:
    """How far ``found`` is from ``reference`` once their world frames are aligned.

    Cameras are paired by name (by order when the names differ but the counts agree). The
    world frames of two calibrations differ by an arbitrary rigid motion (anipose puts the
    origin at its first camera), so ``found`` is first mapped onto ``reference`` by the
    least-squares rigid transform (a similarity with ``with_scale``) over all camera poses at
    once (:func:`align_rigs`: centres and orientations, an orientation weighted as its axes'
    tips at a lever ``L``, the reference cameras' RMS distance from their centroid, so both
    count in millimetres). Then per camera: the centre distance (mm), the angle of the
    rotation between the two orientations (deg), the focal lengths and principal points (px)
    and the distortion coefficients' differences. The similarity fit's scale is reported
    either way (1 means the two agree on the unit).
    """
    if set(found.names) <= set(reference.names):
        pairs = [(c, reference.camera(c.name)) for c in found.cameras]
        matched = "name"
    elif len(found) == len(reference):
        pairs = list(zip(found.cameras, reference.cameras, strict=True))
        matched = "order"
    else:
        raise ValueError(
            f"cannot pair cameras {found.names} with the reference's {reference.names}: "
            "neither the names nor the counts agree"
        )
    ref_centres = np.array([r.position for _, r in pairs])
    lever = float(np.sqrt(np.mean(np.sum((ref_centres - ref_centres.mean(0)) ** 2, axis=1))))
    lever = lever if lever > 1e-9 else 100.0
    found_cams = [f for f, _ in pairs]
    ref_cams = [r for _, r in pairs]
    similarity_scale = align_rigs(found_cams, ref_cams, lever, with_scale=True)[0]
    s, q, d = align_rigs(found_cams, ref_cams, lever, with_scale)
    cameras: dict[str, Any] = {}
    for f, r in pairs:
        centre = s * q @ f.position + d
        relative = r.rotation_matrix @ (f.rotation_matrix @ q.T).T
        focal_f = float(np.mean(np.diag(f.matrix)[:2]))
        focal_r = float(np.mean(np.diag(r.matrix)[:2]))
        cameras[f.name] = {
            "reference_camera": r.name,
            "centre_distance_mm": float(np.linalg.norm(centre - r.position)),
            "rotation_deg": math.degrees(float(np.linalg.norm(cv2.Rodrigues(relative)[0]))),
            "focal_px": focal_f,
            "reference_focal_px": focal_r,
            "focal_change_percent": 100.0 * (focal_f - focal_r) / focal_r,
            "principal_point_shift_px": (f.matrix[:2, 2] - r.matrix[:2, 2]).tolist(),
            "distortions": f.distortions.tolist(),
            "reference_distortions": r.distortions.tolist(),
            "distortion_change": (f.distortions - r.distortions).tolist(),
        }
    distances = [c["centre_distance_mm"] for c in cameras.values()]
    angles = [c["rotation_deg"] for c in cameras.values()]
    return {
        "alignment": ("similarity" if with_scale else "rigid")
        + f" least squares over camera centres and orientations (lever {lever:.0f} mm)",
        "cameras_matched_by": matched,
        "scale": s,
        "similarity_scale": similarity_scale,
        "max_centre_distance_mm": max(distances),
        "max_rotation_deg": max(angles),
        "cameras": cameras,
    }


def comparison_lines(comparison: Mapping[str, Any]) -> list[str]:
    """Printable lines of :func:`compare_calibrations`' result."""
    out = [
        f"against the reference ({comparison['alignment']}; a scale fit gives "
        f"{comparison['similarity_scale']:.4f}):"
    ]
    for name, c in comparison["cameras"].items():
        out.append(
            f"  {name}: centre {c['centre_distance_mm']:.2f} mm, rotation "
            f"{c['rotation_deg']:.3f} deg, focal {c['focal_px']:.1f} vs "
            f"{c['reference_focal_px']:.1f} px ({c['focal_change_percent']:+.2f} %), "
            f"k1 {c['distortions'][0]:+.4f} vs {c['reference_distortions'][0]:+.4f}"
        )
    return out
