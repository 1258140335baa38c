"""The model a live loop runs: the shapes it feeds the network, the estimator built and warmed
up for them, and how ``meta`` names the model.

Used at session start (:mod:`realtime_pose.live.session`) and for a model swapped in while the
session runs (:mod:`realtime_pose.live.model_swap`), so both build the same thing.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from realtime_pose.bundle import Bundle
from realtime_pose.engines import open_engine
from realtime_pose.geometry import Size
from realtime_pose.inference.crop import CropWindow
from realtime_pose.inference.estimator import NetworkInput, PoseEstimator, undersized_input
from realtime_pose.live.run_config import CropConfig, RunConfig

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class LoopShapes:
    """What a session's loop feeds its estimator: the frame sizes (one camera, or each of a
    group's) and the crop window's size (dynamic cropping, one camera only).

    The engine is built and warmed up for these at start and again for a model swapped in
    while the session runs (:mod:`realtime_pose.live.model_swap`): same frames, whatever the
    bundle (whose input sizing then gives the network sizes).
    """

    frames: tuple[Size, ...]
    crop: Size | None = None

    @classmethod
    def of_camera(cls, frame: Size, crop: CropConfig) -> LoopShapes:
        """One camera's frames, and its crop window (clamped to the frame) when enabled."""
        window = None
        if crop.enabled:
            window = Size(min(crop.width, frame.width), min(crop.height, frame.height))
        return cls((frame,), window)

    def network_sizes(self, sizing: NetworkInput) -> list[Size]:
        """The distinct network input sizes the loop runs at (what a GPU engine is built for)."""
        sizes = (s for frame in self.frames for s in sizing.loop_sizes(frame, self.crop))
        return list(dict.fromkeys(sizes))

    def warmup(self, estimator: PoseEstimator, runs: int) -> None:
        """Run ``estimator`` on blank frames at every shape the loop feeds it."""
        for frame in dict.fromkeys(self.frames):
            if self.crop is not None:
                estimator.warmup(frame, CropWindow(0, 0, *self.crop, False), runs)
            estimator.warmup(frame, None, runs)

    def describe(self) -> str:
        """``"80x64 frames, 48x48 crop"``: the shapes, for messages."""
        frames = ", ".join(f"{f.width}x{f.height}" for f in dict.fromkeys(self.frames))
        crop = f", {self.crop.width}x{self.crop.height} crop" if self.crop is not None else ""
        return f"{frames} frames{crop}"


def build_estimator(bundle: Bundle, config: RunConfig, shapes: LoopShapes) -> PoseEstimator:
    """An engine for ``bundle`` (the run config's ``engine:`` section) at the network sizes
    ``shapes`` give, the estimator on it, warmed up at each shape; the engine is closed again
    if any of that fails."""
    for frame in dict.fromkeys(shapes.frames):
        warning = undersized_input(bundle.meta, frame, config.input_size)
        if warning:
            log.warning("%s", warning)
    sizing = NetworkInput.for_bundle(bundle.meta, config.input_size)
    engine = open_engine(bundle, config.engine, shapes.network_sizes(sizing))
    try:
        estimator = PoseEstimator(bundle, engine, config.input_size)
        shapes.warmup(estimator, config.engine.options.warmup_runs)  # type: ignore[attr-defined]
    except BaseException:
        engine.close()
        raise
    return estimator


def model_description(
    bundle: Bundle, sha256: str, since_seq: int = 0, swaps: int = 0
) -> dict[str, Any]:
    """The ``model`` field of ``meta``: which model makes the poses from seq ``since_seq`` on
    (``sha256`` of its ``model.onnx``), after ``swaps`` models were swapped in."""
    meta = bundle.meta
    return {
        "name": meta.name,
        "provenance": meta.provenance,
        "bundle": str(bundle.root),
        "sha256": sha256,
        "since_seq": int(since_seq),
        "swaps": int(swaps),
    }
