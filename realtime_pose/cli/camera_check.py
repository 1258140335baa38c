"""``realtime-pose camera-check SOURCE...``: grab N frames from each camera and report."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``camera-check`` sub-command."""
    p = subparsers.add_parser(
        "camera-check",
        help="grab N frames from each source: FPS, drops by cause, timestamp jitter, preview",
        description="Each SOURCE is a source section: inline YAML such as "
        "'{kind: basler, device_class: BaslerCamEmu, fps: 60}', a YAML file with one, or a "
        "run config (its source: is used). Frames are taken through the live loop's grabber; "
        "the preview is the last frame as PNG.",
    )
    p.add_argument("sources", nargs="+", metavar="SOURCE")
    p.add_argument("--frames", type=int, default=200, help="frames to grab (default 200)")
    p.add_argument("--timeout", type=float, default=5.0, help="give up after this long idle")
    p.add_argument(
        "--preview-dir", type=Path, default=Path("."), help="folder of the preview images"
    )
    p.add_argument("--json", type=Path, help="also write the reports to this JSON file")
    p.add_argument("--overwrite", action="store_true", help="replace existing outputs")
    p.set_defaults(func=run)


def _preview_name(source_id: str) -> str:
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in source_id)
    return f"camera-check_{safe}.png"


def run(args: argparse.Namespace) -> int:
    """Check each source; exit 2 on a bad argument, 1 if a camera failed or gave no frame."""
    import cv2

    from realtime_pose.live.camera_report import check_camera
    from realtime_pose.sources.base import SourceError
    from realtime_pose.sources.sections import parse_source
    from realtime_pose.util.safe_write import OutputExistsError, check_free, write_text, writing

    if args.frames < 2:
        print("realtime-pose camera-check: --frames must be at least 2", file=sys.stderr)
        return 2
    try:
        choices = [parse_source(text) for text in args.sources]
        if args.json is not None:
            check_free(args.json, args.overwrite)
    except (ValueError, OutputExistsError) as exc:
        print(f"realtime-pose camera-check: {exc}", file=sys.stderr)
        return 2
    reports, failed = [], 0
    for choice in choices:
        source = choice.cls.from_options(choice.options)
        try:
            report, last = check_camera(source, args.frames, args.timeout)
        except SourceError as exc:
            print(f"{choice.name}: {exc}", file=sys.stderr)
            failed += 1
            continue
        if last is None:
            print(f"{report.source}: no frame within {args.timeout:g} s", file=sys.stderr)
            failed += 1
            continue
        args.preview_dir.mkdir(parents=True, exist_ok=True)
        preview = args.preview_dir / _preview_name(report.source)
        try:
            with writing(preview, args.overwrite) as tmp:
                if not cv2.imwrite(str(tmp), last.image):
                    raise OSError(f"OpenCV could not write {preview}")
        except OutputExistsError as exc:
            print(f"realtime-pose camera-check: {exc}", file=sys.stderr)
            return 2
        report.extra["preview"] = str(preview)
        reports.append(report.as_dict())
        print("\n".join(report.lines()))
        print(f"  preview: {preview}")
        if report.frames < args.frames:
            failed += 1
    if args.json is not None:
        write_text(args.json, json.dumps(reports, indent=1) + "\n", args.overwrite)
    return 1 if failed else 0
