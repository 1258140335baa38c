"""From a camera frame to keypoints in frame pixels: preprocess, engine, peaks, transform.

:class:`PoseEstimator` is what offline analysis, evaluation, the live loop and the benchmarks all
call, so every path shares one preprocessing and one coordinate transform.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

import cv2
import numpy as np

from realtime_pose.bundle import Bundle, BundleMeta
from realtime_pose.engines.base import Engine
from realtime_pose.geometry import FrameTransform, Size, round_up
from realtime_pose.inference.crop import CropWindow
from realtime_pose.inference.peaks import find_peaks

if TYPE_CHECKING:
    from realtime_pose.inference.assembly import BottomUpDecoder

#: Indices into the ``stamps_ns`` array :meth:`PoseEstimator.estimate` fills.
STAMP_PREPROCESSED, STAMP_INFERRED, STAMP_PEAKS = 0, 1, 2

#: The estimator's stages, in the order :func:`estimator_stage_ns` writes them.
ESTIMATOR_STAGES = ("preprocess", "inference", "peaks")


def estimator_stage_ns(t_start_ns: int, stamps_ns: np.ndarray, out: np.ndarray) -> None:
    """Write the durations (ns) of one :meth:`PoseEstimator.estimate` call's stages into
    ``out[:3]`` (:data:`ESTIMATOR_STAGES`), from the time the call began and its stamps."""
    out[0] = stamps_ns[STAMP_PREPROCESSED] - t_start_ns
    out[1] = stamps_ns[STAMP_INFERRED] - stamps_ns[STAMP_PREPROCESSED]
    out[2] = stamps_ns[STAMP_PEAKS] - stamps_ns[STAMP_INFERRED]


def size_for_pixels(frame: Size, pixels: int, multiple: int = 8) -> Size:
    """Network input size with about ``pixels`` pixels and the frame's aspect.

    Sides are rounded to a multiple of ``multiple`` (the network stride) and are at least one
    multiple.
    """
    if pixels <= 0:
        raise ValueError(f"pixels must be positive, got {pixels}")
    scale = (pixels / frame.pixels) ** 0.5
    width = max(multiple, round(frame.width * scale / multiple) * multiple)
    height = max(multiple, round(frame.height * scale / multiple) * multiple)
    return Size(int(width), int(height))


@dataclass(frozen=True)
class NetworkInput:
    """How large the network input is for a frame or a crop window.

    Attributes
    ----------
    full_frame
        The network input for a whole frame (frames are resized to it, and crop windows by the
        same scale, so the animal looks the same size either way); ``None`` runs the network at
        the frame's (or crop's) own size.
    fixed
        The bundle's graph accepts only ``full_frame`` (crops are resized to it too).
    scale
        Without ``full_frame``: frames (and crop windows) are resized by this factor, the
        bundle's ``input.scale`` chosen at training, each side to a multiple of ``multiple``.
    pad
        Whatever the size, the network input is padded at the bottom and right (zeros) to a
        multiple of this (the bundle's ``input.pad_to``), which leaves every pixel where it
        was: the stride-16 stage of our stride-8 networks gives a side that is 8 times an odd
        number "same" padding on both sides, and shifts the maps by half a stride-16 cell (a
        1920×1080 camera: 1080 = 8·135). 1: no padding (imported models, which pad in their
        graph or match DeepLabCut-Live unpadded; fixed-size graphs).
    """

    full_frame: Size | None = None
    fixed: bool = False
    scale: float = 1.0
    multiple: int = 16
    pad: int = 1

    @classmethod
    def for_bundle(cls, meta: BundleMeta, input_size: Size | None = None) -> NetworkInput:
        """The sizing for a bundle: its fixed size if it has one, else ``input_size``, else its
        training scale."""
        fixed = meta.input.fixed_size
        if fixed is not None:
            return cls(fixed, True, pad=1)
        pad = meta.input.pad_to
        if input_size is not None:
            return cls(Size(*input_size), False, pad=pad)
        # scaled sides are multiples of twice the stride: stride-8 networks downsample once
        # more and upsample (stride 16 → 8), and a side that is not a multiple of 16 gets
        # "same" padding on both sides at that stage, which shifts the maps by half a stride-16
        # cell (measured: 19 px in y on an 832×747 project at scale 0.44, 328 rows = 8·41)
        return cls(None, False, float(meta.input.scale), 2 * max(1, round(meta.stride)), pad)

    def padded(self, size: Size) -> Size:
        """``size`` padded (bottom, right) to a multiple of :attr:`pad`."""
        return Size(round_up(size.width, self.pad), round_up(size.height, self.pad))

    def scaled(self, frame: Size) -> Size:
        """A frame's (or crop window's) network size at :attr:`scale`, each side a multiple of
        ``multiple``."""
        m = self.multiple
        return Size(
            max(m, round(frame.width * self.scale / m) * m),
            max(m, round(frame.height * self.scale / m) * m),
        )

    def resize_to(self, frame: Size, crop: CropWindow | None = None) -> Size | None:
        """The size the frame (or crop window) is resized to; ``None``: no resize."""
        if self.full_frame is None:
            if self.scale == 1.0:
                return None
            if crop is None or crop.full_frame:
                return self.scaled(frame)
            return self.scaled(Size(crop.width, crop.height))
        if crop is None or crop.full_frame or self.fixed:
            return self.full_frame
        sx, sy = self.full_frame.width / frame.width, self.full_frame.height / frame.height
        return Size(max(1, round(crop.width * sx)), max(1, round(crop.height * sy)))

    def size(self, frame: Size, crop: CropWindow | None = None) -> Size:
        """The size the network runs at for this frame size (and crop window), padded."""
        size = self.resize_to(frame, crop)
        if size is None:
            size = (
                Size(crop.width, crop.height) if crop is not None and not crop.full_frame else frame
            )
        return self.padded(size)

    def loop_sizes(self, frame: Size, crop_size: Size | None = None) -> list[Size]:
        """The distinct sizes a live loop feeds: the full frame's and the crop window's."""
        sizes = [self.size(frame)]
        if crop_size is not None:
            sizes.insert(0, self.size(frame, CropWindow(0, 0, *crop_size, False)))
        return list(dict.fromkeys(sizes))


UNDERSIZED_FRACTION = 0.75
"""Below this fraction of the bundle's training scale, :func:`undersized_input` warns."""


