"""The challenge/response handshake, driven through its pure helpers."""

from __future__ import annotations

from typing import Any

import pytest

from jupyter_remote.protocol import new_token
from jupyter_remote.protocol._handshake import (
    MAGIC,
    MAX_JSON,
    NONCE,
    PROOF,
    HandshakeError,
    block_length,
    controller_challenge,
    controller_reply,
    parse_json_block,
    verify_controller_reply,
    verify_worker_hello,
    worker_hello,
)

INFO = {"worker_id": "w-1", "pid": 1234, "python": [3, 11]}


def _split_block(data: bytes) -> dict[str, Any]:
    n = block_length(data[:4])
    assert len(data) == 4 + n
    return parse_json_block(data[4:])


def test_new_token_is_64_hex_characters_and_fresh() -> None:
    a, b = new_token(), new_token()
    assert len(a) == 64 and bytes.fromhex(a)
    assert a != b


def test_full_round_trip() -> None:
    token = new_token()
    challenge, server_nonce = controller_challenge()
    assert challenge == MAGIC + server_nonce and len(server_nonce) == NONCE

    hello, worker_nonce = worker_hello(token, challenge, INFO)
    assert len(worker_nonce) == NONCE
    head, rest = hello[: NONCE + PROOF], hello[NONCE + PROOF :]
    assert head[:NONCE] == worker_nonce
    verify_worker_hello(token, server_nonce, head)
    assert _split_block(rest) == INFO

    reply = controller_reply(token, server_nonce, worker_nonce, {"ok": True})
    verify_controller_reply(token, server_nonce, worker_nonce, reply[:PROOF])
    assert _split_block(reply[PROOF:]) == {"ok": True}


def test_rejection_status_carries_the_reason() -> None:
    token = new_token()
    challenge, server_nonce = controller_challenge()
    _, worker_nonce = worker_hello(token, challenge, INFO)
    status = {"ok": False, "error": "Python 3.10 worker, 3.11 caller"}
    reply = controller_reply(token, server_nonce, worker_nonce, status)
    verify_controller_reply(token, server_nonce, worker_nonce, reply[:PROOF])
    assert _split_block(reply[PROOF:]) == status


def test_challenges_are_fresh() -> None:
    assert controller_challenge()[1] != controller_challenge()[1]


def test_worker_with_wrong_token_is_rejected() -> None:
    challenge, server_nonce = controller_challenge()
    hello, _ = worker_hello(new_token(), challenge, INFO)
    with pytest.raises(HandshakeError, match="worker failed authentication"):
        verify_worker_hello(new_token(), server_nonce, hello[: NONCE + PROOF])


def test_controller_with_wrong_token_is_rejected() -> None:
    worker_token = new_token()
    challenge, server_nonce = controller_challenge()
    _, worker_nonce = worker_hello(worker_token, challenge, INFO)
    reply = controller_reply(new_token(), server_nonce, worker_nonce, {"ok": True})
    with pytest.raises(HandshakeError, match="controller failed authentication"):
        verify_controller_reply(worker_token, server_nonce, worker_nonce, reply[:PROOF])


def test_replayed_hello_for_another_challenge_is_rejected() -> None:
    token = new_token()
    challenge, _ = controller_challenge()
    hello, _ = worker_hello(token, challenge, INFO)
    _, other_nonce = controller_challenge()
    with pytest.raises(HandshakeError):
        verify_worker_hello(token, other_nonce, hello[: NONCE + PROOF])


def test_controller_proof_is_not_a_worker_proof() -> None:
    # The roles are bound into the MACs: a controller reply cannot be replayed as a hello.
    token = new_token()
    _, server_nonce = controller_challenge()
    worker_nonce = b"\x01" * NONCE
    proof = controller_reply(token, server_nonce, worker_nonce, {"ok": True})[:PROOF]
    with pytest.raises(HandshakeError):
        verify_worker_hello(token, server_nonce, worker_nonce + proof)


def test_truncated_hello_is_rejected() -> None:
    token = new_token()
    challenge, server_nonce = controller_challenge()
    hello, _ = worker_hello(token, challenge, INFO)
    with pytest.raises(HandshakeError):
        verify_worker_hello(token, server_nonce, hello[: NONCE + PROOF - 1])


@pytest.mark.parametrize(
    "challenge",
    [
        b"HTTP/1.1 400 Bad Request\r\n",
        b"JRMT2\n" + b"\x00" * NONCE,
        MAGIC + b"\x00" * (NONCE - 1),
        MAGIC + b"\x00" * (NONCE + 1),
        b"",
    ],
    ids=["http", "other-version", "short-nonce", "long-nonce", "empty"],
)
def test_bad_magic_is_rejected(challenge: bytes) -> None:
    with pytest.raises(HandshakeError, match="did not speak the jupyter_remote protocol"):
        worker_hello(new_token(), challenge, INFO)


def test_block_length_limits() -> None:
    assert block_length((0).to_bytes(4, "big")) == 0
    assert block_length(MAX_JSON.to_bytes(4, "big")) == MAX_JSON
    with pytest.raises(HandshakeError, match=f"{MAX_JSON + 1} bytes is too large"):
        block_length((MAX_JSON + 1).to_bytes(4, "big"))
    with pytest.raises(HandshakeError, match="too large"):
        block_length(b"\xff\xff\xff\xff")


@pytest.mark.parametrize("body", [b"[1, 2]", b'"ok"', b"null", b"3"])
def test_json_block_must_be_an_object(body: bytes) -> None:
    with pytest.raises(HandshakeError, match="not a JSON object"):
        parse_json_block(body)
