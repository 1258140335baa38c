"""Many videos through one bundle: checked, planned, run here or on Ray, and summed up.

:func:`analyze_videos` is what ``realtime-pose analyze`` calls. It refuses videos whose outputs
would collide, skips those whose outputs are already complete, and runs the rest either in this
process, one after another (:func:`analyze_here`), or cut into frame chunks over Ray workers
(:func:`plan_jobs` + :func:`analyze_distributed`), returning one :class:`Outcome` per video.
"""

from __future__ import annotations

import importlib.util
import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from realtime_pose.bundle import Bundle
from realtime_pose.geometry import Size

if TYPE_CHECKING:
    from realtime_pose.offline.distributed.dispatch import VideoJob

log = logging.getLogger(__name__)


class AnalysisSetupError(ValueError):
    """The analysis cannot start: a bad option, a missing extra or an engine that cannot run."""


@dataclass(frozen=True)
class AnalysisRequest:
    """What to analyse and how: the options of ``realtime-pose analyze``, typed.

    ``workers``: ``None`` lets the cluster decide, ``0`` runs in this process.
    ``chunk_frames``: ``None`` for the default chunk, ``0`` for whole videos.
    """

    videos: tuple[Path, ...]
    bundle_path: Path
    output_dir: Path | None = None
    formats: tuple[str, ...] = ("dlc",)
    overwrite: bool = False
    max_frames: int | None = None
    labeled_video: bool = False
    pcutoff: float = 0.6
    input_size: Size | None = None
    provider: str = "cpu"
    threads: int = 0
    workers: int | None = None
    cluster: str | None = None
    chunk_frames: int | None = None
    cpus_per_worker: float = 1.0
    gpus_per_worker: float = 0.0

    def engine_section(self, threads: int) -> dict[str, Any]:
        """The ONNX Runtime engine section every worker opens."""
        return dict(provider=self.provider, threads=threads, spinning=False)


@dataclass
class Outcome:
    """One video's result: ``done``, ``complete`` (skipped) or ``failed``."""

    video: Path
    status: str
    frames: int = 0
    seconds: float = 0.0
    detail: str = ""
    files: list[Path] = field(default_factory=list)


def check_request(request: AnalysisRequest) -> None:
    """Refuse bad options and missing extras before any video is opened.

    Raises
    ------
    AnalysisSetupError
        Naming the option (``--format``, ``--max-frames``, ...) and what to do.
    """
    from realtime_pose.formats.pose_files import FORMATS

    unknown = [f for f in request.formats if f not in FORMATS]
    if not request.formats or unknown:
        raise AnalysisSetupError(
            f"--format: unknown {unknown or list(request.formats)!r}; "
            f"choose from {', '.join(FORMATS)}"
        )
    for name in ("max_frames", "chunk_frames", "workers"):
        value = getattr(request, name)
        if value is not None and (value < 0 or (value == 0 and name == "max_frames")):
            raise AnalysisSetupError(f"--{name.replace('_', '-')} must be positive, got {value}")
    if request.cpus_per_worker <= 0 or request.gpus_per_worker < 0:
        raise AnalysisSetupError(
            "--cpus-per-worker must be positive and --gpus-per-worker not negative"
        )
    if "nwb" in request.formats:
        from realtime_pose.formats.nwb import require_nwb

        try:
            require_nwb()
        except ImportError as exc:
            raise AnalysisSetupError(str(exc)) from None
    if "slp" in request.formats and importlib.util.find_spec("sleap_io") is None:
        from realtime_pose.formats.slp import INSTALL_HINT

        raise AnalysisSetupError(f"--format slp needs sleap-io: {INSTALL_HINT}")


def same_stem(videos: Sequence[Path], output_dir: Path | None, scorer: str) -> dict[Path, str]:
    """Videos refused because an earlier one of this run writes the same outputs (same stem
    into one folder), each with its one-line reason."""
    from realtime_pose.formats.pose_files import output_stem

    claimed: dict[Path, Path] = {}
    refused: dict[Path, str] = {}
    for video in videos:
        stem = output_stem(video, output_dir, scorer).resolve()
        if stem in claimed and claimed[stem].resolve() != video.resolve():
            refused[video] = (
                f"{video}: not analysed: its outputs ({stem}.*) would replace those of "
                f"{claimed[stem]} from this run; give the videos different names or separate "
                "--output-dir runs"
            )
        claimed.setdefault(stem, video)
    return refused


