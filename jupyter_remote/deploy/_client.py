"""A client of the app server: one authenticated connection per process, shared by threads.

It authenticates in the client role (``protocol._handshake``), then carries
calls of deployed functions (``Invoke``, the messages a worker sends for a
nested call; ``runtime._client.Client`` files their outcomes) and management
requests (``Control``). A reader thread owns the receiving side. If the
connection is lost (the app server was stopped or killed), every request
waiting on it fails with a clear error, and the next request connects again,
starting the app server if it is gone.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import socket
import threading
from typing import Any

from ..exceptions import BackendError, JupyterRemoteError
from ..protocol import (
    Control,
    ControlReply,
    FrameDecoder,
    InvokeOutcomes,
    InvokeRefused,
    encode_frame,
    failure_from_exception,
    handshake,
    loads,
    python_version,
)
from ..runtime._client import Client
from ._launch import ensure_started
from ._paths import read_state, state_file

__all__ = ["ServerConnection", "connection", "not_running"]

CONNECT_TIMEOUT = 10.0


def not_running() -> BackendError:
    return BackendError(
        "the app server is not running (no state file at "
        f"{state_file()}); start it with `jupyter-remote server start`, or deploy an app "
        "(`jupyter-remote deploy FILE` starts it)"
    )


def _recv_exact(sock: socket.socket, n: int) -> bytes:
    data = bytearray()
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        if not chunk:
            raise ConnectionError("the app server closed the connection during the handshake")
        data += chunk
    return bytes(data)


class _Pending:
    def __init__(self) -> None:
        self.event = threading.Event()
        self.reply: ControlReply | None = None


class ServerConnection:
    """An authenticated connection to the app server described by ``state``."""

    def __init__(self, state: dict[str, Any]) -> None:
        self.state = state
        self.closed = False
        self._send_lock = threading.Lock()
        self._lock = threading.Lock()
        self._ids = itertools.count(1)
        self._pending: dict[int, _Pending] = {}
        self.sock = self._connect()
        self.calls = Client(self.send)
        self._reader = threading.Thread(target=self._read, name="jr-app-server", daemon=True)
        self._reader.start()

    def _connect(self) -> socket.socket:
        host, port = str(self.state["host"]), int(self.state["port"])
        token = str(self.state["token"])
        try:
            sock = socket.create_connection((host, port), timeout=CONNECT_TIMEOUT)
        except OSError as exc:
            raise BackendError(
                f"cannot reach the app server at {host}:{port} ({exc}); start it with "
                "`jupyter-remote server start`"
            ) from exc
        try:
            challenge = _recv_exact(sock, len(handshake.MAGIC) + handshake.NONCE)
            info = {"pid": os.getpid(), "python": list(python_version())}
            hello, nonce = handshake.client_hello(token, challenge, str(os.getpid()), info)
            sock.sendall(hello)
            proof = _recv_exact(sock, handshake.PROOF)
            n = handshake.block_length(_recv_exact(sock, 4))
            status = handshake.parse_json_block(_recv_exact(sock, n))
            server_nonce = challenge[len(handshake.MAGIC) :]
            handshake.verify_controller_reply(token, server_nonce, nonce, proof)
        except (OSError, handshake.HandshakeError) as exc:
            sock.close()
            raise BackendError(
                f"the app server at {host}:{port} refused this client ({exc}); its state file "
                f"{state_file()} may be stale: run `jupyter-remote server stop`, then start it"
            ) from exc
        if not status.get("ok"):
            sock.close()
            raise BackendError(f"the app server refused this client: {status.get('error')}")
        sock.settimeout(None)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return sock

    def send(self, message: Any) -> None:
        if self.closed:
            raise BackendError("the connection to the app server was lost; call again")
        with self._send_lock:
            for chunk in encode_frame(message):
                self.sock.sendall(chunk)

    def control(self, op: str, timeout: float | None = 120.0, **args: Any) -> Any:
        """Ask the app server ``op``; its result, or the error it answered with (raised here)."""
        pending = _Pending()
        with self._lock:
            request_id = next(self._ids)
            self._pending[request_id] = pending
        try:
            self.send(Control(request_id, op, args))
            if not pending.event.wait(timeout):
                raise BackendError(f"the app server did not answer {op!r} within {timeout:g}s")
        finally:
            with self._lock:
                self._pending.pop(request_id, None)
        reply = pending.reply
        if reply is None:
            raise BackendError(f"the connection to the app server was lost during {op!r}")
        if reply.error is not None:
            raise _rebuilt(reply.error)
        return reply.result

    def _read(self) -> None:
        decoder = FrameDecoder()
        try:
            while True:
                n = self.sock.recv_into(decoder.get_buffer())
                if n == 0:
                    break
                for msg in decoder.feed(n):
                    if isinstance(msg, InvokeOutcomes | InvokeRefused):
                        self.calls.deliver(msg)
                    elif isinstance(msg, ControlReply):
                        with self._lock:
                            pending = self._pending.get(msg.request_id)
                        if pending is not None:
                            pending.reply = msg
                            pending.event.set()
        except Exception:  # the connection broke: treated as closed below
            pass
        self._lost()

    def _lost(self) -> None:
        self.closed = True
        error = failure_from_exception(
            BackendError("the connection to the app server was lost (was it stopped or killed?)")
        )
        self.calls.fail_all(error)
        with self._lock:
            pending = list(self._pending.values())
        for p in pending:
            p.event.set()

    def close(self) -> None:
        self.closed = True
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)
        self.sock.close()


def _rebuilt(failure: Any) -> BaseException:
    exc: Any = None
    if failure.exc is not None:
        try:
            exc = loads(failure.exc)
        except Exception:
            exc = None
    if isinstance(exc, BaseException):
        return exc
    return JupyterRemoteError(f"{failure.type_name}: {failure.message}")


_lock = threading.Lock()
_connection: ServerConnection | None = None


def connection(start: bool = True) -> ServerConnection:
    """This process's connection to the app server (started on demand unless ``start`` is False)."""
    global _connection
    with _lock:
        if _connection is None or _connection.closed:
            state = ensure_started() if start else read_state()
            if state is None:
                raise not_running()
            try:
                _connection = ServerConnection(state)
            except BackendError:
                if not start:
                    raise
                _connection = ServerConnection(ensure_started())  # it died meanwhile
        return _connection
