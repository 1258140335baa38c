"""Who may open the live view: loopback by default, the session token beyond it.

The rules, as for the control socket (:mod:`realtime_pose.stream.security`):

- The page binds to loopback (``127.0.0.0/8``, ``::1``, ``localhost``) unless told otherwise.
  There, a browser on another machine cannot connect at all, and two checks keep a web page
  the user happens to visit from reaching the view through the user's own browser: the
  ``Host`` header must name a loopback host (defeats DNS rebinding), and a WebSocket must come
  from the view's own origin (WebSockets are not bound by the browser's same-origin policy).
- Binding beyond loopback is refused unless the page is served over TLS (``https://``, the
  rig's certificate: :mod:`realtime_pose.view.tls`) with a token of at least 128 bits
  (``stream.token``; e.g. ``python -c "import secrets; print(secrets.token_urlsafe(24))"``).
  Every page, static file, WebSocket and action then needs it: a missing token answers 401, a
  wrong one 403. The browser brings it once as ``?token=...``; the view answers with a session
  cookie derived from it (HMAC of a per-start secret: never the token itself; HttpOnly,
  Secure, SameSite=Strict) and a redirect that drops the token from the address bar. Scripts
  may send ``Authorization: Bearer <token>`` instead. Wrong tokens are logged and throttled
  per client address (:class:`FailedAttempts`).
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import math
import secrets
import string
import time
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from realtime_pose.stream.security import InsecureBindError, is_loopback

log = logging.getLogger(__name__)

COOKIE = "rp_view_session"
"""Name of the cookie that carries the session (derived from the token) after the first visit."""

MIN_TOKEN_BITS = 128
"""The least strength (estimated from length and alphabet) a token beyond loopback may have."""


@dataclass(frozen=True)
class HttpAddress:
    """Where the view listens: ``http://HOST:PORT`` or ``https://HOST:PORT`` (port 0: a free
    one)."""

    host: str
    port: int
    scheme: str = "http"

    @classmethod
    def parse(cls, address: str) -> HttpAddress:
        """Parse ``http(s)://HOST:PORT``; ``ValueError`` naming what is wrong otherwise."""
        parts = urlsplit(address)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(
                f"view address {address!r} must look like http://127.0.0.1:8080 or "
                "https://0.0.0.0:8443 (http or https, a host and a port)"
            )
        if parts.path not in ("", "/") or parts.query or parts.username:
            raise ValueError(f"view address {address!r}: give only http://HOST:PORT")
        try:
            port = parts.port
        except ValueError as exc:
            raise ValueError(f"view address {address!r}: {exc}") from None
        if port is None:
            raise ValueError(f"view address {address!r} needs a port, e.g. http://127.0.0.1:8080")
        return cls(parts.hostname, port, parts.scheme)

    @property
    def tls(self) -> bool:
        """Whether the page is served over TLS."""
        return self.scheme == "https"

    @property
    def loopback(self) -> bool:
        """Whether only this computer can connect."""
        return is_loopback(f"tcp://{self.bracketed}:{self.port}")

    @property
    def bracketed(self) -> str:
        """The host as it appears in a URL (IPv6 in brackets)."""
        return f"[{self.host}]" if ":" in self.host else self.host

    def url(self, port: int | None = None) -> str:
        """``http(s)://HOST:PORT/``."""
        return f"{self.scheme}://{self.bracketed}:{self.port if port is None else port}/"


def token_bits(token: str) -> float:
    """Estimated strength of a token: its length times the bits of the smallest alphabet
    (hex, base64url, printable ASCII) its characters come from."""
    chars = set(token)
    for alphabet in (string.hexdigits, string.ascii_letters + string.digits + "-_"):
        if chars <= set(alphabet):
            size = 16 if alphabet is string.hexdigits else 64
            break
    else:
        size = 95
    return len(token) * math.log2(size)


