"""``realtime-pose analyze``: offline pose estimation of videos, on Ray or in this process."""

from __future__ import annotations

import argparse
import logging
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Sequence

    from realtime_pose.bundle import Bundle
    from realtime_pose.live.run_config import CaptureConfig
    from realtime_pose.offline.batch import AnalysisRequest, Outcome
    from realtime_pose.offline.capture import CaptureTarget

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
    p.add_argument(
        "--calibration",
        type=Path,
        help="the videos are one synchronised camera group (anipose's calibration.toml; each "
        "video named after its camera): triangulate them into <set>_3d.csv (anipose's layout), "
        "<set>_3d.nwb with --format nwb, and per-camera 2D tables",
    )
    p.add_argument("--pcutoff", type=float, default=0.6, help="likelihood to draw a keypoint")
    p.add_argument(
        "--input-size", nargs=2, type=int, metavar=("W", "H"), help="resize frames to W x H"
    )
    p.add_argument("--provider", choices=["cpu", "cuda", "tensorrt"], default="cpu")
    p.add_argument(
        "--threads", type=int, default=0, help="ONNX Runtime threads (0: a worker's CPUs)"
    )
    capture_group = p.add_argument_group(
        "capture of doubtful frames (docs/model-improvement.md)",
        "after each video's analysis, copy the frames whose poses are doubtful into a "
        "DeepLabCut labeled-data folder with the model's labels, for relabelling: the live "
        "capture's criteria and defaults (the capture: section), counted in video time",
    )
    capture_group.add_argument(
        "--capture",
        action="store_true",
        help="capture each video's doubtful frames into labeled-data/<video stem>-captured/ "
        "(needs the dlc format)",
    )
    capture_group.add_argument(
        "--capture-project",
        type=Path,
        metavar="DIR",
        help="the DeepLabCut project whose labeled-data/ receives them (default: the bundle's "
        "training project when it is on this machine, else <output dir>/captures)",
    )
    capture_group.add_argument(
        "--capture-name",
        metavar="NAME",
        help="the labeled-data folder's name, for one video (default: <video stem>-captured)",
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


def request_from(args: argparse.Namespace) -> AnalysisRequest:
    """The parsed command line as the library's typed request."""
    from realtime_pose.geometry import Size
    from realtime_pose.offline.batch import AnalysisRequest

    formats = tuple(dict.fromkeys(f.strip() for f in args.format.split(",") if f.strip()))
    return AnalysisRequest(
        videos=tuple(args.videos),
        bundle_path=args.bundle,
        output_dir=args.output_dir,
        formats=formats,
        overwrite=args.overwrite,
        max_frames=args.max_frames,
        labeled_video=args.labeled_video,
        pcutoff=args.pcutoff,
        input_size=Size(*args.input_size) if args.input_size else None,
        provider=args.provider,
        threads=args.threads,
        workers=args.workers,
        cluster=args.cluster,
        chunk_frames=args.chunk_frames,
        cpus_per_worker=args.cpus_per_worker,
        gpus_per_worker=args.gpus_per_worker,
    )


def run(args: argparse.Namespace) -> int:
    """Analyse every video; exit 0 when all are complete, 1 when any failed, 2 on bad input."""
    from realtime_pose.bundle import BundleError, load_bundle
    from realtime_pose.offline.batch import (
        AnalysisSetupError,
        analyze_videos,
        check_request,
        summary,
    )
    from realtime_pose.offline.capture import CaptureSetupError, plan_captures

    wants_capture = args.capture_project is not None or args.capture_name is not None
    if wants_capture and not args.capture:
        log.error("--capture-project and --capture-name go with --capture")
        return 2
    if args.calibration is not None:
        if args.capture:
            log.error("--capture works on single videos, not with --calibration")
            return 2
        return run_camera_set(args)
    request = request_from(args)
    t0 = time.monotonic()
    try:
        check_request(request)
        config = capture_config(args, request)
        bundle = load_bundle(request.bundle_path)
        targets = []
        if config is not None:  # refused now, not after hours of analysis
            targets = plan_captures(request.videos, bundle, config, request.output_dir)
        outcomes = analyze_videos(request, bundle)
    except (AnalysisSetupError, BundleError, CaptureSetupError) as exc:
        log.error("%s", exc)
        return 2
    print(summary(outcomes, time.monotonic() - t0), file=sys.stdout)
    failed = [o for o in outcomes if o.status == "failed"]
    if config is not None:
        failed += capture_frames(outcomes, targets, request, bundle, config)
    if failed:
        log.error(
            "%d of %d videos failed: %s",
            len(failed),
            len(outcomes),
            ", ".join(dict.fromkeys(o.video.name for o in failed)),
        )
        return 1
    return 0


def capture_config(args: argparse.Namespace, request: AnalysisRequest) -> CaptureConfig | None:
    """The ``capture:`` section that ``--capture`` stands for (defaults but the project and
    name), or ``None`` without ``--capture``.

    Raises
    ------
    AnalysisSetupError
        A bad ``--capture-name``, or no ``dlc`` among the formats (the capture reads its table).
    """
    import pydantic

    from realtime_pose.live.run_config import CaptureConfig
    from realtime_pose.offline.batch import AnalysisSetupError

    if not args.capture:
        return None
    if "dlc" not in request.formats:
        raise AnalysisSetupError(
            "--capture reads the pose table back from the .h5 file: add dlc to --format"
        )
    try:
        return CaptureConfig(enabled=True, project=args.capture_project, name=args.capture_name)
    except pydantic.ValidationError as exc:
        raise AnalysisSetupError(
            f"--capture-name {args.capture_name!r} cannot be a folder name: use 1-128 letters, "
            f"digits and . _ + -, starting with a letter or digit ({exc.errors()[0]['msg']})"
        ) from None


def capture_frames(
    outcomes: Sequence[Outcome],
    targets: Sequence[CaptureTarget],
    request: AnalysisRequest,
    bundle: Bundle,
    config: CaptureConfig,
) -> list[Outcome]:
    """Capture the doubtful frames of every analysed video (one line each); return the
    outcomes whose capture failed."""
    from realtime_pose.offline.capture import capture_video, pose_table_path
    from realtime_pose.sources import SourceError
    from realtime_pose.util.safe_write import OutputExistsError

    where = {target.video: target for target in targets}
    failed = []
    for outcome in outcomes:
        target = where.pop(outcome.video, None)  # None: the same video given again
        if outcome.status == "failed" or target is None:
            continue
        table = pose_table_path(outcome.video, request.output_dir, bundle)
        try:
            result = capture_video(outcome.video, table, bundle, config, target)
        except (SourceError, OutputExistsError, OSError, ValueError) as exc:
            log.error("%s: frames not captured: %s", outcome.video, exc)
            failed.append(outcome)
            continue
        print(result.line(), file=sys.stdout)
    return failed


def run_camera_set(args: argparse.Namespace) -> int:
    """``analyze --calibration``: one camera group's videos → 3D (exit 2 on bad input)."""
    from realtime_pose.bundle import BundleError, load_bundle
    from realtime_pose.calibration import CalibrationError, load_calibration
    from realtime_pose.engines import EngineError, open_engine
    from realtime_pose.inference.estimator import PoseEstimator
    from realtime_pose.offline.camera_set import analyze_camera_set, cameras_of
    from realtime_pose.sources import SourceError
    from realtime_pose.util.safe_write import OutputExistsError

    request = request_from(args)  # --provider, --threads, --input-size as for single videos
    size = request.input_size
    t0 = time.monotonic()
    try:
        rig = load_calibration(args.calibration)
        videos = cameras_of(args.videos, rig)
        bundle = load_bundle(args.bundle)
        engine = open_engine(bundle, request.engine_section(args.threads), [size] if size else ())
        try:
            result = analyze_camera_set(
                videos,
                rig,
                bundle,
                PoseEstimator(bundle, engine, size),
                args.output_dir or Path(args.videos[0]).parent,
                formats=request.formats,
                max_frames=args.max_frames,
                overwrite=args.overwrite,
                calibration_file=args.calibration,
            )
        finally:
            engine.close()
    except (CalibrationError, BundleError, EngineError, OutputExistsError, ValueError) as exc:
        log.error("%s", exc)
        return 2
    except SourceError as exc:
        log.error("%s", exc)
        return 1
    print(
        f"{result.frame_sets} frame sets from {len(videos)} cameras in "
        f"{time.monotonic() - t0:.1f} s: " + ", ".join(str(f) for f in result.files)
    )
    return 0
