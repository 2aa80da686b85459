"""The worker's side of ``jupyter-remote shell``: a command on a pty, relayed to the caller.

It runs as the input of a function with the target's image, volumes, secrets
and env, so the shell sees what that function sees. It dials back to the
address the CLI listens on (TLS pinned by fingerprint off loopback), proves
itself with the one-time token it was given in its input, and relays bytes
both ways until the command exits; the command's exit code is the result.
"""

from __future__ import annotations

import errno
import fcntl
import hashlib
import os
import pty
import selectors
import shutil
import signal
import socket
import ssl
import struct
import termios

__all__ = ["default_command", "serve_shell"]

_CHUNK = 1 << 16


def default_command() -> list[str]:
    """An interactive bash where there is one, else sh."""
    return ["bash", "-i"] if shutil.which("bash") else ["sh", "-i"]


def _dial(host: str, port: int, fingerprint: str | None) -> socket.socket:
    sock = socket.create_connection((host, port), timeout=30)
    if not fingerprint:
        return sock
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE  # the pin below is stronger than any CA: one certificate
    tls = ctx.wrap_socket(sock)
    der = tls.getpeercert(binary_form=True) or b""
    if hashlib.sha256(der).hexdigest() != fingerprint.lower():
        tls.close()
        raise ConnectionError(
            f"the shell relay at {host}:{port} did not present the caller's certificate"
        )
    return tls


def _spawn(argv: list[str], rows: int, cols: int) -> tuple[int, int]:
    pid, fd = pty.fork()
    if pid == 0:  # the child: become the command (stdio is the pty)
        try:
            os.execvp(argv[0], argv)
        except OSError as exc:
            os.write(2, f"jupyter-remote shell: cannot run {argv[0]}: {exc.strerror}\r\n".encode())
        os._exit(127)
    if rows > 0 and cols > 0:
        fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
    return pid, fd


def _relay(sock: socket.socket, fd: int) -> None:
    sel = selectors.DefaultSelector()
    sel.register(sock, selectors.EVENT_READ, "sock")
    sel.register(fd, selectors.EVENT_READ, "pty")
    while True:
        for key, _ in sel.select():
            if key.data == "pty":
                try:
                    data = os.read(fd, _CHUNK)
                except OSError as exc:  # EIO: the command exited and closed the pty
                    if exc.errno != errno.EIO:
                        raise
                    data = b""
                if not data:
                    return
                sock.sendall(data)
            else:
                data = sock.recv(_CHUNK)
                while isinstance(sock, ssl.SSLSocket) and sock.pending():
                    data += sock.recv(_CHUNK)
                if not data:
                    return  # the caller went away
                os.write(fd, data)


def serve_shell(
    host: str,
    port: int,
    token: str,
    fingerprint: str | None,
    argv: list[str] | None,
    rows: int = 0,
    cols: int = 0,
) -> int:
    """Run ``argv`` (default: an interactive shell) on a pty relayed to ``host:port``."""
    sock = _dial(host, port, fingerprint)
    sock.settimeout(None)
    try:
        sock.sendall(token.encode() + b"\n")
        pid, fd = _spawn(argv or default_command(), rows, cols)
        try:
            _relay(sock, fd)
        finally:
            os.close(fd)
    finally:
        sock.close()
    try:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done == 0:  # the caller left while the command runs: hang it up
            os.kill(pid, signal.SIGHUP)
            _, status = os.waitpid(pid, 0)
    except ChildProcessError:
        return 0
    return os.waitstatus_to_exitcode(status)
