"""Hand chunks to Ray actors as they become free, merge each video's chunks, write its outputs.

Ray does the distributed work: it places one :class:`~.worker.ChunkWorker` actor per worker on
the cluster's nodes (by their ``num_cpus``/``num_gpus``), restarts an actor whose process died
and re-runs the chunk it was working on (``max_restarts``, ``max_task_retries``). This module
only keeps every actor busy: a chunk goes to the first idle actor (:func:`ray.wait`), so a slow
node takes fewer chunks. ``ray.util.ActorPool`` does the same but cannot say which item a
failure belongs to, and a failed chunk must be reported under its video's name.
"""

from __future__ import annotations

import collections
import logging
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from realtime_pose.offline.distributed.chunks import (
    Chunk,
    ChunkMismatchError,
    ChunkResult,
    merge_chunks,
)
from realtime_pose.offline.distributed.worker import ChunkWorker

log = logging.getLogger(__name__)

MAX_RESTARTS = 4
"""Times Ray restarts a worker whose process died (killed, out of memory, node lost)."""
MAX_TASK_RETRIES = 4
"""Times Ray re-runs the chunk a dying worker was analysing."""


@dataclass
class VideoJob:
    """One video's way through the run."""

    video_id: int
    video: Path
    chunks: list[Chunk]
    expected_frames: int
    write: Callable[[np.ndarray], list[Path]]
    """Writes the merged poses ``[N, K, 3]``; returns the files (runs on a writer thread)."""
    results: dict[int, ChunkResult] = field(default_factory=dict)
    error: str | None = None
    files: list[Path] = field(default_factory=list)
    frames: int = 0
    seconds: float = 0.0
    reseeked: bool = False
    done: bool = False


@dataclass
class RunStats:
    """Timings and counts of one distributed run (seconds from :func:`run_jobs` start)."""

    workers: list[str] = field(default_factory=list)
    t_ready_s: float | None = None
    t_first_chunk_s: float | None = None
    t_first_video_s: float | None = None
    t_end_s: float = 0.0
    chunk_seconds: list[float] = field(default_factory=list)
    chunk_frames: list[int] = field(default_factory=list)
    restarts: int = 0
    failures: int = 0


def _cause(exc: BaseException) -> str:
    cause = getattr(exc, "cause", None)
    return str(cause) if cause is not None else str(exc).strip().splitlines()[-1]


def start_workers(
    ray: Any,
    count: int,
    bundle_path: str,
    engine: dict[str, Any],
    input_size: tuple[int, int] | None,
    cpus_per_worker: float,
    gpus_per_worker: float,
) -> tuple[list[Any], list[str]]:
    """``count`` actors with the bundle loaded, and their ``host/pid`` names.

    Raises
    ------
    RuntimeError
        A worker could not load the bundle or engine (the message is the worker's error).
    """
    actor_class = ray.remote(ChunkWorker).options(
        num_cpus=cpus_per_worker,
        num_gpus=gpus_per_worker,
        max_restarts=MAX_RESTARTS,
        max_task_retries=MAX_TASK_RETRIES,
    )
    actors = [actor_class.remote(bundle_path, engine, input_size) for _ in range(count)]
    try:
        names = ray.get([a.identity.remote() for a in actors])
    except ray.exceptions.RayError as exc:
        for actor in actors:
            ray.kill(actor)
        raise RuntimeError(f"a worker could not start: {_cause(exc)}") from exc
    return actors, names


