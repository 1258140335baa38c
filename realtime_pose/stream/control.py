"""Remote control of a running session: a REP server on its own thread and a REQ client.

The server never touches the live loop directly: it decodes and validates each request, then
calls the handler the pipeline registered for that ``cmd`` **on the server thread**, with the
validated request model (:mod:`realtime_pose.stream.messages`, e.g. ``RecordStartRequest``).
Handlers must therefore be quick and thread-safe (set a flag or swap a reference that the loop
reads).
Whatever goes wrong with a request (bad bytes, unknown ``cmd``, a handler that raises) becomes an
``{"ok": false, "error": ...}`` reply, and the server goes on answering.
"""

from __future__ import annotations

import hmac
import logging
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

import zmq

from realtime_pose.stream import messages
from realtime_pose.stream.security import (
    CurveClientKeys,
    CurveServerKeys,
    secure_server_socket,
    wants_ipv6,
)
from realtime_pose.util.supervision import SupervisedThread

log = logging.getLogger(__name__)

Handler = Callable[[messages.ControlRequestModel], Mapping[str, Any] | None]
"""Takes the validated request model and returns the reply's fields."""


def _ping(request: messages.ControlRequestModel) -> dict[str, Any]:
    return {"t_ns": time.monotonic_ns(), "wall_offset_ns": messages.wall_offset_ns()}


class ControlServer:
    """Answer control requests on a REP socket from a background thread.

    Parameters
    ----------
    address
        Endpoint to bind; ``tcp://127.0.0.1:*`` picks a free port (see :attr:`bound_address`).
    handlers
        ``{cmd: handler}``. ``ping`` is answered built-in unless overridden; a known command
        without a handler gets ``ok: false`` ("not available").
    token
        Shared secret every request must carry in ``token``; enough to bind beyond loopback.
    curve
        CURVE server keys; also enough to bind beyond loopback.
    max_request_bytes
        Larger requests are refused: ZeroMQ drops the connection (``MAXMSGSIZE``, TCP/IPC),
        or, where it cannot, the server replies ``ok: false``.
    poll_ms
        How often the thread checks for :meth:`close`.
    """

    def __init__(
        self,
        address: str = messages.DEFAULT_CONTROL_ADDRESS,
        handlers: Mapping[str, Handler] | None = None,
        *,
        token: str | None = None,
        curve: CurveServerKeys | None = None,
        max_request_bytes: int = messages.MAX_REQUEST_BYTES,
        poll_ms: int = 100,
    ) -> None:
        handlers = dict(handlers or {})
        unknown = set(handlers) - set(messages.COMMANDS)
        if unknown:
            raise ValueError(
                f"handlers for unknown commands {sorted(unknown)}; known: {messages.COMMANDS}"
            )
        if token is not None and not token:
            raise ValueError("token must be a non-empty string (or None for no token)")
        self._handlers: dict[str, Handler] = {"ping": _ping, **handlers}
        self._token = token
        self._max_request_bytes = max_request_bytes
        self._poll_ms = poll_ms
        self._context = zmq.Context()
        self._socket = self._context.socket(zmq.REP)
        self._auth = None
        try:
            self._auth = secure_server_socket(
                self._socket, address, curve=curve, token=token, token_allowed=True
            )
            self._socket.maxmsgsize = max_request_bytes
            self._socket.linger = 0
            self._socket.ipv6 = wants_ipv6(address)
            self._socket.bind(address)
        except zmq.ZMQError as exc:
            self._teardown()
            raise OSError(
                f"cannot bind the control socket to {address}: {exc}. Is another "
                "realtime-pose running? Choose another port."
            ) from exc
        except Exception:
            self._teardown()
            raise
        self.bound_address: str = self._socket.getsockopt_string(zmq.LAST_ENDPOINT)
        """The endpoint actually bound."""
        self.requests = 0
        """Requests answered."""
        self.errors = 0
        """Requests answered with ``ok: false``."""
        self._stop = threading.Event()
        self._thread = SupervisedThread(
            self._serve, "control-server", should_stop=self._stop.is_set
        )
        self._thread.start()

    def _serve(self) -> None:
        poller = zmq.Poller()
        poller.register(self._socket, zmq.POLLIN)
        while not self._stop.is_set():
            try:
                if not poller.poll(self._poll_ms):
                    continue
                frames = self._socket.recv_multipart(flags=zmq.NOBLOCK)
            except zmq.Again:
                continue
            except zmq.ZMQError as exc:
                if self._stop.is_set():
                    break
                log.error("control socket error: %s", exc)
                continue
            try:
                reply = self._answer(frames)
            except Exception as exc:  # no request may end this thread
                log.exception("control request could not be answered")
                reply = messages.error_reply(f"request failed: {type(exc).__name__}: {exc}")
            self.requests += 1
            if not reply.get("ok"):
                self.errors += 1
            try:
                self._socket.send(messages.encode(reply), flags=zmq.NOBLOCK)
            except (zmq.ZMQError, TypeError, ValueError) as exc:
                log.error("could not send control reply: %s", exc)
                self._socket.send(
                    messages.encode(messages.error_reply(f"reply could not be sent: {exc}")),
                    flags=zmq.NOBLOCK,
                )
        self._socket.close()

    def _answer(self, frames: list[bytes]) -> dict[str, Any]:
        size = sum(len(f) for f in frames)
        if size > self._max_request_bytes:
            return messages.error_reply(
                f"request of {size} bytes refused (limit {self._max_request_bytes})"
            )
        if len(frames) != 1:
            return messages.error_reply(f"request must be one frame, got {len(frames)}")
        try:
            raw = messages.decode(frames[0])
        except ValueError as exc:
            return messages.error_reply(str(exc))
        request_id = raw.get("id") if isinstance(raw, dict) else None
        if not isinstance(request_id, int | str):
            request_id = None
        if self._token is not None:
            token = raw.get("token") if isinstance(raw, dict) else None
            if not isinstance(token, str) or not hmac.compare_digest(
                token.encode(), self._token.encode()
            ):
                return messages.error_reply("unauthorized: missing or wrong token", request_id)
        try:
            request = messages.validate_request(raw)
        except messages.RequestError as exc:
            return messages.error_reply(str(exc), request_id)
        cmd = request.cmd
        handler = self._handlers.get(cmd)
        if handler is None:
            return messages.error_reply(f"{cmd!r} is not available in this session", request_id)
        try:
            result = handler(request)
        except (ValueError, FileExistsError, TimeoutError) as exc:  # a refusal, or not now
            log.info("control %r refused: %s", cmd, exc)
            return messages.error_reply(f"{cmd} failed: {type(exc).__name__}: {exc}", request_id)
        except Exception as exc:
            log.exception("control handler for %r failed", cmd)
            return messages.error_reply(f"{cmd} failed: {type(exc).__name__}: {exc}", request_id)
        reply = messages.ok_reply(request_id, **dict(result or {}))
        try:
            messages.encode(reply)
        except (TypeError, ValueError, OverflowError) as exc:
            log.error("handler for %r returned an unsendable reply: %s", cmd, exc)
            return messages.error_reply(f"{cmd} failed: reply not serialisable ({exc})", request_id)
        return reply

    def _teardown(self) -> None:
        if not self._socket.closed:
            self._socket.close()
        if self._auth is not None:
            self._auth.stop()  # type: ignore[attr-defined]
        self._context.term()

    def close(self, timeout_s: float = 2.0) -> None:
        """Stop the thread and close the socket. Idempotent."""
        if self._stop.is_set():
            return
        self._stop.set()
        self._thread.join(timeout_s)
        if self._thread.is_alive():
            log.warning("control server thread did not stop within %.1f s", timeout_s)
            return
        self._teardown()

    def __enter__(self) -> ControlServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class ControlTimeoutError(TimeoutError):
    """No reply within the client's timeout (the server is down, busy or refused the request)."""


