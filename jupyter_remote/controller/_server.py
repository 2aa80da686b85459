"""The controller's TCP endpoint: authenticate workers, then exchange frames.

``Connection`` is an ``asyncio.BufferedProtocol``: the kernel writes received
bytes straight into the frame decoder's memory (see ``protocol._framing``), so
a 100 MB result is received without intermediate copies.
"""

from __future__ import annotations

import asyncio
import logging
import socket
from typing import TYPE_CHECKING, Any

from ..protocol import FrameDecoder, FrameError, encode_frame, handshake

if TYPE_CHECKING:
    from ._controller import Controller
    from ._pool import Pool, WorkerState

__all__ = ["Connection"]

log = logging.getLogger("jupyter_remote")

HANDSHAKE_TIMEOUT = 10.0
_HEAD = handshake.NONCE + handshake.PROOF + 4


class Connection(asyncio.BufferedProtocol):
    def __init__(self, controller: Controller) -> None:
        self.controller = controller
        self.transport: asyncio.Transport | None = None
        self.worker: WorkerState | None = None
        self.pool: Pool | None = None
        self._nonce = b""
        self._hs = bytearray()
        self._need = _HEAD
        self._hs_buf = bytearray(4096)
        self._decoder: FrameDecoder | None = None
        self._timer: asyncio.TimerHandle | None = None

    # -- asyncio protocol -----------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        sock = transport.get_extra_info("socket")
        if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        challenge, self._nonce = handshake.controller_challenge()
        transport.write(challenge)
        loop = asyncio.get_running_loop()
        self._timer = loop.call_later(HANDSHAKE_TIMEOUT, self.close)

    def get_buffer(self, sizehint: int) -> memoryview:
        if self._decoder is not None:
            return self._decoder.get_buffer()
        return memoryview(self._hs_buf)[: self._need - len(self._hs)]

    def buffer_updated(self, nbytes: int) -> None:
        if self._decoder is None:
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
                    self.pool.message(self.worker, msg)
                except Exception:  # a bug of ours: keep serving the other messages
                    log.exception("handling %s from %s failed", type(msg).__name__, self.worker)

    def connection_lost(self, exc: Exception | None) -> None:
        if self._timer is not None:
            self._timer.cancel()
        if self.worker is not None and self.pool is not None and self.worker.conn is self:
            self.pool.disconnected(self.worker)

    # -- handshake -----------------------------------------------------------------

    def _handshake_step(self) -> None:
        if len(self._hs) < self._need:
            return
        try:
            if self._need == _HEAD:
                handshake.verify_worker_hello(
                    self.controller.address.token, self._nonce, bytes(self._hs)
                )
                self._need = _HEAD + handshake.block_length(bytes(self._hs[_HEAD - 4 : _HEAD]))
                if len(self._hs) < self._need:
                    return
            info = handshake.parse_json_block(bytes(self._hs[_HEAD:]))
        except (handshake.HandshakeError, ValueError):
            self.close()  # never tell an unauthenticated peer anything
            return
        worker_nonce = bytes(self._hs[: handshake.NONCE])
        assert self.transport is not None
        if info.get("fetch_runtime"):
            self._send_runtime(worker_nonce, info)
            return
        status = self.controller.accept(self, info)
        self.transport.write(
            handshake.controller_reply(
                self.controller.address.token, self._nonce, worker_nonce, status
            )
        )
        if self._timer is not None:
            self._timer.cancel()
        if not status.get("ok"):
            self.transport.close()
            return
        self._decoder = FrameDecoder()
        assert self.worker is not None and self.pool is not None
        self.pool.connected(self.worker, self)

    def _send_runtime(self, worker_nonce: bytes, info: dict[str, Any]) -> None:
        """A bootstrap on a bare node asks for the runtime: send the zip unless it has it."""
        assert self.transport is not None
        if self._timer is not None:
            self._timer.cancel()
        sha, data = self.controller.runtime_archive()
        send = sha not in (info.get("have") or [])
        status = {"ok": True, "runtime_sha": sha, "runtime_size": len(data), "send": send}
        token = self.controller.address.token
        self.transport.write(handshake.controller_reply(token, self._nonce, worker_nonce, status))
        if send:
            self.transport.write(data)
        self.transport.close()  # after the buffered bytes are flushed

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