def analyze_videos(request: AnalysisRequest, bundle: Bundle) -> list[Outcome]:
    """Analyse every video of ``request``; one :class:`Outcome` per video, in the asked order.

    Raises
    ------
    AnalysisSetupError
        The engine or the Ray cluster could not start (no video was analysed).
    """
    from realtime_pose.offline.analysis import default_scorer
    from realtime_pose.offline.distributed.cluster import ray_available

    scorer = default_scorer(bundle)
    refused = same_stem(request.videos, request.output_dir, scorer)
    for reason in refused.values():
        log.error("%s", reason)
    videos = [v for v in request.videos if v not in refused]
    distributed = request.workers != 0 and (
        ray_available() or request.cluster is not None or request.workers is not None
    )
    if request.workers is None and request.cluster is None and not distributed:
        log.info("Ray is not installed: analysing in this process, one video after another")
    run = analyze_distributed if distributed else analyze_here
    outcomes = run(request, videos, bundle, scorer)
    outcomes += [Outcome(video, "failed", detail=reason) for video, reason in refused.items()]
    order = {video: i for i, video in enumerate(request.videos)}
    outcomes.sort(key=lambda o: order[o.video])
    return outcomes


def analyze_here(
    request: AnalysisRequest, videos: Sequence[Path], bundle: Bundle, scorer: str
) -> list[Outcome]:
    """Every video in this process, one after another."""
    from realtime_pose.engines import EngineError, open_engine
    from realtime_pose.inference.estimator import PoseEstimator
    from realtime_pose.offline.analysis import analyze_video
    from realtime_pose.sources import SourceError
    from realtime_pose.util.safe_write import OutputExistsError

    size = request.input_size
    try:
        engine = open_engine(
            bundle, request.engine_section(request.threads), [size] if size else ()
        )
    except EngineError as exc:
        raise AnalysisSetupError(str(exc)) from None
    estimator = PoseEstimator(bundle, engine, size)
    outcomes = []
    try:
        for video in videos:
            try:
                result = analyze_video(
                    video,
                    bundle,
                    estimator,
                    request.output_dir,
                    max_frames=request.max_frames,
                    labeled_video=request.labeled_video,
                    pcutoff=request.pcutoff,
                    scorer=scorer,
                    formats=request.formats,
                    overwrite=request.overwrite,
                )
            except (SourceError, OutputExistsError, OSError) as exc:
                log.error("%s", exc)
                outcomes.append(Outcome(video, "failed", detail=str(exc)))
                continue
            status = "complete" if result.skipped else "done"
            outcomes.append(
                Outcome(video, status, result.frames, result.seconds, files=result.files)
            )
    finally:
        engine.close()
    return outcomes


def plan_jobs(
    request: AnalysisRequest, videos: Sequence[Path], bundle: Bundle, scorer: str
) -> tuple[list[VideoJob], list[Outcome]]:
    """A :class:`~realtime_pose.offline.distributed.dispatch.VideoJob` per video with work to
    do, and outcomes for the others (already complete, or unreadable)."""
    from realtime_pose.formats.pose_files import (
        OutputPlan,
        output_stem,
        provenance,
        units_to_write,
    )
    from realtime_pose.offline.analysis import video_info
    from realtime_pose.offline.distributed.chunks import DEFAULT_CHUNK_FRAMES, plan_chunks
    from realtime_pose.offline.distributed.dispatch import VideoJob
    from realtime_pose.sources import SourceError
    from realtime_pose.util.safe_write import OutputExistsError

    chunk_frames = DEFAULT_CHUNK_FRAMES if request.chunk_frames is None else request.chunk_frames
    jobs, outcomes = [], []
    for video_id, video in enumerate(videos):
        stem = output_stem(video, request.output_dir, scorer)
        plan = OutputPlan(video, stem, request.formats, request.labeled_video)
        try:
            if not video.is_file():
                raise SourceError(f"video file {video} does not exist (check the path)")
            expected = provenance(video, bundle, scorer, request.max_frames)
            units = units_to_write(plan, expected, bundle.keypoints, request.overwrite)
            if not units:
                outcomes.append(Outcome(video, "complete", detail="outputs already complete"))
                continue
            count, fps = video_info(video)
        except (SourceError, OutputExistsError, OSError) as exc:
            log.error("%s", exc)
            outcomes.append(Outcome(video, "failed", detail=str(exc)))
            continue
        count = count or 0
        expected_frames = min(count, request.max_frames) if request.max_frames else count
        write = _JobWriter(request, bundle, scorer, plan, units, expected, fps)
        chunks = plan_chunks(video_id, str(video), count, chunk_frames, request.max_frames)
        jobs.append(VideoJob(video_id, video, chunks, expected_frames, write))
    return jobs, outcomes


