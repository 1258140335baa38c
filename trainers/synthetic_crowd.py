"""A crowd of identical animals with exact ground truth: for training, testing and benchmarking
the tracking of unmarked animals.

Two to eight (or more) animals of one coat and one size walk in the open-field arena of
:mod:`realtime_pose.sources.synthetic_scene`, drawn by its renderer. Nothing but their track
tells them apart. Each animal chooses one behaviour after another, at random:

- *explore*: walk to a random point of the frame;
- *cross*: walk at (where it will be) another animal and straight on over it, so their
  bodies overlap and the later drawn one hides the other;
- *follow*: catch up with another animal and walk beside it, bodies touching;
- *rest*: stand, looking around;
- *exit*: walk out of the frame, stay out of sight for a while, then come back in.

For three or more animals the first one starts by leaving the frame, so every such clip has an
animal that is fully out of view for a stretch of frames (at ``speed=1`` from about frame 40–100
to about frame 120–190) and comes back.

Trajectories are in frame pixels per *frame* (``fps`` only labels the video), with lengths in
proportion to the animals' size, which is :mod:`~realtime_pose.sources.synthetic_scene`'s default
(``0.165 × min(width, height)``: about 20 px at 160×120, 40 px at 320×240, 79 px at 640×480), so a
clip is the same, scaled, at any frame size. At ``speed=1`` an animal cruises at 0.07 body scales
per frame (1.4 px at 160×120) and never faster than 0.105 (2.1 px); keypoints move at most about
4 px per frame at 160×120 (8 px at 320×240). ``speed`` scales walking, turning and the length of
every behaviour.

How often animals cross (:func:`count_crossings` at :func:`crossing_close_px`, 1000 frames,
seeds 0–4, ``speed=1``, the same at 160×120 and 320×240): about 0.9 crossings per 100 frames for
two animals, 2.6 for four and 10 for eight (:data:`CROSSINGS_PER_100_FRAMES`). ``speed``
controls it: at ``speed=0.5`` / ``2`` two animals cross 0.5 / 1.1 times per 100 frames, four
1.2 / 5.0 times.

:func:`write_crowd_clip` writes a lossless FFV1 video, SLEAP labels (one track per animal, for
scoring only) and an ``.npz`` of the truth: every keypoint (also out of view) and whether it can
be seen (in the frame and not under an animal drawn later).
"""

from __future__ import annotations

import functools
import math
import threading
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import cv2
import numpy as np

from realtime_pose.sources.synthetic_scene import (
    KEYPOINTS,
    SKELETON,
    AnimalPose,
    _animal_colours,
    _arena,
    _default_scale,
    draw_animal,
)

MAX_ANIMALS = 64
"""Most animals :func:`crowd_poses` places (a crowd of 8 already fills a 160×120 frame)."""

CROSSING_CLOSE_FRACTION = 0.5
"""A crossing is two animals' keypoint centres closer than this × ``scale_px``: less than a
body's width (0.55 × ``scale_px``), so their bodies overlap and one is drawn over the other.
Animals walking side by side, touching, are about 0.6 × ``scale_px`` apart and do not count."""

CROSSINGS_PER_100_FRAMES = {2: 0.9, 4: 2.6, 8: 9.9}
"""About how many crossings (:func:`count_crossings` at :func:`crossing_close_px`) a clip of
``n`` animals shows per 100 frames at ``speed=1``: the mean over 1000 frames of seeds 0–4 (single
seeds range 0.6–1.0, 1.9–3.5 and 8.4–12.7), at 160×120 and 320×240 alike."""

# behaviours of one animal
_EXPLORE, _CROSS, _FOLLOW, _REST, _EXIT, _OUTSIDE = range(6)
_CHOICE = (_EXPLORE, _CROSS, _FOLLOW, _REST, _EXIT)
_WEIGHTS = np.array([0.25, 0.40, 0.15, 0.14, 0.06])  # how often each is chosen next

