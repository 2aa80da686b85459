"""``jupyter-remote shell TARGET::fn``: Modal's ``modal shell``, an interactive shell in a worker.

The shell runs on a worker of a function with ``fn``'s options (image, volumes,
secrets, env, gpu), on a pty. It reaches this terminal over its own TCP
connection, which the worker dials back (like its channel to the controller)
and opens with a one-time token that travelled in its input; off loopback the
connection is TLS with a certificate made for it and pinned by the worker.
"""

from __future__ import annotations

import argparse
import contextlib
import hmac
import os
import secrets
import selectors
import shlex
import shutil
import socket
import ssl
import sys
import termios
import time
import tty
from collections.abc import Iterator
from typing import Any

from ..api import Function
from ..backends import REGISTRY
from ..controller import controller
from ..exceptions import OutputExpiredError
from ..runtime._shell import serve_shell
from ._common import EXIT_RUNTIME, CliError, Subparsers
from ._run import _print_user_error, import_user_target
from ._target import select, split_target

__all__ = ["add_parser", "shell"]

_LOOPBACK = ("127.0.0.1", "localhost", "::1")
_CHUNK = 1 << 16
_DESCRIPTION = """\
Start an interactive shell on a worker that has the image, volumes, secrets and
environment of an @app.function(): what that function sees, you see. The shell
ends when you exit it; its exit code is this command's.
"""
_EPILOG = """\
examples:
  jupyter-remote shell train.py::fit                 bash (else sh) in fit's environment
  jupyter-remote shell train.py::fit --cmd python    a Python REPL there
"""


def add_parser(subparsers: Subparsers) -> None:
    parser = subparsers.add_parser(
        "shell",
        help="an interactive shell in a worker with a function's image, volumes and secrets",
        description=_DESCRIPTION,
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--backend", metavar="NAME", help="where the worker runs")
    parser.add_argument(
        "--cmd", metavar="COMMAND", help="what to run instead of an interactive shell"
    )
    parser.add_argument(
        "-m",
        dest="module_path",
        action="store_true",
        help="TARGET is a module name (pkg.mod::fn)",
    )
    parser.add_argument(
        "target", metavar="TARGET", help="path/to/script.py::function or pkg.mod::function"
    )
    parser.set_defaults(handler=shell)


class _Relay:
    """The socket the worker dials back to; accepts one connection that knows the token."""

    def __init__(self, host: str) -> None:
        self.host = host
        self.token = secrets.token_urlsafe(32)
        self.tls: Any = None
        bind = host
        if host not in _LOOPBACK:
            from ..controller._tls import session_identity

            self.tls = session_identity(host)
        self.server = socket.socket(socket.AF_INET6 if ":" in bind else socket.AF_INET)
        try:
            self.server.bind((bind, 0))
        except OSError:  # not an address of this machine (NAT): every interface, still TLS
            self.server = socket.socket(socket.AF_INET)
            self.server.bind(("0.0.0.0", 0))
        self.server.listen(4)
        self.server.settimeout(0.5)
        self.port: int = self.server.getsockname()[1]

    @property
    def fingerprint(self) -> str | None:
        return self.tls.fingerprint if self.tls is not None else None

    def accept(self) -> socket.socket | None:
        """The worker's connection once it proved the token, else None (try again)."""
        try:
            conn, _ = self.server.accept()
        except TimeoutError:
            return None
        try:
            conn.settimeout(10)
            if self.tls is not None:
                conn = self.tls.context.wrap_socket(conn, server_side=True)
            line = b""
            while not line.endswith(b"\n") and len(line) < 200:
                chunk = conn.recv(1)
                if not chunk:
                    break
                line += chunk
            if hmac.compare_digest(line.strip(), self.token.encode()):
                conn.settimeout(None)
                return conn
        except (OSError, ssl.SSLError):
            pass
        conn.close()
        return None

    def close(self) -> None:
        self.server.close()


@contextlib.contextmanager
def _raw_terminal(fd: int) -> Iterator[None]:
    """Keys go to the remote shell as typed (Ctrl-C included) while it runs."""
    if not os.isatty(fd):
        yield
        return
    saved = termios.tcgetattr(fd)
    tty.setraw(fd)
    try:
        yield
    finally:
        termios.tcsetattr(fd, termios.TCSADRAIN, saved)


def _pump(conn: socket.socket, stdin: int, stdout: int) -> None:
    sel = selectors.DefaultSelector()
    sel.register(conn, selectors.EVENT_READ, "conn")
    sel.register(stdin, selectors.EVENT_READ, "stdin")
    while True:
        for key, _ in sel.select():
            if key.data == "stdin":
                data = os.read(stdin, _CHUNK)
                if not data:  # input ended (a pipe): keep showing what the shell prints
                    sel.unregister(stdin)
                    continue
                conn.sendall(data)
            else:
                data = conn.recv(_CHUNK)
                while isinstance(conn, ssl.SSLSocket) and conn.pending():
                    data += conn.recv(_CHUNK)
                if not data:
                    return
                os.write(stdout, data)


def shell(args: argparse.Namespace) -> int:
    """Start the shell's worker, wait for it to dial back, relay the terminal; its exit code."""
    backend: str | None = args.backend
    if backend is not None and backend not in REGISTRY:
        raise CliError(f"unknown backend {backend!r}; choose one of {', '.join(sorted(REGISTRY))}")
    where, name = split_target(args.target)
    module = import_user_target(where, module_path=args.module_path)
    if isinstance(module, int):
        return module
    target = select(where, module, name)
    if not isinstance(target.obj, Function):
        raise CliError(
            f"{where}::{target.name} is a local entrypoint; give an @app.function() "
            "(the shell gets its image, volumes and secrets)"
        )
    argv = shlex.split(args.cmd) if args.cmd else None
    size = shutil.get_terminal_size((0, 0))
    opts = target.obj.options.merge(name=f"{target.name}_shell", timeout=86400, retries=0)
    fn: Function[..., Any, Any] = Function(target.app, serve_shell, opts)
    try:
        with target.app.run(backend=backend):
            relay = _Relay(controller().backend(target.app.backend_name).advertise_host())
            try:
                where_to = (relay.host, relay.port, relay.token, relay.fingerprint)
                call = fn.spawn(*where_to, argv, size.lines, size.columns)
                conn = _wait_for(relay, call)
            finally:
                relay.close()
            with conn, _raw_terminal(sys.stdin.fileno()):
                _pump(conn, sys.stdin.fileno(), sys.stdout.fileno())
            code = call.get(timeout=30)
    except CliError:
        raise
    except Exception as exc:  # KeyboardInterrupt is main()'s to handle
        return _print_user_error(exc)
    return int(code)


def _wait_for(relay: _Relay, call: Any) -> socket.socket:
    """The worker's connection; if its call ends first (it could not start), its error."""
    while True:
        conn = relay.accept()
        if conn is not None:
            return conn
        try:
            call.get(timeout=0)
        except OutputExpiredError:
            time.sleep(0)  # still starting (building its image, waiting for a node)
            continue
        raise CliError("the shell's worker ended before it connected back", EXIT_RUNTIME)