def run_jobs(
    ray: Any,
    jobs: list[VideoJob],
    actors: list[Any],
    names: list[str],
    *,
    on_frames: Callable[[int], None] = lambda n: None,
    on_failure: Callable[[VideoJob], None] = lambda job: None,
    on_tick: Callable[[], None] = lambda: None,
    make_worker: Callable[[], Any] | None = None,
) -> RunStats:
    """Analyse every chunk of ``jobs`` on ``actors`` and write each video once merged.

    A video whose chunk fails (cannot be decoded) or whose outputs cannot be written gets
    ``error`` set and the others go on; a chunk boundary that does not join up (the decoder did
    not seek exactly) makes the video run again as one chunk. ``on_frames`` is told of each
    chunk's frames, ``on_failure`` of each failed video, ``on_tick`` about twice a second.
    """
    t0 = time.monotonic()
    stats = RunStats(workers=list(names), t_ready_s=0.0)
    by_id = {job.video_id: job for job in jobs}
    queue: collections.deque[Chunk] = collections.deque(c for job in jobs for c in job.chunks)
    idle = list(range(len(actors)))
    identity = dict(enumerate(names))
    inflight: dict[Any, tuple[int, Chunk]] = {}
    writes: dict[Future, VideoJob] = {}

    def fail(job: VideoJob, message: str) -> None:
        if job.error is None and not job.done:
            job.error = message
            stats.failures += 1
            log.error("%s", message)
            on_failure(job)

    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="analysis-writer") as writer:
        while queue or inflight or writes:
            while idle and queue:
                chunk = queue.popleft()
                if by_id[chunk.video_id].error is not None:
                    continue
                slot = idle.pop()
                inflight[actors[slot].run_chunk.remote(chunk)] = (slot, chunk)
            if inflight:
                ready, _ = ray.wait(list(inflight), num_returns=1, timeout=0.5)
            else:
                ready = []
                time.sleep(0.05)
            for ref in ready:
                slot, chunk = inflight.pop(ref)
                job = by_id[chunk.video_id]
                try:
                    result: ChunkResult = ray.get(ref)
                except ray.exceptions.RayTaskError as exc:
                    idle.append(slot)
                    fail(job, f"{job.video}: {_cause(exc)}")
                    continue
                except ray.exceptions.RayActorError as exc:
                    fail(job, f"{job.video}: worker died on {chunk.label} ({_cause(exc)})")
                    if make_worker is not None:
                        ray.kill(actors[slot])
                        actors[slot] = make_worker()
                        identity[slot] = ""
                        idle.append(slot)
                    continue
                idle.append(slot)
                if identity[slot] and result.worker != identity[slot]:
                    stats.restarts += 1
                    log.warning(
                        "worker %s was restarted as %s; Ray re-ran %s",
                        identity[slot],
                        result.worker,
                        chunk.label,
                    )
                identity[slot] = result.worker
                if stats.t_first_chunk_s is None:
                    stats.t_first_chunk_s = time.monotonic() - t0
                stats.chunk_seconds.append(result.seconds)
                stats.chunk_frames.append(len(result.poses))
                on_frames(len(result.poses))
                if job.error is not None:
                    continue
                job.results[chunk.index] = result
                job.seconds += result.seconds
                if len(job.results) == len(job.chunks):
                    _finish(job, queue, writer, writes, fail)
            for future in [f for f in writes if f.done()]:
                job = writes.pop(future)
                try:
                    job.files = future.result()
                except Exception as exc:  # a write error fails this video only
                    fail(job, f"{job.video}: writing its outputs failed: {exc}")
                    continue
                job.done = True
                if stats.t_first_video_s is None:
                    stats.t_first_video_s = time.monotonic() - t0
            on_tick()
    stats.t_end_s = time.monotonic() - t0
    return stats


def _finish(job, queue, writer, writes, fail) -> None:
    n_keypoints = next(iter(job.results.values())).poses.shape[1]
    try:
        poses = merge_chunks(list(job.results.values()), n_keypoints)
    except ChunkMismatchError as exc:
        if job.reseeked:
            fail(job, str(exc))
            return
        log.warning("%s; analysing this video again in one piece", exc)
        job.reseeked = True
        job.results.clear()
        job.chunks = [Chunk(job.video_id, str(job.video), 0, 0, job.chunks[-1].stop)]
        queue.appendleft(job.chunks[0])
        return
    if len(poses) == 0:
        fail(job, f"{job.video}: no frame could be decoded")
        return
    job.frames = len(poses)
    writes[writer.submit(job.write, poses)] = job
