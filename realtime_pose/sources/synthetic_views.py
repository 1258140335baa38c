"""The drawn mouse seen by a calibrated rig of virtual cameras, with exact 3D ground truth.

:func:`virtual_rig` places cameras around an open-field arena, looking down at it at oblique
angles through slightly distorting lenses. :class:`SyntheticViews` is the 3D scene: the arena
floor (the plane ``z = 0``) and the top-down mouse of :mod:`.synthetic_scene`, drawn in a
horizontal plane at a height ``z(t)`` that rises off the floor from time to time (rearing-like).
Each camera's view is the exact image of those two planes: every output pixel is undistorted
into a ray, the ray meets the plane, and the plane's top-down texture is sampled there; the
animal is composited over the floor with its coverage mask. The true keypoints are therefore
exact: in 3D the sprite's keypoints at height ``z(t)`` (:meth:`SyntheticViews.truth3d`), in 2D
their projections through the calibrated model (:meth:`SyntheticViews.truth2d`, the frames'
``ground_truth``).

Everything is a function of the seed and the scene frame index, so N sources (one per camera,
:class:`SyntheticViewSource`, ``source: {kind: synthetic_view, camera: cam1}``) show the same
animal at frame ``i``; paced sources opened together share an epoch and deliver frame ``i`` at
the same time. Frames carry ``camera_frame_id`` = the scene frame index, for matching frame sets.

World frame: millimetres, the arena floor is ``z = 0`` with ``z`` up, the arena's centre at the
origin. The top-down texture's ``u`` (image x) runs along world ``+x`` and its ``v`` (image y,
down) along world ``-y``, so a camera above sees the animal unmirrored: the ``leftear`` is the
animal's left in every view.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator

from realtime_pose.calibration import CameraModel, CameraRig
from realtime_pose.geometry import Size
from realtime_pose.plugins import SOURCES, PluginOptions
from realtime_pose.sources.base import Frame, FrameSource, SourceError
from realtime_pose.sources.synthetic_scene import (
    KEYPOINTS,
    SKELETON,
    SyntheticScene,
    animal_keypoints,
    draw_animal,
)

ARENA_TEXELS = 320
"""Side of the square top-down arena texture (the walk of :class:`.SyntheticScene`), texels."""
MM_PER_TEXEL = 0.9
"""World size of one texel: a 288-mm arena and a mouse of about 60 mm snout to tail base."""

_NOISE_BANK = 8
_MAX_REAR_MM = 40.0
_REAR_SLOT_S = 2.5  # at most one rear per slot of this length


# -- the rig --------------------------------------------------------------------------------
def look_at_rotation(position: np.ndarray, target: np.ndarray) -> np.ndarray:
    """World → camera rotation (OpenCV axes: x right, y down, z forward) of an upright camera
    at ``position`` looking at ``target``; the world's ``z`` is up."""
    forward = np.asarray(target, np.float64) - np.asarray(position, np.float64)
    forward /= np.linalg.norm(forward)
    right = np.cross(forward, [0.0, 0.0, 1.0])
    norm = np.linalg.norm(right)
    if norm < 1e-9:
        raise ValueError("a camera looking straight up or down has no upright orientation")
    right /= norm
    down = np.cross(forward, right)
    return np.stack([right, down, forward])


