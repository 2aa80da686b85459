"""TLS between workers and the controller.

With tls_certfile/tls_keyfile set, workers connect over TLS with that
certificate; without them, a backend whose workers are off loopback gets a
listener on the advertised interface, over TLS with a certificate made for
the session; either way the worker pins the certificate by its fingerprint.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import ssl
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import conformance_funcs as funcs
import held_backend
import pytest
from held_backend import HeldBackend

import jupyter_remote as jr
from jupyter_remote.protocol import handshake

CONFORMANCE = str(Path(__file__).parent.parent / "conformance")

SCRIPT = f"""
import sys
sys.path.insert(0, {CONFORMANCE!r})
import jupyter_remote as jr, conformance_funcs as funcs
app = jr.App("tls")
f = app.function()(funcs.square)
print("result", f.remote(6))
from jupyter_remote.controller import controller
pool = next(iter(controller().pools.values()))
conn = next(iter(pool.workers.values())).conn
print("cipher", conn.transport.get_extra_info("cipher"))
print("pin", controller()._loopback.fingerprint)
"""


@pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl command")
def test_workers_connect_over_tls(tmp_path: Path) -> None:
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-subj", "/CN=127.0.0.1", "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True,
    )  # fmt: skip
    env = {
        **os.environ,
        "JUPYTER_REMOTE_TLS_CERTFILE": str(cert),
        "JUPYTER_REMOTE_TLS_KEYFILE": str(key),
    }
    proc = subprocess.run(
        [sys.executable, "-c", SCRIPT], capture_output=True, text=True, env=env, timeout=60
    )
    assert proc.returncode == 0, proc.stderr
    assert "result 36" in proc.stdout
    assert "cipher ('TLS" in proc.stdout
    der = ssl.PEM_cert_to_DER_cert(cert.read_text())
    assert f"pin {handshake.certificate_fingerprint(der)}" in proc.stdout  # workers pin it


@pytest.fixture
def remote_looking() -> Iterator[type[HeldBackend]]:
    """Workers that seem to be on another machine: the controller is told 127.0.0.2."""
    held_backend.register()
    HeldBackend.advertise = "127.0.0.2"
    yield HeldBackend
    held_backend.unregister()


def _presented_fingerprint(host: str, port: int) -> str:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    with socket.create_connection((host, port), timeout=5) as raw, ctx.wrap_socket(raw) as tls:
        return handshake.certificate_fingerprint(tls.getpeercert(binary_form=True) or b"")


def test_off_loopback_the_channel_is_tls_with_a_pinned_certificate(
    remote_looking: type[HeldBackend],
) -> None:
    app = jr.App("tls-auto", backend="held-local")
    f = app.function()(funcs.square)
    assert f.remote(7) == 49
    ((_, address),) = remote_looking.given.items()
    assert (address.host, address.tls_fingerprint is not None) == ("127.0.0.2", True)
    assert _presented_fingerprint(address.host, address.port) == address.tls_fingerprint
    ws = next(iter(f._pool.workers.values()))  # type: ignore[union-attr]
    assert ws.conn is not None
    assert str(ws.conn.transport.get_extra_info("cipher")[1]).startswith("TLS")
    # The listener is on the advertised interface only, not on every one.
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", address.port), timeout=5).close()
    app.stop()


def test_a_worker_refuses_a_controller_with_another_certificate(
    remote_looking: type[HeldBackend],
) -> None:
    remote_looking.pin = "00" * 32  # what a worker sees when someone else answers
    app = jr.App("tls-pin", backend="held-local")
    f = app.function(retries=0)(funcs.square)
    with pytest.raises(jr.WorkerStartError, match="did not present the controller's certificate"):
        f.remote(3)
    app.stop()


def test_a_plain_connection_to_the_tls_listener_gets_nothing(
    remote_looking: type[HeldBackend],
) -> None:
    app = jr.App("tls-plain", backend="held-local")
    assert app.function()(funcs.square).remote(2) == 4
    ((_, address),) = remote_looking.given.items()
    with socket.create_connection((address.host, address.port), timeout=5) as sock:
        sock.sendall(b"\x00" * 64)  # no TLS ClientHello: the challenge is never sent
        data = b""
        with contextlib.suppress(ConnectionResetError):
            data = sock.recv(100)
        assert handshake.MAGIC not in data
    app.stop()
