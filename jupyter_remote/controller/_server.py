"""The controller's TCP endpoint: authenticate workers, then exchange frames.

``Connection`` is an ``asyncio.BufferedProtocol``: the kernel writes received
bytes straight into the frame decoder's memory (see ``protocol._framing``), so
a 100 MB result is received without intermediate copies.

Two kinds of connection come from a bootstrap on a bare node rather than from
a worker (see ``runtime._fetch``): ``fetch_runtime`` gets the runtime zip;
``fetch_image`` gets the worker's Image (layers and local files), and then
stays open while the node builds it, sending JSON lines that are echoed to
the caller's stderr as ``[image] ...``; a failed build fails the worker's
start with the installer's output (:class:`ImageBuildError`).
"""

from __future__ import annotations

import asyncio
import json
import logging
import platform
import socket
import sys
import time
from typing import TYPE_CHECKING, Any

from ..backends._images import pack_image, uv_binary
from ..exceptions import ConfigError, ImageBuildError, JupyterRemoteError
from ..protocol import CancelInvoke, FrameDecoder, FrameError, Invoke, encode_frame, handshake
from ..runtime._fetch import keepalive
from ._nested import NestedCalls

if TYPE_CHECKING:
    from ._controller import Controller
    from ._pool import Pool, WorkerState

__all__ = ["Connection"]

log = logging.getLogger("jupyter_remote")

HANDSHAKE_TIMEOUT = 10.0
_MAX_BUILD_LINE = 1 << 20


def _image_reply(image: Any, info: dict[str, Any]) -> tuple[dict[str, Any], bytes, bytes]:
    """The status, packed image and (maybe) our uv binary for a node that asks for ``image``.

    Runs in a thread: it hashes and reads the image's local files.
    """
    key = image.key
    build = not (info.get("have") and info.get("fetch_image") == key)  # files changed: rebuild
    payload = pack_image(image.layers, files=build)
    uv = b""
    same_platform = info.get("platform") == sys.platform and info.get("machine") == (
        platform.machine()
    )
    if build and info.get("need_uv") and same_platform:
        binary = uv_binary()
        if binary is not None:
            uv = binary.read_bytes()  # the node checks that it runs there before using it
    status = {
        "ok": True,
        "key": key,
        "build": build,
        "image_size": len(payload),
        "uv_size": len(uv),
    }
    return status, payload, uv