def virtual_rig(
    n_cameras: int = 3,
    size: tuple[int, int] = (320, 240),
    tilt_deg: float | Sequence[float] | None = None,
    distance_mm: float = 450.0,
    focal_px: float | None = None,
    k1: float = -0.06,
    aim_offset_mm: float = 30.0,
) -> CameraRig:
    """Calibrated virtual cameras ``cam0, cam1, …`` around the arena, looking down obliquely.

    Parameters
    ----------
    n_cameras
        Number of cameras, spread evenly in azimuth (``cam0`` on the ``-y`` side, looking
        towards ``+y``).
    size
        Image ``(width, height)`` of every camera, px.
    tilt_deg
        Angle of each camera's optical axis from vertical: one number for all, one per camera,
        or ``None`` for 30° to 40° spread over the cameras.
    distance_mm
        Distance from each camera to the point it looks at.
    focal_px
        Focal length in pixels; ``None`` scales 440 px (at 320 px wide) with the width, which
        shows the mouse at about the size the demo network was trained on.
    k1
        Radial distortion of every lens (``[k1, 0, 0, 0, 0]``); negative is barrel.
    aim_offset_mm
        Each camera looks at a point this far from the arena centre on its own side, so the
        near edge of the arena (where the image is most magnified) stays in view.
    """
    if n_cameras < 1:
        raise ValueError(f"n_cameras must be at least 1, got {n_cameras}")
    width, height = (int(v) for v in size)
    if width < 32 or height < 32:
        raise ValueError(f"camera size must be at least 32x32 px, got {width}x{height}")
    if tilt_deg is None:
        tilts = np.linspace(30.0, 40.0, n_cameras) if n_cameras > 1 else np.array([35.0])
    else:
        tilts = np.broadcast_to(np.asarray(tilt_deg, np.float64), (n_cameras,))
    if np.any(tilts <= 0.0) or np.any(tilts >= 80.0):
        raise ValueError(f"tilt_deg must be between 0 and 80 degrees, got {tilts.tolist()}")
    focal = float(focal_px) if focal_px is not None else 440.0 * width / 320.0
    matrix = np.array([[focal, 0.0, (width - 1) / 2], [0.0, focal, (height - 1) / 2], [0, 0, 1]])
    cameras = []
    for c in range(n_cameras):
        azimuth = -math.pi / 2 + 2 * math.pi * c / n_cameras  # where the camera stands
        side = np.array([math.cos(azimuth), math.sin(azimuth), 0.0])
        target = side * aim_offset_mm
        tilt = math.radians(float(tilts[c]))
        position = target + distance_mm * (side * math.sin(tilt) + [0.0, 0.0, math.cos(tilt)])
        rotation = look_at_rotation(position, target)
        cameras.append(
            CameraModel(
                name=f"cam{c}",
                size=(width, height),
                matrix=matrix,
                distortions=np.array([k1, 0.0, 0.0, 0.0, 0.0]),
                rotation=cv2.Rodrigues(rotation)[0].ravel(),
                translation=-rotation @ position,
            )
        )
    return CameraRig(tuple(cameras), {"source": "realtime_pose.sources.synthetic_views"})


# -- the scene ------------------------------------------------------------------------------
@dataclass(frozen=True)
class Occluder:
    """A grey box drawn over one camera's view for scene frames ``start <= i < stop``.

    ``box`` is ``(x0, y0, x1, y1)`` in pixels; ``None`` puts the box over the whole animal
    wherever it is in that view (a camera that cannot see the animal at all).
    """

    start: int = 0
    stop: int | None = None
    box: tuple[int, int, int, int] | None = None
    gray: int = 128

    def covers(self, index: int) -> bool:
        """True when the box is drawn at scene frame ``index``."""
        return index >= self.start and (self.stop is None or index < self.stop)


def undistort_exact(camera: CameraModel, pixels: np.ndarray) -> np.ndarray:
    """Pixels ``[N, 2]`` → normalised undistorted coordinates ``[N, 2]``, to float64 precision.

    :meth:`CameraModel.undistort` (OpenCV's few fixed iterations) is refined here until
    re-projecting through the distortion model gives the pixels back, so that rendered views
    and ``cv2.projectPoints`` agree exactly.
    """
    k1, k2, p1, p2, k3 = camera.distortions
    fx, fy, cx, cy = (
        camera.matrix[0, 0],
        camera.matrix[1, 1],
        camera.matrix[0, 2],
        camera.matrix[1, 2],
    )
    skew = camera.matrix[0, 1]
    yd = (pixels[:, 1] - cy) / fy
    xd = (pixels[:, 0] - cx - skew * yd) / fx
    x, y = camera.undistort(pixels).T
    for _ in range(100):
        r2 = x * x + y * y
        radial = 1.0 + r2 * (k1 + r2 * (k2 + r2 * k3))
        x_new = (xd - 2.0 * p1 * x * y - p2 * (r2 + 2.0 * x * x)) / radial
        y_new = (yd - p1 * (r2 + 2.0 * y * y) - 2.0 * p2 * x * y) / radial
        change = max(np.abs(x_new - x).max(), np.abs(y_new - y).max())
        x, y = x_new, y_new
        if change < 1e-15:
            break
    return np.column_stack([x, y])


