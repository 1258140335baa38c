"""ChArUco board images with exact ground truth: the board at a known pose, seen by any camera.

What ``realtime-pose calibrate`` is tested and benchmarked on. A view is rendered by inverse
mapping, so the image is the camera model's, lens distortion included: every output pixel is
split into ``supersample × supersample`` sub-pixels; each sub-pixel centre is undistorted to a
normalised ray (Newton's method on the radius for anipose's radial model, else
``cv2.undistortPoints`` iterated to convergence; checked by distorting it back), the ray meets
the board plane, and the board image (:meth:`~realtime_pose.charuco.BoardSpec.
opencv_board`'s ``generateImage``, at ``px_per_square``) is sampled there with ``cv2.remap``
(bilinear, on its 1/32-texel grid); the sub-pixels are then averaged. Pixels whose ray misses
the board, or lies beyond the radius where the distortion model folds back on itself, show the
background. Corners refined on the image land within ~0.05 px (median) of their projection,
with no bias (``tests/sources/test_charuco_views.py``).

Coordinates are OpenCV's: a board point ``(x, y, 0)`` in millimetres (origin at the board's
outer top-left corner, ``x`` along its ``board_x`` squares, ``y`` along ``board_y``; the printed
face looks towards ``-z``) is at ``R @ p + t`` in the world, and chessboard corner ``i`` is
``BoardSpec.corner_points()[i]`` (the id that the detector reports).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from realtime_pose.calibration import CameraModel, CameraRig
from realtime_pose.charuco import BoardSpec
from realtime_pose.util.safe_write import OutputExistsError, writing

_UNDISTORT_CRITERIA = (cv2.TERM_CRITERIA_COUNT | cv2.TERM_CRITERIA_EPS, 50, 1e-12)
_ROUND_TRIP_PX = 1e-3  # a ray whose distortion misses its pixel by more is beyond the fold


@dataclass(frozen=True, eq=False)
class BoardPose:
    """Where the board is: board point ``p`` (mm, board frame) is at ``R @ p + t`` in the world."""

    rotation: np.ndarray
    """Rodrigues vector of the board → world rotation."""
    translation: np.ndarray
    """World position of the board's origin (its outer top-left corner), mm."""

    def __post_init__(self) -> None:
        for name in ("rotation", "translation"):
            value = np.asarray(getattr(self, name), np.float64).reshape(-1)
            if value.shape != (3,):
                raise ValueError(f"board pose: {name} must have 3 numbers")
            object.__setattr__(self, name, value)

    @property
    def rotation_matrix(self) -> np.ndarray:
        """3×3 board → world rotation."""
        return cv2.Rodrigues(self.rotation)[0]

    def world_points(self, board_points: np.ndarray) -> np.ndarray:
        """Board-frame points ``[..., 3]`` → world points ``[..., 3]``."""
        pts = np.asarray(board_points, np.float64)
        return pts @ self.rotation_matrix.T + self.translation

    def in_camera(self, camera: CameraModel) -> tuple[np.ndarray, np.ndarray]:
        """The board → camera rotation (3×3) and translation (the pose as that camera sees it)."""
        r_cam = camera.rotation_matrix
        return r_cam @ self.rotation_matrix, r_cam @ self.translation + camera.translation


def distort_normalised(xy: np.ndarray, distortions: np.ndarray) -> np.ndarray:
    """Normalised, undistorted coordinates ``[..., 2]`` → distorted ones (OpenCV's
    ``[k1, k2, p1, p2, k3]`` model, what ``cv2.projectPoints`` applies)."""
    k1, k2, p1, p2, k3 = (float(v) for v in np.asarray(distortions, np.float64)[:5])
    x, y = xy[..., 0], xy[..., 1]
    r2 = x * x + y * y
    radial = 1.0 + r2 * (k1 + r2 * (k2 + r2 * k3))
    xd = x * radial + 2.0 * p1 * x * y + p2 * (r2 + 2.0 * x * x)
    yd = y * radial + p1 * (r2 + 2.0 * y * y) + 2.0 * p2 * x * y
    return np.stack([xd, yd], axis=-1)


