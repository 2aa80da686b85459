"""Connect and authenticate to the controller; fetch the runtime onto a bare node.

Standard library only: besides serving the worker (``_main``), this module's
source is what a Nomad task runs with the node's Python (``bootstrap_source``),
so a node needs nothing of ours installed. It fetches the runtime (this
package and cloudpickle, as a zip) over an authenticated connection, caches it
by content hash (checked on every use, in a directory only its user can
write), puts it on ``sys.path`` and starts the worker.

Every connection is authenticated with the worker's own credential
(``JUPYTER_REMOTE_TOKEN``, see ``protocol._handshake``); when the controller
is not on loopback it is TLS, the controller's certificate pinned by
``JUPYTER_REMOTE_TLS_FINGERPRINT`` (:class:`Link`).

A job whose function has an Image also carries ``JUPYTER_REMOTE_IMAGE=<key>``
(a hash, no secret). Then the bootstrap asks the controller for the image on a
second connection (:func:`run_in_image`), builds it with uv into the node's
cache (``<cache_dir()>/images/<key>``, as the local backend does) unless it is
there, and ``exec``s the image's Python on ``-m jupyter_remote.runtime`` with
only the runtime zip and the image's own paths on ``PYTHONPATH``::

    worker → controller   info {"fetch_image": key, "have": bool,
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

import contextlib
import hashlib
import json
import os
import platform
import re
import shutil
import socket
import stat
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
TOKEN_ENV = "JUPYTER_REMOTE_TOKEN"  # this worker's own credential
FINGERPRINT_ENV = "JUPYTER_REMOTE_TLS_FINGERPRINT"  # the controller certificate's pin
IMAGE_TIMEOUT = 600.0  # the controller hashes and packs the image's local files first
_KEY = re.compile(r"[0-9a-f]{64}")
_HANDSHAKE_SRC = ""  # set in the bootstrap text, where the package is not importable
# TCP keepalive on the worker's connection, both ends: the kernels probe a silent peer, so a
# dead host or a cut network is noticed in about IDLE + INTERVAL * COUNT seconds, even
# while user code holds the GIL and no thread of ours can run.
KEEPALIVE_IDLE = 10
KEEPALIVE_INTERVAL = 5
KEEPALIVE_COUNT = 3


def keepalive(sock: socket.socket) -> None:
    """Turn on TCP keepalive with our short probe times (where the platform has them)."""
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
        # TCP_KEEPIDLE on Linux; macOS calls it TCP_KEEPALIVE.
        idle = getattr(socket, "TCP_KEEPIDLE", None) or getattr(socket, "TCP_KEEPALIVE", None)
        for option, value in (
            (idle, KEEPALIVE_IDLE),
            (getattr(socket, "TCP_KEEPINTVL", None), KEEPALIVE_INTERVAL),
            (getattr(socket, "TCP_KEEPCNT", None), KEEPALIVE_COUNT),
        ):
            if option is not None:
                sock.setsockopt(socket.IPPROTO_TCP, option, value)


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


def _pinned(sock: socket.socket, host: str, fingerprint: str) -> socket.socket:
    """TLS to a controller whose certificate is the one ``fingerprint`` names (no CA needed)."""
    import ssl

    hs = _handshake()
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE  # the pin below is stronger than any CA: one certificate
    tls = ctx.wrap_socket(sock)
    der = tls.getpeercert(binary_form=True) or b""
    if hs.certificate_fingerprint(der) != fingerprint.lower():
        tls.close()
        print(
            f"jupyter_remote worker: the server at {host} did not present the controller's "
            "certificate (fingerprint mismatch): refusing to talk to it",
            file=sys.stderr,
        )
        sys.exit(EXIT_REJECTED)
    return tls


class Link:
    """How this worker reaches its controller: address, its own credential, the TLS pin."""

    def __init__(
        self, host: str, port: int, worker_id: str, token: str, fingerprint: str | None
    ) -> None:
        self.host, self.port, self.worker_id = host, port, worker_id
        self.token = token
        self.fingerprint = fingerprint or None

    def __repr__(self) -> str:  # never the credential
        return f"Link({self.host}:{self.port}, {self.worker_id}, tls={bool(self.fingerprint)})"

    @classmethod
    def from_environ(cls, connect_to: str, worker_id: str, *, pop: bool) -> Link:
        """``--connect HOST:PORT`` and ``--worker-id`` with the credential from the environment.

        The credential is never on the command line, where ``ps`` shows it.
        """
        take = os.environ.pop if pop else os.environ.get
        token = take(TOKEN_ENV, "") or ""
        fingerprint = take(FINGERPRINT_ENV, "") or None
        if not token:
            print(f"jupyter_remote worker: {TOKEN_ENV} is not set", file=sys.stderr)
            sys.exit(EXIT_REJECTED)
        host, _, port = connect_to.rpartition(":")
        return cls(host.strip("[]"), int(port), worker_id, token, fingerprint)

    def environ(self) -> dict[str, str]:
        env = {TOKEN_ENV: self.token}
        if self.fingerprint:
            env[FINGERPRINT_ENV] = self.fingerprint
        return env

    def open(self, timeout: float) -> socket.socket:
        """Connect (retrying until ``timeout``), over TLS when the controller's pin is known."""
        host, port = self.host, self.port
        deadline = time.monotonic() + timeout
        while True:
            try:
                sock = socket.create_connection((host, port), timeout=10)
                break
            except OSError as exc:
                if time.monotonic() > deadline:
                    print(
                        f"jupyter_remote worker: cannot reach the controller at {host}:{port} "
                        f"({exc}). If the worker runs on another machine, set advertise_host "
                        "(env JUPYTER_REMOTE_ADVERTISE_HOST) to an address of the caller it can "
                        "reach.",
                        file=sys.stderr,
                    )
                    sys.exit(EXIT_CANNOT_CONNECT)
                time.sleep(0.2)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        keepalive(sock)
        if self.fingerprint:
            sock = _pinned(sock, host, self.fingerprint)
        return sock

    def authenticate(self, sock: socket.socket, info: dict[str, Any]) -> dict[str, Any]:
        """Run the handshake; return the controller's status (exits if it rejects us)."""
        hs = _handshake()
        challenge = recv_exact(sock, len(hs.MAGIC) + hs.NONCE)
        hello, nonce = hs.worker_hello(self.token, challenge, self.worker_id, info)
        sock.sendall(hello)
        proof = recv_exact(sock, hs.PROOF)
        hs.verify_controller_reply(self.token, challenge[len(hs.MAGIC) :], nonce, proof)
        status: dict[str, Any] = hs.parse_json_block(
            recv_exact(sock, hs.block_length(recv_exact(sock, 4)))
        )
        if not status.get("ok"):
            print(f"jupyter_remote worker: rejected: {status.get('error')}", file=sys.stderr)
            sys.exit(EXIT_REJECTED)
        return status