@dataclass
class _Sprite:
    """The animal drawn top-down in a patch of the texture: premultiplied BGR and coverage."""

    index: int
    bgra: np.ndarray  # uint8 [h, w, 4]
    origin: tuple[int, int]  # texel (u, v) of the patch's top-left pixel
    height_mm: float


class _CameraView:
    """One camera's fixed part: the rendered floor and, per pixel, where its ray meets the
    texture plane at height ``h`` (``u = u0 + h du``, ``v = v0 + h dv``)."""

    def __init__(
        self, camera: CameraModel, floor_texture: np.ndarray, noise_seed: list[int] | None
    ):
        self.camera = camera
        w, h = camera.size
        yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
        normalised = undistort_exact(camera, np.stack([xx.ravel(), yy.ravel()], axis=1))
        rays = np.column_stack([normalised, np.ones(len(normalised))]) @ camera.rotation_matrix
        centre = camera.position
        down = rays[:, 2] < -1e-9  # rays that meet a plane below the camera
        dz = np.where(down, rays[:, 2], -1.0)
        ax, ay = rays[:, 0] / dz, rays[:, 1] / dz
        c = (ARENA_TEXELS - 1) / 2
        u0 = (centre[0] - centre[2] * ax) / MM_PER_TEXEL + c
        v0 = -(centre[1] - centre[2] * ay) / MM_PER_TEXEL + c
        u0[~down] = v0[~down] = -1e6
        self.u0 = u0.reshape(h, w).astype(np.float32)
        self.v0 = v0.reshape(h, w).astype(np.float32)
        self.du = (ax / MM_PER_TEXEL).reshape(h, w).astype(np.float32)
        self.dv = (-ay / MM_PER_TEXEL).reshape(h, w).astype(np.float32)
        ring = np.concatenate([floor_texture[:2].reshape(-1, 3), floor_texture[-2:].reshape(-1, 3)])
        wall = tuple(float(v) for v in np.median(ring, axis=0))  # beyond the texture: the wall
        self.floor = cv2.remap(
            floor_texture,
            self.u0,
            self.v0,
            cv2.INTER_LINEAR,
            borderMode=cv2.BORDER_CONSTANT,
            borderValue=wall,
        )
        self.noise_pos = self.noise_neg = None
        if noise_seed is None:
            return
        rng = np.random.default_rng(noise_seed)
        noise = rng.normal(0.0, rng.uniform(1.0, 3.0), size=(_NOISE_BANK, h, w, 3))
        self.noise_pos = np.clip(noise, 0, 255).astype(np.uint8)
        self.noise_neg = np.clip(-noise, 0, 255).astype(np.uint8)

    def sprite_roi(self, sprite: _Sprite) -> tuple[int, int, int, int] | None:
        """The pixel box ``(x0, y0, x1, y1)`` (exclusive end) the sprite's patch covers."""
        ph, pw = sprite.bgra.shape[:2]
        ou, ov = sprite.origin
        us = ou + np.linspace(-1.0, pw, 4)
        vs = ov + np.linspace(-1.0, ph, 4)
        uu, vv = np.meshgrid(us, vs)
        corners = np.column_stack(
            [texel_to_world(uu.ravel(), vv.ravel()), np.full(uu.size, sprite.height_mm)]
        )
        px = self.camera.project(corners)
        w, h = self.camera.size
        x0 = max(int(math.floor(px[:, 0].min())) - 2, 0)
        y0 = max(int(math.floor(px[:, 1].min())) - 2, 0)
        x1 = min(int(math.ceil(px[:, 0].max())) + 3, w)
        y1 = min(int(math.ceil(px[:, 1].max())) + 3, h)
        if x0 >= x1 or y0 >= y1:
            return None
        return x0, y0, x1, y1

    def render(self, index: int, sprite: _Sprite, occluder: Occluder | None) -> np.ndarray:
        image = self.floor.copy()
        roi = self.sprite_roi(sprite)
        if roi is not None:
            x0, y0, x1, y1 = roi
            hz = np.float32(sprite.height_mm)
            map_u = (
                self.u0[y0:y1, x0:x1] + hz * self.du[y0:y1, x0:x1] - np.float32(sprite.origin[0])
            )
            map_v = (
                self.v0[y0:y1, x0:x1] + hz * self.dv[y0:y1, x0:x1] - np.float32(sprite.origin[1])
            )
            warped = cv2.remap(
                sprite.bgra, map_u, map_v, cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT
            )
            alpha = warped[..., 3:].astype(np.float32) * np.float32(1.0 / 255.0)
            floor = image[y0:y1, x0:x1].astype(np.float32)
            blended = floor - floor * alpha + warped[..., :3]
            image[y0:y1, x0:x1] = np.clip(blended + 0.5, 0, 255).astype(np.uint8)
        if occluder is not None and occluder.covers(index):
            box = occluder.box if occluder.box is not None else roi
            if box is not None:
                g = int(occluder.gray)
                cv2.rectangle(image, box[:2], (box[2] - 1, box[3] - 1), (g, g, g), -1)
        if self.noise_pos is None:
            return image
        k = index % _NOISE_BANK
        cv2.add(image, self.noise_pos[k], dst=image)
        cv2.subtract(image, self.noise_neg[k], dst=image)
        return image


