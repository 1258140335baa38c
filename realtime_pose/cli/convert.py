"""``realtime-pose convert``: turn a pose log into DeepLabCut ``.h5``/``.csv`` tables."""

from __future__ import annotations

import argparse
import sys


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``convert`` sub-command."""
    parser = subparsers.add_parser(
        "convert",
        help="convert a .poselog recording to DeepLabCut .h5/.csv",
        description=(
            "Read a pose log (also one left by a crash: a torn last record is ignored and "
            "reported) and write DeepLabCut-layout tables, one pair per animal, plus "
            "*_predicted tables when the log holds forward predictions."
        ),
    )
    parser.add_argument("logs", nargs="+", metavar="LOG", help="one or more .poselog files")
    parser.add_argument("--output-dir", help="folder for the tables (default: beside the log)")
    parser.add_argument("--scorer", default="realtime-pose", help="scorer level (%(default)s)")
    parser.add_argument(
        "--nwb",
        action="store_true",
        help="write <log>.nwb instead of the tables (a session writes those itself when "
        "recording stops): poses at their capture times, rule and output events, the outputs' "
        "on periods, the session video linked (pynwb + ndx-pose: the nwb extra)",
    )
    parser.add_argument(
        "--overwrite", action="store_true", help="replace outputs that exist (default: refuse)"
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Convert each log; exit 1 if any could not be read or would have replaced an output."""
    from pathlib import Path

    from realtime_pose.recording.convert import convert_log, convert_log_to_nwb
    from realtime_pose.recording.log_format import LogFormatError, read_log
    from realtime_pose.util.safe_write import OutputExistsError

    if args.nwb:
        from realtime_pose.formats.nwb import require_nwb

        try:
            require_nwb()
        except ImportError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1
    failed = 0
    for name in args.logs:
        path = Path(name)
        if not path.is_file():
            print(f"error: {path} does not exist or is not a file", file=sys.stderr)
            failed += 1
            continue
        try:
            pose_log = read_log(path)
            if args.nwb:
                written = [
                    convert_log_to_nwb(
                        path, args.output_dir, pose_log=pose_log, overwrite=args.overwrite
                    )
                ]
            else:
                written = convert_log(
                    path,
                    args.output_dir,
                    scorer=args.scorer,
                    pose_log=pose_log,
                    overwrite=args.overwrite,
                )
        except (LogFormatError, OutputExistsError) as exc:
            print(f"error: {exc}", file=sys.stderr)
            failed += 1
            continue
        state = "closed cleanly" if pose_log.closed_cleanly else "not closed (interrupted)"
        print(
            f"{path}: {len(pose_log.poses)} poses, {len(pose_log.events)} events, {state}"
            + (f", {pose_log.torn_bytes} torn bytes ignored" if pose_log.torn_bytes else "")
        )
        for p in written:
            print(p)
    return 1 if failed else 0
