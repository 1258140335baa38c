"""``realtime-pose label FOLDER``: correct captured frames in the browser."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

log = logging.getLogger(__name__)


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``label`` sub-command."""
    p = subparsers.add_parser(
        "label",
        help="correct captured or extracted frames in the browser (DeepLabCut labeled-data)",
        description="Serve a labelling page for one DeepLabCut labeled-data/<video> folder of "
        "PNG frames: the machine's labels (machinelabels-iter*.h5) are the starting guess, "
        "keypoints are dragged into place, and the frames marked done are merged into "
        "CollectedData_<scorer>.h5 and .csv. Needs the view extra: pip install "
        "'realtime-pose[view]'.",
    )
    p.add_argument("folder", type=Path, help="the labeled-data/<video> folder of PNG frames")
    p.add_argument(
        "--address",
        default="http://127.0.0.1:8090",
        help="where to serve the page; beyond loopback it must be https:// and needs the token",
    )
    p.add_argument(
        "--scorer",
        default=None,
        help="whose labels (CollectedData_<scorer>); default: the DeepLabCut project's "
        "config.yaml scorer, else the folder's CollectedData file's",
    )
    p.add_argument(
        "--token-file",
        type=Path,
        default=None,
        help="a file holding the token the page asks for beyond loopback; default: "
        "$REALTIME_POSE_VIEW_TOKEN. Never on the command line, where other users can read it",
    )
    p.add_argument("--tls-cert", type=Path, help="https: the certificate (PEM); default: the rig's")
    p.add_argument("--tls-key", type=Path, help="https: the certificate's private key (PEM)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Serve until interrupted."""
    from realtime_pose.stream.security import InsecureBindError

    try:
        from realtime_pose.view.labelling import serve_labelling
    except ImportError as exc:
        log.error("the labelling page needs aiohttp: pip install 'realtime-pose[view]' (%s)", exc)
        return 2
    from realtime_pose.cli.view import token_and_tls

    try:
        token, tls = token_and_tls(args)
    except ValueError as exc:
        log.error("%s", exc)
        return 2
    try:
        serve_labelling(args.folder, args.address, token, tls, args.scorer)
    except (ValueError, InsecureBindError, RuntimeError) as exc:
        log.error("%s", exc)
        return 2
    except OSError as exc:
        log.error("cannot serve the labelling page on %s: %s", args.address, exc)
        return 2
    return 0