def texel_to_world(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Top-down texture coordinates → world ``(x, y)`` in mm on the arena plane ``[..., 2]``."""
    c = (ARENA_TEXELS - 1) / 2
    return np.stack(
        [
            (np.asarray(u, np.float64) - c) * MM_PER_TEXEL,
            -(np.asarray(v, np.float64) - c) * MM_PER_TEXEL,
        ],
        axis=-1,
    )


class SyntheticViews:
    """The drawn mouse in a 3D arena, seen by every camera of a rig, with exact keypoints.

    Parameters
    ----------
    rig
        The cameras (``None``: :func:`virtual_rig` with ``n_cameras`` and ``size``).
    seed
        The arena, the animal and its path; same seed and frame index give the same animal
        (and the same images) in every instance.
    fps
        Frames per second of the scene (how far the animal moves between frames).
    n_cameras, size
        Used when ``rig`` is ``None``.
    noise
        Add sensor noise to every view (as the single-camera scene does); ``False`` renders
        the planes alone.

    Notes
    -----
    A camera's fixed part (its floor image, per-pixel rays and noise, about 5 MB at 320×240)
    is made the first time it is rendered (or :meth:`prepare`), so a source that renders one
    camera pays for one.

    Examples
    --------
    >>> views = SyntheticViews(seed=1)
    >>> image, keypoints = views.render(0, "cam1")
    >>> image.shape, keypoints.shape, views.truth3d(0).shape
    ((240, 320, 3), (4, 2), (4, 3))
    """

    keypoints: tuple[str, ...] = KEYPOINTS
    skeleton: tuple[tuple[str, str], ...] = SKELETON

    def __init__(
        self,
        rig: CameraRig | None = None,
        seed: int = 0,
        fps: float = 100.0,
        n_cameras: int = 3,
        size: tuple[int, int] = (320, 240),
        noise: bool = True,
    ) -> None:
        self.rig = rig if rig is not None else virtual_rig(n_cameras, size)
        self.seed = int(seed)
        self.fps = float(fps)
        self.noise = bool(noise)
        self.walk = SyntheticScene(ARENA_TEXELS, ARENA_TEXELS, seed=self.seed, fps=self.fps)
        self._views: dict[str, _CameraView] = {}
        self._sprite: _Sprite | None = None
        self._lock = threading.Lock()

    # -- truth ------------------------------------------------------------------------------
    def height_mm(self, index: int) -> float:
        """The animal's plane above the floor at frame ``index``, mm (0 when on the floor)."""
        t = index / self.fps
        slot = int(t // _REAR_SLOT_S)
        rear = _rear(self.seed, slot)
        if rear is None:
            return 0.0
        t0, duration, height = rear
        phase = (t - slot * _REAR_SLOT_S - t0) / duration
        if not 0.0 < phase < 1.0:
            return 0.0
        return height * math.sin(math.pi * phase) ** 2

    def truth3d(self, index: int) -> np.ndarray:
        """True keypoints ``[K, 3]`` (world mm, float64) at frame ``index``."""
        kp = animal_keypoints(self.walk.pose(index)).astype(np.float64)
        xy = texel_to_world(kp[:, 0], kp[:, 1])
        return np.column_stack([xy, np.full(len(kp), self.height_mm(index))])

    def truth2d(self, index: int, camera: str | int) -> np.ndarray:
        """True keypoints ``[K, 2]`` (float32 px, with distortion) in ``camera`` at ``index``."""
        return self._camera(camera).project(self.truth3d(index)).astype(np.float32)

    # -- images -----------------------------------------------------------------------------
    def render(
        self, index: int, camera: str | int, occluder: Occluder | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Frame ``index`` seen by ``camera`` (a name or an index in the rig).

        Returns
        -------
        image
            BGR uint8 ``[height, width, 3]``.
        keypoints
            float32 ``[K, 2]``: the true 2D keypoints (:meth:`truth2d`), also where an
            occluder hides them.
        """
        if index < 0:
            raise ValueError(f"frame index must be >= 0, got {index}")
        view = self._view(camera)
        with self._lock:
            sprite = self._sprite_at(index)
        image = view.render(index, sprite, occluder)
        return image, view.camera.project(self.truth3d(index)).astype(np.float32)

    def prepare(self, camera: str | int) -> None:
        """Make ``camera``'s fixed part now rather than at its first :meth:`render`."""
        self._view(camera)

    def _camera(self, camera: str | int) -> CameraModel:
        if isinstance(camera, (int, np.integer)):
            if not 0 <= camera < len(self.rig):
                raise IndexError(f"camera index {camera} out of range for {len(self.rig)} cameras")
            return self.rig.cameras[int(camera)]
        return self.rig.camera(camera)

    def _view(self, camera: str | int) -> _CameraView:
        model = self._camera(camera)
        with self._lock:
            view = self._views.get(model.name)
            if view is None:
                k = self.rig.names.index(model.name)
                floor = self.walk._look.background  # the arena the walk keeps to, top-down
                noise_seed = [self.seed, 0x0B5E, k] if self.noise else None
                view = _CameraView(model, floor, noise_seed)
                self._views[model.name] = view
        return view

    def _sprite_at(self, index: int) -> _Sprite:
        """The animal drawn top-down at frame ``index`` (kept for the next camera)."""
        if self._sprite is not None and self._sprite.index == index:
            return self._sprite
        pose = self.walk.pose(index)
        reach = 1.9 * pose.scale_px  # the tail's tip is at most 1.6 body lengths from the centre
        u0, v0 = math.floor(pose.x - reach), math.floor(pose.y - reach)
        side = math.ceil(2 * reach) + 2
        opaque = dataclasses.replace(  # drawn with coverage in a 4th channel: premultiplied
            pose,
            x=pose.x - u0,
            y=pose.y - v0,
            body_bgr=(*pose.body_bgr, 255),
            ear_bgr=(*pose.ear_bgr, 255),
        )
        bgra = np.zeros((side, side, 4), np.uint8)
        draw_animal(bgra, opaque)
        x, y, w, h = cv2.boundingRect(bgra[..., 3])
        bgra = bgra[max(y - 1, 0) : y + h + 1, max(x - 1, 0) : x + w + 1]
        u0, v0 = u0 + max(x - 1, 0), v0 + max(y - 1, 0)
        self._sprite = _Sprite(index, bgra, (u0, v0), self.height_mm(index))
        return self._sprite


@functools.lru_cache(maxsize=64)
def _rear(seed: int, slot: int) -> tuple[float, float, float] | None:
    """The rear in time slot ``slot``: ``(start_s, duration_s, height_mm)`` or ``None``."""
    rng = np.random.default_rng([seed, 0x2EA2, slot])
    if rng.random() >= 0.5:
        return None
    duration = rng.uniform(0.6, 1.4)
    return rng.uniform(0.0, _REAR_SLOT_S - duration), duration, rng.uniform(15.0, _MAX_REAR_MM)


# -- the source -----------------------------------------------------------------------------
class OccluderOptions(BaseModel):
    """``occlude: {start, stop, box}``: a grey box over this camera's view."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    start: int = Field(default=0, ge=0, description="first scene frame with the box")
    stop: int | None = Field(default=None, ge=0, description="scene frame it ends before")
    box: tuple[int, int, int, int] | None = Field(
        default=None, description="[x0, y0, x1, y1] px; null: over the animal, wherever it is"
    )
    gray: int = Field(default=128, ge=0, le=255, description="the box's grey level")

    @model_validator(mode="after")
    def _ordered(self) -> OccluderOptions:
        if self.box is not None and not (self.box[0] < self.box[2] and self.box[1] < self.box[3]):
            raise ValueError(
                f"occlude.box must be [x0, y0, x1, y1] with x0 < x1, y0 < y1: {self.box}"
            )
        return self

    def occluder(self) -> Occluder:
        """The :class:`Occluder` these options describe."""
        return Occluder(self.start, self.stop, self.box, self.gray)


class SyntheticViewOptions(PluginOptions):
    """``source: {kind: synthetic_view, camera: cam0, ...}``: one camera of a virtual rig."""

    camera: str = Field(default="cam0", description="which camera of the rig: cam0, cam1, …")
    n_cameras: int = Field(default=3, ge=1, le=16, description="cameras in the rig")
    width: int = Field(default=320, ge=32, description="frame width, px")
    height: int = Field(default=240, ge=32, description="frame height, px")
    seed: int = Field(default=0, description="the arena and the animal's path")
    fps: float = Field(default=100.0, gt=0, description="frame rate")
    realtime: bool = Field(default=True, description="deliver at fps, in step with the rig")
    max_frames: int | None = Field(
        default=None, ge=0, description="end before this scene frame index"
    )
    drop_every: int | None = Field(
        default=None, ge=2, description="lose scene frames N-1, 2N-1, … (never delivered)"
    )
    occlude: OccluderOptions | None = Field(default=None, description="a box over the view")

    @model_validator(mode="after")
    def _camera_in_rig(self) -> SyntheticViewOptions:
        names = [f"cam{c}" for c in range(self.n_cameras)]
        if self.camera not in names:
            raise ValueError(
                f"camera {self.camera!r} is not in the virtual rig of n_cameras={self.n_cameras} "
                f"(its cameras are {', '.join(names)})"
            )
        return self


class _Epochs:
    """Frame 0's due time shared by the paced sources of one process, per frame period: sources
    opened together (each within ``TOGETHER_NS`` of the previous one) schedule frame ``i`` at
    the same instant; a source opened later starts a clock of its own (and the next group)."""

    TOGETHER_NS = 300_000_000

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._by_period: dict[int, tuple[int, int]] = {}  # period -> (epoch, last open)

    def get(self, period_ns: int, now_ns: int) -> int:
        with self._lock:
            epoch, last_open = self._by_period.get(period_ns, (None, 0))
            if epoch is None or now_ns - last_open > self.TOGETHER_NS:
                lead = max(2 * period_ns, 50_000_000)  # the others have this long to open
                epoch = -(-(now_ns + lead) // period_ns) * period_ns
            self._by_period[period_ns] = (epoch, now_ns)
            return epoch


_EPOCHS = _Epochs()


@SOURCES.register("synthetic_view")
class SyntheticViewSource(FrameSource):
    """One camera of a virtual rig (:func:`virtual_rig`) watching the drawn mouse in 3D.

    Parameters
    ----------
    camera
        The camera's name in the rig (``cam0`` … ``cam{n_cameras-1}``).
    n_cameras, width, height
        The rig (:func:`virtual_rig`); every source of one rig must give the same values.
    seed, fps
        The scene (:class:`SyntheticViews`).
    realtime
        Deliver frame ``i`` at ``epoch + i / fps`` on the monotonic clock, the epoch shared by
        the paced sources of the process opened within 30 s of each other (so frame ``i``
        comes from every camera at the same time); ``False`` delivers as fast as frames are
        drawn.
    max_frames
        End of stream before scene frame ``max_frames``.
    drop_every
        Scene frames ``i`` with ``i % drop_every == drop_every - 1`` are lost: never delivered,
        counted in ``camera_dropped``.
    occlude
        A grey box over the view (:class:`Occluder`, or its options).

    Notes
    -----
    ``camera_frame_id`` is the scene frame index (gaps: lost frames), ``frame_index`` counts
    the delivered frames, ``t_camera_ns`` is the scene time of the frame (``i / fps``, the
    same in every camera) and ``t_capture_ns`` the host time it was handed over. A paced
    source that falls more than ten frames behind loses the frames it missed, like a camera
    whose buffer overflowed, so that it stays in step with the others; after a reopen it
    continues with the frame due then.
    """

    Options = SyntheticViewOptions
    _BUFFER_FRAMES = 10  # frames a paced source holds before it loses the oldest

    def __init__(
        self,
        camera: str = "cam0",
        n_cameras: int = 3,
        width: int = 320,
        height: int = 240,
        seed: int = 0,
        fps: float = 100.0,
        realtime: bool = True,
        max_frames: int | None = None,
        drop_every: int | None = None,
        occlude: Occluder | OccluderOptions | None = None,
    ) -> None:
        if fps <= 0:
            raise ValueError(f"fps must be positive, got {fps}")
        if max_frames is not None and max_frames < 0:
            raise ValueError(f"max_frames must be non-negative or None, got {max_frames}")
        if drop_every is not None and drop_every < 2:
            raise ValueError(f"drop_every must be at least 2 or None, got {drop_every}")
        rig = virtual_rig(n_cameras, (width, height))
        if camera not in rig.names:
            raise ValueError(
                f"camera {camera!r} is not in the virtual rig (its cameras are {rig.names})"
            )
        self.views = SyntheticViews(rig, seed=seed, fps=fps)
        self.camera = camera
        self.realtime = realtime
        self.max_frames = max_frames
        self.drop_every = drop_every
        if isinstance(occlude, OccluderOptions):
            occlude = occlude.occluder()
        self.occluder = occlude
        self._period_ns = round(1e9 / fps)
        self._open = False
        self._next = 0
        self._delivered = 0
        self._lost = 0
        self._epoch_ns: int | None = None

    @property
    def rig(self) -> CameraRig:
        """The whole calibrated rig (every source of one rig has the same)."""
        return self.views.rig

    @property
    def camera_model(self) -> CameraModel:
        """This source's calibrated camera."""
        return self.views.rig.camera(self.camera)

    @property
    def keypoints(self) -> tuple[str, ...]:
        """Names of the keypoints in ``ground_truth``."""
        return self.views.keypoints

    @property
    def fps(self) -> float:
        return self.views.fps

    @property
    def size(self) -> Size:
        w, h = self.camera_model.size
        return Size(w, h)

    @property
    def live(self) -> bool:
        return self.realtime

    @property
    def source_id(self) -> str:
        return f"synthetic_view{self.views.seed}:{self.camera}"

    def counters(self) -> dict[str, object]:
        return {"camera_dropped": self._lost, "camera_drops": {"skipped": self._lost}}

    def truth3d(self, index: int) -> np.ndarray:
        """True keypoints ``[K, 3]`` (world mm) at scene frame ``index`` (a frame's
        ``camera_frame_id``)."""
        return self.views.truth3d(index)

    @property
    def epoch_ns(self) -> int | None:
        """When scene frame 0 is due on the monotonic clock (paced sources, once opened)."""
        return self._epoch_ns

    def due_ns(self, index: int) -> int:
        """When scene frame ``index`` is due (paced sources, once opened)."""
        if self._epoch_ns is None:
            raise SourceError(f"{self.source_id} has no schedule: it is not paced, or not open")
        return self._epoch_ns + index * self._period_ns

    def dropped(self, index: int) -> bool:
        """True for a scene frame this source never delivers (``drop_every``)."""
        n = self.drop_every
        return n is not None and index % n == n - 1

    def open(self) -> None:
        self.views.prepare(self.camera)  # before the schedule starts: it takes ~0.1 s
        if self.realtime:
            now = time.monotonic_ns()
            if self._epoch_ns is None:
                self._epoch_ns = _EPOCHS.get(self._period_ns, now)
            due_now = -(-(now - self._epoch_ns) // self._period_ns)  # first frame not yet due
            if due_now > self._next:
                self._lost += due_now - self._next if self._delivered else 0
                self._next = due_now
        self._open = True

    def close(self) -> None:
        self._open = False
        if not self._delivered:
            self._epoch_ns = None  # opened only to probe it: the next open starts the clock

    def read(self) -> Frame | None:
        if not self._open:
            raise SourceError(f"{self.source_id} is not open; call open() first")
        if self.realtime:
            late = time.monotonic_ns() - self.due_ns(self._next)
            if late > self._BUFFER_FRAMES * self._period_ns:  # the buffer overflowed
                skip = late // self._period_ns
                self._next += skip
                self._lost += skip
        index = self._next
        while self.max_frames is None or index < self.max_frames:
            if not self.dropped(index):
                break
            index += 1
            self._lost += 1
        self._next = index
        if self.max_frames is not None and index >= self.max_frames:
            return None
        if self.realtime:
            _sleep_until(self.due_ns(index) - 1_000_000)  # draw just before the frame is due
        image, keypoints = self.views.render(index, self.camera, self.occluder)
        if self.realtime:
            _sleep_until(self.due_ns(index))
        t_ns = time.monotonic_ns()
        frame = Frame(
            image,
            self._delivered,
            t_ns,
            self.source_id,
            ground_truth=keypoints,
            camera_frame_id=index,
            t_camera_ns=round(index * 1e9 / self.views.fps),
            camera_dropped=self._lost,
        )
        self._next = index + 1
        self._delivered += 1
        return frame


def _sleep_until(t_ns: int) -> None:
    left = t_ns - time.monotonic_ns()
    if left > 0:
        time.sleep(left * 1e-9)


__all__: Sequence[str] = (
    "ARENA_TEXELS",
    "MM_PER_TEXEL",
    "Occluder",
    "OccluderOptions",
    "SyntheticViewOptions",
    "SyntheticViewSource",
    "SyntheticViews",
    "look_at_rotation",
    "texel_to_world",
    "virtual_rig",
)