def undistort_normalised(
    pixels: np.ndarray, matrix: np.ndarray, distortions: np.ndarray
) -> np.ndarray:
    """Pixels ``[..., 2]`` → normalised, undistorted coordinates, iterated to convergence.

    Radial-only distortion (``p1 = p2 = 0``, anipose's model) is inverted by Newton's method on
    the radius, vectorised; otherwise ``cv2.undistortPoints`` with a tight criterion does it.
    Beyond the radius where the model folds back the answer is meaningless: check it by
    distorting it back (:func:`distort_normalised`).
    """
    dist = np.asarray(distortions, np.float64)[:5]
    k = np.asarray(matrix, np.float64)
    if dist[2] != 0.0 or dist[3] != 0.0:
        flat = np.ascontiguousarray(pixels, np.float64).reshape(-1, 1, 2)
        out = cv2.undistortPoints(flat, k, dist, None, None, None, _UNDISTORT_CRITERIA)
        return out.reshape(pixels.shape)
    yd = (pixels[..., 1] - k[1, 2]) / k[1, 1]
    xd = (pixels[..., 0] - k[0, 2] - k[0, 1] * yd) / k[0, 0]
    rd = np.hypot(xd, yd)
    k1, k2, _, _, k3 = (float(v) for v in dist)
    r_fold = monotonic_radius(dist)
    rd_fold = r_fold * (1.0 + r_fold**2 * (k1 + r_fold**2 * (k2 + r_fold**2 * k3)))
    inside = rd < rd_fold  # beyond, no radius maps here: left as is, caught by the check
    target = rd[inside]
    r = target.copy()
    for _ in range(20):
        r2 = r * r
        f = r * (1.0 + r2 * (k1 + r2 * (k2 + r2 * k3))) - target
        step = f / (1.0 + r2 * (3.0 * k1 + r2 * (5.0 * k2 + r2 * 7.0 * k3)))
        r -= step
        if step.size == 0 or np.max(np.abs(step)) < 1e-14:
            break
    undistorted = rd.copy()
    undistorted[inside] = r
    with np.errstate(divide="ignore", invalid="ignore"):
        scale = np.where(rd > 0, undistorted / rd, 1.0)
    return np.stack([xd * scale, yd * scale], axis=-1)


def monotonic_radius(distortions: np.ndarray, limit: float = 4.0) -> float:
    """The normalised radius beyond which the radial distortion folds back (its distorted radius
    stops growing); ``limit`` when it does not fold before that."""
    k1, k2, _, _, k3 = (float(v) for v in np.asarray(distortions, np.float64)[:5])
    r = np.linspace(0.0, limit, 4001)
    r2 = r * r
    slope = 1.0 + 3.0 * k1 * r2 + 5.0 * k2 * r2**2 + 7.0 * k3 * r2**3
    bad = np.nonzero(slope <= 0.05)[0]
    return float(r[bad[0]]) if bad.size else limit


