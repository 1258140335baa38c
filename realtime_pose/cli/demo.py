"""``realtime-pose demo``: the live loop with the bundled demo model, no camera or GPU needed."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

log = logging.getLogger(__name__)


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``demo`` sub-command."""
    p = subparsers.add_parser(
        "demo",
        help="the live loop on a synthetic camera with the bundled demo model",
        description="Synthetic camera (or --video / --camera) + the embedded demo bundle + the "
        "pose stream on loopback, with a live console line. Subscribe from another terminal "
        "with `realtime-pose subscribe`.",
    )
    p.add_argument("--seconds", type=float, default=None, help="stop after this long")
    source = p.add_mutually_exclusive_group()
    source.add_argument("--video", type=Path, help="play a video file instead")
    source.add_argument("--camera", type=int, help="use camera N instead")
    p.add_argument("--bundle", type=Path, help="another bundle instead of the demo one")
    p.add_argument("--fps", type=float, default=100.0, help="synthetic camera frame rate")
    p.add_argument("--record", type=Path, help="record poses into this folder")
    p.add_argument("--address", default="tcp://127.0.0.1:5555", help="pose stream address")
    p.add_argument("--control-address", default="tcp://127.0.0.1:5556")
    p.add_argument(
        "--view",
        default="http://127.0.0.1:8080",
        help="serve the live view here (open the printed URL in a browser); 'off' for none",
    )
    p.add_argument(
        "--rules",
        type=Path,
        help="a rules file (YAML list); written with the demo's zone rule if it does not exist, "
        "and where the live view saves zone edits",
    )
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=run)


DEMO_RULES = [
    {
        "name": "snout-in-zone",
        "on": "enter",
        "condition": {"type": "zone", "keypoint": "snout", "circle": [160, 120, 40]},
        "refractory_s": 0.5,
        "actions": [{"output": "laser", "action": "pulse", "duration_ms": 20}],
    }
]
"""The demo's rule: a 20 ms pulse on a log-only 'laser' when the snout enters the centre."""


def demo_rules(path: Path | None) -> list | str:
    """The ``rules:`` value of the demo config: the rules file (written with
    :data:`DEMO_RULES` when it does not exist yet), or the rules themselves."""
    if path is None:
        return DEMO_RULES
    if not path.exists():
        import yaml

        from realtime_pose.util.safe_write import write_text

        write_text(path, yaml.safe_dump(DEMO_RULES, sort_keys=False))
        log.info("wrote the demo's rules to %s", path)
    return str(path.resolve())


def run(args: argparse.Namespace) -> int:
    """Build a demo config and run it like ``realtime-pose run`` would."""
    from realtime_pose.bundle import BundleError
    from realtime_pose.cli.run import run_session
    from realtime_pose.engines import EngineError
    from realtime_pose.live.run_config import ConfigError, parse_config
    from realtime_pose.live.session import LiveSession
    from realtime_pose.sources import SourceError
    from realtime_pose.util.paths import DEMO_BUNDLE

    bundle = args.bundle or DEMO_BUNDLE
    if args.video:
        source = {"kind": "video", "path": str(args.video), "realtime": True, "loop": True}
    elif args.camera is not None:
        source = {"kind": "camera", "device": args.camera}
    else:
        source = {"kind": "synthetic", "width": 320, "height": 240, "fps": args.fps, "seed": 0}
    data = {
        "source": source,
        "bundle": str(bundle),
        "engine": {"threads": 1, "spinning": False},
        "stream": {"address": args.address, "control_address": args.control_address},
        "outputs": {"laser": {"kind": "log", "channel": 0, "max_on_ms": 50}},
        "rules": demo_rules(args.rules),
        "view": {"enabled": args.view != "off", "address": args.view},
        "recording": {
            "enabled": args.record is not None,
            "directory": str(args.record or "recordings"),
        },
    }
    try:
        config = parse_config(data, "demo options", Path.cwd())
        session = LiveSession(config)
    except (
        ConfigError,
        BundleError,
        EngineError,
        SourceError,
        ValueError,
        OSError,
        RuntimeError,
    ) as exc:
        log.error("%s", exc)
        if not Path(bundle).exists():
            log.error("the demo bundle is missing at %s", bundle)
        return 2
    log.info(
        "demo: %s source, bundle %s, stream on %s (control %s); Ctrl-C to stop",
        source["kind"],
        Path(bundle).name,
        session.publisher.bound_address if session.publisher else "off",
        args.control_address,
    )
    if session.view is not None:
        print(f"live view: open {config.view.address}/ in a browser", flush=True)
    return run_session(session, args.seconds, args.quiet)
