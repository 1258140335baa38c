"""Who may connect: loopback by default, authentication required beyond it.

Binding a stream or control socket to anything other than loopback (``127.0.0.0/8``, ``::1``,
``localhost``, ``ipc://``, ``inproc://``) exposes the rig to the network. We refuse that unless
the socket is protected:

- **CURVE** (both sockets): the server holds a secret key; only clients whose public keys are in
  ``authorized_keys_dir`` may connect, and traffic is encrypted. Make keys with
  ``realtime-pose keys --output keys/`` (:func:`make_keys`); in a run config,
  ``stream.curve: {secret_key: keys/rig.key_secret, authorized_clients: keys/clients/}``. The
  folder is read at each connection, so a client key added to it is admitted without a restart.
- **Token** (control socket only): every request carries ``token`` equal to the server's shared
  secret. It authenticates commands but does not encrypt them; prefer CURVE on shared networks.
"""

from __future__ import annotations

import ipaddress
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path

import zmq
import zmq.auth

log = logging.getLogger(__name__)


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
        The rig's ``.key_secret`` file (``realtime-pose keys``, or
        ``zmq.auth.create_certificates``).
    authorized_keys_dir
        Folder of client ``.key`` files; only those clients may connect. Read at each
        connection: a key added or removed takes effect for the next client.
    extra_client_keys
        Public keys (Z85) admitted besides the folder's: the session's own live view, whose key
        pair lives only in memory.
    """

    secret_key_file: Path
    authorized_keys_dir: Path
    extra_client_keys: tuple[bytes, ...] = field(default=(), repr=False)

    def load(self) -> tuple[bytes, bytes]:
        """Return ``(public, secret)`` keys, with an actionable error if the file is unusable."""
        path = Path(self.secret_key_file)
        try:
            public, secret = zmq.auth.load_certificate(path)
        except (OSError, ValueError) as exc:
            raise ValueError(
                f"cannot read CURVE secret key {path}: {exc}; make one with "
                "realtime-pose keys --output FOLDER"
            ) from exc
        if secret is None:
            raise ValueError(f"{path} holds no secret key; pass the '.key_secret' file")
        if not Path(self.authorized_keys_dir).is_dir():
            raise ValueError(
                f"CURVE authorized_keys_dir {self.authorized_keys_dir} is not a folder of "
                "client .key files"
            )
        return public, secret

    def public_key(self) -> bytes:
        """The rig's public key (Z85), which clients need as their server key."""
        return self.load()[0]

    def with_client(self, public_key: bytes) -> CurveServerKeys:
        """A copy that also admits ``public_key`` (Z85)."""
        return CurveServerKeys(
            self.secret_key_file,
            self.authorized_keys_dir,
            (*self.extra_client_keys, public_key),
        )


class AuthorizedClients:
    """ZAP credentials provider: a client is admitted when its public key is in the folder
    (read again at each connection) or among the extra keys; refusals are logged."""

    def __init__(self, folder: Path, extra: tuple[bytes, ...] = ()) -> None:
        self.folder = Path(folder)
        self.extra = frozenset(extra)

    def callback(self, domain: str, key: bytes) -> bool:
        """Called by pyzmq's authenticator with the client's Z85 public key."""
        if key in self.extra:
            return True
        try:
            allowed = zmq.auth.load_certificates(self.folder)
        except (OSError, ValueError) as exc:
            log.error("CURVE: cannot read authorized client keys in %s: %s", self.folder, exc)
            return False
        if allowed.get(key):
            return True
        log.warning("CURVE: refused a client whose key is not in %s", self.folder)
        return False


@dataclass(frozen=True)
class CurveClientKeys:
    """CURVE identity of a client: its own key pair and the server's public key.

    Parameters
    ----------
    secret_key_file
        The client's ``.key_secret`` file.
    server_public_key_file
        The rig's public ``.key`` file.
    """

    secret_key_file: Path | None
    server_public_key_file: Path | None
    keys: tuple[bytes, bytes, bytes] | None = field(default=None, repr=False)
    """``(public, secret, server_public)`` given directly (Z85) instead of files."""

    @classmethod
    def from_keys(cls, public: bytes, secret: bytes, server_public: bytes) -> CurveClientKeys:
        """Keys held in memory (Z85), e.g. handed to the session's own view."""
        return cls(None, None, (public, secret, server_public))

    def load(self) -> tuple[bytes, bytes, bytes]:
        """``(public, secret, server_public)``, with an actionable error for a bad file."""
        if self.keys is not None:
            return self.keys
        try:
            public, secret = zmq.auth.load_certificate(self.secret_key_file)
            server_public, _ = zmq.auth.load_certificate(self.server_public_key_file)
        except (OSError, ValueError) as exc:
            raise ValueError(f"cannot read CURVE client keys: {exc}") from exc
        if secret is None:
            raise ValueError(f"{self.secret_key_file} holds no secret key (the .key_secret file)")
        return public, secret, server_public

    def apply(self, socket: zmq.Socket) -> None:
        """Configure ``socket`` as a CURVE client (call before ``connect``)."""
        public, secret, server_public = self.load()
        socket.curve_publickey = public
        socket.curve_secretkey = secret
        socket.curve_serverkey = server_public


