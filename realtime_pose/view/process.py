"""The live view as a child process of the session (``realtime-pose view``).

The page's work (reading the stream, WebSockets, JSON) then never shares the loop's Python
interpreter: a busy or stalled browser costs the loop nothing but what the operating system
gives the child. The token and the CURVE keys go through the environment, not the command line
(which other users can read in ``ps``).
"""

from __future__ import annotations

import importlib.util
import logging
import os
import subprocess
import sys
import threading
from pathlib import Path

from realtime_pose.stream.security import CURVE_ENV, CurveClientKeys, client_keys_to_env

log = logging.getLogger(__name__)

TOKEN_ENV = "REALTIME_POSE_VIEW_TOKEN"
"""Environment variable the view reads the session token from."""

READY_PREFIX = "live view: "
"""The view prints this and its URL on stdout once it serves."""


class ViewProcess:
    """Start ``realtime-pose view`` for a session's stream (returns at once).

    The child imports aiohttp and binds while the session goes on (the loop's output watchdog
    must not wait for it); :meth:`wait_ready` gives its URL once it serves. If it fails (the
    port taken, ...), its last words are logged and the session runs on without a view.

    Parameters
    ----------
    stream_address, control_address
        The session's bound stream and control endpoints.
    address
        Where the page is served (``http://HOST:PORT``; port 0 picks a free one).
    token
        The session token (needed beyond loopback, and by the control socket if it has one).
    curve
        CURVE client keys for a stream and control socket that require them (handed over in
        the environment, like the token).
    tls
        ``(certificate, key)`` for an ``https://`` address (``None``: the rig's own).
    label_folder
        The session's captured frames (``labeled-data/<name>``): the page links to their
        labelling page (``/label/``).

    Raises
    ------
    RuntimeError
        aiohttp is not installed (the ``view`` extra).
    """

    def __init__(
        self,
        stream_address: str,
        control_address: str,
        address: str,
        token: str | None = None,
        curve: CurveClientKeys | None = None,
        tls: tuple[Path, Path] | None = None,
        label_folder: Path | None = None,
    ) -> None:
        if importlib.util.find_spec("aiohttp") is None:
            raise RuntimeError(
                "view.enabled needs aiohttp: pip install 'realtime-pose[view]' (or turn the "
                "view off)"
            )
        env = dict(os.environ)
        env.pop(TOKEN_ENV, None)
        env.pop(CURVE_ENV, None)
        if token:
            env[TOKEN_ENV] = token
        if curve is not None:
            env[CURVE_ENV] = client_keys_to_env(curve)
        cmd = [
            sys.executable,
            "-m",
            "realtime_pose",
            "view",
            "--stream",
            stream_address,
            "--control",
            control_address,
            "--address",
            address,
        ]
        if tls is not None:
            cmd += ["--tls-cert", str(tls[0]), "--tls-key", str(tls[1])]
        if label_folder is not None:
            cmd += ["--label-folder", str(label_folder)]
        self.url: str | None = None
        """The page's address once it serves (with the port chosen when 0 was asked for)."""
        self._ready = threading.Event()
        self._stderr: list[str] = []
        self._proc = subprocess.Popen(
            cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        threading.Thread(target=self._read_stdout, name="view-stdout", daemon=True).start()
        self._stderr_thread = threading.Thread(
            target=self._relay_stderr, name="view-stderr", daemon=True
        )
        self._stderr_thread.start()

    def _read_stdout(self) -> None:
        assert self._proc.stdout is not None
        for line in self._proc.stdout:
            if line.startswith(READY_PREFIX) and self.url is None:
                self.url = line[len(READY_PREFIX) :].strip()
                self._ready.set()
                log.info("live view on %s", self.url)

    def _relay_stderr(self) -> None:
        assert self._proc.stderr is not None
        for line in self._proc.stderr:
            self._stderr.append(line.rstrip())
            del self._stderr[:-50]
            log.info("view: %s", line.rstrip())
        if self.url is None and self._proc.wait() != 0:
            log.error("the live view did not start (exit %s)", self._proc.returncode)

    def wait_ready(self, timeout_s: float = 30.0) -> str:
        """The page's URL once the view serves.

        Raises
        ------
        RuntimeError
            It did not start within ``timeout_s``; the message carries its last words.
        """
        if not self._ready.wait(timeout_s):
            self._stderr_thread.join(0.5)
            said = "\n".join(self._stderr[-10:]) or "(nothing)"
            raise RuntimeError(
                f"the live view did not start within {timeout_s:.0f} s; it said:\n{said}"
            )
        assert self.url is not None
        return self.url

    @property
    def pid(self) -> int:
        """The view's process id."""
        return self._proc.pid

    def close(self, timeout_s: float = 5.0) -> None:
        """Stop the view (SIGTERM, then SIGKILL). Idempotent."""
        if self._proc.poll() is None:
            self._proc.terminate()
            try:
                self._proc.wait(timeout_s)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait(timeout_s)
