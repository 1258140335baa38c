"""``realtime-pose calibrate``: a rig's ``calibration.toml`` from views of a ChArUco board."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

USAGE = (
    "realtime-pose calibrate --board board.toml --camera NAME=PATH [--camera NAME=PATH ...] "
    "-o calibration.toml [--reference other.toml] [--overwrite]"
)


def _camera(text: str) -> tuple[str, str]:
    name, sep, path = text.partition("=")
    if not sep or not name.strip() or not path.strip():
        raise argparse.ArgumentTypeError(f"expected NAME=PATH, got {text!r}")
    return name.strip(), path.strip()


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``calibrate`` sub-command."""
    p = subparsers.add_parser(
        "calibrate",
        help="calibrate a multi-camera rig from ChArUco board views (anipose's method)",
        usage=USAGE,
        description="Detect the ChArUco board in every camera's views, calibrate the cameras "
        "with aniposelib (intrinsics, extrinsics, bundle adjustment) and write anipose's "
        "calibration.toml with a <stem>.report.json beside it. Views are matched across "
        "cameras by frame: video frame index, or the number ending each image's file name "
        "(else the images' order). Needs the calibrate extra (aniposelib).",
    )
    p.add_argument("--board", type=Path, required=True, help="the board's board.toml")
    p.add_argument(
        "--camera",
        type=_camera,
        action="append",
        required=True,
        metavar="NAME=PATH",
        help="a camera and its views: a video, an image folder or a quoted glob "
        "('top/*.png'); repeat per camera, in the rig's order",
    )
    p.add_argument("-o", "--output", type=Path, required=True, help="calibration.toml to write")
    p.add_argument("--reference", type=Path, help="another calibration.toml to compare with")
    p.add_argument("--overwrite", action="store_true", help="replace an existing output")
    p.add_argument("--fit-k2", action="store_true", help="also fit k2 (default: k1 only)")
    p.add_argument("--video-stride", type=int, metavar="N", help="examine every N-th video frame")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Calibrate and print the errors; exit 2 on inputs that cannot make a calibration."""
    from realtime_pose.calibration import CalibrationError, load_calibration
    from realtime_pose.offline.calibrate import (
        BoardSpec,
        CalibrationInputError,
        calibrate,
        report_path,
    )

    if not args.verbose:  # aniposelib's dependencies log at INFO what nobody needs to read
        for noisy in ("jax", "numba", "numexpr"):
            logging.getLogger(noisy).setLevel(logging.WARNING)
    names = [name for name, _ in args.camera]
    if len(set(names)) != len(names):
        print(f"realtime-pose calibrate: camera names repeat: {names}", file=sys.stderr)
        return 2
    try:
        board = BoardSpec.from_toml(args.board)
        reference = load_calibration(args.reference) if args.reference else None
        result = calibrate(
            dict(args.camera),
            board,
            args.output,
            overwrite=args.overwrite,
            reference=reference,
            fit_k2=args.fit_k2,
            video_stride=args.video_stride,
            progress=print,
        )
    except (CalibrationInputError, CalibrationError, FileExistsError, ImportError) as exc:
        print(f"realtime-pose calibrate: {exc}", file=sys.stderr)
        return 2
    for line in result.lines():
        print(line)
    print(f"wrote {args.output} and {report_path(args.output)}")
    return 0
