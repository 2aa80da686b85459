"""Worker entry point: connect, authenticate, serve.

The session token comes from the environment (``JUPYTER_REMOTE_TOKEN``), never
from the command line, where ``ps`` would show it; it is removed from the
environment before user code runs.
"""

from __future__ import annotations

import argparse
import os
import platform
import socket
import sys
import time

from ..protocol import handshake, python_version
from ._worker import Worker

__all__ = ["main"]

EXIT_CANNOT_CONNECT = 2
EXIT_REJECTED = 3


def _recv_exact(sock: socket.socket, n: int) -> bytes:
    data = bytearray()
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        if not chunk:
            raise ConnectionError("connection closed during the handshake")
        data += chunk
    return bytes(data)


def connect(host: str, port: int, timeout: float, cafile: str | None) -> socket.socket:
    deadline = time.monotonic() + timeout
    while True:
        try:
            sock = socket.create_connection((host, port), timeout=5)
            break
        except OSError as exc:
            if time.monotonic() > deadline:
                print(
                    f"jupyter_remote worker: cannot reach the controller at {host}:{port} ({exc}). "
                    "If the worker runs on another machine, set advertise_host (env "
                    "JUPYTER_REMOTE_ADVERTISE_HOST) to an address of the caller it can reach.",
                    file=sys.stderr,
                )
                sys.exit(EXIT_CANNOT_CONNECT)
            time.sleep(0.2)
    if cafile:
        import ssl

        ctx = ssl.create_default_context(cafile=cafile)
        ctx.check_hostname = False  # the certificate is pinned by the CA file we were given
        sock = ctx.wrap_socket(sock)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def authenticate(sock: socket.socket, token: str, worker_id: str) -> None:
    challenge = _recv_exact(sock, len(handshake.MAGIC) + handshake.NONCE)
    info = {
        "worker_id": worker_id,
        "pid": os.getpid(),
        "python": list(python_version()),
        "host": platform.node(),
    }
    hello, nonce = handshake.worker_hello(token, challenge, info)
    sock.sendall(hello)
    proof = _recv_exact(sock, handshake.PROOF)
    handshake.verify_controller_reply(token, challenge[len(handshake.MAGIC) :], nonce, proof)
    status = handshake.parse_json_block(
        _recv_exact(sock, handshake.block_length(_recv_exact(sock, 4)))
    )
    if not status.get("ok"):
        print(f"jupyter_remote worker: rejected: {status.get('error')}", file=sys.stderr)
        sys.exit(EXIT_REJECTED)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m jupyter_remote.runtime")
    parser.add_argument("--connect", required=True, help="HOST:PORT of the controller")
    parser.add_argument("--worker-id", default=f"{platform.node()}-{os.getpid()}")
    parser.add_argument("--connect-timeout", type=float, default=30.0)
    parser.add_argument("--dead-after", type=float, default=30.0)
    args = parser.parse_args(argv)
    token = os.environ.pop("JUPYTER_REMOTE_TOKEN", "")
    if not token:
        print("jupyter_remote worker: JUPYTER_REMOTE_TOKEN is not set", file=sys.stderr)
        sys.exit(EXIT_REJECTED)
    cafile = os.environ.pop("JUPYTER_REMOTE_TLS_CA", None)
    host, _, port = args.connect.rpartition(":")
    sock = connect(host.strip("[]"), int(port), args.connect_timeout, cafile)
    try:
        authenticate(sock, token, args.worker_id)
    except (OSError, handshake.HandshakeError) as exc:
        print(f"jupyter_remote worker: handshake failed: {exc}", file=sys.stderr)
        sys.exit(EXIT_REJECTED)
    sock.settimeout(None)
    worker = Worker(sock, args.worker_id, dead_after=args.dead_after)
    worker.capture_process_output()
    worker.serve()
