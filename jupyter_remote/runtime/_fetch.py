"""Connect and authenticate to the controller; fetch the runtime onto a bare node.

Standard library only: besides serving the worker (``_main``), this module's
source is what a Nomad task runs with the node's Python (``bootstrap_source``),
so a node needs nothing of ours installed. It fetches the runtime (this
package and cloudpickle, as a zip) over an authenticated connection, caches it
by content hash, puts it on ``sys.path`` and starts the worker.

A job whose function has an Image also carries ``JUPYTER_REMOTE_IMAGE=<key>``
(a hash, no secret). Then the bootstrap asks the controller for the image on a
second connection (:func:`run_in_image`), builds it with uv into the node's
cache (``<cache_dir()>/images/<key>``, as the local backend does) unless it is
there, and ``exec``s the image's Python on ``-m jupyter_remote.runtime`` with
only the runtime zip and the image's own paths on ``PYTHONPATH``::

    worker → controller   info {"fetch_image": key, "worker_id": id, "have": bool,
                                "need_uv": bool, "platform": ..., "machine": ...}
    controller → worker   status {"ok": true, "key": key, "build": bool,
                                  "image_size": n, "uv_size": m}
                          n bytes: the layers and their local files (``pack_image``)
                          m bytes: the controller's own uv binary (0 unless
                                   need_uv, a build, and the same platform and machine)
    worker → controller   JSON lines while it builds: {"line": ...} (echoed to the
                          caller as ``[image] ...``), then {"done": true} or
                          {"error": ..., "kind": "build" | "config", "output": ...}

``have``: the node has ``key`` built; the controller then sends no files
(``build`` false) unless the local files changed since the job was made. uv
comes from the node (next to its Python, on PATH, ``python -m uv``), else from
``<cache_dir()>/bin/uv``: the controller's binary, kept when it runs here, or
``pip install --target`` as a last resort.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import types
from collections.abc import Callable
from typing import Any, NoReturn

EXIT_CANNOT_CONNECT = 2
EXIT_REJECTED = 3
EXIT_IMAGE_FAILED = 5
IMAGE_ENV = "JUPYTER_REMOTE_IMAGE"
IMAGE_TIMEOUT = 600.0  # the controller hashes and packs the image's local files first
_KEY = re.compile(r"[0-9a-f]{64}")
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


class _BuildLog:
    """Build output: to this task's stderr (its logs) and, while it listens, to the caller."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock: socket.socket | None = sock

    def send(self, obj: dict[str, Any]) -> None:
        if self.sock is None:
            return
        try:
            self.sock.sendall(json.dumps(obj).encode() + b"\n")
        except OSError:
            self.sock = None  # the controller stopped listening: keep building for the logs

    def __call__(self, line: str) -> None:
        print(f"[image] {line}", file=sys.stderr, flush=True)
        self.send({"line": line})


def _runs(argv: list[str], log: Callable[[str], None]) -> bool:
    try:
        done = subprocess.run(argv, capture_output=True, text=True, errors="replace")
    except OSError as exc:
        log(f"cannot run {argv[0]}: {exc}")
        return False
    if done.returncode != 0:
        for line in (done.stdout + done.stderr).splitlines()[-20:]:
            log(line)
    return done.returncode == 0


def _node_uv(where: str) -> list[str] | None:
    """This node's own uv, else one kept in the cache by an earlier build."""
    from jupyter_remote.backends._images import find_uv
    from jupyter_remote.exceptions import ConfigError

    try:
        return find_uv()
    except ConfigError:
        kept = os.path.join(where, "bin", "uv")
        return [kept] if os.access(kept, os.X_OK) else None


def _install_uv(where: str, sent: bytes, log: Callable[[str], None]) -> list[str]:
    """Keep the controller's uv if it runs on this node, else ``pip install`` it."""
    from jupyter_remote.exceptions import ConfigError

    bindir = os.path.join(where, "bin")
    os.makedirs(bindir, exist_ok=True)
    kept = os.path.join(bindir, "uv")
    if sent:
        tmp = f"{kept}.{os.getpid()}.tmp"
        with open(tmp, "wb") as fh:
            fh.write(sent)
        os.chmod(tmp, 0o755)
        if _runs([tmp, "--version"], log):
            os.replace(tmp, kept)  # atomic: other workers of this node use it at once
            return [kept]
        os.unlink(tmp)
    # Never the words "-m pip" in this text: pyenv's shim would then run the bootstrap as a
    # child instead of exec'ing it, and a killed worker would read as "exit status 137".
    log(f"this node has no uv: installing it with pip for {sys.executable}")
    target = tempfile.mkdtemp(prefix=".uv-", dir=where)
    try:
        pip = [sys.executable, "-m", "pip", "install", "--quiet", "--target", target, "uv"]
        binary = os.path.join(target, "bin", "uv")
        if _runs(pip, log) and os.access(binary, os.X_OK):
            os.replace(binary, kept)
            return [kept]
    finally:
        shutil.rmtree(target, ignore_errors=True)
    raise ConfigError(
        "building an Image on this Nomad node needs uv, and the node has none: install uv on "
        "the nodes (next to their python or on the Nomad client's PATH), or pip for their python"
    )