def _private_dir(path: str) -> bool:
    """Whether ``path`` is a directory of ours that nobody else can write (made so if ours)."""
    try:
        os.makedirs(path, mode=0o700, exist_ok=True)
        st = os.lstat(path)
    except OSError:
        return False
    if not stat.S_ISDIR(st.st_mode) or st.st_uid != os.getuid():
        return False  # a symlink, a file, or another user's directory
    if st.st_mode & 0o022:
        try:
            os.chmod(path, 0o700)  # ours but open to others: close it before any use
        except OSError:
            return False
    return True


def cache_dir() -> str:
    """Where a node keeps runtime zips and images: a directory only this user can write.

    ``$JUPYTER_REMOTE_CACHE``, else ``~/.cache/jupyter_remote``, else
    ``/tmp/jupyter_remote-<uid>``; one that another user owns or may write is
    never used (a swapped zip would run in the next worker): then a fresh
    private directory under the temporary directory is.
    """
    explicit = os.environ.get("JUPYTER_REMOTE_CACHE")
    home = os.path.expanduser("~")
    if explicit:
        candidate = explicit
    elif home and home != "~" and os.access(home, os.W_OK):
        candidate = os.path.join(home, ".cache", "jupyter_remote")
    else:
        candidate = os.path.join(tempfile.gettempdir(), f"jupyter_remote-{os.getuid()}")
    if _private_dir(candidate):
        return candidate
    fresh = tempfile.mkdtemp(prefix=f"jupyter_remote-{os.getuid()}-")
    print(
        f"jupyter_remote worker: not using the cache {candidate}: it is not a directory of "
        f"uid {os.getuid()} closed to other users; using {fresh} for this worker",
        file=sys.stderr,
    )
    return fresh