@dataclass(frozen=True)
class _JobWriter:
    """Writes one video's merged poses (tracked as the sequential path does); called by the
    dispatcher once every chunk of the video is back."""

    request: AnalysisRequest
    bundle: Bundle
    scorer: str
    plan: Any
    units: Sequence[str]
    expected: dict[str, Any]
    fps: float

    def __call__(self, poses: Any) -> list[Path]:
        from realtime_pose.formats.pose_files import write_units
        from realtime_pose.inference.tracking_stage import track_sequence
        from realtime_pose.offline.analysis import write_labeled_video
        from realtime_pose.offline.tracks import analysis_tables

        poses, track_ids = track_sequence(poses, self.bundle.meta, self.fps)
        tables, bundle = analysis_tables(poses, track_ids, self.bundle)
        files = write_units(
            self.plan,
            [u for u in self.units if u != "labeled"],
            tables,
            bundle,
            scorer=self.scorer,
            fps=self.fps,
            provenance=self.expected,
            overwrite=self.request.overwrite,
        )
        if "labeled" in self.units:
            files.append(
                write_labeled_video(
                    self.plan.video,
                    poses,
                    self.bundle,
                    self.plan.file("labeled"),
                    self.fps,
                    self.request.pcutoff,
                    self.request.overwrite,
                )
            )
        return files


def analyze_distributed(
    request: AnalysisRequest, videos: Sequence[Path], bundle: Bundle, scorer: str
) -> list[Outcome]:
    """Every video cut into chunks over Ray workers (embedded Ray, or ``request.cluster``)."""
    from realtime_pose.offline.distributed.cluster import (
        ClusterError,
        ray_session,
        workers_that_fit,
    )
    from realtime_pose.offline.distributed.dispatch import run_jobs, start_workers
    from realtime_pose.util.progress import Progress

    jobs, outcomes = plan_jobs(request, videos, bundle, scorer)
    if not jobs:
        return outcomes
    chunks = sum(len(job.chunks) for job in jobs)
    try:
        with ray_session(request.cluster) as ray:
            fit = workers_that_fit(ray, request.cpus_per_worker, request.gpus_per_worker)
            asked = request.workers or fit
            if asked > fit:
                log.warning("%d workers asked; the cluster has room for %d", asked, fit)
            workers = max(1, min(asked, fit, chunks))
            threads = request.threads or max(1, int(request.cpus_per_worker))
            worker_args = (
                str(Path(request.bundle_path).resolve()),
                request.engine_section(threads),
                tuple(request.input_size) if request.input_size else None,
                request.cpus_per_worker,
                request.gpus_per_worker,
            )
            try:
                actors, names = start_workers(ray, workers, *worker_args)
            except RuntimeError as exc:
                raise AnalysisSetupError(str(exc)) from None
            log.info(
                "%d workers on %s; %d videos in %d chunks",
                workers,
                "this machine" if request.cluster is None else request.cluster,
                len(jobs),
                chunks,
            )
            bar = Progress("analysis", sum(job.expected_frames for job in jobs) or None)
            stats = run_jobs(
                ray,
                jobs,
                actors,
                names,
                on_frames=bar.update,
                on_failure=lambda job: bar.fail(),
                on_tick=lambda: bar.update(0),
                make_worker=lambda: start_workers(ray, 1, *worker_args)[0][0],
            )
            bar.close()
    except ClusterError as exc:
        raise AnalysisSetupError(str(exc)) from None
    if stats.restarts:
        log.warning("%d chunk(s) were re-run after a worker process died", stats.restarts)
    for job in jobs:
        if job.error is not None:
            outcomes.append(Outcome(job.video, "failed", detail=job.error))
        else:
            outcomes.append(Outcome(job.video, "done", job.frames, job.seconds, files=job.files))
    return outcomes


def summary(outcomes: Sequence[Outcome], seconds: float) -> str:
    """The closing table: one row per video, then the totals."""
    width = max([len(o.video.name) for o in outcomes] + [5])
    lines = [f"{'video':<{width}}  {'status':<8}  {'frames':>7}  {'fps':>7}  detail"]
    for o in outcomes:
        fps = f"{o.frames / o.seconds:7.1f}" if o.seconds > 0 and o.frames else f"{'':>7}"
        detail = o.detail or ", ".join(os.path.basename(f) for f in o.files)
        lines.append(f"{o.video.name:<{width}}  {o.status:<8}  {o.frames:>7}  {fps}  {detail}")
    frames = sum(o.frames for o in outcomes)
    counts = {s: sum(o.status == s for o in outcomes) for s in ("done", "complete", "failed")}
    lines.append(
        f"{len(outcomes)} videos: {counts['done']} analysed, {counts['complete']} already "
        f"complete, {counts['failed']} failed; {frames} frames in {seconds:.1f} s "
        f"({frames / max(seconds, 1e-9):.1f} frames/s overall)"
    )
    return "\n".join(lines)
