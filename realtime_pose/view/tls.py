"""TLS for the live view beyond loopback: the rig's certificate, given or made once.

A lab gives ``view.tls_certificate`` and ``view.tls_key`` (PEM) from its own certificate
authority, or lets the rig make a self-signed one: :func:`rig_certificate` writes it once per
host name under :func:`default_folder` (key readable by its owner only) and reuses it, so a
browser that accepted it once, or pinned its fingerprint, keeps trusting it. The fingerprint
(SHA-256 of the certificate) and the SPKI pin (SHA-256 of the public key, base64, which
Chromium's ``--ignore-certificate-errors-spki-list`` takes) are printed when the view starts.
"""

from __future__ import annotations

import base64
import datetime
import hashlib
import ipaddress
import os
import ssl
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class TlsFiles:
    """A PEM certificate (chain) and its private key."""

    certificate: Path
    key: Path

    def context(self) -> ssl.SSLContext:
        """A server context (TLS 1.2 or newer) with this certificate; ``ValueError`` naming the
        file when it cannot be loaded."""
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        try:
            context.load_cert_chain(self.certificate, self.key)
        except (OSError, ssl.SSLError) as exc:
            raise ValueError(
                f"cannot use the TLS certificate {self.certificate} with key {self.key}: {exc}"
            ) from None
        return context

    def fingerprint(self) -> str:
        """SHA-256 of the (first) certificate, as browsers show it (``AB:CD:...``)."""
        der = ssl.PEM_cert_to_DER_cert(_first_pem(self.certificate))
        digest = hashlib.sha256(der).hexdigest().upper()
        return ":".join(digest[i : i + 2] for i in range(0, len(digest), 2))

    def spki_pin(self) -> str:
        """base64 SHA-256 of the certificate's public key (for pinning it in a client)."""
        from cryptography import x509
        from cryptography.hazmat.primitives import serialization

        cert = x509.load_pem_x509_certificate(self.certificate.read_bytes())
        spki = cert.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        return base64.b64encode(hashlib.sha256(spki).digest()).decode("ascii")


def _first_pem(path: Path) -> str:
    text = path.read_text()
    end = "-----END CERTIFICATE-----"
    return text[: text.index(end) + len(end)] + "\n"


def default_folder() -> Path:
    """Where the rig's own view certificates are kept (``$XDG_DATA_HOME/realtime-pose/tls``)."""
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "realtime-pose" / "tls"


def rig_certificate(host: str, folder: Path | None = None) -> TlsFiles:
    """The rig's self-signed certificate for ``host`` (made on first use, then reused).

    The certificate names ``host``, ``localhost`` and ``127.0.0.1``, lasts ten years and uses an
    EC P-256 key; the key file is 0600 in a 0700 folder.

    Raises
    ------
    RuntimeError
        The ``cryptography`` package (the ``view`` extra) is missing.
    """
    folder = Path(folder) if folder is not None else default_folder()
    safe = "".join(c if c.isalnum() or c in "-." else "_" for c in host)
    files = TlsFiles(folder / f"view-{safe}.crt", folder / f"view-{safe}.key")
    if files.certificate.exists() and files.key.exists():
        return files
    try:
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.x509.oid import NameOID
    except ImportError as exc:
        raise RuntimeError(
            "making a TLS certificate for the live view needs the cryptography package: "
            "pip install 'realtime-pose[view]' (or give view.tls_certificate and view.tls_key)"
        ) from exc
    folder.mkdir(parents=True, exist_ok=True)
    os.chmod(folder, 0o700)
    key = ec.generate_private_key(ec.SECP256R1())
    names: list[x509.GeneralName] = [x509.DNSName("localhost")]
    for name in dict.fromkeys([host, "127.0.0.1"]):
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(name)))
        except ValueError:
            names.append(x509.DNSName(name))
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"realtime-pose view {host}")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=3650))
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    fd = os.open(files.key, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(key_pem)
    files.certificate.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return files
