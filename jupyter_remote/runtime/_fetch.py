"""Connect and authenticate to the controller; fetch the runtime onto a bare node.

Standard library only: besides serving the worker (``_main``), this module's
source is what a Nomad task runs with the node's Python (``bootstrap_source``),
so a node needs nothing of ours installed. It fetches the runtime (this
package and cloudpickle, as a zip) over an authenticated connection, caches it
by content hash, puts it on ``sys.path`` and starts the worker.
"""

from __future__ import annotations

import hashlib
import os
import socket
import sys
import time
import types
from typing import Any

EXIT_CANNOT_CONNECT = 2
EXIT_REJECTED = 3
_HANDSHAKE_SRC = ""  # set in the bootstrap text, where the package is not importable


def _handshake() -> Any:
    try:
        from ..protocol import _handshake as module

        return module
    except ImportError:  # running as bootstrap text: the handshake source is embedded
        mod = types.ModuleType("jupyter_remote_handshake")
        exec(_HANDSHAKE_SRC, mod.__dict__)
        return mod


def recv_exact(sock: socket.socket, n: int) -> bytes:
    data = bytearray()
    while len(data) < n:
        chunk = sock.recv(min(n - len(data), 1 << 20))
        if not chunk:
            raise ConnectionError("connection closed by the controller")
        data += chunk
    return bytes(data)


def connect(host: str, port: int, timeout: float, cafile: str | None) -> socket.socket:
    deadline = time.monotonic() + timeout
    while True:
        try:
            sock = socket.create_connection((host, port), timeout=10)
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


def authenticate(sock: socket.socket, token: str, info: dict[str, Any]) -> dict[str, Any]:
    """Run the handshake; return the controller's status (exits if it rejects us)."""
    hs = _handshake()
    challenge = recv_exact(sock, len(hs.MAGIC) + hs.NONCE)
    hello, nonce = hs.worker_hello(token, challenge, info)
    sock.sendall(hello)
    proof = recv_exact(sock, hs.PROOF)
    hs.verify_controller_reply(token, challenge[len(hs.MAGIC) :], nonce, proof)
    status: dict[str, Any] = hs.parse_json_block(
        recv_exact(sock, hs.block_length(recv_exact(sock, 4)))
    )
    if not status.get("ok"):
        print(f"jupyter_remote worker: rejected: {status.get('error')}", file=sys.stderr)
        sys.exit(EXIT_REJECTED)
    return status


def cache_dir() -> str:
    explicit = os.environ.get("JUPYTER_REMOTE_CACHE")
    if explicit:
        return explicit
    home = os.path.expanduser("~")
    if home and home != "~" and os.access(home, os.W_OK):
        return os.path.join(home, ".cache", "jupyter_remote")
    return os.path.join("/tmp", f"jupyter_remote-{os.getuid()}")


def fetch_runtime(host: str, port: int, token: str, cafile: str | None, where: str) -> str:
    """Return the path of the controller's runtime zip, downloading it unless cached."""
    os.makedirs(where, exist_ok=True)
    have = sorted(
        n[8:-4] for n in os.listdir(where) if n.startswith("runtime-") and n.endswith(".zip")
    )
    sock = connect(host, port, 60.0, cafile)
    try:
        status = authenticate(sock, token, {"fetch_runtime": True, "have": have})
        sha = str(status["runtime_sha"])
        path = os.path.join(where, f"runtime-{sha}.zip")
        if status.get("send"):
            data = recv_exact(sock, int(status["runtime_size"]))
            if hashlib.sha256(data).hexdigest() != sha:
                raise ConnectionError("the runtime archive arrived corrupted")
            tmp = f"{path}.{os.getpid()}.tmp"
            with open(tmp, "wb") as fh:
                fh.write(data)
            os.replace(tmp, path)  # atomic: concurrent workers on a node never see half a file
    finally:
        sock.close()
    return path


def bootstrap_main(argv: list[str]) -> None:
    """Entry point of the bootstrap text: fetch the runtime, then run the worker."""
    connect_to = argv[argv.index("--connect") + 1]
    host, _, port = connect_to.rpartition(":")
    token = os.environ.get("JUPYTER_REMOTE_TOKEN", "")
    if not token:
        print("jupyter_remote worker: JUPYTER_REMOTE_TOKEN is not set", file=sys.stderr)
        sys.exit(EXIT_REJECTED)
    cafile = os.environ.get("JUPYTER_REMOTE_TLS_CA")
    path = fetch_runtime(host.strip("[]"), int(port), token, cafile, cache_dir())
    sys.path.insert(0, path)
    from jupyter_remote.runtime._main import main

    main(argv)


def bootstrap_source() -> str:
    """The program a bare node runs: ``python -c SOURCE --connect HOST:PORT --worker-id ID``."""
    here = os.path.dirname(os.path.abspath(__file__))
    with open(os.path.join(here, "_fetch.py")) as fh:
        fetch_src = fh.read()
    with open(os.path.join(os.path.dirname(here), "protocol", "_handshake.py")) as fh:
        handshake_src = fh.read()
    return (
        f"{fetch_src}\n_HANDSHAKE_SRC = {handshake_src!r}\n"
        "if __name__ == '__main__':\n    bootstrap_main(sys.argv[1:])\n"
    )
