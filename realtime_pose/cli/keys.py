"""``realtime-pose keys``: CURVE key pairs for the rig and its clients (pyzmq's format)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``keys`` sub-command."""
    p = subparsers.add_parser(
        "keys",
        help="make CURVE key pairs for the stream beyond this computer",
        description="Write OUTPUT/rig.key (public: give it to clients), OUTPUT/rig.key_secret "
        "(stays on the rig) and, per --client NAME, OUTPUT/clients/NAME.key and "
        "NAME.key_secret (give each client its own pair; the rig admits the .key files in "
        "OUTPUT/clients/). Secret files are readable by their owner only. Then, in the run "
        "config: stream: {curve: {secret_key: OUTPUT/rig.key_secret, authorized_clients: "
        "OUTPUT/clients/}}.",
    )
    p.add_argument("--output", type=Path, required=True, help="the folder to write (e.g. keys/)")
    p.add_argument(
        "--client",
        action="append",
        metavar="NAME",
        help="a client to make a key pair for; repeat for several (default: lab)",
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Make the keys; exit 2 when a key file exists already or a name is bad."""
    from realtime_pose.stream.security import make_keys

    clients = tuple(args.client or ["lab"])
    try:
        made = make_keys(args.output, clients)
    except (FileExistsError, ValueError, OSError) as exc:
        print(f"realtime-pose keys: {exc}", file=sys.stderr)
        return 2
    public, secret = made["server"]
    print(f"rig: {public} (public, for clients) and {secret} (secret, stays on the rig)")
    for name, (c_public, c_secret) in made["clients"].items():
        print(f"client {name}: {c_secret} (its secret) and {c_public} (admitted by the rig)")
    folder = Path(args.output)
    print(
        "run config: stream: {curve: {secret_key: "
        f"{folder / 'rig.key_secret'}, authorized_clients: {folder / 'clients'}}}}}"
    )
    return 0
