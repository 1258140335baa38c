"""``realtime-pose analyze``: offline pose estimation of videos, on Ray or in this process."""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

log = logging.getLogger(__name__)


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``analyze`` sub-command."""
    p = subparsers.add_parser(
        "analyze",
        help="analyse videos offline into DeepLabCut .h5/.csv and NWB files",
        description="Run a bundle on every frame of one or more videos and write "
        "<stem>_<scorer>.h5/.csv (DeepLabCut's layout), .nwb (ndx-pose) and/or .slp (SLEAP). "
        "With Ray installed the videos are cut into chunks analysed by parallel workers "
        "(embedded Ray on this machine, or --cluster); a re-run skips videos whose outputs are "
        "complete.",
    )
    p.add_argument("videos", nargs="+", type=Path, metavar="VIDEO")
    p.add_argument("--bundle", required=True, type=Path, help="model bundle folder or .zip")
    p.add_argument("--output-dir", type=Path, help="where to write (default: beside each video)")
    p.add_argument(
        "--format",
        default="dlc",
        help="comma-separated outputs: dlc (.h5 + .csv), nwb, slp (SLEAP predictions) "
        "(default: %(default)s)",
    )
    p.add_argument("--overwrite", action="store_true", help="replace existing outputs")
    p.add_argument("--max-frames", type=int, help="stop after N frames per video")
    p.add_argument("--labeled-video", action="store_true", help="also write a labelled video")
    p.add_argument("--pcutoff", type=float, default=0.6, help="likelihood to draw a keypoint")
    p.add_argument(
        "--input-size", nargs=2, type=int, metavar=("W", "H"), help="resize frames to W x H"
    )
    p.add_argument("--provider", choices=["cpu", "cuda", "tensorrt"], default="cpu")
    p.add_argument(
        "--threads", type=int, default=0, help="ONNX Runtime threads (0: a worker's CPUs)"
    )
    ray_group = p.add_argument_group("distributed analysis (the cluster extra: Ray)")
    ray_group.add_argument(
        "--workers",
        type=int,
        help="parallel workers, each with the model loaded once (default: as many as the "
        "cluster's CPUs allow; 0: in this process, one video after another)",
    )
    ray_group.add_argument(
        "--cluster",
        metavar="ADDRESS",
        help="join a running Ray cluster: auto, HOST:PORT or ray://HOST:10001 "
        "(default: start Ray on this machine)",
    )
    ray_group.add_argument(
        "--chunk-frames",
        type=int,
        default=None,
        help="frames per chunk (default 1000; 0: whole videos)",
    )
    ray_group.add_argument("--cpus-per-worker", type=float, default=1.0)
    ray_group.add_argument(
        "--gpus-per-worker", type=float, default=0.0, help="Ray num_gpus of each worker"
    )
    p.set_defaults(func=run)


@dataclass
class Outcome:
    """One row of the closing summary."""

    video: Path
    status: str  # "done", "complete" (skipped), "failed"
    frames: int = 0
    seconds: float = 0.0
    detail: str = ""
    files: list[Path] = field(default_factory=list)


def _check_args(args: argparse.Namespace) -> str | None:
    from realtime_pose.pose_files import FORMATS

    formats = [f.strip() for f in args.format.split(",") if f.strip()]
    unknown = [f for f in formats if f not in FORMATS]
    if not formats or unknown:
        return f"--format: unknown {unknown or args.format!r}; choose from {', '.join(FORMATS)}"
    args.formats = tuple(dict.fromkeys(formats))
    for name in ("max_frames", "chunk_frames", "workers"):
        value = getattr(args, name)
        if value is not None and (value < 0 or (value == 0 and name == "max_frames")):
            return f"--{name.replace('_', '-')} must be positive, got {value}"
    if args.cpus_per_worker <= 0 or args.gpus_per_worker < 0:
        return "--cpus-per-worker must be positive and --gpus-per-worker not negative"
    return None


def _same_stem(args: argparse.Namespace, scorer: str) -> dict[Path, str]:
    """Videos refused because an earlier one of this run writes the same outputs (same stem
    into one folder), each with its one-line reason."""
    from realtime_pose.pose_files import output_stem

    claimed: dict[Path, Path] = {}
    refused: dict[Path, str] = {}
    for video in args.videos:
        stem = output_stem(video, args.output_dir, scorer).resolve()
        if stem in claimed and claimed[stem].resolve() != video.resolve():
            refused[video] = (
                f"{video}: not analysed: its outputs ({stem}.*) would replace those of "
                f"{claimed[stem]} from this run; give the videos different names or separate "
                "--output-dir runs"
            )
        claimed.setdefault(stem, video)
    return refused


def run(args: argparse.Namespace) -> int:
    """Analyse every video; exit 0 when all are complete, 1 when any failed, 2 on bad input."""
    from realtime_pose.analyze import default_scorer
    from realtime_pose.bundle import BundleError, load_bundle
    from realtime_pose.distributed.cluster import ray_available

    problem = _check_args(args)
    if problem:
        log.error("%s", problem)
        return 2
    if "nwb" in args.formats:
        from realtime_pose.nwb_output import require_nwb

        try:
            require_nwb()
        except ImportError as exc:
            log.error("%s", exc)
            return 2
    if "slp" in args.formats:
        import importlib.util

        if importlib.util.find_spec("sleap_io") is None:
            from realtime_pose.slp_output import INSTALL_HINT

            log.error("--format slp needs sleap-io: %s", INSTALL_HINT)
            return 2
    try:
        bundle = load_bundle(args.bundle)
    except BundleError as exc:
        log.error("%s", exc)
        return 2
    scorer = default_scorer(bundle)
    requested = list(args.videos)
    refused = _same_stem(args, scorer)
    for reason in refused.values():
        log.error("%s", reason)
    args.videos = [v for v in requested if v not in refused]
    distributed = args.workers != 0 and (
        ray_available() or args.cluster is not None or args.workers is not None
    )
    if args.workers is None and args.cluster is None and not distributed:
        log.info("Ray is not installed: analysing in this process, one video after another")
    t0 = time.monotonic()
    if distributed:
        outcomes = _run_distributed(args, bundle, scorer)
    else:
        outcomes = _run_here(args, bundle, scorer)
    if outcomes is None:
        return 2
    outcomes += [Outcome(video, "failed", detail=reason) for video, reason in refused.items()]
    order = {video: i for i, video in enumerate(requested)}
    outcomes.sort(key=lambda o: order[o.video])
    print(summary(outcomes, time.monotonic() - t0), file=sys.stdout)
    failed = [o for o in outcomes if o.status == "failed"]
    if failed:
        log.error(
            "%d of %d videos failed: %s",
            len(failed),
            len(outcomes),
            ", ".join(o.video.name for o in failed),
        )
        return 1
    return 0


def _engine_config(args: argparse.Namespace, threads: int) -> dict:
    return dict(provider=args.provider, threads=threads, spinning=False)


def _run_here(args: argparse.Namespace, bundle, scorer: str) -> list[Outcome] | None:
    """Every video in this process, one after another."""
    from realtime_pose.analyze import analyze_video
    from realtime_pose.engines import EngineError, open_engine
    from realtime_pose.estimator import PoseEstimator
    from realtime_pose.geometry import Size
    from realtime_pose.safe_write import OutputExistsError
    from realtime_pose.sources import SourceError

    input_size = Size(*args.input_size) if args.input_size else None
    try:
        engine = open_engine(
            bundle, _engine_config(args, args.threads), [input_size] if input_size else ()
        )
    except EngineError as exc:
        log.error("%s", exc)
        return None
    estimator = PoseEstimator(bundle, engine, input_size)
    outcomes = []
    try:
        for video in args.videos:
            try:
                result = analyze_video(
                    video,
                    bundle,
                    estimator,
                    args.output_dir,
                    max_frames=args.max_frames,
                    labeled_video=args.labeled_video,
                    pcutoff=args.pcutoff,
                    scorer=scorer,
                    formats=args.formats,
                    overwrite=args.overwrite,
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


def _plan_jobs(args, bundle, scorer) -> tuple[list, list[Outcome]]:
    """A :class:`VideoJob` per video with work to do, and outcomes for the others."""
    from realtime_pose.analyze import video_info, write_labeled_video
    from realtime_pose.distributed.chunks import DEFAULT_CHUNK_FRAMES, plan_chunks
    from realtime_pose.distributed.dispatch import VideoJob
    from realtime_pose.pose_files import (
        OutputPlan,
        output_stem,
        provenance,
        units_to_write,
        write_units,
    )
    from realtime_pose.safe_write import OutputExistsError
    from realtime_pose.sources import SourceError

    chunk_frames = DEFAULT_CHUNK_FRAMES if args.chunk_frames is None else args.chunk_frames
    jobs, outcomes = [], []
    for video_id, video in enumerate(args.videos):
        stem = output_stem(video, args.output_dir, scorer)
        plan = OutputPlan(video, stem, args.formats, args.labeled_video)
        try:
            if not video.is_file():
                raise SourceError(f"video file {video} does not exist (check the path)")
            expected = provenance(video, bundle, scorer, args.max_frames)
            units = units_to_write(plan, expected, bundle.keypoints, args.overwrite)
            if not units:
                outcomes.append(Outcome(video, "complete", detail="outputs already complete"))
                continue
            count, fps = video_info(video)
        except (SourceError, OutputExistsError, OSError) as exc:
            log.error("%s", exc)
            outcomes.append(Outcome(video, "failed", detail=str(exc)))
            continue
        count = count or 0
        expected_frames = min(count, args.max_frames) if args.max_frames else count

        def write(poses, plan=plan, units=units, expected=expected, fps=fps):
            from realtime_pose.tracking import track_sequence

            poses = track_sequence(poses, bundle.meta, fps)  # as the sequential path does
            files = write_units(
                plan,
                [u for u in units if u != "labeled"],
                poses,
                bundle,
                scorer=scorer,
                fps=fps,
                provenance=expected,
                overwrite=args.overwrite,
            )
            if "labeled" in units:
                files.append(
                    write_labeled_video(
                        plan.video,
                        poses,
                        bundle,
                        plan.file("labeled"),
                        fps,
                        args.pcutoff,
                        args.overwrite,
                    )
                )
            return files

        chunks = plan_chunks(video_id, str(video), count, chunk_frames, args.max_frames)
        jobs.append(VideoJob(video_id, video, chunks, expected_frames, write))
    return jobs, outcomes


def _run_distributed(args: argparse.Namespace, bundle, scorer: str) -> list[Outcome] | None:
    """Every video cut into chunks over Ray workers."""
    from realtime_pose.distributed.cluster import ClusterError, ray_session, workers_that_fit
    from realtime_pose.distributed.dispatch import run_jobs, start_workers
    from realtime_pose.progress import Progress

    jobs, outcomes = _plan_jobs(args, bundle, scorer)
    if not jobs:
        return outcomes
    chunks = sum(len(job.chunks) for job in jobs)
    try:
        with ray_session(args.cluster) as ray:
            fit = workers_that_fit(ray, args.cpus_per_worker, args.gpus_per_worker)
            asked = args.workers or fit
            if asked > fit:
                log.warning("%d workers asked; the cluster has room for %d", asked, fit)
            workers = max(1, min(asked, fit, chunks))
            threads = args.threads or max(1, int(args.cpus_per_worker))
            worker_args = (
                str(Path(args.bundle).resolve()),
                _engine_config(args, threads),
                tuple(args.input_size) if args.input_size else None,
                args.cpus_per_worker,
                args.gpus_per_worker,
            )
            try:
                actors, names = start_workers(ray, workers, *worker_args)
            except RuntimeError as exc:
                log.error("%s", exc)
                return None
            log.info(
                "%d workers on %s; %d videos in %d chunks",
                workers,
                "this machine" if args.cluster is None else args.cluster,
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
        log.error("%s", exc)
        return None
    if stats.restarts:
        log.warning("%d chunk(s) were re-run after a worker process died", stats.restarts)
    for job in jobs:
        if job.error is not None:
            outcomes.append(Outcome(job.video, "failed", detail=job.error))
        else:
            outcomes.append(Outcome(job.video, "done", job.frames, job.seconds, files=job.files))
    return outcomes


def summary(outcomes: list[Outcome], seconds: float) -> str:
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
