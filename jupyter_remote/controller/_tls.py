"""The controller's TLS identity: the configured certificate, or one made for this session.

Workers pin the certificate by its SHA-256 fingerprint (sent with their
credential), so no CA is involved and a self-signed certificate is as strong
as any: a server without its private key cannot present it.
"""

from __future__ import annotations

import datetime
import os
import ssl
import tempfile
from dataclasses import dataclass

from ..exceptions import ConfigError
from ..protocol import handshake

__all__ = ["TlsIdentity", "configured_identity", "session_identity"]


@dataclass(frozen=True)
class TlsIdentity:
    context: ssl.SSLContext
    fingerprint: str  # of the leaf certificate the server presents


def _context(certfile: str, keyfile: str) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(certfile, keyfile)
    return ctx


def _leaf_fingerprint(certfile: str) -> str:
    with open(certfile) as fh:
        pem = fh.read()
    end = "-----END CERTIFICATE-----"
    if end not in pem:
        raise ConfigError(f"tls_certfile {certfile} holds no PEM certificate")
    leaf = pem[: pem.index(end) + len(end)]
    return handshake.certificate_fingerprint(ssl.PEM_cert_to_DER_cert(leaf))


def configured_identity(certfile: str, keyfile: str) -> TlsIdentity:
    """The certificate of settings ``tls_certfile``/``tls_keyfile``."""
    try:
        return TlsIdentity(_context(certfile, keyfile), _leaf_fingerprint(certfile))
    except (OSError, ssl.SSLError, ValueError) as exc:
        raise ConfigError(
            f"cannot use tls_certfile={certfile} / tls_keyfile={keyfile}: {exc}; point both "
            "settings at a readable PEM certificate and its key, or unset them"
        ) from exc


def session_identity(host: str) -> TlsIdentity:
    """A fresh self-signed certificate (EC P-256, valid a week) for one controller session."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"jupyter_remote {host}")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=7))
        .sign(key, hashes.SHA256())
    )
    der = cert.public_bytes(serialization.Encoding.DER)
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    # ssl loads keys from files only: a private directory, removed as soon as it is loaded.
    with tempfile.TemporaryDirectory(prefix="jupyter_remote-tls-") as tmp:
        certfile, keyfile = os.path.join(tmp, "cert.pem"), os.path.join(tmp, "key.pem")
        with open(certfile, "w") as fh:
            fh.write(ssl.DER_cert_to_PEM_cert(der))
        fd = os.open(keyfile, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(key_pem)
        context = _context(certfile, keyfile)
    return TlsIdentity(context, handshake.certificate_fingerprint(der))
