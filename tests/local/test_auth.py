"""Who may talk to the controller: each worker with its own credential, once; nobody else.

The tests act as the worker (with ``runtime._fetch.Link``, the code real
workers use) and as a stranger who stole a credential; ``held_backend``
registers workers without starting them so that the test can take their
place.
"""

from __future__ import annotations

import os
import pickle
import resource
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import conformance_funcs as funcs
import held_backend
import pytest
from held_backend import HeldBackend

import jupyter_remote as jr
from jupyter_remote.controller import controller
from jupyter_remote.protocol import handshake, python_version
from jupyter_remote.runtime._fetch import Link

CONFORMANCE = str(Path(__file__).parent.parent / "conformance")


@pytest.fixture
def held() -> Iterator[type[HeldBackend]]:
    held_backend.register()
    yield HeldBackend
    held_backend.unregister()


def _challenge(host: str, port: int) -> tuple[socket.socket, bytes]:
    sock = socket.create_connection((host, port), timeout=5)
    challenge = b""
    while len(challenge) < len(handshake.MAGIC) + handshake.NONCE:
        challenge += sock.recv(64)
    return sock, challenge


def _closed_silently(sock: socket.socket) -> bool:
    try:
        return sock.recv(100) == b""
    except ConnectionResetError:
        return True  # closed with unread bytes pending: a reset, still nothing said


def _try(worker_id: str, token: str) -> bool:
    """Authenticate to the controller's loopback endpoint as ``worker_id``: accepted?"""
    host, port = controller().loopback
    link = Link(host, port, worker_id, token, None)
    sock = link.open(5)
    try:
        status = link.authenticate(sock, {"pid": os.getpid(), "python": list(python_version())})
    except ConnectionError:
        return False  # closed without a word: refused
    finally:
        sock.close()
    return bool(status.get("ok"))


def _held_worker(held: type[HeldBackend], app: jr.App) -> tuple[jr.FunctionCall[int], str]:
    """A call whose one worker is registered and credentialed but not started."""
    held.hold = True
    f = app.function(max_containers=1)(funcs.pid)
    call = f.spawn()
    deadline = time.monotonic() + 10
    while not held.given:
        assert time.monotonic() < deadline, "no worker was launched"
        time.sleep(0.01)
    (worker_id,) = held.given
    return call, worker_id


def test_each_worker_has_its_own_credential_off_the_command_line(held: type[HeldBackend]) -> None:
    app = jr.App("auth-own", backend="held-local")
    f = app.function(max_containers=2)(funcs.sleep_pid)
    pids = set(f.map([1.0, 1.0]))
    assert len(held.given) == 2 and len(pids) == 2
    tokens = {a.token for a in held.given.values()}
    assert len(tokens) == 2  # not one session token shared by all
    for pid in pids:
        with open(f"/proc/{pid}/cmdline", "rb") as fh:
            argv = fh.read().decode()
        assert not any(t in argv for t in tokens)
    assert all(t not in repr(a) for a in held.given.values() for t in tokens)
    app.stop()


def test_a_connected_workers_credential_is_refused(held: type[HeldBackend]) -> None:
    app = jr.App("auth-replay", backend="held-local")
    f = app.function()(funcs.pid)
    assert f.remote() > 0
    ((worker_id, address),) = held.given.items()
    assert not _try(worker_id, address.token)  # replayed, or stolen from the worker
    assert f.remote() > 0  # the real worker is still served
    app.stop()


def test_a_credential_works_once_for_its_own_worker_id(held: type[HeldBackend]) -> None:
    app = jr.App("auth-once", backend="held-local")
    call, worker_id = _held_worker(held, app)
    token = held.given[worker_id].token
    assert not _try(f"{worker_id}0", token)  # bound to its id: not another worker's
    assert not _try(worker_id, os.urandom(32).hex())  # the id alone is not enough
    assert _try(worker_id, token)  # the worker itself
    assert not _try(worker_id, token)  # a second connection claiming that id
    call.cancel()
    app.stop()


def test_an_unknown_worker_id_is_dropped_before_its_proof(held: type[HeldBackend]) -> None:
    app = jr.App("auth-unknown", backend="held-local")
    call, worker_id = _held_worker(held, app)
    sock, _ = _challenge(*controller().loopback)
    wid = b"never-issued-1"
    sock.sendall(os.urandom(handshake.NONCE) + len(wid).to_bytes(2, "big") + wid)
    assert _closed_silently(sock)  # nothing more is read from a peer without a credential
    sock.close()
    sock, challenge = _challenge(*controller().loopback)
    hello, _ = handshake.worker_hello(os.urandom(32).hex(), challenge, worker_id, {})
    sock.sendall(hello)
    assert _closed_silently(sock)  # a known id with a wrong proof: no reply either
    sock.close()
    call.cancel()
    app.stop()


def test_pickle_before_handshake_is_never_loaded() -> None:
    app = jr.App("auth-pickle")
    assert app.function()(funcs.identity).remote(1) == 1  # the controller is up
    marker = f"/tmp/jr-auth-{os.getpid()}"

    class Evil:
        def __reduce__(self) -> tuple[object, tuple[str]]:
            return (os.system, (f"touch {marker}",))

    sock, _ = _challenge(*controller().loopback)
    payload = pickle.dumps(Evil())
    sock.sendall(payload * 20)
    closed = _closed_silently(sock)
    sock.close()
    time.sleep(0.3)
    assert closed
    assert not os.path.exists(marker)
    app.stop()


FLOODED = f"""
import resource, sys, time
resource.setrlimit(resource.RLIMIT_NOFILE, (1024, 1024))  # the usual limit, and no way past it
sys.path.insert(0, {CONFORMANCE!r})
import jupyter_remote as jr, conformance_funcs as funcs
from jupyter_remote.controller import controller
app = jr.App("flood")
assert app.function()(funcs.identity).remote(1) == 1
host, port = controller().loopback
print(port, flush=True)
sys.stdin.readline()  # the flood is on
t0 = time.monotonic()
g = app.function()(funcs.square)  # another pool: new workers must start during the flood
print("results", list(g.map(range(4))), round(time.monotonic() - t0, 1), flush=True)
"""


def test_a_flood_of_idle_connections_does_not_stop_workers() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(hard, 8192)), hard))
    proc = subprocess.Popen(
        [sys.executable, "-c", FLOODED],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdin is not None and proc.stdout is not None
    idle: list[socket.socket] = []
    try:
        port = int(proc.stdout.readline())
        for _ in range(1500):  # more than the controller can hold open
            with_timeout = socket.socket()
            with_timeout.settimeout(5)
            try:
                with_timeout.connect(("127.0.0.1", port))
            except OSError:
                with_timeout.close()
                continue
            idle.append(with_timeout)
        proc.stdin.write("go\n")
        proc.stdin.flush()
        try:
            out, err = proc.communicate(timeout=90)
        except subprocess.TimeoutExpired:
            proc.kill()
            out, err = proc.communicate()
    finally:
        for s in idle:
            s.close()
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert "results [0, 1, 4, 9]" in out, err[-3000:]
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) < 20, err[-3000:]  # the flood is logged once, not once a connection
    assert "waiting to authenticate" in err