def weak_token(token: str) -> str | None:
    """Why ``token`` is too weak to guard anything reachable from other hosts, or ``None``."""
    bits = token_bits(token)
    if bits >= MIN_TOKEN_BITS:
        return None
    return (
        f"the token has about {bits:.0f} bits; beyond loopback it needs at least "
        f'{MIN_TOKEN_BITS} (e.g. python -c "import secrets; print(secrets.token_urlsafe(24))")'
    )


def check_bind(address: HttpAddress, token: str | None) -> None:
    """Refuse to serve beyond loopback without TLS and a strong token
    (:class:`InsecureBindError`)."""
    if address.loopback:
        return
    if not token:
        raise InsecureBindError(
            f"refusing to serve the live view on {address.url()}: it is reachable from other "
            "hosts and has no token. Bind to http://127.0.0.1:<port>, or set the session "
            "token (stream.token in the run config; --token-file or $REALTIME_POSE_VIEW_TOKEN "
            "for realtime-pose view) and serve over https://."
        )
    weak = weak_token(token)
    if weak:
        raise InsecureBindError(f"refusing to serve the live view on {address.url()}: {weak}")
    if not address.tls:
        raise InsecureBindError(
            f"refusing to serve the live view on {address.url()}: it is reachable from other "
            f"hosts; serve it over TLS: https://{address.bracketed}:{address.port} (with "
            "view.tls_certificate/tls_key, or a certificate made for the rig)"
        )


def session_cookie(token: str, secret: bytes) -> str:
    """The cookie a browser gets for the token: an HMAC of the view's per-start ``secret``
    keyed by the token (a stolen cookie does not reveal the token, and dies with the view)."""
    return hmac.new(token.encode(), secret, hashlib.sha256).hexdigest()


def new_session_secret() -> bytes:
    """A fresh per-start secret for :func:`session_cookie`."""
    return secrets.token_bytes(32)


@dataclass
class FailedAttempts:
    """Wrong tokens per client address: after ``allowed`` failures within ``window_s``, the
    address is refused for a back-off that doubles with each further failure (up to
    ``max_backoff_s``). Each failure is logged (at most once a second per address)."""

    allowed: int = 5
    window_s: float = 60.0
    max_backoff_s: float = 300.0
    _failures: dict[str, list[float]] = field(default_factory=dict)
    _blocked_until: dict[str, float] = field(default_factory=dict)
    _logged: dict[str, float] = field(default_factory=dict)

    def wait_s(self, remote: str | None, now: float | None = None) -> float:
        """Seconds before ``remote`` may try again (0: now)."""
        now = time.monotonic() if now is None else now
        return max(0.0, self._blocked_until.get(remote or "?", 0.0) - now)

    def failed(self, remote: str | None, now: float | None = None) -> None:
        """Note a wrong token from ``remote``."""
        now = time.monotonic() if now is None else now
        key = remote or "?"
        recent = [t for t in self._failures.get(key, []) if now - t < self.window_s]
        recent.append(now)
        self._failures[key] = recent[-100:]
        over = len(recent) - self.allowed
        if over > 0:
            backoff = min(self.max_backoff_s, 2.0 ** (over - 1))
            self._blocked_until[key] = now + backoff
        if now - self._logged.get(key, -math.inf) >= 1.0:
            self._logged[key] = now
            log.warning(
                "live view: wrong token from %s (%d in the last %.0f s)",
                key,
                len(recent),
                self.window_s,
            )
        if len(self._failures) > 10_000:  # many addresses: forget the oldest
            for old in list(self._failures)[:5_000]:
                self._failures.pop(old, None)
                self._blocked_until.pop(old, None)
                self._logged.pop(old, None)


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


def same_origin(origin: str | None, host_header: str | None, scheme: str = "http") -> bool:
    """Whether a browser request's ``Origin`` is the view itself (scheme + ``Host``)."""
    return origin is not None and host_header is not None and origin == f"{scheme}://{host_header}"
