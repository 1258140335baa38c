"""A procedurally drawn mouse in an open-field arena, with exact keypoints.

The scene serves three purposes: a camera that needs no hardware (the live loop's synthetic
source wraps :class:`SyntheticScene`), a training set that needs no labelling
(:func:`realtime_pose.trainers.synthetic_project.write_synthetic_project` writes a
DeepLabCut project from :func:`random_sample`), and the data behind the demo
bundle shipped with the package. Only NumPy and OpenCV are used, so a rig can run it.

The animal is a dark body ellipse with a head ellipse, two ears and a tail, seen from above on a
light textured floor surrounded by darker walls. Keypoints are ``snout`` (tip of the head),
``leftear`` and ``rightear`` (ear centres; "left" is the animal's left seen from above with the
image y axis pointing down) and ``tailbase`` (where the tail leaves the body).
"""

from __future__ import annotations

import collections
import math
from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np

KEYPOINTS: tuple[str, ...] = ("snout", "leftear", "rightear", "tailbase")
SKELETON: tuple[tuple[str, str], ...] = (
    ("snout", "leftear"),
    ("snout", "rightear"),
    ("leftear", "tailbase"),
    ("rightear", "tailbase"),
)
_SHIFT = 4  # fractional bits for cv2 drawing: 1/16 px positioning
_ONE = 1 << _SHIFT
_NOISE_BANK = 8


@dataclass(frozen=True)
class AnimalPose:
    """Where the animal is and how it is drawn, in frame pixels.

    ``scale_px`` is the body ellipse's length; snout to tail base is about 1.3 × ``scale_px``.
    """

    x: float
    y: float
    heading: float  # body direction, radians, image coordinates (y down)
    head_yaw: float  # head relative to body, radians
    scale_px: float
    tail_curl: float  # signed curvature of the tail, radians over its length
    body_bgr: tuple[int, int, int]
    ear_bgr: tuple[int, int, int]


@dataclass(frozen=True)
class _Look:
    """Per-scene appearance: background and noise."""

    background: np.ndarray  # BGR uint8 [H, W, 3]
    floor: tuple[float, float, float, float]  # x0, y0, x1, y1 of the walkable floor
    noise_pos: np.ndarray  # [_NOISE_BANK, H, W, 3] uint8
    noise_neg: np.ndarray


def _unit(angle: float) -> np.ndarray:
    return np.array([math.cos(angle), math.sin(angle)])


def animal_keypoints(pose: AnimalPose) -> np.ndarray:
    """Keypoints ``[4, 2]`` (float32, frame px) of ``pose``, in :data:`KEYPOINTS` order."""
    return _geometry(pose)["keypoints"]


def _geometry(pose: AnimalPose) -> dict[str, np.ndarray]:
    s = pose.scale_px
    c = np.array([pose.x, pose.y])
    u_body = _unit(pose.heading)
    u_head = _unit(pose.heading + pose.head_yaw)
    left_head = np.array([u_head[1], -u_head[0]])  # animal's left, seen from above, y down
    neck = c + u_body * 0.4 * s
    head = neck + u_head * 0.18 * s
    snout = head + u_head * 0.225 * s
    ear_base = head - u_head * 0.06 * s
    left_ear = ear_base + left_head * 0.17 * s
    right_ear = ear_base - left_head * 0.17 * s
    tailbase = c - u_body * 0.5 * s
    keypoints = np.stack([snout, left_ear, right_ear, tailbase]).astype(np.float32)
    return {"centre": c, "head": head, "keypoints": keypoints}


def _tail_points(pose: AnimalPose, tailbase: np.ndarray, n: int = 8) -> np.ndarray:
    length = 1.1 * pose.scale_px
    t = np.linspace(0.0, 1.0, n)
    angles = pose.heading + math.pi + pose.tail_curl * t
    step = length / (n - 1)
    dx = np.concatenate([[0.0], np.cumsum(np.cos(angles[:-1]) * step)])
    dy = np.concatenate([[0.0], np.cumsum(np.sin(angles[:-1]) * step)])
    return np.stack([tailbase[0] + dx, tailbase[1] + dy], axis=1)