class Connection(asyncio.BufferedProtocol):
    def __init__(self, controller: Controller) -> None:
        self.controller = controller
        self.transport: asyncio.Transport | None = None
        self.worker: WorkerState | None = None
        self.pool: Pool | None = None
        self._nonce = b""
        self._hs = bytearray()
        self._need = handshake.hello_length(b"")
        self._token: str | None = None  # the credential of the worker id the peer claims
        self._worker_id = ""
        self.peer = "?"
        self._hs_buf = bytearray(4096)
        self._decoder: FrameDecoder | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._build: tuple[WorkerState, Pool] | None = None  # a node building its image
        self._lines = bytearray()
        self._alive: asyncio.TimerHandle | None = None
        self.nested = NestedCalls(self)  # calls the worker's user code made

    # -- asyncio protocol -----------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        sock = transport.get_extra_info("socket")
        if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            keepalive(sock)  # a dead worker host is noticed without its heartbeats (_pool)
        peer = transport.get_extra_info("peername")
        self.peer = f"{peer[0]}:{peer[1]}" if isinstance(peer, tuple) else "?"
        self.controller.opened(self)
        challenge, self._nonce = handshake.controller_challenge()
        transport.write(challenge)
        loop = asyncio.get_running_loop()
        self._timer = loop.call_later(HANDSHAKE_TIMEOUT, self.close)

    def get_buffer(self, sizehint: int) -> memoryview:
        if self._decoder is not None:
            return self._decoder.get_buffer()
        if self._build is not None:
            return memoryview(self._hs_buf)
        return memoryview(self._hs_buf)[: self._need - len(self._hs)]

    def buffer_updated(self, nbytes: int) -> None:
        if self._decoder is None:
            if self._build is not None:
                self._build_output(self._hs_buf[:nbytes])
                return
            self._hs += self._hs_buf[:nbytes]
            self._handshake_step()
            return
        try:
            messages = self._decoder.feed(nbytes)
        except FrameError:
            self.close()
            return
        if self.worker is not None and self.pool is not None:
            for msg in messages:
                try:
                    if isinstance(msg, Invoke | CancelInvoke):
                        self.nested.handle(self.pool, msg)
                    else:
                        self.pool.message(self.worker, msg)
                except Exception:  # a bug of ours: keep serving the other messages
                    log.exception("handling %s from %s failed", type(msg).__name__, self.worker)

    def connection_lost(self, exc: Exception | None) -> None:
        self.controller.settled(self)
        self.nested.close()
        if self._timer is not None:
            self._timer.cancel()
        if self._alive is not None:
            self._alive.cancel()
        if self.worker is not None and self.pool is not None and self.worker.conn is self:
            self.pool.disconnected(self.worker)

    # -- handshake -----------------------------------------------------------------

    def _handshake_step(self) -> None:
        try:
            if self._token is None:
                worker_id = handshake.hello_id(bytes(self._hs))
                if worker_id is not None:
                    self._token = self.controller.credential(worker_id)
                    if self._token is None:  # never issued, or spent by a connected worker
                        self.close()
                        return
                    self._worker_id = worker_id
            self._need = handshake.hello_length(bytes(self._hs))
            if len(self._hs) < self._need:
                return
            assert self._token is not None
            hello = handshake.parse_hello(bytes(self._hs))
            info = handshake.verify_worker_hello(self._token, self._nonce, hello)
        except handshake.HandshakeError:
            self.close()  # never tell an unauthenticated peer anything
            return
        self.controller.settled(self)
        if self._timer is not None:
            self._timer.cancel()
        if info.get("fetch_runtime"):
            self._send_runtime(hello.nonce, info)
            return
        if info.get("fetch_image"):
            self._serve_image(hello.nonce, info)
            return
        status = self.controller.accept(self, self._worker_id, info)
        self._reply(hello.nonce, status)
        if not status.get("ok"):
            assert self.transport is not None
            self.transport.close()
            return
        self._decoder = FrameDecoder()
        assert self.worker is not None and self.pool is not None
        self.pool.connected(self.worker, self)

    def _reply(self, worker_nonce: bytes, status: dict[str, Any]) -> None:
        assert self.transport is not None and self._token is not None
        reply = handshake.controller_reply(self._token, self._nonce, worker_nonce, status)
        self.transport.write(reply)

    def _send_runtime(self, worker_nonce: bytes, info: dict[str, Any]) -> None:
        """A bootstrap on a bare node asks for the runtime: send the zip unless it has it."""
        assert self.transport is not None
        sha, data = self.controller.runtime_archive()
        send = sha not in (info.get("have") or [])
        self._reply(
            worker_nonce, {"ok": True, "runtime_sha": sha, "runtime_size": len(data), "send": send}
        )
        if send:
            self.transport.write(data)
        self.transport.close()  # after the buffered bytes are flushed

    # -- images built on the node -------------------------------------------------------

    def _serve_image(self, worker_nonce: bytes, info: dict[str, Any]) -> None:
        """A bootstrap asks for its worker's image: send it, then relay the node's build log."""
        assert self.transport is not None
        found = self.controller.image_for(self._worker_id)
        if found is None:
            self._reply(
                worker_nonce, {"ok": False, "error": "no such starting worker with an image"}
            )
            self.transport.close()
            return
        image, ws, pool = found
        self._build = (ws, pool)
        self._keep_starting()
        task = self._send_image(worker_nonce, info, image)
        asyncio.get_running_loop().create_task(task)

    async def _send_image(self, worker_nonce: bytes, info: dict[str, Any], image: Any) -> None:
        assert self._build is not None
        try:
            status, payload, uv = await asyncio.to_thread(_image_reply, image, info)
        except Exception as exc:  # a local file vanished, or a bug of ours: say so, not hang
            error = (
                exc
                if isinstance(exc, JupyterRemoteError)
                else ImageBuildError(f"cannot send the image of {self._build[1].label}: {exc}")
            )
            if self.transport is not None and not self.transport.is_closing():
                self._reply(worker_nonce, {"ok": False, "error": str(error)})
            self.close()
            self._image_failed(error)
            return
        if self.transport is None or self.transport.is_closing():
            return
        self._reply(worker_nonce, status)
        self.transport.write(payload)
        if uv:
            self.transport.write(uv)

    def _keep_starting(self) -> None:
        """While its node builds the image, the worker's start timeout does not run out."""
        if self._build is None or self.transport is None or self.transport.is_closing():
            return
        self._build[0].started_at = time.monotonic()
        self._alive = asyncio.get_running_loop().call_later(1.0, self._keep_starting)

    def _build_output(self, data: bytes | bytearray) -> None:
        self._lines += data
        *lines, rest = self._lines.split(b"\n")
        self._lines = bytearray(rest)
        if len(self._lines) > _MAX_BUILD_LINE:
            self.close()
        for raw in lines:
            try:
                msg = json.loads(raw)
            except ValueError:
                continue
            if not isinstance(msg, dict):
                continue
            if "line" in msg:
                print(f"[image] {msg['line']}", file=sys.stderr, flush=True)
            elif "error" in msg:
                text = str(msg["error"])
                error: JupyterRemoteError = (
                    ConfigError(text)
                    if msg.get("kind") == "config"
                    else ImageBuildError(text, str(msg.get("key", "")), str(msg.get("output", "")))
                )
                self._image_failed(error)

    def _image_failed(self, error: JupyterRemoteError) -> None:
        if self._build is not None:
            ws, pool = self._build
            if ws.state == "starting":
                pool.start_failed(ws, error)

    # -- sending ---------------------------------------------------------------------

    def send(self, message: Any) -> None:
        transport = self.transport
        if transport is None or transport.is_closing():
            return
        for chunk in encode_frame(message):
            transport.write(chunk)

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()
