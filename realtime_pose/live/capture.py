"""Keep the frames the model is unsure of, while the live loop runs, for labelling.

:class:`FrameCapture` is a :class:`~realtime_pose.ports.FrameTap`: the loop offers it every
frame; a :class:`~realtime_pose.inference.doubt.DoubtDetector` says which poses are doubtful, a
rate limit and an online k-means on tiny thumbnails pick a few varied ones among them, and a
writer thread saves them as DeepLabCut's ``labeled-data`` (and SLEAP suggestions) through
:mod:`realtime_pose.formats.labeled_data`. The loop never waits: a full hand-off drops the
capture, and errors on disk are the writer's, logged and counted.
"""

from __future__ import annotations

import collections
import logging
import math
import queue
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numba
import numpy as np

from realtime_pose.bundle import NAME_PATTERN
from realtime_pose.formats.labeled_data import (
    LABELED_DATA,
    MACHINE_LABELS_CSV,
    frame_image_name,
    labels_folder,
    machine_labels_path,
    pose_layout,
    write_machine_labels,
    write_sleap_suggestions,
)
from realtime_pose.inference.doubt import REASON_NAMES, DoubtDetector
from realtime_pose.ports import Predicted
from realtime_pose.sources.base import Frame
from realtime_pose.stream.messages import event_payload
from realtime_pose.util.safe_write import OutputExistsError, writing
from realtime_pose.util.supervision import SupervisedThread

log = logging.getLogger(__name__)

THUMBNAIL_SIZE = (24, 32)
"""Rows and columns of the gray thumbnails the k-means compares."""
SUGGESTIONS_FILE = "suggestions.slp"
_STOP = object()
_SAMPLES_PER_BLOCK = 4
_FLUSH_INTERVAL_S = 5.0
"""The label files (h5, csv, slp) are rewritten at most this often while captures come in
(and at close): rewriting them holds the GIL for tens of ms, which the loop feels."""