def draw_animal(image: np.ndarray, pose: AnimalPose) -> np.ndarray:
    """Draw the animal onto ``image`` (BGR uint8, in place); return its keypoints ``[4, 2]``."""
    geo = _geometry(pose)
    s = pose.scale_px
    kp = geo["keypoints"]
    body = tuple(int(v) for v in pose.body_bgr)
    tail = _tail_points(pose, kp[3])
    tail_px = np.round(tail * _ONE).astype(np.int32).reshape(-1, 1, 2)
    cv2.polylines(image, [tail_px], False, body, max(1, round(0.07 * s)), cv2.LINE_AA, shift=_SHIFT)
    deg = math.degrees(pose.heading)
    cx, cy = geo["centre"]
    cv2.ellipse(image, ((cx, cy), (1.0 * s, 0.55 * s), deg), body, -1, cv2.LINE_AA)
    hx, hy = geo["head"]
    head_deg = math.degrees(pose.heading + pose.head_yaw)
    cv2.ellipse(image, ((hx, hy), (0.45 * s, 0.33 * s), head_deg), body, -1, cv2.LINE_AA)
    ear = tuple(int(v) for v in pose.ear_bgr)
    radius = round(0.085 * s * _ONE)
    for j in (1, 2):
        centre = (round(float(kp[j, 0]) * _ONE), round(float(kp[j, 1]) * _ONE))
        cv2.circle(image, centre, radius, ear, -1, cv2.LINE_AA, shift=_SHIFT)
    return kp


