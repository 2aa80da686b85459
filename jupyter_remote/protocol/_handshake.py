"""Mutual challenge-response authentication that opens every connection.

Nothing is unpickled before it succeeds. With ``token`` the per-session secret::

    controller → worker   MAGIC | server_nonce(16)
    worker → controller   worker_nonce(16) | HMAC(token, "worker" | sn | wn) | len(4) | info JSON
    controller → worker   HMAC(token, "controller" | wn | sn) | len(4) | status JSON

``info`` carries the worker's id, pid and Python version; ``status`` is
``{"ok": true}`` or ``{"ok": false, "error": "..."}`` (e.g. a Python version
mismatch), so a rejected worker can print why before it exits.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
from typing import Any

__all__ = [
    "MAGIC",
    "NONCE",
    "PROOF",
    "HandshakeError",
    "block_length",
    "controller_challenge",
    "controller_reply",
    "parse_json_block",
    "verify_controller_reply",
    "verify_worker_hello",
    "worker_hello",
]

MAGIC = b"JRMT1\n"
NONCE = 16
PROOF = 32
MAX_JSON = 1 << 16


class HandshakeError(Exception):
    """The peer does not hold the session token or spoke something else."""


def _mac(token: str, role: bytes, a: bytes, b: bytes) -> bytes:
    return hmac.new(bytes.fromhex(token), role + a + b, hashlib.sha256).digest()


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


def controller_challenge() -> tuple[bytes, bytes]:
    """Return ``(bytes to send, server_nonce)``."""
    nonce = os.urandom(NONCE)
    return MAGIC + nonce, nonce


def worker_hello(token: str, challenge: bytes, info: dict[str, Any]) -> tuple[bytes, bytes]:
    """Answer the controller's challenge; returns ``(bytes to send, worker_nonce)``."""
    if challenge[: len(MAGIC)] != MAGIC or len(challenge) != len(MAGIC) + NONCE:
        raise HandshakeError("the server did not speak the jupyter_remote protocol")
    server_nonce = challenge[len(MAGIC) :]
    nonce = os.urandom(NONCE)
    proof = _mac(token, b"worker", server_nonce, nonce)
    return nonce + proof + _json_block(info), nonce


def verify_worker_hello(token: str, server_nonce: bytes, head: bytes) -> None:
    """Check the fixed part ``worker_nonce | proof`` of a worker's hello."""
    nonce, proof = head[:NONCE], head[NONCE : NONCE + PROOF]
    if not hmac.compare_digest(proof, _mac(token, b"worker", server_nonce, nonce)):
        raise HandshakeError("worker failed authentication (wrong session token)")


def controller_reply(
    token: str, server_nonce: bytes, worker_nonce: bytes, status: dict[str, Any]
) -> bytes:
    return _mac(token, b"controller", worker_nonce, server_nonce) + _json_block(status)


def verify_controller_reply(
    token: str, server_nonce: bytes, worker_nonce: bytes, proof: bytes
) -> None:
    if not hmac.compare_digest(proof, _mac(token, b"controller", worker_nonce, server_nonce)):
        raise HandshakeError("controller failed authentication (wrong session token)")