class ControlClient:
    """Send control requests and wait for replies, with a timeout.

    A REQ socket that timed out is stuck waiting for its reply, so the client closes it and
    opens a fresh one before the next request.

    Parameters
    ----------
    address
        The server's endpoint.
    timeout_ms
        How long to wait for each reply.
    token
        Added to every request when the server requires one.
    curve
        CURVE client keys when the server uses CURVE.
    """

    def __init__(
        self,
        address: str = messages.DEFAULT_CONTROL_ADDRESS,
        timeout_ms: int = 1000,
        *,
        token: str | None = None,
        curve: CurveClientKeys | None = None,
    ) -> None:
        self.address = address
        self.timeout_ms = timeout_ms
        self._token = token
        self._curve = curve
        self._context = zmq.Context()
        self._socket = self._connect()

    def _connect(self) -> zmq.Socket:
        socket = self._context.socket(zmq.REQ)
        socket.linger = 0
        # A REQ socket with no usable connection (e.g. after a refused CURVE handshake) blocks
        # in send; bound that wait too.
        socket.sndtimeo = self.timeout_ms
        socket.ipv6 = wants_ipv6(self.address)
        if self._curve is not None:
            self._curve.apply(socket)
        socket.connect(self.address)
        return socket

    def request(self, cmd: str, **fields: Any) -> dict[str, Any]:
        """Send ``{"cmd": cmd, **fields}`` and return the reply map.

        Raises
        ------
        ControlTimeoutError
            If no reply arrives within ``timeout_ms``.
        """
        request: dict[str, Any] = {"cmd": cmd, **fields}
        if self._token is not None and "token" not in request:
            request["token"] = self._token
        return self.request_bytes(messages.encode(request))

    def request_bytes(self, data: bytes) -> dict[str, Any]:
        """Send raw bytes as a request (for tools and tests) and return the decoded reply."""
        try:
            self._socket.send(data)
            replied = self._socket.poll(self.timeout_ms, zmq.POLLIN)
        except zmq.Again:
            replied = False
        if not replied:
            self._socket.close()
            self._socket = self._connect()
            raise ControlTimeoutError(
                f"no reply from {self.address} within {self.timeout_ms} ms; is realtime-pose "
                "running with its control socket there (and do your token/keys match)?"
            )
        reply = messages.decode(self._socket.recv())
        if not isinstance(reply, dict):
            raise ValueError(f"control reply is not a map: {reply!r}")
        return reply

    def close(self) -> None:
        """Close the socket. Idempotent."""
        if not self._socket.closed:
            self._socket.close()
            self._context.term()

    def __enter__(self) -> ControlClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
