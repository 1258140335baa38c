"""``realtime-pose plugins [KIND [NAME]]``: the sources, engines and output devices here."""

from __future__ import annotations

import argparse
import sys


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``plugins`` sub-command."""
    p = subparsers.add_parser(
        "plugins",
        help="list the frame sources, engines and output devices, or one's options",
        description="Without arguments: every plug-in by kind (built in or installed through "
        "the realtime_pose.sources / .engines / .outputs entry-point groups), and any that "
        "could not be loaded. With KIND and NAME: that plug-in's run-config options, with "
        "their types, defaults and descriptions.",
    )
    p.add_argument("kind", nargs="?", choices=["source", "engine", "output"])
    p.add_argument("name", nargs="?", help="a plug-in name, e.g. serial")
    p.set_defaults(func=run)


def describe(kind: str, name: str) -> str:
    """One plug-in's options as text (raises ``ValueError`` for an unknown name)."""
    from realtime_pose.plugins import KINDS

    return KINDS[kind].describe(name)


def run(args: argparse.Namespace) -> int:
    """Print the list, or one plug-in's options; exit 2 for an unknown name."""
    from realtime_pose.plugins import KINDS

    if args.name is not None:
        try:
            print(describe(args.kind, args.name))
        except ValueError as exc:
            print(f"realtime-pose plugins: {exc}", file=sys.stderr)
            return 2
        return 0
    kinds = [args.kind] if args.kind else list(KINDS)
    for kind in kinds:
        registry = KINDS[kind]
        names = registry.names()
        print(f"{kind} ({registry.key}: ...): {', '.join(names) or 'none'}")
        for where, why in registry.unavailable().items():
            print(f"  not loaded: {where}: {why}")
    print("options of one: realtime-pose plugins KIND NAME")
    return 0
