"""Mutual challenge-response authentication that opens every connection.

Nothing is unpickled before it succeeds. Each worker holds its own
credential (``token``: 32 random bytes as hex), issued by the controller for
that worker id and accepted for one worker connection only::

    controller → worker   MAGIC | server_nonce(16)
    worker → controller   worker_nonce(16) | len(2) | worker_id | len(4) | info JSON
                          | HMAC(token, "worker" | sn | wn | worker_id | info JSON)
    controller → worker   HMAC(token, "controller" | wn | sn) | len(4) | status JSON

The worker id travels in the clear so that the controller can pick the
credential; it is bound into the proof, as is the info, so neither can be
swapped. The controller reads no further than the id of a worker it did not
issue a credential for. ``info`` carries the worker's pid and Python version
(or what a bootstrap asks for); ``status`` is ``{"ok": true}`` or ``{"ok":
false, "error": "..."}`` (e.g. a Python version mismatch), so a rejected
worker can print why before it exits.

A **client** (``Function.from_name``, the CLI: a process calling an app
server's deployed functions) speaks the same exchange with an id that starts
with :data:`CLIENT_PREFIX` and a proof made in the ``"client"`` role::

    client → controller   client_nonce(16) | len(2) | "client:..." | len(4) | info JSON
                          | HMAC(client token, "client" | sn | cn | id | info JSON)

The controller checks it against its client token only (never a worker's),
and a worker id never starts with the prefix, so a worker credential cannot
act as a client, nor a client credential as a worker.

With TLS the worker pins the controller's certificate by its SHA-256
fingerprint (:func:`certificate_fingerprint`), which travels with the
credential.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
from typing import Any, NamedTuple

__all__ = [
    "CLIENT_PREFIX",
    "MAGIC",
    "MAX_ID",
    "MAX_JSON",
    "NONCE",
    "PROOF",
    "HandshakeError",
    "Hello",
    "block_length",
    "certificate_fingerprint",
    "client_hello",
    "controller_challenge",
    "controller_reply",
    "hello_id",
    "hello_length",
    "parse_hello",
    "parse_json_block",
    "verify_client_hello",
    "verify_controller_reply",
    "verify_worker_hello",
    "worker_hello",
]

MAGIC = b"JRMT2\n"
NONCE = 16
PROOF = 32
MAX_ID = 255
MAX_JSON = 1 << 16
CLIENT_PREFIX = "client:"


class HandshakeError(Exception):
    """The peer does not hold the credential or spoke something else."""


class Hello(NamedTuple):
    """A worker's hello, split but not yet verified."""

    nonce: bytes
    worker_id: str
    info_json: bytes
    proof: bytes


def _mac(token: str, role: bytes, *parts: bytes) -> bytes:
    try:
        key = bytes.fromhex(token)
    except ValueError as exc:
        raise HandshakeError("the credential is not hex") from exc
    return hmac.new(key, role + b"".join(parts), hashlib.sha256).digest()


def _json_block(obj: dict[str, Any]) -> bytes:
    body = json.dumps(obj).encode()
    return len(body).to_bytes(4, "big") + body


def parse_json_block(body: bytes) -> dict[str, Any]:
    try:
        value = json.loads(body)
    except ValueError as exc:
        raise HandshakeError(f"handshake block is not JSON: {exc}") from exc
    if not isinstance(value, dict):
        raise HandshakeError("handshake block is not a JSON object")
    return value


def block_length(prefix: bytes) -> int:
    n = int.from_bytes(prefix, "big")
    if n > MAX_JSON:
        raise HandshakeError(f"handshake block of {n} bytes is too large")
    return n


def certificate_fingerprint(der: bytes) -> str:
    """The pin of a certificate: SHA-256 of its DER bytes, as hex."""
    return hashlib.sha256(der).hexdigest()


def controller_challenge() -> tuple[bytes, bytes]:
    """Return ``(bytes to send, server_nonce)``."""
    nonce = os.urandom(NONCE)
    return MAGIC + nonce, nonce