def undersized_input(meta: BundleMeta, frame: Size, input_size: Size | None) -> str | None:
    """A warning when ``input_size`` shrinks ``frame`` well below the scale the bundle was
    trained at (the animal then looks smaller than anything the network learned), else None.

    Measured on the openfield network (trained at scale 1.0, 640x480 frames, 20 held-out
    frames): 2.0 px mean error at 640x480, 3.6 px at 320x240, 101 px at 160x120.
    """
    if input_size is None or meta.input.fixed_size is not None:
        return None
    trained = float(meta.input.scale)
    fed = min(input_size.width / frame.width, input_size.height / frame.height)
    if fed >= UNDERSIZED_FRACTION * trained:
        return None
    return (
        f"input_size {input_size.width}x{input_size.height} shrinks {frame.width}x{frame.height} "
        f"frames to {fed:.2f} of their size, the bundle was trained at {trained:g}: errors grow "
        "as the animal shrinks (the openfield network: 2.0 px at its training scale, 3.6 px at "
        "half, 101 px at a quarter); measure it with realtime-pose evaluate BUNDLE PROJECT "
        f"--input-size {input_size.width}x{input_size.height}"
    )


def _grouper_for(meta: BundleMeta, layout: str) -> BottomUpDecoder | None:
    """The decoder that groups peaks into animals for a part-affinity bundle, else None."""
    animals = meta.animals
    if animals is None or not animals.grouped:
        return None
    from realtime_pose.inference.assembly import BottomUpDecoder

    return BottomUpDecoder(
        len(animals.bodyparts),
        np.asarray(animals.edges or [], dtype=np.int32).reshape(-1, 2),
        float(meta.stride),
        float(meta.locref_stdev),
        layout,
        len(animals.names),
    )


