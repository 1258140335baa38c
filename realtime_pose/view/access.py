"""Who may open the live view: loopback by default, the session token beyond it.

The rules, as for the control socket (:mod:`realtime_pose.stream.security`):

- The page binds to loopback (``127.0.0.0/8``, ``::1``, ``localhost``) unless told otherwise.
  There, a browser on another machine cannot connect at all, and two checks keep a web page
  the user happens to visit from reaching the view through the user's own browser: the
  ``Host`` header must name a loopback host (defeats DNS rebinding), and a WebSocket must come
  from the view's own origin (WebSockets are not bound by the browser's same-origin policy).
- Binding beyond loopback is refused without a token (``stream.token``). With one, every page,
  static file, WebSocket and action needs it: a missing token answers 401, a wrong one 403.
  The browser brings it once as ``?token=...``; the view answers with an HttpOnly,
  SameSite=Strict cookie and a redirect that drops it from the address bar. Scripts may send
  ``Authorization: Bearer <token>`` instead. The token authenticates but does not encrypt
  (plain HTTP): on a shared network, reach the view through an SSH tunnel instead.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from urllib.parse import urlsplit

from realtime_pose.stream.security import InsecureBindError, is_loopback

COOKIE = "rp_view_token"
"""Name of the cookie that carries the token after the first visit."""


@dataclass(frozen=True)
class HttpAddress:
    """Where the view listens: ``http://HOST:PORT`` (port 0: a free one)."""

    host: str
    port: int

    @classmethod
    def parse(cls, address: str) -> HttpAddress:
        """Parse ``http://HOST:PORT``; ``ValueError`` naming what is wrong otherwise."""
        parts = urlsplit(address)
        if parts.scheme != "http" or not parts.hostname:
            raise ValueError(
                f"view address {address!r} must look like http://127.0.0.1:8080 "
                "(http, a host and a port)"
            )
        if parts.path not in ("", "/") or parts.query or parts.username:
            raise ValueError(f"view address {address!r}: give only http://HOST:PORT")
        try:
            port = parts.port
        except ValueError as exc:
            raise ValueError(f"view address {address!r}: {exc}") from None
        if port is None:
            raise ValueError(f"view address {address!r} needs a port, e.g. http://127.0.0.1:8080")
        return cls(parts.hostname, port)

    @property
    def loopback(self) -> bool:
        """Whether only this computer can connect."""
        return is_loopback(f"tcp://{self.bracketed}:{self.port}")

    @property
    def bracketed(self) -> str:
        """The host as it appears in a URL (IPv6 in brackets)."""
        return f"[{self.host}]" if ":" in self.host else self.host

    def url(self, port: int | None = None) -> str:
        """``http://HOST:PORT/``."""
        return f"http://{self.bracketed}:{self.port if port is None else port}/"


def check_bind(address: HttpAddress, token: str | None) -> None:
    """Refuse to serve beyond loopback without a token (:class:`InsecureBindError`)."""
    if address.loopback:
        return
    if not token:
        raise InsecureBindError(
            f"refusing to serve the live view on {address.url()}: it is reachable from other "
            "hosts and has no token. Bind to http://127.0.0.1:<port>, or set the session "
            "token (stream.token in the run config, --token for realtime-pose view)."
        )


def token_matches(given: str | None, token: str) -> bool:
    """Constant-time comparison of a presented token with the session's."""
    return given is not None and hmac.compare_digest(given.encode(), token.encode())


def loopback_host_header(host_header: str | None) -> bool:
    """Whether a request's ``Host`` header names this computer (``localhost``, ``127.x``,
    ``[::1]``, with any port): a rebinding attacker's name fails this."""
    if not host_header:
        return False
    host = urlsplit(f"//{host_header}").hostname or ""
    return is_loopback(f"tcp://{f'[{host}]' if ':' in host else host}:1")


def same_origin(origin: str | None, host_header: str | None) -> bool:
    """Whether a browser request's ``Origin`` is the view itself (``http://`` + ``Host``)."""
    return origin is not None and host_header is not None and origin == f"http://{host_header}"
