"""A worker credential cannot act as a client, nor a client credential as a worker.

Real sockets against this process's real controller, made to serve clients
(as the app server does) and to expect one worker.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from typing import Any

import pytest

from jupyter_remote.controller import Controller, controller
from jupyter_remote.controller._controller import _Pending
from jupyter_remote.deploy import AppServer, DeploymentStore
from jupyter_remote.protocol import handshake, new_token

WORKER_ID = "roles-test-worker-1"


@pytest.fixture
def served(tmp_path: Any) -> Iterator[tuple[Controller, str, str]]:
    ctl = controller()
    client_token, worker_token = new_token(), new_token()
    before = ctl.clients
    ctl.clients = AppServer(ctl, DeploymentStore(str(tmp_path / "store")), client_token)
    ctl._pending[WORKER_ID] = _Pending(None, None, worker_token)  # type: ignore[arg-type]
    try:
        yield ctl, client_token, worker_token
    finally:
        ctl.clients = before
        ctl._pending.pop(WORKER_ID, None)


def _attempt(ctl: Controller, hello: Any) -> bytes:
    """Send the hello ``hello(challenge)`` builds; return what the controller answers."""
    with socket.create_connection(ctl.loopback, timeout=10) as sock:
        challenge = b""
        while len(challenge) < len(handshake.MAGIC) + handshake.NONCE:
            challenge += sock.recv(64)
        data, _ = hello(challenge)
        sock.sendall(data)
        answer = b""
        try:
            while chunk := sock.recv(4096):
                answer += chunk
                if len(answer) >= handshake.PROOF + 4:
                    break
        except ConnectionResetError:  # closed with our hello unread: refused all the same
            pass
        return answer


def test_a_client_credential_authenticates_as_a_client(served: tuple[Controller, str, str]) -> None:
    ctl, client_token, _ = served
    answer = _attempt(ctl, lambda c: handshake.client_hello(client_token, c, "t", {}))
    assert len(answer) >= handshake.PROOF + 4  # the controller's proof and status: accepted


def test_a_worker_credential_cannot_act_as_a_client(served: tuple[Controller, str, str]) -> None:
    ctl, _, worker_token = served
    assert _attempt(ctl, lambda c: handshake.client_hello(worker_token, c, "t", {})) == b""
    # Nor can a worker's proof, made in the worker role, pass under a client id.
    hello = lambda c: handshake.worker_hello(worker_token, c, "client:t", {})  # noqa: E731
    assert _attempt(ctl, hello) == b""


def test_a_client_credential_cannot_act_as_a_worker(served: tuple[Controller, str, str]) -> None:
    ctl, client_token, worker_token = served
    hello = lambda c: handshake.worker_hello(client_token, c, WORKER_ID, {})  # noqa: E731
    assert _attempt(ctl, hello) == b""
    # A client-role proof made with the worker's own credential does not pass as the worker.
    forged = lambda c: handshake.worker_hello(worker_token, c, WORKER_ID, {}, role=b"client")  # noqa: E731
    assert _attempt(ctl, forged) == b""
    assert WORKER_ID in ctl._pending  # the credential is still unspent


def test_a_controller_without_clients_refuses_every_client() -> None:
    ctl = controller()
    assert ctl.clients is None
    token = new_token()
    assert _attempt(ctl, lambda c: handshake.client_hello(token, c, "t", {})) == b""
