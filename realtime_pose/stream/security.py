"""Who may connect: loopback by default, authentication required beyond it.

Binding a stream or control socket to anything other than loopback (``127.0.0.0/8``, ``::1``,
``localhost``, ``ipc://``, ``inproc://``) exposes the rig to the network. We refuse that unless
the socket is protected:

- **CURVE** (both sockets): the server holds a secret key; only clients whose public keys are in
  ``authorized_keys_dir`` may connect, and traffic is encrypted. Make keys with
  ``python -c "import zmq.auth; zmq.auth.create_certificates('keys', 'rig')"``.
- **Token** (control socket only): every request carries ``token`` equal to the server's shared
  secret. It authenticates commands but does not encrypt them; prefer CURVE on shared networks.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from pathlib import Path

import zmq


class InsecureBindError(ValueError):
    """Refusal to bind a socket beyond loopback without authentication."""


def is_loopback(address: str) -> bool:
    """Whether a ZeroMQ endpoint only accepts connections from this host.

    ``tcp://*:5555``, ``tcp://0.0.0.0:5555``, interface names and non-loopback IPs are not.
    """
    transport, sep, rest = address.partition("://")
    if not sep:
        raise ValueError(f"not a ZeroMQ endpoint: {address!r} (expected e.g. tcp://127.0.0.1:5555)")
    if transport in ("ipc", "inproc"):
        return True
    if transport != "tcp":
        return False
    host = rest.rsplit(":", 1)[0] if ":" in rest else rest
    host = host.strip("[]")
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # "*", an interface name or a host name: may be reachable from outside


def wants_ipv6(address: str) -> bool:
    """Whether ``address`` is a bracketed IPv6 TCP endpoint (``tcp://[::1]:5555``), which
    ZeroMQ only accepts with the socket's ``IPV6`` option on."""
    return address.startswith("tcp://[")


@dataclass(frozen=True)
class CurveServerKeys:
    """CURVE identity of a server socket and the clients it admits.

    Parameters
    ----------
    secret_key_file
        A ``.key_secret`` file from ``zmq.auth.create_certificates``.
    authorized_keys_dir
        Folder of client ``.key`` files; only those clients may connect.
    """

    secret_key_file: Path
    authorized_keys_dir: Path

    def load(self) -> tuple[bytes, bytes]:
        """Return ``(public, secret)`` keys, with an actionable error if the file is unusable."""
        path = Path(self.secret_key_file)
        try:
            public, secret = zmq.auth.load_certificate(path)
        except (OSError, ValueError) as exc:
            raise ValueError(
                f"cannot read CURVE secret key {path}: {exc}; create one with "
                "zmq.auth.create_certificates(folder, name)"
            ) from exc
        if secret is None:
            raise ValueError(f"{path} holds no secret key; pass the '.key_secret' file")
        if not Path(self.authorized_keys_dir).is_dir():
            raise ValueError(
                f"CURVE authorized_keys_dir {self.authorized_keys_dir} is not a folder of "
                "client .key files"
            )
        return public, secret


@dataclass(frozen=True)
class CurveClientKeys:
    """CURVE identity of a client: its own key pair and the server's public key."""

    secret_key_file: Path
    server_public_key_file: Path

    def apply(self, socket: zmq.Socket) -> None:
        """Configure ``socket`` as a CURVE client (call before ``connect``)."""
        public, secret = zmq.auth.load_certificate(self.secret_key_file)
        server_public, _ = zmq.auth.load_certificate(self.server_public_key_file)
        if secret is None:
            raise ValueError(f"{self.secret_key_file} holds no secret key")
        socket.curve_publickey = public
        socket.curve_secretkey = secret
        socket.curve_serverkey = server_public


def secure_server_socket(
    socket: zmq.Socket,
    address: str,
    *,
    curve: CurveServerKeys | None = None,
    token: str | None = None,
    token_allowed: bool = False,
) -> object | None:
    """Apply CURVE to ``socket`` if configured, and refuse insecure non-loopback binds.

    Call before ``bind``. ``token_allowed`` says whether the socket's protocol checks a token
    itself (the control socket does; a PUB socket cannot).

    Returns
    -------
    object or None
        The running ``zmq.auth.thread.ThreadAuthenticator`` when CURVE is on; the caller owns
        it and must call its ``stop()`` before closing the context.

    Raises
    ------
    InsecureBindError
        If ``address`` is reachable from other hosts and no authentication is configured.
    """
    if curve is not None:
        from zmq.auth.thread import ThreadAuthenticator

        public, secret = curve.load()
        auth = ThreadAuthenticator(socket.context)
        auth.start()
        auth.configure_curve(domain="*", location=str(curve.authorized_keys_dir))
        socket.curve_server = True
        socket.curve_publickey = public
        socket.curve_secretkey = secret
        return auth
    if is_loopback(address):
        return None
    if token is not None and token_allowed:
        return None
    needs = "CURVE keys (curve=CurveServerKeys(...))"
    if token_allowed:
        needs += " or a shared token"
    raise InsecureBindError(
        f"refusing to bind {address}: it is reachable from other hosts and has no "
        f"authentication. Bind to tcp://127.0.0.1:<port> or configure {needs}; see "
        "docs/protocol.md, 'Authentication'."
    )
    return None