def sha256_file(path: str) -> str | None:
    digest = hashlib.sha256()
    try:
        with open(path, "rb") as fh:
            while chunk := fh.read(1 << 20):
                digest.update(chunk)
    except OSError:
        return None
    return digest.hexdigest()


def _verified_runtimes(where: str) -> list[str]:
    """The hashes of the cached runtime zips whose content matches their name; drop the rest."""
    good = []
    for name in sorted(os.listdir(where)):
        if not (name.startswith("runtime-") and name.endswith(".zip")):
            continue
        sha = name[8:-4]
        if sha256_file(os.path.join(where, name)) == sha:
            good.append(sha)
        else:
            print(f"jupyter_remote worker: {name} does not match its hash: fetching the runtime "
                  "again", file=sys.stderr)  # fmt: skip
            with contextlib.suppress(OSError):
                os.unlink(os.path.join(where, name))
    return good


def fetch_runtime(link: Link, where: str) -> str:
    """Return the path of the controller's runtime zip, downloading it unless cached.

    A cached zip is used only if its content hashes to its name, checked on
    every use, in a directory only this user can write (:func:`cache_dir`).
    """
    os.makedirs(where, exist_ok=True)
    have = _verified_runtimes(where)
    sock = link.open(60.0)
    try:
        status = link.authenticate(sock, {"fetch_runtime": True, "have": have})
        sha = str(status["runtime_sha"])
        path = os.path.join(where, f"runtime-{sha}.zip")
        if status.get("send") or sha not in have:
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


def run_in_image(link: Link, where: str, runtime: str, argv: list[str]) -> NoReturn:
    """Build the job's image here unless cached, then become the worker inside it (exec)."""
    from types import SimpleNamespace

    from jupyter_remote.backends._images import FromRegistry, ImageBuilder, unpack_image
    from jupyter_remote.exceptions import ConfigError, ImageBuildError

    key = os.environ[IMAGE_ENV]
    for name in link.environ():  # installers and run_commands must not see them
        os.environ.pop(name, None)
    images = os.path.join(where, "images")
    os.makedirs(images, exist_ok=True)
    have = bool(_KEY.fullmatch(key)) and ImageBuilder(images).is_built(key)
    uv = _node_uv(where)
    info = {
        "fetch_image": key,
        "have": have,
        "need_uv": uv is None,
        "platform": sys.platform,
        "machine": platform.machine(),
    }
    sock = link.open(60.0)
    log = _BuildLog(sock)
    try:
        sock.settimeout(IMAGE_TIMEOUT)
        status = link.authenticate(sock, info)  # exits if the controller refuses
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
    env.update(link.environ())
    if built.workdir is not None:
        os.chdir(built.workdir)
    python = str(built.python)
    sys.stderr.flush()
    # -P: the working directory (on Nomad a task directory other users may write) is not
    # put on sys.path, so no module planted there is imported.
    os.execve(python, [python, "-P", "-m", "jupyter_remote.runtime", *argv], env)


def bootstrap_main(argv: list[str]) -> None:
    """Entry point of the bootstrap text: fetch the runtime (and image), then run the worker."""
    connect_to = argv[argv.index("--connect") + 1]
    worker_id = argv[argv.index("--worker-id") + 1]
    link = Link.from_environ(connect_to, worker_id, pop=False)  # the worker pops them
    where = cache_dir()
    path = fetch_runtime(link, where)
    sys.path.insert(0, path)
    if os.environ.get(IMAGE_ENV):
        run_in_image(link, where, path, argv)
    from jupyter_remote.runtime._main import main

    main(argv)


def bootstrap_source() -> str:
    """The program a bare node runs: ``python -P -c SOURCE --connect HOST:PORT --worker-id ID``.

    ``-P`` keeps the task's working directory off ``sys.path`` (see :func:`run_in_image`).
    """
    here = os.path.dirname(os.path.abspath(__file__))
    with open(os.path.join(here, "_fetch.py")) as fh:
        fetch_src = fh.read()
    with open(os.path.join(os.path.dirname(here), "protocol", "_handshake.py")) as fh:
        handshake_src = fh.read()
    return (
        f"{fetch_src}\n_HANDSHAKE_SRC = {handshake_src!r}\n"
        "if __name__ == '__main__':\n    bootstrap_main(sys.argv[1:])\n"
    )