class CharucoRenderer:
    """Renders :class:`BoardSpec`'s board into cameras; rays are computed once per camera.

    Parameters
    ----------
    board
        The board to draw.
    supersample
        Sub-pixels per pixel side (anti-aliasing); 3 keeps edges within a few hundredths of a
        pixel of their area-weighted value.
    px_per_square
        Resolution of the board image that is sampled.
    margin_squares
        White border around the squares, in squares (a printed board's quiet zone).
    black, white, background
        Grey levels of the board's black and white and of everything else.
    """

    def __init__(
        self,
        board: BoardSpec,
        supersample: int = 3,
        px_per_square: int = 96,
        margin_squares: float = 0.5,
        black: int = 25,
        white: int = 225,
        background: int = 110,
    ) -> None:
        if supersample < 1 or px_per_square < 8:
            raise ValueError("supersample must be >= 1 and px_per_square >= 8")
        self.board = board
        self.supersample = int(supersample)
        self.background = float(background)
        self.margin_px = int(round(margin_squares * px_per_square))
        self.px_per_mm = px_per_square / board.square_length
        squares = board.opencv_board().generateImage(
            (board.board_x * px_per_square, board.board_y * px_per_square), marginSize=0
        )
        squares = cv2.copyMakeBorder(
            squares, *([self.margin_px] * 4), cv2.BORDER_CONSTANT, value=255
        )
        self.texture = (black + squares.astype(np.float32) * ((white - black) / 255.0)).astype(
            np.float32
        )
        self._rays: dict[int, tuple[CameraModel, np.ndarray, np.ndarray]] = {}

    def _camera_rays(self, camera: CameraModel) -> tuple[np.ndarray, np.ndarray]:
        """Normalised rays ``[H·s, W·s, 2]`` of every sub-pixel, and where they are valid."""
        cached = self._rays.get(id(camera))
        if cached is not None and cached[0] is camera:
            return cached[1], cached[2]
        s = self.supersample
        w, h = camera.size
        u = (np.arange(w * s) + 0.5) / s - 0.5
        v = (np.arange(h * s) + 0.5) / s - 0.5
        pixels = np.stack(np.meshgrid(u, v), axis=-1)
        rays = undistort_normalised(pixels, camera.matrix, camera.distortions)
        back = distort_normalised(rays, camera.distortions)
        k = camera.matrix
        back_px = np.stack(
            [
                k[0, 0] * back[..., 0] + k[0, 1] * back[..., 1] + k[0, 2],
                k[1, 1] * back[..., 1] + k[1, 2],
            ],
            axis=-1,
        )
        valid = np.linalg.norm(back_px - pixels, axis=-1) < _ROUND_TRIP_PX
        valid &= np.hypot(rays[..., 0], rays[..., 1]) < monotonic_radius(camera.distortions)
        rays = rays.astype(np.float32)  # ~1e-4 px of error, half the memory of float64
        self._rays[id(camera)] = (camera, rays, valid)
        return rays, valid

    def render(self, camera: CameraModel, pose: BoardPose) -> np.ndarray:
        """The ``uint8`` grey image ``[H, W]`` that ``camera`` takes of the board at ``pose``."""
        rays, valid = self._camera_rays(camera)
        r_bc, t_bc = pose.in_camera(camera)
        # A ray λ·(x, y, 1) meets the board plane n·(X - t) = 0 at λ = n·t / n·d; the board
        # point is then Rᵀ(λ d − t).
        n = r_bc[:, 2]
        denom = rays[..., 0] * n[0] + rays[..., 1] * n[1] + n[2]
        with np.errstate(divide="ignore", invalid="ignore"):
            lam = float(n @ t_bc) / denom
        hit = valid & (lam > 0) & np.isfinite(lam)
        lam = np.where(hit, lam, 0.0)
        xc = lam * rays[..., 0] - t_bc[0]
        yc = lam * rays[..., 1] - t_bc[1]
        zc = lam - t_bc[2]
        bx = r_bc[0, 0] * xc + r_bc[1, 0] * yc + r_bc[2, 0] * zc
        by = r_bc[0, 1] * xc + r_bc[1, 1] * yc + r_bc[2, 1] * zc
        # Texture pixel centres sit at (i + 0.5) / px_per_mm on the board (the squares' corners
        # are on pixel edges), shifted by the white margin.
        map_x = (bx * self.px_per_mm - 0.5 + self.margin_px).astype(np.float32)
        map_y = (by * self.px_per_mm - 0.5 + self.margin_px).astype(np.float32)
        map_x[~hit] = -1e6
        map_y[~hit] = -1e6
        fine = cv2.remap(
            self.texture,
            map_x,
            map_y,
            cv2.INTER_LINEAR,
            borderMode=cv2.BORDER_CONSTANT,
            borderValue=self.background,
        )
        w, h = camera.size
        image = (
            cv2.resize(fine, (w, h), interpolation=cv2.INTER_AREA) if self.supersample > 1 else fine
        )
        return np.clip(np.rint(image), 0, 255).astype(np.uint8)

    def corners_px(self, camera: CameraModel, pose: BoardPose) -> np.ndarray:
        """Where the board's chessboard corners ``[N, 2]`` fall in ``camera`` (exact truth)."""
        return camera.project(pose.world_points(self.board.corner_points()))


def render_view(
    camera: CameraModel, board: BoardSpec, pose: BoardPose, supersample: int = 3
) -> np.ndarray:
    """One view of ``board`` at ``pose`` by ``camera`` (a :class:`CharucoRenderer` for one)."""
    return CharucoRenderer(board, supersample=supersample).render(camera, pose)


def rig_centre(rig: CameraRig) -> np.ndarray:
    """The world point nearest (least squares) to every camera's optical axis."""
    a = np.zeros((3, 3))
    b = np.zeros(3)
    for camera in rig.cameras:
        axis = camera.rotation_matrix[2]
        proj = np.eye(3) - np.outer(axis, axis)
        a += proj
        b += proj @ camera.position
    if np.linalg.matrix_rank(a) < 3:  # one camera, or parallel axes: a point in front of them
        return np.mean([c.position + 500.0 * c.rotation_matrix[2] for c in rig.cameras], axis=0)
    return np.linalg.solve(a, b)


def look_at(
    position: np.ndarray, target: np.ndarray, up: Sequence[float] = (0, 0, 1)
) -> np.ndarray:
    """The world → camera rotation (3×3) of a camera at ``position`` looking at ``target``, its
    image ``y`` axis pointing away from ``up``."""
    z = np.asarray(target, np.float64) - np.asarray(position, np.float64)
    z /= np.linalg.norm(z)
    x = np.cross(z, np.asarray(up, np.float64))
    if np.linalg.norm(x) < 1e-9:  # looking along up: any x will do
        x = np.cross(z, [1.0, 0.0, 0.0])
    x /= np.linalg.norm(x)
    return np.stack([x, np.cross(z, x), z])


