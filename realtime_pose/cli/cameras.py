"""``realtime-pose cameras``: the cameras each installed camera backend sees."""

from __future__ import annotations

import argparse
import json
import sys


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``cameras`` sub-command."""
    p = subparsers.add_parser(
        "cameras",
        help="list the cameras each camera backend sees (model, serial, interface, limits)",
        description="Without --source: every installed camera backend (basler, aravis, "
        "genicam, ...) with its default search, which for GigE Vision sends discovery "
        "broadcasts on every network interface. --source narrows the search, e.g. "
        "--source '{kind: basler, device_class: BaslerCamEmu}' or "
        "--source '{kind: aravis, interfaces: [USB3Vision]}'.",
    )
    p.add_argument(
        "--source",
        action="append",
        metavar="SECTION",
        help="a source section (inline YAML or a file) naming a backend and its search options",
    )
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """List cameras; exit 2 on a bad --source, 1 if a backend failed."""
    from realtime_pose.plugins import SOURCES
    from realtime_pose.sources.sections import camera_backends, parse_source

    try:
        if args.source:
            choices = [parse_source(text) for text in args.source]
        else:
            choices = [SOURCES.choose({"kind": name}) for name in camera_backends()]
    except ValueError as exc:
        print(f"realtime-pose cameras: {exc}", file=sys.stderr)
        return 2
    found, failed = [], 0
    for choice in choices:
        discover = getattr(choice.cls, "discover", None)
        if discover is None:
            print(f"{choice.name}: this source cannot list cameras", file=sys.stderr)
            failed += 1
            continue
        try:
            cameras = discover(choice.options)
        except Exception as exc:
            print(f"{choice.name}: {exc}", file=sys.stderr)
            failed += 1
            continue
        found.extend(cameras)
        if not args.json:
            print(f"{choice.name}: {len(cameras)} camera(s)")
            for cam in cameras:
                limits = cam.get("limits", {})
                shown = "; ".join(f"{k} {_short(v)}" for k, v in limits.items())
                print(
                    f"  {cam['model']}  serial {cam['serial']}  interface {cam['interface']}"
                    + (f"  device {cam['device']}" if "device" in cam else "")
                )
                print(f"    {shown or cam.get('limits_error', 'limits unavailable')}")
    if args.json:
        print(json.dumps(found, indent=1, default=str))
    return 1 if failed else 0


def _short(value: object) -> str:
    if (
        isinstance(value, list)
        and len(value) == 2
        and all(isinstance(x, int | float) for x in value)
    ):
        return f"{value[0]:g}..{value[1]:g}"
    if isinstance(value, list):
        return ",".join(str(v) for v in value[:8]) + (",..." if len(value) > 8 else "")
    return str(value)
