"""Who may open the rig's pages: the one access check of the live view and the labelling page.

Loopback pages check the ``Host`` header (DNS rebinding); beyond loopback every request needs
the session token (query once, then a session cookie derived from it, or a bearer header),
with wrong tokens throttled per client; WebSockets must come from the page's own origin. Every
response carries :data:`SECURITY_HEADERS`. The rules themselves are in
:mod:`realtime_pose.view.access`.
"""

from __future__ import annotations

import math
from pathlib import Path

from aiohttp import web

from realtime_pose.view import access
from realtime_pose.view.tls import TlsFiles, rig_certificate

STATIC = Path(__file__).resolve().parent / "static"
"""The pages' files."""
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' blob: data:; "
    "style-src 'self' 'unsafe-inline'; script-src 'self'; connect-src 'self'; "
    "object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-store",
}


def refuse(status: int, why: str) -> web.Response:
    """A plain-text refusal with the security headers."""
    response = web.Response(status=status, text=f"{status}: {why}\n")
    response.headers.update(SECURITY_HEADERS)
    return response


class PageGuard:
    """The access check of one served page (an aiohttp middleware: :meth:`middleware`).

    Parameters
    ----------
    address
        Where the page is served.
    token
        The session token (required beyond loopback by :func:`access.check_bind`), or ``None``.
    what
        The page's name in the refusal that asks for the token.
    """

    def __init__(self, address: access.HttpAddress, token: str | None, what: str) -> None:
        self.address = address
        self.token = token
        self.what = what
        self._cookie = access.session_cookie(token, access.new_session_secret()) if token else None
        self.failed_attempts = access.FailedAttempts()

    @web.middleware
    async def middleware(self, request: web.Request, handler) -> web.StreamResponse:
        """Loopback Host and same-origin checks; the token beyond loopback (module
        :mod:`realtime_pose.view.access`)."""
        host = request.headers.get("Host")
        if self.address.loopback and not access.loopback_host_header(host):
            return refuse(403, f"Host {host!r} is not this computer")
        if self.token:
            refused = self.check_token(request)
            if refused is not None:
                return refused
        if request.path == "/ws":
            origin = request.headers.get("Origin")
            if origin is not None and not access.same_origin(origin, host, self.address.scheme):
                return refuse(403, f"WebSocket from another origin ({origin!r})")
        response = await handler(request)
        response.headers.update(SECURITY_HEADERS)
        return response

    def check_token(self, request: web.Request) -> web.StreamResponse | None:
        """``None`` when the request carries the token (query, bearer) or the session cookie
        derived from it; else the refusal. Wrong tokens are throttled per client address."""
        assert self.token is not None and self._cookie is not None
        remote = request.remote
        wait_s = self.failed_attempts.wait_s(remote)
        if wait_s > 0:
            response = refuse(429, f"too many wrong tokens; try again in {wait_s:.0f} s")
            response.headers["Retry-After"] = str(math.ceil(wait_s))
            return response
        given = request.query.get("token")
        if given is not None:
            if not access.token_matches(given, self.token):
                self.failed_attempts.failed(remote)
                return refuse(403, "wrong token")
            response = web.HTTPSeeOther(request.rel_url.with_query({}))
            response.set_cookie(
                access.COOKIE,
                self._cookie,
                httponly=True,
                samesite="Strict",
                secure=self.address.tls,
                path="/",
            )
            return response
        cookie = request.cookies.get(access.COOKIE)
        if cookie is not None:
            if access.token_matches(cookie, self._cookie):
                return None
            self.failed_attempts.failed(remote)
            return refuse(403, "wrong or expired session; open the page with ?token=")
        bearer = request.headers.get("Authorization", "")
        if bearer.startswith("Bearer "):
            if access.token_matches(bearer[len("Bearer ") :], self.token):
                return None
            self.failed_attempts.failed(remote)
            return refuse(403, "wrong token")
        return refuse(
            401,
            f"{self.what} needs the session token: open it as "
            f"{self.address.scheme}://HOST:PORT/?token=...",
        )


class PageSite:
    """Where a page is served: the address (checked by :func:`access.check_bind`), its TLS
    beyond loopback (the rig's own certificate unless one is given), its :class:`PageGuard`,
    and the listener (:meth:`start`, :meth:`close`). The live view and the labelling page each
    serve through one.

    Raises
    ------
    ValueError, InsecureBindError
        A malformed address, or beyond loopback without TLS and a strong token.
    """

    def __init__(self, address: str, token: str | None, tls: TlsFiles | None, what: str) -> None:
        self.address = access.HttpAddress.parse(address)
        access.check_bind(self.address, token)
        self.tls = tls
        if self.address.tls and self.tls is None:
            self.tls = rig_certificate(self.address.host)
        self._ssl = self.tls.context() if self.address.tls and self.tls is not None else None
        self.guard = PageGuard(self.address, token, what)
        self._runner: web.AppRunner | None = None

    async def start(self, app: web.Application) -> str:
        """Serve ``app`` (built with :attr:`guard`'s middleware); return the site's URL, with
        the port chosen when 0 was asked for."""
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(
            self._runner, self.address.host, self.address.port, ssl_context=self._ssl
        )
        await site.start()
        return self.address.url(self._runner.addresses[0][1])

    async def close(self) -> None:
        """Stop listening (idempotent)."""
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