def ring_rig(
    n_cameras: int = 3,
    *,
    distance_mm: float = 400.0,
    elevation_deg: float = 50.0,
    size: tuple[int, int] = (640, 480),
    focal_px: float = 520.0,
    k1: float = -0.05,
    azimuth_deg: float = 20.0,
) -> CameraRig:
    """``n_cameras`` cameras evenly spaced on a ring, ``distance_mm`` from the origin and
    ``elevation_deg`` above its plane, all looking at the origin (``z`` up), as a calibrated
    rig: principal point at the image centre, square pixels, distortion ``k1`` only (the
    model aniposelib fits), ``k1`` growing by a fifth per camera so the cameras differ."""
    w, h = size
    el = math.radians(elevation_deg)
    cameras = []
    for i in range(n_cameras):
        az = math.radians(azimuth_deg) + 2.0 * math.pi * i / n_cameras
        position = distance_mm * np.array(
            [math.cos(az) * math.cos(el), math.sin(az) * math.cos(el), math.sin(el)]
        )
        rotation = look_at(position, np.zeros(3))
        cameras.append(
            CameraModel(
                name=f"cam{i}",
                size=(w, h),
                matrix=np.array(
                    [[focal_px, 0.0, (w - 1) / 2.0], [0.0, focal_px, (h - 1) / 2.0], [0, 0, 1]]
                ),
                distortions=[k1 * (1.0 + 0.2 * i), 0.0, 0.0, 0.0, 0.0],
                rotation=cv2.Rodrigues(rotation)[0].ravel(),
                translation=-rotation @ position,
            )
        )
    return CameraRig(tuple(cameras))


def _seen_well(
    camera: CameraModel,
    board: BoardSpec,
    pose: BoardPose,
    outline: np.ndarray,
    max_view_angle_deg: float,
    border_fraction: float,
    min_square_px: float,
) -> bool:
    r_bc, t_bc = pose.in_camera(camera)
    pts = outline @ r_bc.T + t_bc
    if np.any(pts[:, 2] <= 1e-6):
        return False
    centre = np.mean(pts, axis=0)
    front = -r_bc[:, 2]  # the printed face looks towards the board's -z
    cos_view = float(front @ (-centre) / np.linalg.norm(centre))
    if cos_view < math.cos(math.radians(max_view_angle_deg)):
        return False
    normalised = pts[:, :2] / pts[:, 2:]
    if np.max(np.hypot(normalised[:, 0], normalised[:, 1])) > 0.9 * monotonic_radius(
        camera.distortions
    ):
        return False
    px = camera.project(pose.world_points(outline))
    w, h = camera.size
    bx, by = border_fraction * w, border_fraction * h
    if np.any(px[:, 0] < bx) or np.any(px[:, 0] > w - 1 - bx):
        return False
    if np.any(px[:, 1] < by) or np.any(px[:, 1] > h - 1 - by):
        return False
    square_px = board.square_length * camera.matrix[0, 0] * cos_view / float(centre[2])
    return square_px >= min_square_px