def _arena(rng: np.random.Generator, width: int, height: int, n_noise: int = _NOISE_BANK) -> _Look:
    """A lit floor with texture, marks and vignetting inside darker walls; plus a noise bank."""
    floor_level = rng.uniform(165, 225)
    wall_level = floor_level * rng.uniform(0.45, 0.7)
    tint = rng.uniform(0.93, 1.07, size=3)
    margin_x = round(width * rng.uniform(0.03, 0.07))
    margin_y = round(height * rng.uniform(0.04, 0.09))
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    cx, cy = width * rng.uniform(0.4, 0.6), height * rng.uniform(0.4, 0.6)
    r2 = ((xx - cx) / width) ** 2 + ((yy - cy) / height) ** 2
    vignette = 1.0 - rng.uniform(0.1, 0.35) * r2 / 0.5
    texture = rng.normal(0.0, 1.0, size=(height // 4 + 1, width // 4 + 1)).astype(np.float32)
    texture = cv2.resize(texture, (width, height), interpolation=cv2.INTER_CUBIC)
    gray = floor_level * vignette + rng.uniform(2, 6) * texture
    inside = (
        (xx >= margin_x) & (xx < width - margin_x) & (yy >= margin_y) & (yy < height - margin_y)
    )
    gray = np.where(inside, gray, wall_level * vignette + 3 * texture)
    image = np.clip(gray[..., None] * tint, 0, 255).astype(np.uint8)
    mark = tuple(int(v) for v in (floor_level * tint * rng.uniform(0.75, 0.9)))
    for _ in range(int(rng.integers(1, 4))):  # faint lines on the floor, like the real arena
        pts = np.stack(
            [
                np.linspace(margin_x, width - margin_x, 6),
                rng.uniform(margin_y, height - margin_y, size=6),
            ],
            axis=1,
        )
        cv2.polylines(image, [np.round(pts).astype(np.int32)], False, mark, 1, cv2.LINE_AA)
    image = cv2.GaussianBlur(image, (3, 3), 0)
    sigma = rng.uniform(1.0, 3.0)
    noise = rng.normal(0.0, sigma, size=(n_noise, height, width, 3)).astype(np.float32)
    noise_pos = np.clip(noise, 0, 255).astype(np.uint8)
    noise_neg = np.clip(-noise, 0, 255).astype(np.uint8)
    floor = (float(margin_x), float(margin_y), float(width - margin_x), float(height - margin_y))
    return _Look(image, floor, noise_pos, noise_neg)


COATS = ("dark", "light")
"""The animal's coat: ``dark`` (a black mouse on a light floor, what every default scene and
training sample shows) or ``light`` (an albino one: the same shades inverted, brighter than
the floor), for a model that meets an animal it was never trained on."""


def _animal_colours(
    rng: np.random.Generator, coat: str = "dark"
) -> tuple[tuple[int, ...], tuple[int, ...]]:
    level = rng.uniform(25, 75)
    body = tuple(int(v) for v in np.clip(level * rng.uniform(0.85, 1.15, size=3), 0, 255))
    ear = tuple(
        int(v)
        for v in np.clip(np.array(body) + rng.uniform(35, 70) * np.array([0.8, 0.8, 1.3]), 0, 255)
    )
    if coat == "light":  # the same draws, inverted: a scene differs only in its animal's coat
        return tuple(255 - v for v in body), tuple(255 - v for v in ear)
    if coat != "dark":
        raise ValueError(f"coat must be one of {COATS}, got {coat!r}")
    return body, ear


def _default_scale(width: int, height: int) -> float:
    return 0.165 * min(width, height)


class SyntheticScene:
    """A deterministic video of one animal walking around an arena.

    Parameters
    ----------
    width, height
        Frame size in pixels.
    seed
        Same seed and frame index give identical frames and keypoints.
    fps
        Frames per second; sets how far the animal moves between frames.
    coat
        The animal's coat (:data:`COATS`); the arena and the walk do not depend on it.

    Examples
    --------
    >>> scene = SyntheticScene(320, 240, seed=1)
    >>> frame_bgr, keypoints = scene.frame(0)
    >>> frame_bgr.shape, keypoints.shape
    ((240, 320, 3), (4, 2))
    """

    keypoints: tuple[str, ...] = KEYPOINTS
    skeleton: tuple[tuple[str, str], ...] = SKELETON
    _CHUNK = 1024
    _KEEP_CHUNKS = 4

    def __init__(
        self,
        width: int = 320,
        height: int = 240,
        seed: int = 0,
        fps: float = 100.0,
        coat: str = "dark",
    ):
        if width < 32 or height < 32:
            raise ValueError(f"SyntheticScene needs at least 32x32 pixels, got {width}x{height}")
        if fps <= 0:
            raise ValueError(f"fps must be positive, got {fps}")
        self.width, self.height, self.seed, self.fps = int(width), int(height), int(seed), fps
        rng = np.random.default_rng([self.seed, 0x5CE4E])
        self._look = _arena(rng, self.width, self.height)
        self._scale = _default_scale(self.width, self.height) * rng.uniform(0.9, 1.1)
        self._body_bgr, self._ear_bgr = _animal_colours(rng, coat)
        self._walk_rng = np.random.default_rng([self.seed, 0x3A1C])
        x0, y0, x1, y1 = self._look.floor
        self._state = np.array(
            [
                self._walk_rng.uniform(x0 + 0.3 * (x1 - x0), x1 - 0.3 * (x1 - x0)),
                self._walk_rng.uniform(y0 + 0.3 * (y1 - y0), y1 - 0.3 * (y1 - y0)),
                self._walk_rng.uniform(-math.pi, math.pi),  # heading
                0.0,  # turn rate, rad/s
                1.0,  # speed, body lengths per second
                0.0,  # head yaw
                0.0,  # tail curl
            ]
        )
        # the trajectory is made in chunks of _CHUNK frames, always from the start, so a frame
        # does not depend on the order frames are asked for; what is kept is the walk's state
        # at each chunk's start (a few hundred bytes) and the last few chunks, not the whole
        # track: a camera running for hours neither grows nor copies an ever longer array
        self._chunk_starts: list[tuple[np.ndarray, dict]] = [self._walk_checkpoint()]
        self._chunks: collections.OrderedDict[int, np.ndarray] = collections.OrderedDict()

    def _walk_checkpoint(self) -> tuple[np.ndarray, dict]:
        return self._state.copy(), self._walk_rng.bit_generator.state

    def _chunk(self, c: int) -> np.ndarray:
        """Chunk ``c`` of the trajectory: ``[_CHUNK, 5]`` x, y, heading, head yaw, tail curl."""
        if c in self._chunks:
            self._chunks.move_to_end(c)
            return self._chunks[c]
        k = min(c, len(self._chunk_starts) - 1)
        while True:
            state, rng_state = self._chunk_starts[k]
            self._state = state.copy()
            self._walk_rng.bit_generator.state = rng_state
            track = self._walk(self._CHUNK)
            if k + 1 == len(self._chunk_starts):
                self._chunk_starts.append(self._walk_checkpoint())
            if k == c:
                break
            k += 1
        self._chunks[c] = track
        while len(self._chunks) > self._KEEP_CHUNKS:
            self._chunks.popitem(last=False)
        return track

    def _walk(self, n: int) -> np.ndarray:
        """A steering random walk: Ornstein-Uhlenbeck turn rate and speed (with pauses), steering
        away from the walls, a head that looks around and a swinging tail."""
        rng, dt = self._walk_rng, 1.0 / self.fps
        x0, y0, x1, y1 = self._look.floor
        s = self._scale
        pad = 0.9 * s
        out = np.empty((n, 5))
        x, y, heading, turn, speed, yaw, curl = self._state
        target_speed = speed
        normal = rng.normal(size=(n, 4))
        switches = rng.random(n)
        for i in range(n):
            if switches[i] < 0.4 * dt:  # on average a change of pace every 2.5 s
                target_speed = float(rng.choice([0.0, 0.6, 1.5, 3.0], p=[0.2, 0.35, 0.3, 0.15]))
            speed += (target_speed - speed) * min(1.0, 3.0 * dt) + 0.3 * math.sqrt(dt) * normal[
                i, 0
            ]
            speed = min(max(speed, 0.0), 4.0)
            turn += -2.0 * turn * dt + 3.0 * math.sqrt(dt) * normal[i, 1]
            # steer away from walls: look ahead and turn toward the arena centre
            ahead_x = x + math.cos(heading) * 1.5 * s
            ahead_y = y + math.sin(heading) * 1.5 * s
            if not (x0 + pad < ahead_x < x1 - pad and y0 + pad < ahead_y < y1 - pad):
                to_centre = math.atan2((y0 + y1) / 2 - y, (x0 + x1) / 2 - x)
                diff = (to_centre - heading + math.pi) % (2 * math.pi) - math.pi
                turn += 8.0 * diff * dt
            heading += turn * dt * (0.3 + min(speed, 1.0))
            step = speed * s * 1.3 * dt
            x = min(max(x + math.cos(heading) * step, x0 + pad), x1 - pad)
            y = min(max(y + math.sin(heading) * step, y0 + pad), y1 - pad)
            yaw += -3.0 * yaw * dt + 1.2 * math.sqrt(dt) * normal[i, 2] + 0.15 * turn * dt
            yaw = min(max(yaw, -0.7), 0.7)
            curl += -2.0 * curl * dt + 2.0 * math.sqrt(dt) * normal[i, 3] - 0.3 * turn * dt
            curl = min(max(curl, -2.0), 2.0)
            out[i] = (x, y, heading, yaw, curl)
        self._state = np.array([x, y, heading, turn, speed, yaw, curl])
        return out

    def pose(self, index: int) -> AnimalPose:
        """The animal's pose at frame ``index``."""
        if index < 0:
            raise ValueError(f"frame index must be >= 0, got {index}")
        x, y, heading, yaw, curl = self._chunk(index // self._CHUNK)[index % self._CHUNK]
        return AnimalPose(x, y, heading, yaw, self._scale, curl, self._body_bgr, self._ear_bgr)

    def frame(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        """Frame ``index``: ``(image, keypoints)``.

        Returns
        -------
        image
            BGR uint8 ``[height, width, 3]``.
        keypoints
            float32 ``[4, 2]`` frame-pixel ``x, y`` in :attr:`keypoints` order.
        """
        image = self._look.background.copy()
        kp = draw_animal(image, self.pose(index))
        k = index % _NOISE_BANK
        cv2.add(image, self._look.noise_pos[k], dst=image)
        cv2.subtract(image, self._look.noise_neg[k], dst=image)
        return image, kp


def random_sample(
    rng: np.random.Generator,
    width: int,
    height: int,
    animal_scale: float = 1.0,
    coat: str = "dark",
) -> tuple[np.ndarray, np.ndarray]:
    """One training image with a random arena, lighting, animal size, pose and position.

    Covers what :class:`SyntheticScene` shows (any seed) and more. ``animal_scale`` multiplies
    the animal's usual size (about a sixth of the frame's short side); large values make a
    project whose keypoints spread over most of the frame. ``coat``: :data:`COATS`.

    Returns
    -------
    image
        BGR uint8 ``[height, width, 3]``.
    keypoints
        float32 ``[4, 2]`` frame px, in :data:`KEYPOINTS` order.
    """
    look = _arena(rng, width, height, n_noise=1)
    x0, y0, x1, y1 = look.floor
    s = _default_scale(width, height) * animal_scale * rng.uniform(0.8, 1.2)
    pad = min(0.7 * s, 0.45 * (x1 - x0), 0.45 * (y1 - y0))
    body, ear = _animal_colours(rng, coat)
    pose = AnimalPose(
        x=rng.uniform(x0 + pad, x1 - pad),
        y=rng.uniform(y0 + pad, y1 - pad),
        heading=rng.uniform(-math.pi, math.pi),
        head_yaw=rng.uniform(-0.7, 0.7),
        scale_px=s,
        tail_curl=rng.uniform(-2.0, 2.0),
        body_bgr=body,
        ear_bgr=ear,
    )
    image = look.background.copy()
    kp = draw_animal(image, pose)
    cv2.add(image, look.noise_pos[0], dst=image)
    cv2.subtract(image, look.noise_neg[0], dst=image)
    return image, kp


__all__: Sequence[str] = (
    "KEYPOINTS",
    "SKELETON",
    "AnimalPose",
    "SyntheticScene",
    "animal_keypoints",
    "draw_animal",
    "random_sample",
)
