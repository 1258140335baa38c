"""``realtime-pose run CONFIG.yaml``: the live loop on a rig."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

log = logging.getLogger(__name__)


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``run`` sub-command."""
    p = subparsers.add_parser(
        "run",
        help="run the live loop from a YAML config",
        description="Grab frames, estimate and predict poses, stream, record and drive outputs "
        "as CONFIG says. Ctrl-C or SIGTERM stops cleanly (outputs off, files closed).",
    )
    p.add_argument(
        "config",
        type=Path,
        nargs="*",
        help="run config (YAML); several run side by side in one process (one session per "
        "camera, each with its own stream and control ports)",
    )
    p.add_argument(
        "--help-config",
        metavar="KIND:NAME",
        help="print the options of one plug-in, e.g. source:camera, engine:onnxruntime, "
        "output:serial (`realtime-pose plugins` lists them)",
    )
    p.add_argument("--seconds", type=float, help="stop after this long")
    p.add_argument("--quiet", action="store_true", help="no live console line")
    p.set_defaults(func=run)


def status_line(status: dict) -> str:
    """The one-line console summary of a status message."""
    total = status.get("latency_us", {}).get("total", {})
    engine = status.get("latency_us", {}).get("inference", {})
    return (
        f"{status.get('fps', 0):7.1f} fps | latency p50 {total.get('p50', 0) / 1e3:6.2f} ms "
        f"p99 {total.get('p99', 0) / 1e3:6.2f} ms | engine p50 "
        f"{engine.get('p50', 0) / 1e3:6.2f} ms | frames {status.get('frames', 0)} "
        f"dropped {status.get('dropped_frames', 0)}"
        + (f" camera {status['camera_dropped']}" if "camera_dropped" in status else "")
        + f" | events {status.get('events', 0)}"
    )


def run_session(session, seconds: float | None, quiet: bool) -> int:
    """Run a built session with signal handling and a console line; always closes it."""
    tty = sys.stderr.isatty()

    def show(status: dict) -> None:
        if not quiet:
            print(status_line(status), end="\r" if tty else "\n", file=sys.stderr, flush=True)

    try:
        session.install_signal_handlers()
        session.run(seconds, show)
    finally:
        if not quiet and tty:
            print(file=sys.stderr)
        frames = session.pipeline.frames
        latency = session.pipeline.stats.summary_ms().get("total", {})
        session.close()
    if frames:
        log.info(
            "stopped after %d frames; capture -> publish p50 %.2f ms, p99 %.2f ms",
            frames,
            latency.get("p50", 0),
            latency.get("p99", 0),
        )
    return 0


def run(args: argparse.Namespace) -> int:
    """Load the config, build the session (refusing bad input up front) and run it."""
    from realtime_pose.bundle import BundleError
    from realtime_pose.engines import EngineError
    from realtime_pose.hardware.base import DeviceUnavailableError
    from realtime_pose.live.run_config import ConfigError, load_config
    from realtime_pose.live.session import LiveSession
    from realtime_pose.sources import SourceError

    if args.help_config:
        from realtime_pose.cli.plugin_list import describe

        kind, _, name = args.help_config.partition(":")
        try:
            print(describe(kind, name))
        except (KeyError, ValueError) as exc:
            log.error(
                "--help-config %s: %s (use KIND:NAME, KIND one of source, engine, output)",
                args.help_config,
                exc,
            )
            return 2
        return 0
    if not args.config:
        log.error("give a run config (YAML), or --help-config KIND:NAME")
        return 2
    sessions: list[LiveSession] = []
    try:
        for path in args.config:
            sessions.append(LiveSession(load_config(path), path.resolve().parent))
    except (
        ConfigError,
        BundleError,
        EngineError,
        SourceError,
        DeviceUnavailableError,
        ValueError,
        OSError,
    ) as exc:
        log.error("%s", exc)
        for session in sessions:
            session.close()
        return 2
    if len(sessions) == 1:
        return run_session(sessions[0], args.seconds, args.quiet)
    return run_side_by_side(sessions, args.seconds, args.quiet)


def run_side_by_side(sessions: list, seconds: float | None, quiet: bool) -> int:
    """Run several sessions at once, each loop on its own thread; Ctrl-C/SIGTERM stop all.

    Each session keeps its own source, engine, stream and control sockets and recording; their
    ``t_capture_ns`` share the host's monotonic clock, and their camera frame ids count each
    camera's frames, so a subscriber pairs frames by time (or by frame id under a common
    hardware trigger).
    """
    import signal
    import threading

    def stop_all(signum, _frame):
        log.info("signal %d: stopping %d sessions", signum, len(sessions))
        for session in sessions:
            session.stop_event.set()

    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, stop_all)

    def show(name: str):
        def line(status: dict) -> None:
            if not quiet:
                print(f"{name}: {status_line(status)}", file=sys.stderr, flush=True)

        return line

    threads = [
        threading.Thread(
            target=session.run,
            args=(seconds, show(session.source.source_id)),
            name=f"session-{i}",
        )
        for i, session in enumerate(sessions)
    ]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            while thread.is_alive():
                thread.join(0.2)
    finally:
        stop_all(0, None)
        for thread in threads:
            thread.join()
        for session in sessions:
            log.info(
                "%s: stopped after %d frames", session.source.source_id, session.pipeline.frames
            )
            session.close()
    return 0
