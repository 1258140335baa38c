"""One analysis worker: the model loaded once, then chunk after chunk of video.

:class:`ChunkWorker` is a plain class; :mod:`.dispatch` turns it into a Ray actor, so each
worker process keeps its bundle, engine and warmed-up estimator for every chunk it is given.
It never imports Ray, so it is also what the in-process (``--workers 0``) path runs.
"""

from __future__ import annotations

import os
import socket
import time
from pathlib import Path
from typing import Any

import numpy as np

from realtime_pose.geometry import Size
from realtime_pose.offline.analysis import video_frames
from realtime_pose.offline.distributed.chunks import Chunk, ChunkResult, frame_hash


class ChunkWorker:
    """Load ``bundle_path`` once and analyse chunks with it.

    Parameters
    ----------
    bundle_path
        Model bundle folder or ``.zip`` (every node must see it at this path).
    engine
        The ``engine:`` options, e.g. ``{"provider": "cpu", "threads": 1}``.
    input_size
        Resize frames to this network input ``(W, H)``, or ``None`` for the bundle's rule.

    Raises
    ------
    BundleError, EngineError
        The bundle or engine cannot be loaded (the actor then fails to start, and the run
        stops with that message).
    """

    def __init__(
        self,
        bundle_path: str,
        engine: dict[str, Any],
        input_size: tuple[int, int] | None = None,
    ) -> None:
        from realtime_pose.bundle import load_bundle
        from realtime_pose.engines import open_engine
        from realtime_pose.inference.estimator import PoseEstimator

        size = Size(*input_size) if input_size else None
        self.bundle = load_bundle(bundle_path)
        self.engine = open_engine(self.bundle, engine, [size] if size else ())
        self.estimator = PoseEstimator(self.bundle, self.engine, size)
        self.name = f"{socket.gethostname()}/{os.getpid()}"
        self._warm: set[tuple[int, ...]] = set()

    def identity(self) -> str:
        """``host/pid`` of this worker (a cheap call that waits until the model is loaded)."""
        return self.name

    def run_chunk(self, chunk: Chunk) -> ChunkResult:
        """Poses of every frame of ``chunk`` (see :mod:`.chunks` for the boundary check).

        Raises
        ------
        SourceError
            The video cannot be opened or stops decoding part-way.
        """
        t0 = time.monotonic()
        lead = 1 if chunk.start > 0 else 0
        limit = None if chunk.frames is None else chunk.frames + lead
        poses: list[np.ndarray] = []
        lead_hash = tail_hash = None
        last = None
        for frame in video_frames(Path(chunk.video), limit, chunk.start - lead):
            if lead and frame.frame_index == chunk.start - 1:
                lead_hash = frame_hash(frame.image)
                continue
            image = frame.image
            if image.shape not in self._warm:
                self.estimator.warmup(Size(image.shape[1], image.shape[0]), runs=2)
                self._warm.add(image.shape)
            poses.append(self.estimator.estimate(image).copy())
            last = image
        if last is not None:
            tail_hash = frame_hash(last)
        n_keypoints = len(self.bundle.keypoints)
        stacked = np.stack(poses) if poses else np.zeros((0, n_keypoints, 3), np.float32)
        return ChunkResult(chunk, stacked, lead_hash, tail_hash, time.monotonic() - t0, self.name)

    def close(self) -> None:
        """Release the engine."""
        self.engine.close()