# in body scales (scale_px) and frames, at speed 1
_CRUISE = 0.07  # walking speed per frame
_MAX_TURN = 0.08  # radians per frame
_ARRIVE = 0.5  # a target within this is reached
_EXIT_DEPTH = 2.6  # how far beyond the frame edge an exit leads; the animal reaches 1.65 around
_EXPLORE_REACH = 3.0  # farthest target of one explore walk
_SIDE = 0.6  # centre-to-centre distance of two animals walking side by side
_CHUNK = 256  # frames simulated at a time


def crossing_close_px(width: int, height: int) -> float:
    """The ``close_px`` of :func:`count_crossings` at which two of this module's animals, in a
    ``width`` × ``height`` frame, cross: :data:`CROSSING_CLOSE_FRACTION` × their ``scale_px``
    (about 10 px at 160×120)."""
    return CROSSING_CLOSE_FRACTION * _default_scale(width, height)


def _wrap(angle: float) -> float:
    return (angle + math.pi) % (2 * math.pi) - math.pi


class _CrowdWalk:
    """The trajectories of one crowd, simulated frame after frame from frame 0 and kept, so a
    frame does not depend on the order frames are asked for. Keeps ``[frames, n, 5]`` floats:
    about 10 MB per 30 000 frames of 8 animals."""

    def __init__(self, n: int, width: int, height: int, seed: int, speed: float):
        self.n, self.width, self.height, self.k = n, width, height, speed
        self.s = _default_scale(width, height)
        self.rng = np.random.default_rng([seed, n, 0xC20D])
        self.cruise = _CRUISE * self.s * speed
        self.max_turn = min(_MAX_TURN * speed, 0.3)
        margin_x = min(self.s, 0.3 * width)
        margin_y = min(self.s, 0.3 * height)
        self.box = (margin_x, margin_y, width - margin_x, height - margin_y)
        x0, y0, x1, y1 = self.box
        rng = self.rng
        self.x = list(rng.uniform(x0, x1, n))
        self.y = list(rng.uniform(y0, y1, n))
        self.h = list(rng.uniform(-math.pi, math.pi, n))
        self.v = [0.5 * self.cruise] * n
        self.turn = [0.0] * n
        self.yaw_n = [0.0] * n
        self.curl_n = [0.0] * n
        self.mode = [_EXPLORE] * n
        self.tx = [0.0] * n
        self.ty = [0.0] * n
        self.v_base = [self.cruise] * n
        self.partner = [0] * n
        self.side = [1.0] * n
        self.timer = [0] * n
        for a in range(n):
            if a == 0 and n >= 3:
                self._start_exit(a, nearest=True)
            else:
                self._start_explore(a)
        self._chunks: list[np.ndarray] = []
        self._lock = threading.Lock()

    def at(self, frame: int) -> np.ndarray:
        """``[n, 5]``: x, y, heading, head yaw, tail curl of every animal in ``frame``."""
        with self._lock:
            while len(self._chunks) * _CHUNK <= frame:
                self._chunks.append(self._simulate(_CHUNK))
            return self._chunks[frame // _CHUNK][frame % _CHUNK]

    # -- behaviours -----------------------------------------------------------------------------

    def _frames(self, lo: float, hi: float) -> int:
        return max(1, round(self.rng.uniform(lo, hi) / self.k))

    def _start_explore(self, a: int, ahead: bool = False, reach: float = _EXPLORE_REACH) -> None:
        x0, y0, x1, y1 = self.box
        if ahead:  # straight on, past the animal just crossed
            on = self.rng.uniform(2.0, 4.0) * self.s
            tx = min(max(self.x[a] + math.cos(self.h[a]) * on, x0), x1)
            ty = min(max(self.y[a] + math.sin(self.h[a]) * on, y0), y1)
        else:  # a random point in the frame, at most _EXPLORE_REACH away
            tx, ty = self.rng.uniform(x0, x1), self.rng.uniform(y0, y1)
            far = math.hypot(tx - self.x[a], ty - self.y[a]) / (reach * self.s)
            if far > 1:
                tx = self.x[a] + (tx - self.x[a]) / far
                ty = self.y[a] + (ty - self.y[a]) / far
        self.mode[a], self.tx[a], self.ty[a] = _EXPLORE, tx, ty
        self.v_base[a] = self.cruise * self.rng.uniform(0.6, 1.3)
        dist = math.hypot(tx - self.x[a], ty - self.y[a])
        self.timer[a] = round(3 * dist / self.v_base[a]) + self._frames(20, 40)

    def _start_exit(self, a: int, nearest: bool = False) -> None:
        w, h, s = self.width, self.height, self.s
        gaps = (self.x[a], w - self.x[a], self.y[a], h - self.y[a])  # left, right, top, bottom
        edge = int(np.argmin(gaps)) if nearest else int(self.rng.integers(4))
        along = self.rng.uniform(0.2, 0.8)
        out = _EXIT_DEPTH * s
        self.tx[a], self.ty[a] = (
            (-out, along * h),
            (w + out, along * h),
            (along * w, -out),
            (along * w, h + out),
        )[edge]
        self.mode[a], self.v_base[a] = _EXIT, self.cruise
        self.timer[a] = self._frames(600, 600)

    def _in_view(self, b: int) -> bool:
        return self.mode[b] not in (_EXIT, _OUTSIDE) and (
            0 <= self.x[b] < self.width and 0 <= self.y[b] < self.height
        )

    def _choose(self, a: int) -> None:
        others = [b for b in range(self.n) if b != a and self._in_view(b)]
        weights = _WEIGHTS.copy()
        if not others:
            weights[[_CROSS, _FOLLOW]] = 0.0
        mode = _CHOICE[int(self.rng.choice(len(_CHOICE), p=weights / weights.sum()))]
        if mode == _EXPLORE:
            self._start_explore(a)
        elif mode == _EXIT:
            self._start_exit(a)
        elif mode == _REST:
            self.mode[a], self.timer[a] = _REST, self._frames(10, 60)
        else:
            self.mode[a] = mode
            self.partner[a] = others[int(self.rng.integers(len(others)))]
            self.side[a] = 1.0 if self.rng.random() < 0.5 else -1.0
            self.timer[a] = self._frames(60, 120) if mode == _FOLLOW else self._frames(150, 150)

    # -- motion ---------------------------------------------------------------------------------

    def _simulate(self, n_frames: int) -> np.ndarray:
        out = np.empty((n_frames, self.n, 5))
        noise = self.rng.normal(size=(n_frames, self.n, 3))
        for f in range(n_frames):
            for a in range(self.n):
                self._step(a, noise[f, a])
                yaw = min(max(self.yaw_n[a] + 3.0 * self.turn[a], -0.7), 0.7)
                curl = min(max(self.curl_n[a] - 6.0 * self.turn[a], -2.0), 2.0)
                out[f, a] = (self.x[a], self.y[a], self.h[a], yaw, curl)
        return out

    def _step(self, a: int, noise: np.ndarray) -> None:
        s, mode = self.s, self.mode[a]
        self.timer[a] -= 1
        aim: tuple[float, float] | None = None
        heading_goal: float | None = None
        v_goal = 0.0
        if mode in (_EXPLORE, _EXIT):
            aim, v_goal = (self.tx[a], self.ty[a]), self.v_base[a]
            if math.hypot(aim[0] - self.x[a], aim[1] - self.y[a]) < _ARRIVE * s:
                if mode == _EXIT:
                    self.mode[a], self.timer[a] = _OUTSIDE, self._frames(10, 50)
                else:
                    self._choose(a)
            elif self.timer[a] <= 0:
                self._choose(a)
        elif mode in (_CROSS, _FOLLOW):
            b = self.partner[a]
            if self.timer[a] <= 0 or not self._in_view(b):
                self._choose(a)
            elif mode == _CROSS:
                dist = math.hypot(self.x[b] - self.x[a], self.y[b] - self.y[a])
                v_goal = 1.25 * self.cruise
                lead = min(dist / v_goal, 40.0)  # aim where the other animal will be
                aim = (
                    self.x[b] + math.cos(self.h[b]) * self.v[b] * lead,
                    self.y[b] + math.sin(self.h[b]) * self.v[b] * lead,
                )
                if dist < 0.35 * s:
                    self._start_explore(a, ahead=True)
            else:
                side_x, side_y = -math.sin(self.h[b]), math.cos(self.h[b])
                aim = (
                    self.x[b] + self.side[a] * _SIDE * s * side_x,
                    self.y[b] + self.side[a] * _SIDE * s * side_y,
                )
                gap = math.hypot(aim[0] - self.x[a], aim[1] - self.y[a])
                v_goal = min(1.5 * self.cruise, self.v[b] + 0.08 * gap * self.k)
                if gap < 0.3 * s:  # alongside: walk the same way
                    heading_goal = self.h[b]
        elif self.timer[a] <= 0:  # rest or outside: over
            if mode == _OUTSIDE:  # back into the frame
                self._start_explore(a, reach=math.inf)
            else:
                self._choose(a)
        turn_goal = 0.0
        if aim is not None or heading_goal is not None:
            if heading_goal is None:
                heading_goal = math.atan2(aim[1] - self.y[a], aim[0] - self.x[a])
            off = _wrap(heading_goal - self.h[a])
            turn_goal = min(max(0.25 * off, -self.max_turn), self.max_turn)
            v_goal *= 0.25 + 0.75 * max(0.0, math.cos(off))  # slow down to turn
        self.turn[a] += (turn_goal - self.turn[a]) * min(1.0, 0.3 * self.k)
        self.turn[a] += 0.01 * self.k * noise[0]
        self.turn[a] = min(max(self.turn[a], -self.max_turn), self.max_turn)
        self.v[a] += (v_goal - self.v[a]) * min(1.0, 0.15 * self.k)
        self.h[a] = _wrap(self.h[a] + self.turn[a])
        self.x[a] += self.v[a] * math.cos(self.h[a])
        self.y[a] += self.v[a] * math.sin(self.h[a])
        self.yaw_n[a] = 0.94 * self.yaw_n[a] + 0.05 * noise[1]
        self.curl_n[a] = 0.96 * self.curl_n[a] + 0.06 * noise[2]


@functools.lru_cache(maxsize=16)
def _walk(n_animals: int, width: int, height: int, seed: int, speed: float) -> _CrowdWalk:
    return _CrowdWalk(n_animals, width, height, seed, speed)


@functools.lru_cache(maxsize=16)
def _coat(seed: int, coat: str) -> tuple[tuple[int, ...], tuple[int, ...]]:
    return _animal_colours(np.random.default_rng([seed, 0xC0A7]), coat)


def crowd_poses(
    frame: int,
    n_animals: int,
    width: int,
    height: int,
    seed: int = 0,
    coat: str = "dark",
    *,
    speed: float = 1.0,
) -> list[AnimalPose]:
    """Where the ``n_animals`` identical animals are in ``frame``, in draw order.

    Same arguments, same poses. All animals share one ``body_bgr``, ``ear_bgr`` and
    ``scale_px``; only position, heading, head yaw and tail curl differ. Poses of animals out of
    the frame are given too (their position is outside ``[0, width) × [0, height)``).

    Parameters
    ----------
    frame
        Frame index, ``>= 0``. The crowd is simulated from frame 0 up to the latest frame asked
        for and kept (per argument set, for the 16 latest sets), so frames in any order cost
        little after the first pass.
    n_animals
        How many animals, 1 to :data:`MAX_ANIMALS`.
    width, height
        Frame size in pixels (at least 32); sizes and speeds scale with ``min(width, height)``.
    seed
        Chooses the start, the walk and the coat's shade.
    coat
        ``dark`` or ``light`` (:data:`~realtime_pose.sources.synthetic_scene.COATS`); the walk
        does not depend on it.
    speed
        Multiplies walking and turning speed and shortens every behaviour to match, in
        ``(0, 4]``; the crossing rate per frame grows with it (see the module's notes).

    Returns
    -------
    list[AnimalPose]
        One pose per animal; later ones are drawn over earlier ones.
    """
    if frame < 0:
        raise ValueError(f"frame must be >= 0, got {frame}")
    if not 1 <= n_animals <= MAX_ANIMALS:
        raise ValueError(f"n_animals must be 1 to {MAX_ANIMALS}, got {n_animals}")
    if width < 32 or height < 32:
        raise ValueError(f"the frame must be at least 32x32 pixels, got {width}x{height}")
    if not 0 < speed <= 4:
        raise ValueError(f"speed must be in (0, 4], got {speed}")
    body, ear = _coat(int(seed), coat)
    track = _walk(int(n_animals), int(width), int(height), int(seed), float(speed)).at(int(frame))
    scale = _default_scale(width, height)
    return [
        AnimalPose(
            x=float(x),
            y=float(y),
            heading=float(heading),
            head_yaw=float(yaw),
            scale_px=scale,
            tail_curl=float(curl),
            body_bgr=body,
            ear_bgr=ear,
        )
        for x, y, heading, yaw, curl in track
    ]


_WHITE = (255, 255, 255)


def draw_crowd(
    image: np.ndarray, poses: Sequence[AnimalPose]
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Draw ``poses`` onto ``image`` (BGR uint8, in place) in order, later over earlier.

    Occlusion comes from the drawn shapes: each animal's silhouette is drawn into a map of
    which animal is on top of each pixel.

    Returns
    -------
    keypoints
        float64 ``[A, 4, 2]`` frame px in
        :data:`~realtime_pose.sources.synthetic_scene.KEYPOINTS` order, also outside the frame.
    visible
        bool ``[A, 4]``: the keypoint's nearest pixel is in the frame and no animal drawn later
        covers it.
    in_frame
        bool ``[A]``: some of the animal is in the frame (a pixel at least half covered, or a
        visible keypoint).
    """
    height, width = image.shape[:2]
    n = len(poses)
    keypoints = np.empty((n, len(KEYPOINTS), 2))
    on_top = np.zeros((height, width), np.uint16)  # 1 + index of the animal last drawn there
    silhouette = np.zeros((height, width, 3), np.uint8)
    in_frame = np.zeros(n, bool)
    for a, pose in enumerate(poses):
        keypoints[a] = draw_animal(image, pose)
        silhouette[:] = 0
        draw_animal(silhouette, replace(pose, body_bgr=_WHITE, ear_bgr=_WHITE))
        mask = silhouette[..., 0] >= 128
        on_top[mask] = a + 1
        in_frame[a] = mask.any()
    pixel = np.floor(keypoints + 0.5)
    inside = _in_frame_px(keypoints, width, height)
    in_frame |= inside.any(axis=1)  # a snout tip can be in view while no pixel is half covered
    col = np.clip(pixel[..., 0], 0, width - 1).astype(np.intp)
    row = np.clip(pixel[..., 1], 0, height - 1).astype(np.intp)
    drawn_later = on_top[row, col] > np.arange(1, n + 1)[:, None]
    return keypoints, inside & ~drawn_later, in_frame


@dataclass(frozen=True)
class CrowdClip:
    """What :func:`write_crowd_clip` wrote.

    Attributes
    ----------
    video
        Lossless FFV1 ``.avi``.
    slp
        SLEAP labels: tracks ``animal0``, ``animal1``, … (the true identities, for scoring).
    truth
        ``.npz`` for :func:`load_crowd_truth`.
    """

    video: Path
    slp: Path
    truth: Path


@dataclass(frozen=True)
class CrowdTruth:
    """The exact ground truth of a crowd clip.

    Attributes
    ----------
    keypoints
        float64 ``[F, A, 4, 2]`` frame px, also where the animal is out of the frame.
    visible
        bool ``[F, A, 4]``: in the frame and not covered by an animal drawn later (a higher
        animal index).
    in_frame
        bool ``[F, A]``: some of the animal is in the frame (a pixel at least half covered by
        it, or a keypoint whose nearest pixel is in the frame).
    fps, width, height, n_animals, seed
        How the clip was made.
    """

    keypoints: np.ndarray
    visible: np.ndarray
    in_frame: np.ndarray
    fps: float
    width: int
    height: int
    n_animals: int
    seed: int


def write_crowd_clip(
    folder: str | Path,
    n_animals: int,
    n_frames: int,
    width: int = 160,
    height: int = 120,
    seed: int = 0,
    fps: float = 25.0,
    coat: str = "dark",
    *,
    speed: float = 1.0,
) -> CrowdClip:
    """Write ``crowd.avi``, ``crowd.slp`` and ``crowd_truth.npz`` of :func:`crowd_poses`.

    The labels hold every frame, with one instance per animal that has a keypoint in the frame
    (an animal of which at most the tail is in view has none) on the animal's track;
    keypoints out of the frame are NaN, covered ones keep their position. A look-alike trainer
    ignores the tracks; a tracker's output is scored against them.

    Parameters
    ----------
    folder
        Created if missing; files in it of the same names are replaced.
    n_animals, width, height, seed, coat, speed
        As for :func:`crowd_poses`.
    n_frames
        Length of the clip, ``>= 1``.
    fps
        Frame rate written into the video and the truth (the walk is per frame).

    Returns
    -------
    CrowdClip
        The three paths.
    """
    import sleap_io as sio

    if n_frames < 1:
        raise ValueError(f"n_frames must be >= 1, got {n_frames}")
    if fps <= 0:
        raise ValueError(f"fps must be positive, got {fps}")
    crowd_poses(0, n_animals, width, height, seed, coat, speed=speed)  # checks the arguments
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    clip = CrowdClip(folder / "crowd.avi", folder / "crowd.slp", folder / "crowd_truth.npz")
    look = _arena(np.random.default_rng([int(seed), 0xA2E7A]), width, height, n_noise=1)
    keypoints = np.empty((n_frames, n_animals, len(KEYPOINTS), 2))
    visible = np.empty((n_frames, n_animals, len(KEYPOINTS)), bool)
    in_frame = np.empty((n_frames, n_animals), bool)
    skeleton = sio.Skeleton(nodes=list(KEYPOINTS), edges=[list(e) for e in SKELETON])
    tracks = [sio.Track(name=f"animal{a}") for a in range(n_animals)]
    video = sio.Video(filename=str(clip.video), open_backend=False)
    frames = []
    writer = cv2.VideoWriter(str(clip.video), cv2.VideoWriter_fourcc(*"FFV1"), fps, (width, height))
    if not writer.isOpened():
        raise RuntimeError(f"OpenCV cannot write FFV1 video to {clip.video}")
    try:
        for f in range(n_frames):
            image = look.background.copy()
            poses = crowd_poses(f, n_animals, width, height, seed, coat, speed=speed)
            keypoints[f], visible[f], in_frame[f] = draw_crowd(image, poses)
            writer.write(image)
            instances = []
            for a in range(n_animals):
                inside = _in_frame_px(keypoints[f, a], width, height)
                if inside.any():
                    points = np.where(inside[:, None], keypoints[f, a], np.nan)
                    instances.append(sio.Instance.from_numpy(points, skeleton, track=tracks[a]))
            frames.append(sio.LabeledFrame(video=video, frame_idx=f, instances=instances))
    finally:
        writer.release()
    labels = sio.Labels(labeled_frames=frames, videos=[video], skeletons=[skeleton], tracks=tracks)
    sio.save_slp(labels, str(clip.slp))
    np.savez_compressed(
        clip.truth,
        keypoints=keypoints,
        visible=visible,
        in_frame=in_frame,
        fps=float(fps),
        width=int(width),
        height=int(height),
        n_animals=int(n_animals),
        seed=int(seed),
        speed=float(speed),
    )
    return clip


def _in_frame_px(points: np.ndarray, width: int, height: int) -> np.ndarray:
    """Whether each point ``[..., 2]`` has its nearest pixel in the frame."""
    pixel = np.floor(points + 0.5)
    return (
        (pixel[..., 0] >= 0)
        & (pixel[..., 0] < width)
        & (pixel[..., 1] >= 0)
        & (pixel[..., 1] < height)
    )


_TRUTH_FIELDS = ("keypoints", "visible", "in_frame", "fps", "width", "height", "n_animals", "seed")


def load_crowd_truth(path: str | Path) -> CrowdTruth:
    """Read the ``.npz`` that :func:`write_crowd_clip` wrote.

    Raises
    ------
    ValueError
        The file lacks a field or its arrays disagree in shape.
    """
    path = Path(path)
    with np.load(path) as data:
        missing = [name for name in _TRUTH_FIELDS if name not in data.files]
        if missing:
            raise ValueError(
                f"{path}: not a crowd truth file, it lacks {', '.join(missing)} "
                "(write one with write_crowd_clip)"
            )
        truth = CrowdTruth(
            keypoints=data["keypoints"].astype(np.float64),
            visible=data["visible"].astype(bool),
            in_frame=data["in_frame"].astype(bool),
            fps=float(data["fps"]),
            width=int(data["width"]),
            height=int(data["height"]),
            n_animals=int(data["n_animals"]),
            seed=int(data["seed"]),
        )
    f, a = truth.keypoints.shape[:2]
    if (
        truth.keypoints.shape[2:] != (len(KEYPOINTS), 2)
        or truth.visible.shape != (f, a, len(KEYPOINTS))
        or truth.in_frame.shape != (f, a)
        or a != truth.n_animals
    ):
        raise ValueError(
            f"{path}: keypoints {truth.keypoints.shape}, visible {truth.visible.shape} and "
            f"in_frame {truth.in_frame.shape} do not fit {truth.n_animals} animals of "
            f"{len(KEYPOINTS)} keypoints"
        )
    return truth


def count_crossings(keypoints: np.ndarray, close_px: float) -> int:
    """How many times two animals come within ``close_px`` of each other.

    An animal's centre is the mean of its finite keypoints (none: it is absent). Each pair of
    animals is *close* in a frame where both are present and their centres are less than
    ``close_px`` apart; every switch of a pair from not close to close is one event (a pair
    already close in the first frame counts once). Use :func:`crossing_close_px` for this
    module's animals.

    Parameters
    ----------
    keypoints
        ``[F, A, K, 2]`` frame px, NaN where missing.
    close_px
        Distance in pixels, ``> 0``.

    Returns
    -------
    int
        The number of events, over all pairs.
    """
    keypoints = np.asarray(keypoints, dtype=np.float64)
    if keypoints.ndim != 4 or keypoints.shape[-1] != 2:
        raise ValueError(
            f"keypoints must be [frames, animals, keypoints, 2], got {keypoints.shape}"
        )
    if not close_px > 0:
        raise ValueError(f"close_px must be positive, got {close_px}")
    finite = np.isfinite(keypoints).all(axis=-1)
    count = finite.sum(axis=-1)
    total = np.where(finite[..., None], keypoints, 0.0).sum(axis=-2)
    with np.errstate(invalid="ignore", divide="ignore"):
        centres = total / count[..., None]  # NaN where no keypoint is finite
    first, second = np.triu_indices(keypoints.shape[1], k=1)
    distance = np.linalg.norm(centres[:, first] - centres[:, second], axis=-1)
    close = np.nan_to_num(distance, nan=np.inf) < close_px
    if close.shape[0] == 0:
        return 0
    return int(close[0].sum() + (close[1:] & ~close[:-1]).sum())


__all__: Sequence[str] = (
    "CROSSINGS_PER_100_FRAMES",
    "CROSSING_CLOSE_FRACTION",
    "MAX_ANIMALS",
    "CrowdClip",
    "CrowdTruth",
    "count_crossings",
    "crossing_close_px",
    "crowd_poses",
    "draw_crowd",
    "load_crowd_truth",
    "write_crowd_clip",
)