def client_keys_from_files(
    secret_key_file: Path | None, server_public_key_file: Path | None
) -> CurveClientKeys | None:
    """A command line's ``--client-key``/``--server-key``: ``None`` when neither is given, else
    the keys, read now; ``ValueError`` for half a pair or a file that holds no usable key."""
    if secret_key_file is None and server_public_key_file is None:
        return None
    if secret_key_file is None or server_public_key_file is None:
        raise ValueError("CURVE needs --client-key and --server-key (both)")
    keys = CurveClientKeys(secret_key_file, server_public_key_file)
    keys.load()
    return keys


CURVE_ENV = "REALTIME_POSE_CURVE_KEYS"
"""Environment variable a child (the session's live view) reads its CURVE keys from:
``client_public,client_secret,server_public``, Z85 (whose alphabet has no comma)."""


def client_keys_to_env(keys: CurveClientKeys) -> str:
    """The value of :data:`CURVE_ENV` for ``keys``."""
    return b",".join(keys.load()).decode("ascii")


def client_keys_from_env(value: str) -> CurveClientKeys:
    """Parse :data:`CURVE_ENV`; ``ValueError`` if it is not three Z85 keys."""
    parts = value.encode("ascii").split(b",")
    if len(parts) != 3 or any(len(p) != 40 for p in parts):
        raise ValueError(f"{CURVE_ENV} must hold three 40-character Z85 keys joined by ','")
    return CurveClientKeys.from_keys(*parts)


def make_keys(folder: Path, clients: tuple[str, ...] = ("lab",), server: str = "rig") -> dict:
    """Write a CURVE key pair for the rig and one per client, in pyzmq's certificate format.

    ``folder/rig.key`` (public, give it to clients), ``folder/rig.key_secret`` (stays on the
    rig), ``folder/clients/<name>.key`` (the folder the rig's ``authorized_clients`` names) and
    ``folder/clients/<name>.key_secret`` (give each client its own). Secret files are readable
    by their owner only (0600), the folders 0700. Existing files are never replaced.

    Returns
    -------
    dict
        ``{"server": (public, secret), "clients": {name: (public, secret)}}`` paths.
    """
    folder = Path(folder)
    clients_dir = folder / "clients"
    names = [f"{server}.key", f"{server}.key_secret"]
    wanted = [folder / n for n in names]
    for name in clients:
        if not name or not name.replace("-", "").replace("_", "").isalnum():
            raise ValueError(f"client name {name!r}: use letters, digits, - and _")
        wanted += [clients_dir / f"{name}.key", clients_dir / f"{name}.key_secret"]
    existing = [str(p) for p in wanted if p.exists()]
    if existing:
        raise FileExistsError(f"will not replace existing key files: {', '.join(existing)}")
    for d in (folder, clients_dir):
        d.mkdir(parents=True, exist_ok=True)
        os.chmod(d, 0o700)
    made = {"server": zmq.auth.create_certificates(folder, server), "clients": {}}
    for name in clients:
        made["clients"][name] = zmq.auth.create_certificates(clients_dir, name)
    for path in folder.rglob("*.key_secret"):
        os.chmod(path, 0o600)
    return made


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
        provider = AuthorizedClients(curve.authorized_keys_dir, curve.extra_client_keys)
        auth.configure_curve_callback(domain="*", credentials_provider=provider)
        socket.curve_server = True
        socket.curve_publickey = public
        socket.curve_secretkey = secret
        return auth
    if is_loopback(address):
        return None
    if token is not None and token_allowed:
        return None
    raise InsecureBindError(insecure_bind_message(address, token_allowed))


def insecure_bind_message(address: str, token_allowed: bool) -> str:
    """Why binding ``address`` without authentication is refused, and what to do."""
    needs = "stream.curve (CURVE keys: realtime-pose keys --output keys/)"
    if token_allowed:
        needs += " or stream.token"
    return (
        f"refusing to bind {address}: it is reachable from other hosts and has no "
        f"authentication. Bind to tcp://127.0.0.1:<port> or set {needs}; see "
        "docs/protocol.md, 'Authentication'."
    )
