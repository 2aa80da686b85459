"""Connections to the controller are authenticated before anything is unpickled."""

from __future__ import annotations

import os
import pickle
import socket
import time

import conformance_funcs as funcs

import jupyter_remote as jr
from jupyter_remote.controller import controller
from jupyter_remote.protocol import handshake


def _connect() -> tuple[socket.socket, bytes]:
    addr = controller().address
    sock = socket.create_connection((addr.host, addr.port), timeout=5)
    challenge = b""
    while len(challenge) < len(handshake.MAGIC) + handshake.NONCE:
        challenge += sock.recv(64)
    return sock, challenge


def _closed_silently(sock: socket.socket) -> bool:
    try:
        return sock.recv(100) == b""
    except ConnectionResetError:
        return True  # closed with unread bytes pending: a reset, still nothing said


def test_wrong_token_is_dropped_without_reply(tmp_path: object) -> None:
    app = jr.App("auth")
    f = app.function()(funcs.identity)
    assert f.remote(1) == 1  # the controller is up
    sock, challenge = _connect()
    hello, _ = handshake.worker_hello(os.urandom(32).hex(), challenge, {"worker_id": "x"})
    sock.sendall(hello)
    assert _closed_silently(sock)
    sock.close()
    app.stop()


def test_pickle_before_handshake_is_never_loaded(tmp_path: object) -> None:
    marker = f"/tmp/jr-auth-{os.getpid()}"

    class Evil:
        def __reduce__(self) -> tuple[object, tuple[str]]:
            return (os.system, (f"touch {marker}",))

    sock, _ = _connect()
    payload = pickle.dumps(Evil())
    sock.sendall(payload * 20)
    closed = _closed_silently(sock)
    sock.close()
    time.sleep(0.3)
    assert closed
    assert not os.path.exists(marker)


def test_worker_token_is_not_on_the_command_line() -> None:
    app = jr.App("auth-argv")
    f = app.function()(funcs.pid)
    pid = f.remote()
    with open(f"/proc/{pid}/cmdline", "rb") as fh:
        argv = fh.read().decode()
    assert controller().address.token not in argv
    with open(f"/proc/{pid}/environ", "rb") as fh:
        env = fh.read().decode()
    assert "JUPYTER_REMOTE_TOKEN" in env  # only its initial environment, popped at start
    app.stop()
