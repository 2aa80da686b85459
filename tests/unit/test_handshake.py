"""The challenge/response handshake, driven through its pure helpers."""

from __future__ import annotations

from typing import Any

import pytest

from jupyter_remote.protocol import new_token
from jupyter_remote.protocol._handshake import (
    MAGIC,
    MAX_ID,
    MAX_JSON,
    NONCE,
    PROOF,
    HandshakeError,
    Hello,
    block_length,
    controller_challenge,
    controller_reply,
    hello_id,
    hello_length,
    parse_hello,
    parse_json_block,
    verify_controller_reply,
    verify_worker_hello,
    worker_hello,
)

INFO = {"pid": 1234, "python": [3, 11]}
WID = "jr-abc-app-f-3"


def _split_block(data: bytes) -> dict[str, Any]:
    n = block_length(data[:4])
    assert len(data) == 4 + n
    return parse_json_block(data[4:])


def _hello(token: str, challenge: bytes, worker_id: str = WID) -> tuple[bytes, bytes]:
    return worker_hello(token, challenge, worker_id, INFO)


def test_new_token_is_64_hex_characters_and_fresh() -> None:
    a, b = new_token(), new_token()
    assert len(a) == 64 and bytes.fromhex(a)
    assert a != b


def test_full_round_trip() -> None:
    token = new_token()
    challenge, server_nonce = controller_challenge()
    assert challenge == MAGIC + server_nonce and len(server_nonce) == NONCE

    hello, worker_nonce = _hello(token, challenge)
    assert len(worker_nonce) == NONCE
    # The controller learns the claimed id before the proof, to pick the credential.
    for n in range(len(hello)):
        need = hello_length(hello[:n])
        assert n < need <= len(hello)
        assert hello_id(hello[:n]) in (None, WID)
    assert hello_length(hello) == len(hello)
    parsed = parse_hello(hello)
    assert (parsed.nonce, parsed.worker_id) == (worker_nonce, WID)
    assert verify_worker_hello(token, server_nonce, parsed) == INFO

    reply = controller_reply(token, server_nonce, worker_nonce, {"ok": True})
    verify_controller_reply(token, server_nonce, worker_nonce, reply[:PROOF])
    assert _split_block(reply[PROOF:]) == {"ok": True}


def test_rejection_status_carries_the_reason() -> None:
    token = new_token()
    challenge, server_nonce = controller_challenge()
    _, worker_nonce = _hello(token, challenge)
    status = {"ok": False, "error": "Python 3.10 worker, 3.11 caller"}
    reply = controller_reply(token, server_nonce, worker_nonce, status)
    verify_controller_reply(token, server_nonce, worker_nonce, reply[:PROOF])
    assert _split_block(reply[PROOF:]) == status


def test_challenges_are_fresh() -> None:
    assert controller_challenge()[1] != controller_challenge()[1]


def test_worker_with_wrong_token_is_rejected() -> None:
    challenge, server_nonce = controller_challenge()
    hello, _ = _hello(new_token(), challenge)
    with pytest.raises(HandshakeError, match="worker failed authentication"):
        verify_worker_hello(new_token(), server_nonce, parse_hello(hello))


def test_the_worker_id_and_info_are_bound_to_the_proof() -> None:
    token = new_token()
    challenge, server_nonce = controller_challenge()
    hello, _ = _hello(token, challenge)
    swapped_id = hello.replace(WID.encode(), WID.encode()[:-1] + b"4")
    with pytest.raises(HandshakeError, match="worker failed authentication"):
        verify_worker_hello(token, server_nonce, parse_hello(swapped_id))
    swapped_info = hello.replace(b"1234", b"4321")
    with pytest.raises(HandshakeError, match="worker failed authentication"):
        verify_worker_hello(token, server_nonce, parse_hello(swapped_info))


def test_controller_with_wrong_token_is_rejected() -> None:
    worker_token = new_token()
    challenge, server_nonce = controller_challenge()
    _, worker_nonce = _hello(worker_token, challenge)
    reply = controller_reply(new_token(), server_nonce, worker_nonce, {"ok": True})
    with pytest.raises(HandshakeError, match="controller failed authentication"):
        verify_controller_reply(worker_token, server_nonce, worker_nonce, reply[:PROOF])


def test_replayed_hello_for_another_challenge_is_rejected() -> None:
    token = new_token()
    challenge, _ = controller_challenge()
    hello, _ = _hello(token, challenge)
    _, other_nonce = controller_challenge()
    with pytest.raises(HandshakeError):
        verify_worker_hello(token, other_nonce, parse_hello(hello))


def test_controller_proof_is_not_a_worker_proof() -> None:
    # The roles are bound into the MACs: a controller reply cannot be replayed as a hello.
    token = new_token()
    _, server_nonce = controller_challenge()
    worker_nonce = b"\x01" * NONCE
    proof = controller_reply(token, server_nonce, worker_nonce, {"ok": True})[:PROOF]
    forged = Hello(worker_nonce, WID, b"{}", proof)
    with pytest.raises(HandshakeError):
        verify_worker_hello(token, server_nonce, forged)


def test_truncated_hello_is_rejected() -> None:
    token = new_token()
    challenge, _ = controller_challenge()
    hello, _ = _hello(token, challenge)
    with pytest.raises(HandshakeError, match="truncated"):
        parse_hello(hello[:-1])


@pytest.mark.parametrize("n_id", [0, MAX_ID + 1, 0xFFFF])
def test_worker_id_length_is_bounded(n_id: int) -> None:
    with pytest.raises(HandshakeError, match="worker id of"):
        hello_length(b"\x00" * NONCE + n_id.to_bytes(2, "big"))
    with pytest.raises(HandshakeError, match="a worker id has"):
        worker_hello(new_token(), controller_challenge()[0], "w" * n_id, INFO)


@pytest.mark.parametrize(
    "challenge",
    [
        b"HTTP/1.1 400 Bad Request\r\n",
        b"JRMT1\n" + b"\x00" * NONCE,
        MAGIC + b"\x00" * (NONCE - 1),
        MAGIC + b"\x00" * (NONCE + 1),
        b"",
    ],
    ids=["http", "other-version", "short-nonce", "long-nonce", "empty"],
)
def test_bad_magic_is_rejected(challenge: bytes) -> None:
    with pytest.raises(HandshakeError, match="did not speak the jupyter_remote protocol"):
        worker_hello(new_token(), challenge, WID, INFO)


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


def test_a_client_proves_itself_in_the_client_role_only() -> None:
    from jupyter_remote.protocol._handshake import CLIENT_PREFIX, client_hello, verify_client_hello

    token = new_token()
    challenge, nonce = controller_challenge()
    data, _ = client_hello(token, challenge, "cli-1", INFO)
    hello = parse_hello(data)
    assert hello.worker_id == CLIENT_PREFIX + "cli-1"
    assert verify_client_hello(token, nonce, hello) == INFO
    with pytest.raises(HandshakeError, match="wrong credential"):
        verify_worker_hello(token, nonce, hello)  # a client's proof is no worker's proof
    with pytest.raises(HandshakeError, match="wrong credential"):
        verify_client_hello(new_token(), nonce, hello)
    worker, _ = worker_hello(token, challenge, CLIENT_PREFIX + "cli-1", INFO)
    with pytest.raises(HandshakeError, match="wrong credential"):
        verify_client_hello(token, nonce, parse_hello(worker))  # nor a worker's a client's
    plain, _ = worker_hello(token, challenge, WID, INFO, role=b"client")
    with pytest.raises(HandshakeError, match="not a client id"):
        verify_client_hello(token, nonce, parse_hello(plain))
