"""``realtime-pose analyze``: offline pose estimation of videos into DeepLabCut tables."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

log = logging.getLogger(__name__)


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``analyze`` sub-command."""
    p = subparsers.add_parser(
        "analyze",
        help="analyse videos offline into DeepLabCut .h5/.csv tables",
        description="Run a bundle on every frame of one or more videos and write "
        "<stem>_<scorer>.h5 and .csv in DeepLabCut's layout.",
    )
    p.add_argument("videos", nargs="+", type=Path, metavar="VIDEO")
    p.add_argument("--bundle", required=True, type=Path, help="model bundle folder or .zip")
    p.add_argument("--output-dir", type=Path, help="where to write (default: beside each video)")
    p.add_argument("--max-frames", type=int, help="stop after N frames per video")
    p.add_argument("--labeled-video", action="store_true", help="also write a labelled video")
    p.add_argument("--pcutoff", type=float, default=0.6, help="likelihood to draw a keypoint")
    p.add_argument(
        "--input-size", nargs=2, type=int, metavar=("W", "H"), help="resize frames to W x H"
    )
    p.add_argument("--provider", choices=["cpu", "cuda", "tensorrt"], default="cpu")
    p.add_argument("--threads", type=int, default=0, help="ONNX Runtime threads (0 = all)")
    p.add_argument(
        "--overwrite", action="store_true", help="replace outputs that exist (default: refuse)"
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Analyse each video; a video that fails is reported and the others go on."""
    from realtime_pose.analyze import analyze_video, default_scorer, output_paths
    from realtime_pose.bundle import BundleError, load_bundle
    from realtime_pose.engines import EngineError, open_engine
    from realtime_pose.estimator import PoseEstimator
    from realtime_pose.geometry import Size
    from realtime_pose.safe_write import OutputExistsError
    from realtime_pose.sources import SourceError

    if args.max_frames is not None and args.max_frames <= 0:
        log.error("--max-frames must be positive, got %s", args.max_frames)
        return 2
    try:
        bundle = load_bundle(args.bundle)
        input_size = Size(*args.input_size) if args.input_size else None
        config = dict(provider=args.provider, threads=args.threads, spinning=False)
        engine = open_engine(bundle, config, [input_size] if input_size else ())
    except (BundleError, EngineError) as exc:
        log.error("%s", exc)
        return 2
    estimator = PoseEstimator(bundle, engine, input_size)
    failed = 0
    claimed: dict = {}  # output path -> the video that writes it in this run
    for video in args.videos:
        paths = output_paths(video, args.output_dir, default_scorer(bundle), args.labeled_video)
        clash = next((claimed[p] for p in paths if p in claimed), None)
        if clash is not None:
            log.error(
                "%s: not analysed: its outputs (%s) would replace those of %s from this run; "
                "give the videos different names or separate --output-dir runs",
                video,
                paths[0],
                clash,
            )
            failed += 1
            continue
        claimed.update(dict.fromkeys(paths, video))
        try:
            result = analyze_video(
                video,
                bundle,
                estimator,
                args.output_dir,
                max_frames=args.max_frames,
                labeled_video=args.labeled_video,
                pcutoff=args.pcutoff,
                overwrite=args.overwrite,
            )
        except (SourceError, OutputExistsError) as exc:
            log.error("%s", exc)
            failed += 1
            continue
        log.info(
            "%s: %d frames in %.1f s (%.1f fps) -> %s",
            video,
            result.frames,
            result.seconds,
            result.frames / max(result.seconds, 1e-9),
            result.h5_path,
        )
    engine.close()
    if failed:
        log.error("%d of %d videos failed", failed, len(args.videos))
        return 1
    return 0