def worker_hello(
    token: str, challenge: bytes, worker_id: str, info: dict[str, Any], role: bytes = b"worker"
) -> tuple[bytes, bytes]:
    """Answer the controller's challenge; returns ``(bytes to send, worker_nonce)``."""
    if challenge[: len(MAGIC)] != MAGIC or len(challenge) != len(MAGIC) + NONCE:
        raise HandshakeError("the server did not speak the jupyter_remote protocol")
    wid = worker_id.encode()
    if not wid or len(wid) > MAX_ID:
        raise HandshakeError(f"a worker id has 1 to {MAX_ID} bytes, not {len(wid)}")
    server_nonce = challenge[len(MAGIC) :]
    nonce = os.urandom(NONCE)
    body = json.dumps(info).encode()
    proof = _mac(token, role, server_nonce, nonce, wid, body)
    head = nonce + len(wid).to_bytes(2, "big") + wid
    return head + len(body).to_bytes(4, "big") + body + proof, nonce


def client_hello(
    token: str, challenge: bytes, name: str, info: dict[str, Any]
) -> tuple[bytes, bytes]:
    """A client's answer to the challenge (id ``client:<name>``, the ``"client"`` role)."""
    return worker_hello(token, challenge, CLIENT_PREFIX + name, info, role=b"client")


def hello_length(data: bytes) -> int:
    """How many bytes the hello that starts with ``data`` has, as far as ``data`` tells.

    Call again while ``len(data)`` is below the answer: the id's length comes
    first, then the info's.
    """
    need = NONCE + 2
    if len(data) < need:
        return need
    n_id = int.from_bytes(data[NONCE : NONCE + 2], "big")
    if not 0 < n_id <= MAX_ID:
        raise HandshakeError(f"worker id of {n_id} bytes")
    need += n_id + 4
    if len(data) < need:
        return need
    return need + block_length(data[need - 4 : need]) + PROOF


def hello_id(data: bytes) -> str | None:
    """The worker id a (partial) hello claims, once that much has arrived."""
    if len(data) < NONCE + 2:
        return None
    n_id = int.from_bytes(data[NONCE : NONCE + 2], "big")
    if len(data) < NONCE + 2 + n_id:
        return None
    try:
        return data[NONCE + 2 : NONCE + 2 + n_id].decode()
    except UnicodeDecodeError as exc:
        raise HandshakeError("worker id is not UTF-8") from exc


def parse_hello(data: bytes) -> Hello:
    """Split a whole hello (``len(data) == hello_length(data)``)."""
    if len(data) != hello_length(data):
        raise HandshakeError("truncated hello")
    worker_id = hello_id(data)
    assert worker_id is not None
    start = NONCE + 2 + len(worker_id.encode()) + 4
    return Hello(data[:NONCE], worker_id, data[start:-PROOF], data[-PROOF:])


def verify_worker_hello(token: str, server_nonce: bytes, hello: Hello) -> dict[str, Any]:
    """Check a worker's proof for ``server_nonce``; return its info."""
    wid = hello.worker_id.encode()
    expected = _mac(token, b"worker", server_nonce, hello.nonce, wid, hello.info_json)
    if not hmac.compare_digest(hello.proof, expected):
        raise HandshakeError("worker failed authentication (wrong credential)")
    return parse_json_block(hello.info_json)


def verify_client_hello(token: str, server_nonce: bytes, hello: Hello) -> dict[str, Any]:
    """Check a client's proof (made in the client role) for ``server_nonce``; return its info."""
    wid = hello.worker_id.encode()
    if not hello.worker_id.startswith(CLIENT_PREFIX):
        raise HandshakeError("not a client id")
    expected = _mac(token, b"client", server_nonce, hello.nonce, wid, hello.info_json)
    if not hmac.compare_digest(hello.proof, expected):
        raise HandshakeError("client failed authentication (wrong credential)")
    return parse_json_block(hello.info_json)


def controller_reply(
    token: str, server_nonce: bytes, worker_nonce: bytes, status: dict[str, Any]
) -> bytes:
    return _mac(token, b"controller", worker_nonce, server_nonce) + _json_block(status)


def verify_controller_reply(
    token: str, server_nonce: bytes, worker_nonce: bytes, proof: bytes
) -> None:
    if not hmac.compare_digest(proof, _mac(token, b"controller", worker_nonce, server_nonce)):
        raise HandshakeError("controller failed authentication (wrong credential)")