@numba.njit(cache=True)
def thumbnail(image: np.ndarray, out: np.ndarray, samples: int = _SAMPLES_PER_BLOCK) -> None:
    """Shrink ``image`` (``[H, W, C]`` uint8, BGR or ``C = 1``) into the gray ``out``
    (``[h, w]`` float32, 0-255): each cell is the mean over its block of the image, sampled on
    a grid of at most ``samples`` × ``samples`` pixels.

    40-70 µs whatever the frame size (OpenCV's ``INTER_AREA`` took 80 µs at 320×240 and 3 ms
    at 1280×1024 on the same machine); averaging over the block, not picking one pixel, keeps
    the area average's resistance to aliasing.
    """
    h, w, c = image.shape
    th, tw = out.shape
    for ty in range(th):
        y0 = ty * h // th
        y1 = max(y0 + 1, (ty + 1) * h // th)
        sy = max(1, (y1 - y0) // samples)
        for tx in range(tw):
            x0 = tx * w // tw
            x1 = max(x0 + 1, (tx + 1) * w // tw)
            sx = max(1, (x1 - x0) // samples)
            b = 0
            g = 0
            r = 0
            n = 0
            for y in range(y0, min(y1, h), sy):
                for x in range(x0, min(x1, w), sx):
                    b += image[y, x, 0]
                    if c >= 3:
                        g += image[y, x, 1]
                        r += image[y, x, 2]
                    n += 1
            if c >= 3:
                out[ty, tx] = (0.114 * b + 0.587 * g + 0.299 * r) / n
            else:
                out[ty, tx] = b / n


@numba.njit(cache=True)
def nearest_centroid(centroids: np.ndarray, count: int, point: np.ndarray) -> tuple[int, float]:
    """Index of the nearest of the first ``count`` ``centroids`` (``[C, D]``) to ``point``
    (``[D]``) and its root-mean-square distance (``-1, inf`` when ``count`` is 0)."""
    best = -1
    best_d = np.inf
    d_len = point.shape[0]
    for c in range(count):
        acc = 0.0
        for i in range(d_len):
            diff = centroids[c, i] - point[i]
            acc += diff * diff
        if acc < best_d:
            best_d = acc
            best = c
    if best < 0:
        return best, best_d
    return best, math.sqrt(best_d / d_len)


class LookDescriptor:
    """What a doubtful frame looks like, as the k-means compares it: its thumbnail minus the
    scene's background (a running mean of the thumbnails seen), in units of the typical
    difference (a running mean of its RMS).

    A small animal moving over a large, constant arena changes a whole-frame thumbnail by a few
    gray levels wherever it is, and a light animal on a light floor by less than one: raw
    thumbnails then all fall in one cluster. Relative to the background and to the scene's own
    contrast, two frames with the animal in different places are ~1.4 apart and two alike
    near 0, whatever the contrast, so one radius serves every scene.
    """

    def __init__(self, dim: int, background_rate: float = 0.1) -> None:
        self.background = np.zeros(dim, np.float32)
        self.out = np.zeros(dim, np.float32)
        self.rate = float(background_rate)
        self.energy = 0.0
        self.seen = 0

    def describe(self, thumb: np.ndarray) -> np.ndarray:
        """The descriptor of ``thumb`` (``[dim]``; a reused buffer); updates the running means."""
        if self.seen == 0:
            self.background[:] = thumb
        np.subtract(thumb, self.background, out=self.out)
        rms = float(np.sqrt(np.mean(self.out * self.out)))
        self.seen += 1
        rate = max(self.rate, 1.0 / self.seen)
        self.energy += rate * (rms - self.energy)
        self.out /= max(self.energy, 0.25)  # a floor: a scene with nothing moving stays near 0
        self.background += rate * (thumb - self.background)
        return self.out


class OnlineKMeans:
    """MacQueen's online k-means over thumbnails, up to ``clusters`` centroids.

    A point farther than ``radius`` (RMS, the points' units) from every centroid seeds a new
    one while there are fewer than ``clusters``; any other point joins its nearest centroid,
    which moves to the running mean of its members.
    """

    def __init__(self, clusters: int, dim: int, radius: float) -> None:
        self.centroids = np.zeros((clusters, dim), np.float32)
        self.members = np.zeros(clusters, np.int64)
        self.count = 0
        self.radius = float(radius)

    def assign(self, point: np.ndarray) -> int:
        """Add ``point`` (``[dim]``) and return its cluster."""
        best, distance = nearest_centroid(self.centroids, self.count, point)
        if best < 0 or (distance > self.radius and self.count < len(self.centroids)):
            best = self.count
            self.count += 1
            self.centroids[best] = point
            self.members[best] = 1
            return best
        self.members[best] += 1
        centroid = self.centroids[best]
        centroid += (point - centroid) / self.members[best]
        return best


def _preload(suggestions: bool) -> bool:
    """Import the writers' libraries now (session set-up), not at the first capture, when
    ~1 s of imports on the writer thread would contend with the loop for the GIL; return
    whether SLEAP suggestions can be written (sleap-io is not part of a rig's install)."""
    import pandas  # noqa: F401
    import tables  # noqa: F401

    if not suggestions:
        return False
    try:
        import sleap_io  # noqa: F401
    except ImportError:
        log.warning(
            "capture: SLEAP suggestions need sleap-io (pip install sleap-io, or the train "
            "extra); writing DeepLabCut labels only"
        )
        return False
    return True


@dataclass
class _Slot:
    """One capture on its way to the writer (its arrays are reused)."""

    image: np.ndarray = field(default_factory=lambda: np.zeros((0, 0, 3), np.uint8))
    pose: np.ndarray = field(default_factory=lambda: np.zeros((0, 3), np.float32))
    frame_index: int = 0


class FrameCapture:
    """Capture doubtful frames into a DeepLabCut ``labeled-data`` folder (a
    :class:`~realtime_pose.ports.FrameTap`).

    Each offered pose goes through ``detector``. A doubtful frame is captured when the rate
    allows (``min_gap_s`` since the last capture, at most ``max_per_minute``), when it does not
    look like frames already captured, and while the budgets last. "Looks like" is the live
    counterpart of DeepLabCut's k-means outlier extraction (``extract_outlier_frames`` with
    ``extractionalgorithm="kmeans"``, which clusters downsampled gray frames and picks from
    each cluster): a 32×24 gray thumbnail joins its nearest centroid of an online k-means
    (:class:`OnlineKMeans`), and a cluster that already holds ``per_cluster`` captures takes no
    more, so a minute of the same doubtful posture yields a few frames, not a hundred.

    A captured frame's image and pose are copied into one of a few preallocated slots for a
    writer thread (no free slot: the capture is dropped and counted, the loop never waits;
    offline, ``block_when_busy`` waits instead), which saves
    ``<folder>/labeled-data/<name>/img<frame index>.png`` and rewrites
    ``machinelabels-iter<iteration>.h5`` with ``machinelabels.csv`` (and ``suggestions.slp``
    for SLEAP) at most every five seconds while captures come in, and at :meth:`close`.
    ``on_event`` receives a ``capture`` event (reasons, flagged keypoints, image path relative
    to ``folder``) on the loop thread when a capture is decided.

    Parameters
    ----------
    folder
        The (DeepLabCut project) folder that holds ``labeled-data``.
    name
        The folder under ``labeled-data`` (a video's or a session's name); it must not hold
        files yet.
    keypoints
        Names of the pose rows (``animal/bodypart`` for several animals), or with ``animals``
        the bodyparts of one animal.
    detector
        Decides which poses are doubtful.
    scorer
        The model's name, the ``scorer`` of the machine labels.
    iteration
        DeepLabCut's refinement iteration in the labels' file name.
    skeleton
        Keypoint-name edges for the SLEAP skeleton.
    animals
        The animals' names (their order in the pose rows); ``None``: one animal, or taken from
        ``animal/bodypart`` keypoints.
    min_gap_s, max_per_minute
        Rate limit between captures (``max_per_minute=None``: none beyond ``min_gap_s``).
    clusters, per_cluster, cluster_radius
        Online k-means: centroids, captures per centroid, and the distance (of
        :class:`LookDescriptor` values: about 1.4 between frames with the animal in two places)
        beyond which a frame seeds a new centroid while there are free ones.
    max_frames, disk_budget_mb
        Stop capturing after this many captures, or once the captured files take this much
        disk (PNGs plus the current label files), with one warning.
    suggestions
        Also write the SLEAP suggestions file (needs sleap-io; without it, a warning and
        DeepLabCut labels only).
    on_event
        Called with each ``capture`` event payload (publish and record it); must be quick.
    slots
        Captures that may wait for the writer.
    block_when_busy
        With no free slot, wait for the writer instead of dropping the capture (offline
        analysis, where no frame is lost to a busy disk; the live loop never waits). An
        attribute: it may also be set after construction, before the first offer.

    Raises
    ------
    ValueError
        A bad setting or keypoints that do not match the detector.
    OutputExistsError
        ``labeled-data/<name>`` already holds files (another session's captures).
    """

    def __init__(
        self,
        folder: str | Path,
        name: str,
        keypoints: Sequence[str],
        detector: DoubtDetector,
        *,
        scorer: str,
        iteration: int = 0,
        skeleton: Sequence[Sequence[str]] = (),
        animals: Sequence[str] | None = None,
        min_gap_s: float = 0.5,
        max_per_minute: float | None = 30.0,
        clusters: int = 10,
        per_cluster: int = 5,
        cluster_radius: float = 0.7,
        max_frames: int = 200,
        disk_budget_mb: float = 200.0,
        suggestions: bool = True,
        on_event: Callable[[Mapping[str, Any]], object] | None = None,
        slots: int = 8,
        block_when_busy: bool = False,
    ) -> None:
        if not NAME_PATTERN.fullmatch(name):
            raise ValueError(
                f"capture name {name!r} cannot be used: it becomes a folder name, so use 1-128 "
                "letters, digits, spaces and . _ + -, starting with a letter or digit"
            )
        # the labels' names: one animal's bodyparts, and the animals (None: one animal)
        self.animals, self.bodyparts = pose_layout(keypoints, animals, len(detector.keypoints))
        if min_gap_s < 0 or not math.isfinite(min_gap_s):
            raise ValueError(f"min_gap_s must be >= 0, got {min_gap_s}")
        if max_per_minute is not None and not max_per_minute > 0:
            raise ValueError(f"max_per_minute must be positive or None, got {max_per_minute}")
        for label, value in (("clusters", clusters), ("per_cluster", per_cluster)):
            if value < 1:
                raise ValueError(f"{label} must be at least 1, got {value}")
        if not cluster_radius >= 0:
            raise ValueError(f"cluster_radius must be >= 0, got {cluster_radius}")
        if max_frames < 0 or not disk_budget_mb >= 0 or slots < 1:
            raise ValueError(
                "max_frames and disk_budget_mb must be >= 0 and slots >= 1, got "
                f"{max_frames}, {disk_budget_mb}, {slots}"
            )
        self.folder = Path(folder)
        self.name = name
        self.directory = labels_folder(self.folder, name)
        if self.directory.is_dir() and any(self.directory.iterdir()):
            raise OutputExistsError(
                self.directory, "it holds another session's captures; choose another name"
            )
        self.detector = detector
        self.scorer = str(scorer)
        self.iteration = int(iteration)
        self.skeleton = [tuple(edge) for edge in skeleton]
        self.suggestions = bool(suggestions)
        self.on_event = on_event
        self.max_frames = int(max_frames)
        self.budget_bytes = round(disk_budget_mb * 1e6)
        self.per_cluster = int(per_cluster)
        self._min_gap_ns = round(min_gap_s * 1e9)
        if max_per_minute is None:
            self._window = [-(1 << 62)]
            self._window_ns = 0
        else:
            burst = max(1, int(max_per_minute))
            self._window = [-(1 << 62)] * burst  # the last `burst` capture times, a ring
            self._window_ns = round(60e9 * burst / max_per_minute)
        self._window_head = 0
        self._last_capture_ns = -(1 << 62)
        self._kmeans = OnlineKMeans(clusters, THUMBNAIL_SIZE[0] * THUMBNAIL_SIZE[1], cluster_radius)
        self._cluster_captures = np.zeros(clusters, np.int64)
        self._thumb = np.zeros(THUMBNAIL_SIZE, np.float32)
        self._look = LookDescriptor(THUMBNAIL_SIZE[0] * THUMBNAIL_SIZE[1])
        self._free: collections.deque[_Slot] = collections.deque(_Slot() for _ in range(slots))
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self.block_when_busy = bool(block_when_busy)
        self._slot_freed = threading.Event()
        self._exhausted: str | None = None
        self._warned = False
        self._warn_lock = threading.Lock()

        # counters: each is written by one thread only (the loop's or the writer's)
        self.offered = 0
        self.doubtful = 0
        self.captured = 0
        self.rate_limited = 0
        self.similar = 0
        self.dropped_busy = 0
        self.budget_reached = 0
        self.event_errors = 0
        self.by_reason = dict.fromkeys(REASON_NAMES.values(), 0)
        self.captured_by_reason = dict.fromkeys(REASON_NAMES.values(), 0)
        self.written = 0
        self.write_errors = 0
        self.png_bytes = 0
        self.label_bytes = 0
        self._writer_over_budget = 0
        self.last_error: str | None = None

        self._records: dict[int, np.ndarray] = {}  # frame index → pose, of written images
        self._png_sizes: dict[int, int] = {}
        self._dirty = False
        self._last_flush = -math.inf
        self.suggestions = _preload(self.suggestions)
        self._closed = False
        self._close_lock = threading.Lock()
        self._stopping = threading.Event()
        self._thread = SupervisedThread(
            self._write_loop, f"capture-writer-{name}", should_stop=self._stopping.is_set
        )
        self._thread.start()

    # -- the loop thread ------------------------------------------------------------------
    def offer(self, frame: Frame, seq: int, pose: np.ndarray, predicted: Predicted | None) -> None:
        """Check ``pose``; capture ``frame`` if it is doubtful and allowed (returns at once)."""
        self.offered += 1
        t_ns = frame.t_capture_ns
        mask = self.detector.update(pose, t_ns)
        if not mask:
            return
        self.doubtful += 1
        for bit, reason in REASON_NAMES.items():
            if mask & bit:
                self.by_reason[reason] += 1
        if self._closed:
            return
        if self._exhausted is None:
            self._check_budget()
        if self._exhausted is not None:
            self.budget_reached += 1
            return
        if t_ns - self._last_capture_ns < self._min_gap_ns or (
            t_ns - self._window[self._window_head] < self._window_ns
        ):
            self.rate_limited += 1
            return
        if not self._free and not (self.block_when_busy and self._wait_for_slot()):
            self.dropped_busy += 1
            return
        image = frame.image
        thumbnail(image if image.ndim == 3 else image[:, :, None], self._thumb)
        cluster = self._kmeans.assign(self._look.describe(self._thumb.reshape(-1)))
        if self._cluster_captures[cluster] >= self.per_cluster:
            self.similar += 1
            return
        slot = self._free.popleft()
        if slot.image.shape != image.shape or slot.image.dtype != image.dtype:
            slot.image = np.empty_like(image)
        np.copyto(slot.image, image)
        if slot.pose.shape != pose.shape:
            slot.pose = np.empty(pose.shape, np.float32)
        np.copyto(slot.pose, pose, casting="unsafe")
        slot.frame_index = frame.frame_index
        self._queue.put(slot)
        self._cluster_captures[cluster] += 1
        self.captured += 1
        self._last_capture_ns = t_ns
        self._window[self._window_head] = t_ns
        self._window_head = (self._window_head + 1) % len(self._window)
        reasons = self.detector.reasons(mask)
        for reason in reasons:
            self.captured_by_reason[reason] += 1
        if self.on_event is not None:
            self._emit(frame, reasons)

    def _wait_for_slot(self) -> bool:
        """Wait until the writer frees a slot; ``False`` if it has stopped."""
        while not self._free:
            self._slot_freed.clear()
            if self._free:
                break
            if not self._thread.is_alive():
                return False
            self._slot_freed.wait(0.1)
        return True

    def _check_budget(self) -> None:
        if self.captured >= self.max_frames:
            self._exhausted = "max_frames"
            self._warn_budget("max_frames", f"{self.max_frames} frames captured")
        elif self._writer_over_budget or self.png_bytes + self.label_bytes >= self.budget_bytes:
            self._exhausted = "disk_budget_mb"
            self._warn_budget("disk_budget_mb", f"{self.disk_mb():.2f} MB on disk")

    def _warn_budget(self, budget: str, detail: str) -> None:
        with self._warn_lock:  # the loop and the writer may both get here: one warning
            if self._warned:
                return
            self._warned = True
        log.warning(
            "capture %s: %s reached (%s); no more frames are captured in this session",
            self.name,
            budget,
            detail,
        )

    def disk_mb(self) -> float:
        """What the captured files take on disk, MB (PNGs plus the current label files)."""
        return (self.png_bytes + self.label_bytes) / 1e6

    def _emit(self, frame: Frame, reasons: list[str]) -> None:
        image = f"{LABELED_DATA}/{self.name}/{frame_image_name(frame.frame_index)}"
        try:
            self.on_event(  # type: ignore[misc]
                event_payload(
                    "capture",
                    self.name,
                    frame.frame_index,
                    t_ns=frame.t_capture_ns,
                    reasons=reasons,
                    keypoints=self.detector.flagged_keypoints(),
                    image=image,
                )
            )
        except Exception:
            self.event_errors += 1
            if self.event_errors == 1:
                log.exception("capture %s: the capture event handler failed", self.name)

    # -- the writer thread ----------------------------------------------------------------
    def _write_loop(self) -> None:
        while True:
            timeout = None
            if self._dirty:
                timeout = max(0.0, self._last_flush + _FLUSH_INTERVAL_S - time.monotonic())
            try:
                item = self._queue.get(timeout=timeout)
            except queue.Empty:
                item = None
            if item is _STOP:
                if self._dirty:
                    self._flush_labels()
                return
            if item is not None:
                try:
                    self._write_image(item)
                finally:
                    self._free.append(item)
                    self._slot_freed.set()
            # the label files take ~0.1 s to rewrite at 200 frames: at most every few seconds
            if self._dirty and time.monotonic() - self._last_flush >= _FLUSH_INTERVAL_S:
                self._flush_labels()

    def _failed(self, what: str, exc: BaseException) -> None:
        self.write_errors += 1
        self.last_error = f"{what}: {type(exc).__name__}: {exc}"
        if self.write_errors == 1:
            log.error("capture %s: %s", self.name, self.last_error, exc_info=exc)
        elif self.write_errors <= 10 or self.write_errors % 100 == 0:  # a full disk: no flood
            log.warning("capture %s: %s (%d errors)", self.name, self.last_error, self.write_errors)

    def _write_image(self, slot: _Slot) -> None:
        path = self.directory / frame_image_name(slot.frame_index)
        try:
            ok, png = cv2.imencode(".png", slot.image)
            if not ok:
                raise ValueError(f"OpenCV could not encode an image of shape {slot.image.shape}")
            if self.png_bytes + self.label_bytes + png.nbytes > self.budget_bytes:
                self._writer_over_budget += 1  # the loop sees it and stops capturing
                self._warn_budget("disk_budget_mb", f"{self.disk_mb():.2f} MB on disk")
                return
            self.directory.mkdir(parents=True, exist_ok=True)
            with writing(path, overwrite=True) as tmp:
                tmp.write_bytes(png.tobytes())
        except Exception as exc:
            self._failed(f"frame {slot.frame_index} not written to {path}", exc)
            return
        # a frame index seen again (a source that restarted) replaces its image and row
        self.png_bytes += png.nbytes - self._png_sizes.get(slot.frame_index, 0)
        self._png_sizes[slot.frame_index] = png.nbytes
        self.written += 1
        self._records[slot.frame_index] = slot.pose.copy()
        self._dirty = True

    def _flush_labels(self) -> None:
        self._last_flush = time.monotonic()
        indices = sorted(self._records)
        poses = np.stack([self._records[i] for i in indices])
        try:
            h5 = write_machine_labels(
                self.folder,
                self.name,
                indices,
                poses,
                self.bodyparts,
                self.scorer,
                self.iteration,
                self.animals,
            )
            files = [h5, h5.with_name(MACHINE_LABELS_CSV)]
            if self.suggestions:
                files.append(
                    write_sleap_suggestions(
                        self.directory / SUGGESTIONS_FILE,
                        [self.directory / frame_image_name(i) for i in indices],
                        poses,
                        self.bodyparts,
                        self.skeleton,
                        animals=self.animals,
                    )
                )
            self.label_bytes = sum(f.stat().st_size for f in files)
        except Exception as exc:
            self._failed(f"labels of {len(indices)} frames not written", exc)
            return
        self._dirty = False

    # -- the owner --------------------------------------------------------------------------
    @property
    def labels_path(self) -> Path:
        """The machine labels' ``.h5``."""
        return machine_labels_path(self.folder, self.name, self.iteration)

    def stats(self) -> dict[str, Any]:
        """Counters of offers, doubts, captures, refusals (by cause) and writes."""
        return {
            "offered": self.offered,
            "doubtful": self.doubtful,
            "captured": self.captured,
            "written": self.written,
            "dropped_busy": self.dropped_busy,
            "rate_limited": self.rate_limited,
            "similar": self.similar,
            "budget_reached": self.budget_reached + self._writer_over_budget,
            "budget": self._exhausted or ("disk_budget_mb" if self._writer_over_budget else None),
            "bytes": self.png_bytes + self.label_bytes,
            "write_errors": self.write_errors,
            "event_errors": self.event_errors,
            "clusters": self._kmeans.count,
            "by_reason": dict(self.by_reason),
            "captured_by_reason": dict(self.captured_by_reason),
            "last_error": self.last_error,
        }

    def close(self) -> None:
        """Write what is queued and the final label files, and stop the writer. Idempotent."""
        with self._close_lock:
            if self._closed:
                return
            self._closed = True
            self._stopping.set()
            self._queue.put(_STOP)
            self._thread.join()
            if self._dirty:  # the writer died before its last flush
                self._flush_labels()

    def __enter__(self) -> FrameCapture:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