def run_in_image(
    host: str, port: int, token: str, cafile: str | None, where: str, runtime: str, argv: list[str]
) -> NoReturn:
    """Build the job's image here unless cached, then become the worker inside it (exec)."""
    from types import SimpleNamespace

    from jupyter_remote.backends._images import FromRegistry, ImageBuilder, unpack_image
    from jupyter_remote.exceptions import ConfigError, ImageBuildError

    key = os.environ[IMAGE_ENV]
    os.environ.pop("JUPYTER_REMOTE_TOKEN", None)  # installers and run_commands must not see it
    images = os.path.join(where, "images")
    os.makedirs(images, exist_ok=True)
    have = bool(_KEY.fullmatch(key)) and ImageBuilder(images).is_built(key)
    uv = _node_uv(where)
    info = {
        "fetch_image": key,
        "worker_id": argv[argv.index("--worker-id") + 1],
        "have": have,
        "need_uv": uv is None,
        "platform": sys.platform,
        "machine": platform.machine(),
    }
    sock = connect(host, port, 60.0, cafile)
    log = _BuildLog(sock)
    try:
        sock.settimeout(IMAGE_TIMEOUT)
        status = authenticate(sock, token, info)  # exits if the controller refuses
        payload = recv_exact(sock, int(status["image_size"]))
        sent_uv = recv_exact(sock, int(status.get("uv_size") or 0))
        incoming = tempfile.mkdtemp(prefix=".incoming-", dir=images)
        try:
            layers = unpack_image(payload, incoming)
            image = SimpleNamespace(layers=layers)
            container = isinstance(layers[0], FromRegistry)
            if status.get("build"):
                if uv is None:
                    uv = _install_uv(where, sent_uv, log)
                builder = ImageBuilder(images, python=sys.executable, uv=uv, container=container)
                built = builder.ensure(image, log)
            else:
                found = ImageBuilder(images, container=container).cached(image, str(status["key"]))
                if found is None:
                    raise ImageBuildError(
                        f"image {key[:12]} was removed from this node's cache as the worker "
                        "started; call again",
                        key,
                    )
                built = found
        finally:
            shutil.rmtree(incoming, ignore_errors=True)
    except Exception as exc:  # whatever it is, the caller must hear it
        print(f"jupyter_remote worker: {exc}", file=sys.stderr, flush=True)
        kind = "config" if isinstance(exc, ConfigError) else "build"
        output = exc.output if isinstance(exc, ImageBuildError) else ""
        where_built = f"\n(on Nomad node {platform.node()})" if kind == "build" else ""
        log.send({"error": f"{exc}{where_built}", "kind": kind, "key": key, "output": output})
        sock.close()
        sys.exit(EXIT_IMAGE_FAILED)
    log.send({"done": True})
    sock.close()
    env = built.environ(os.environ, pythonpath=[runtime])
    env["JUPYTER_REMOTE_TOKEN"] = token
    if built.workdir is not None:
        os.chdir(built.workdir)
    python = str(built.python)
    sys.stderr.flush()
    os.execve(python, [python, "-m", "jupyter_remote.runtime", *argv], env)


def bootstrap_main(argv: list[str]) -> None:
    """Entry point of the bootstrap text: fetch the runtime (and image), then run the worker."""
    connect_to = argv[argv.index("--connect") + 1]
    host, _, port = connect_to.rpartition(":")
    token = os.environ.get("JUPYTER_REMOTE_TOKEN", "")
    if not token:
        print("jupyter_remote worker: JUPYTER_REMOTE_TOKEN is not set", file=sys.stderr)
        sys.exit(EXIT_REJECTED)
    cafile = os.environ.get("JUPYTER_REMOTE_TLS_CA")
    where = cache_dir()
    path = fetch_runtime(host.strip("[]"), int(port), token, cafile, where)
    sys.path.insert(0, path)
    if os.environ.get(IMAGE_ENV):
        run_in_image(host.strip("[]"), int(port), token, cafile, where, path, argv)
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