class PoseEstimator:
    """Pose estimation for one bundle on one engine: one animal, several named by identity
    channels, or several that look alike, grouped after the network (part affinity: the pose
    holds the animals found, best first, each slot ``[K, 3]``; empty slots NaN, likelihood 0).

    Parameters
    ----------
    bundle
        Loaded model bundle (keypoints, stride, input and output layout).
    engine
        An engine built for that bundle (:func:`realtime_pose.engines.open_engine`).
    input_size
        Network input for a full frame (see :class:`NetworkInput`); ``None`` runs the network
        at the frame's (or crop's) own size. A bundle with a fixed input size overrides this.
    """

    def __init__(self, bundle: Bundle, engine: Engine, input_size: Size | None = None) -> None:
        meta = bundle.meta
        self.bundle = bundle
        self.engine = engine
        self.sizing = NetworkInput.for_bundle(meta, input_size)
        self.keypoints = list(meta.keypoints)
        self._stride = float(meta.stride)
        self._locref_stdev = float(meta.locref_stdev)
        self._in_graph = meta.outputs.keypoints is not None
        self._layout = meta.outputs.scoremap.layout if meta.outputs.scoremap else "NCHW"
        self._has_locref = meta.outputs.locref is not None
        self._likelihood_clip = meta.likelihood_clip
        self._color = getattr(engine, "input_color", None) or meta.input.color
        self._float_input = meta.input.dtype == "float32"
        self._pose = np.zeros((len(self.keypoints), 3), dtype=np.float32)
        self._grouper = _grouper_for(meta, self._layout)
        self._resized: np.ndarray | None = None
        self._converted: np.ndarray | None = None
        self._scaled_for: tuple[int, ...] | None = None
        self._scaled_size: Size | None = None

    # -- stages ---------------------------------------------------------------------------
    def preprocess(
        self, frame: np.ndarray, crop: CropWindow | None = None
    ) -> tuple[np.ndarray, FrameTransform]:
        """Crop, resize and convert a BGR (or gray) frame to the network input.

        Returns the network image (a buffer reused by the next call) and the transform that
        maps network pixels back to frame pixels.
        """
        if crop is None or crop.full_frame:
            net_size = self.sizing.full_frame  # the per-frame common case: no Size to build
            if net_size is None and self.sizing.scale != 1.0:
                net_size = self._scaled_full_frame(frame.shape)
        else:
            net_size = self.sizing.resize_to(Size.of(frame), crop)
        x0 = y0 = 0
        if crop is not None and not crop.full_frame:
            x0, y0 = crop.x0, crop.y0
            frame = frame[y0 : y0 + crop.height, x0 : x0 + crop.width]
        src_h, src_w = frame.shape[:2]
        if net_size is not None and net_size != (src_w, src_h):
            net_w, net_h = net_size
            shape = (net_h, net_w, *frame.shape[2:])
            if self._resized is None or self._resized.shape != shape:
                self._resized = np.empty(shape, dtype=frame.dtype)
            shrinking = net_w * net_h < src_w * src_h
            cv2.resize(
                frame,
                net_size,
                dst=self._resized,
                interpolation=cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR,
            )
            frame = self._resized
            transform = FrameTransform(x0, y0, net_w / src_w, net_h / src_h)
        else:
            transform = FrameTransform(x0, y0, 1.0, 1.0)
        image = self._convert_color(frame, self.sizing.pad)
        if self._float_input:
            image = image.astype(np.float32)
        return image, transform

    def _scaled_full_frame(self, shape: tuple[int, ...]) -> Size:
        if self._scaled_for != shape[:2]:
            self._scaled_for = shape[:2]
            self._scaled_size = self.sizing.scaled(Size(shape[1], shape[0]))
        return self._scaled_size  # type: ignore[return-value]

    def network_size(self, frame: Size, crop: CropWindow | None = None) -> Size:
        """The size the network runs at for this frame size (and crop window)."""
        return self.sizing.size(frame, crop)

    def _convert_color(self, frame: np.ndarray, pad: int = 1) -> np.ndarray:
        """The frame in the network's colour order, in a buffer padded (bottom, right, zeros)
        to a multiple of ``pad`` where it is not one already (one pass: the conversion writes
        into the padded buffer)."""
        if frame.ndim == 2:
            code = cv2.COLOR_GRAY2RGB if self._color in ("RGB", "BGR") else None
        elif self._color == "RGB":
            code = cv2.COLOR_BGR2RGB
        elif self._color == "GRAY":
            code = cv2.COLOR_BGR2GRAY
        else:
            code = None
        h, w = frame.shape[:2]
        net_h, net_w = round_up(h, pad), round_up(w, pad)
        padded = (net_h, net_w) != (h, w)
        if code is None and not padded:
            return frame if frame.flags.c_contiguous else np.ascontiguousarray(frame)
        channels = frame.shape[2:] if code is None else (3,) * (code != cv2.COLOR_BGR2GRAY)
        shape = (net_h, net_w, *channels)
        if self._converted is None or self._converted.shape != shape:
            self._converted = np.zeros(shape, dtype=np.uint8)
        buffer = self._converted
        if padded:
            buffer[h:] = 0  # a smaller crop than last time must not leave its pixels
            buffer[:h, w:] = 0
        if code is None:
            np.copyto(buffer[:h, :w], frame)
        else:
            cv2.cvtColor(frame, code, dst=buffer[:h, :w])
        return buffer

    def decode(
        self, outputs: list[np.ndarray], transform: FrameTransform, out: np.ndarray | None = None
    ) -> np.ndarray:
        """Engine outputs → ``[K, 3]`` keypoints in frame pixels (``out`` reused if given)."""
        out = self._pose if out is None else out
        if self._in_graph:
            out[...] = outputs[0].reshape(-1, 3)
        elif self._grouper is not None:
            maps = [o[0] if o.ndim == 4 else o for o in outputs]
            paf = maps[2] if len(maps) > 2 else None  # one bodypart: no limbs, no fields
            self._grouper.decode(
                maps[0], maps[1], paf, out.reshape(self._grouper.max_animals, -1, 3)
            )
        else:
            locref = outputs[1] if self._has_locref else None
            find_peaks(outputs[0], locref, self._stride, self._locref_stdev, self._layout, out)
        if self._likelihood_clip is not None:
            np.clip(out[:, 2], *self._likelihood_clip, out=out[:, 2])
        if not transform.is_identity:
            transform.to_frame(out, out=out)
        return out

    # -- whole path -----------------------------------------------------------------------
    def estimate(
        self,
        frame: np.ndarray,
        crop: CropWindow | None = None,
        stamps_ns: np.ndarray | None = None,
    ) -> np.ndarray:
        """Keypoints ``[K, 3]`` (x, y, likelihood) in frame pixels for one BGR frame.

        The returned array is reused by the next call; copy it to keep it. When ``stamps_ns``
        (int64, length >= 3) is given, ``time.monotonic_ns()`` is written after preprocessing,
        inference and peak finding (indices ``STAMP_*``).
        """
        image, transform = self.preprocess(frame, crop)
        if stamps_ns is not None:
            stamps_ns[STAMP_PREPROCESSED] = time.monotonic_ns()
        outputs = self.engine.run(image)
        if stamps_ns is not None:
            stamps_ns[STAMP_INFERRED] = time.monotonic_ns()
        pose = self.decode(outputs, transform)
        if stamps_ns is not None:
            stamps_ns[STAMP_PEAKS] = time.monotonic_ns()
        return pose

    def warmup(self, frame: Size, crop: CropWindow | None = None, runs: int = 5) -> None:
        """Run the whole path on blank frames of this size (and crop), so that neither the
        engine's first run at a new shape nor the first call of a Numba kernel lands on a
        real frame."""
        image = np.zeros((*frame.shape, 3), np.uint8)
        for _ in range(max(1, runs)):
            self.estimate(image, crop)
