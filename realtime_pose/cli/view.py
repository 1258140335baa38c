"""``realtime-pose view --stream tcp://HOST:5555``: the live page for a running session."""

from __future__ import annotations

import argparse
import logging
import os
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # aiohttp-free: the view extra may be missing
    from realtime_pose.view.tls import TlsFiles

log = logging.getLogger(__name__)


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``view`` sub-command."""
    p = subparsers.add_parser(
        "view",
        help="the live page in a browser for a session running here or elsewhere",
        description="Serve the live view (image, pose, zones, plots, actions) for the session "
        "whose stream is at --stream. The session must publish previews (view.enabled or "
        "view.publish_frames in its config); actions go to its control socket. Needs the view "
        "extra: pip install 'realtime-pose[view]'.",
    )
    p.add_argument("--stream", default="tcp://127.0.0.1:5555", help="the session's stream address")
    p.add_argument(
        "--control",
        default=None,
        help="its control address (default: the stream's host, port + 1); 'none' only watches",
    )
    p.add_argument(
        "--address",
        default="http://127.0.0.1:8080",
        help="where to serve the page; beyond loopback it must be https:// and needs the token",
    )
    p.add_argument(
        "--token-file",
        type=Path,
        default=None,
        help="a file holding the session token (stream.token); default: "
        "$REALTIME_POSE_VIEW_TOKEN. Never on the command line, where other users can read it",
    )
    p.add_argument("--tls-cert", type=Path, help="https: the certificate (PEM); default: the rig's")
    p.add_argument("--tls-key", type=Path, help="https: the certificate's private key (PEM)")
    p.add_argument(
        "--label-folder",
        type=Path,
        default=None,
        help="a labeled-data/<name> folder of captured frames to label at /label/ beside the view",
    )
    p.add_argument("--client-key", type=Path, help="CURVE: this client's .key_secret file")
    p.add_argument("--server-key", type=Path, help="CURVE: the rig's public .key file")
    p.set_defaults(func=run)


def default_control(stream: str) -> str:
    """The control address beside a stream address (``tcp://h:5555`` → ``tcp://h:5556``)."""
    base, sep, port = stream.rpartition(":")
    if not sep or not port.isdigit():
        raise ValueError(f"cannot guess the control address of {stream!r}; give --control")
    return f"{base}:{int(port) + 1}"


def run(args: argparse.Namespace) -> int:
    """Serve until interrupted."""
    import asyncio

    from realtime_pose.stream.security import (
        CURVE_ENV,
        InsecureBindError,
        client_keys_from_env,
        client_keys_from_files,
    )
    from realtime_pose.view.process import READY_PREFIX

    try:
        from realtime_pose.view.server import ViewServer
    except ImportError as exc:
        log.error("the live view needs aiohttp: pip install 'realtime-pose[view]' (%s)", exc)
        return 2
    try:
        token, tls = token_and_tls(args)
    except ValueError as exc:
        log.error("%s", exc)
        return 2
    try:
        curve = client_keys_from_files(args.client_key, args.server_key)
        if curve is None and os.environ.get(CURVE_ENV):
            curve = client_keys_from_env(os.environ[CURVE_ENV])
    except ValueError as exc:
        log.error("%s", exc)
        return 2
    try:
        control = args.control or default_control(args.stream)
        server = ViewServer(
            args.stream,
            None if control == "none" else control,
            args.address,
            token,
            curve,
            tls,
            label_folder=args.label_folder,
        )
    except (ValueError, InsecureBindError, RuntimeError) as exc:
        log.error("%s", exc)
        return 2

    async def serve() -> None:
        try:
            url = await server.start()
        except OSError as exc:
            log.error("cannot serve the live view on %s: %s", args.address, exc)
            raise SystemExit(2) from exc
        print(f"{READY_PREFIX}{url}", flush=True)
        log.info("live view of %s on %s", args.stream, url)
        if server.site.address.tls and server.site.tls is not None:
            log.info(
                "TLS certificate %s: SHA-256 fingerprint %s (check it in the browser); "
                "public-key pin %s",
                server.site.tls.certificate,
                server.site.tls.fingerprint(),
                server.site.tls.spki_pin(),
            )
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        import signal

        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        try:
            await stop.wait()
        finally:
            await server.close()

    asyncio.run(serve())
    return 0


def token_and_tls(args: argparse.Namespace) -> tuple[str | None, TlsFiles | None]:
    """A page's token (``--token-file``, else ``$REALTIME_POSE_VIEW_TOKEN``) and TLS files
    (``--tls-cert`` with ``--tls-key``); ``ValueError`` naming the option that is wrong."""
    from realtime_pose.view.process import TOKEN_ENV
    from realtime_pose.view.tls import TlsFiles

    token = os.environ.get(TOKEN_ENV) or None
    if args.token_file is not None:
        try:
            token = args.token_file.read_text().strip() or None
        except OSError as exc:
            raise ValueError(f"--token-file: cannot read {args.token_file}: {exc}") from exc
    tls = None
    if args.tls_cert or args.tls_key:
        if not (args.tls_cert and args.tls_key):
            raise ValueError("TLS needs both --tls-cert and --tls-key")
        tls = TlsFiles(args.tls_cert, args.tls_key)
    return token, tls