def board_poses(
    rig: CameraRig,
    board: BoardSpec,
    n_poses: int,
    *,
    seed: int = 0,
    max_tilt_deg: float = 30.0,
    spread_mm: float | None = None,
    max_view_angle_deg: float = 60.0,
    border_fraction: float = 0.04,
    min_square_px: float = 10.0,
    max_tries: int = 20000,
) -> list[BoardPose]:
    """``n_poses`` varied board poses that every camera of ``rig`` sees whole and from the front.

    Poses are drawn at random (reproducibly, from ``seed``) around :func:`rig_centre`: the board
    centre within ``spread_mm`` of it (default: a sixth of the cameras' mean distance), its face
    turned towards the cameras' mean direction and tilted by up to ``max_tilt_deg``, any
    in-plane rotation. A pose is kept when, for every camera, the whole board (with its margin)
    lies inside the image (``border_fraction`` away from the edges) and inside the distortion
    model's monotonic radius, its face is within ``max_view_angle_deg`` of the camera and a square
    spans at least ``min_square_px`` pixels.

    Raises
    ------
    ValueError
        No pose every camera sees was found in ``max_tries`` draws (the message says which
        camera rejected most of them).
    """
    rng = np.random.default_rng(seed)
    centre = rig_centre(rig)
    towards = [c.position - centre for c in rig.cameras]
    mean_distance = float(np.mean([np.linalg.norm(v) for v in towards]))
    facing = np.sum([v / np.linalg.norm(v) for v in towards], axis=0)
    if np.linalg.norm(facing) < 1e-6:
        facing = towards[0]
    facing = facing / np.linalg.norm(facing)
    spread = mean_distance / 6.0 if spread_mm is None else float(spread_mm)
    w_mm, h_mm = board.size_mm
    margin = board.square_length * 0.5
    outline = np.array(
        [
            [-margin, -margin, 0.0],
            [w_mm + margin, -margin, 0.0],
            [w_mm + margin, h_mm + margin, 0.0],
            [-margin, h_mm + margin, 0.0],
        ]
    )
    middle = np.array([w_mm / 2.0, h_mm / 2.0, 0.0])
    rejected_by = {name: 0 for name in rig.names}
    poses: list[BoardPose] = []
    for _ in range(max_tries):
        if len(poses) == n_poses:
            break
        tilt_axis = np.cross(facing, rng.standard_normal(3))
        tilt_axis /= np.linalg.norm(tilt_axis)
        tilt = math.radians(max_tilt_deg) * math.sqrt(rng.uniform())
        normal = cv2.Rodrigues(tilt_axis * tilt)[0] @ facing  # the face's direction
        z_axis = -normal
        x_axis = np.cross(z_axis, rng.standard_normal(3))
        x_axis /= np.linalg.norm(x_axis)
        y_axis = np.cross(z_axis, x_axis)
        rotation = np.stack([x_axis, y_axis, z_axis], axis=1)
        offset = rng.standard_normal(3)
        offset *= spread * rng.uniform() ** (1 / 3) / np.linalg.norm(offset)
        pose = BoardPose(cv2.Rodrigues(rotation)[0], centre + offset - rotation @ middle)
        for camera in rig.cameras:
            if not _seen_well(
                camera, board, pose, outline, max_view_angle_deg, border_fraction, min_square_px
            ):
                rejected_by[camera.name] += 1
                break
        else:
            poses.append(pose)
    if len(poses) < n_poses:
        worst = max(rejected_by, key=rejected_by.__getitem__)
        raise ValueError(
            f"found only {len(poses)} of {n_poses} board poses that every camera sees whole "
            f"in {max_tries} draws (camera {worst!r} rejected most); use a smaller board, "
            "a smaller spread_mm, or cameras that look at a common point"
        )
    return poses


@dataclass(frozen=True)
class CalibrationSet:
    """What :func:`render_calibration_set` wrote: one folder of images per camera, in rig order."""

    folders: dict[str, Path]
    images: dict[str, list[Path]]
    poses: list[BoardPose]


def render_calibration_set(
    rig: CameraRig,
    board: BoardSpec,
    n_poses: int,
    folder: Path | str,
    *,
    seed: int = 0,
    poses: Sequence[BoardPose] | None = None,
    supersample: int = 3,
    noise_std: float = 0.0,
    overwrite: bool = False,
) -> CalibrationSet:
    """Render ``n_poses`` views of ``board`` (from :func:`board_poses`, or ``poses``) into every
    camera of ``rig``: ``folder/<camera>/<camera>-<k>.png``, frame ``k`` the same pose in every
    camera. ``noise_std`` adds Gaussian sensor noise (grey levels). An existing image is refused
    (:class:`~realtime_pose.util.safe_write.OutputExistsError`) unless ``overwrite``."""
    folder = Path(folder)
    poses = list(poses) if poses is not None else board_poses(rig, board, n_poses, seed=seed)
    renderer = CharucoRenderer(board, supersample=supersample)
    rng = np.random.default_rng(seed + 1)
    targets = {
        c.name: [folder / c.name / f"{c.name}-{k}.png" for k in range(len(poses))]
        for c in rig.cameras
    }
    if not overwrite:
        for paths in targets.values():
            for path in paths:
                if path.exists():
                    raise OutputExistsError(path)
    for camera in rig.cameras:
        for pose, path in zip(poses, targets[camera.name], strict=True):
            image = renderer.render(camera, pose)
            if noise_std > 0:
                noisy = image + rng.normal(0.0, noise_std, image.shape)
                image = np.clip(np.rint(noisy), 0, 255).astype(np.uint8)
            ok, data = cv2.imencode(".png", image)
            if not ok:
                raise OSError(f"could not encode {path}")
            with writing(path, overwrite) as tmp:
                tmp.write_bytes(data.tobytes())
    return CalibrationSet(
        folders={name: folder / name for name in targets}, images=targets, poses=poses
    )
