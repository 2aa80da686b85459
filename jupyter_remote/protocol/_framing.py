"""Length-prefixed frames carrying pickled messages with out-of-band buffers.

A frame is::

    !I meta_len | !I n_buffers | !Q len(buffer_i) * n_buffers | meta | buffer_0 | ...

``meta`` is a pickle (protocol 5) of one message; every ``PickleBuffer`` met
while pickling it (numpy arrays, large payloads) travels as a raw buffer after
it, so large arguments and results are never copied into the pickle stream.

This module is pure: it turns messages into byte chunks and a byte stream back
into messages. Sockets belong to the runtime (blocking) and the controller
(asyncio ``BufferedProtocol``); both drive the same :class:`FrameDecoder`.
"""

from __future__ import annotations

import pickle
import struct
from typing import Any

__all__ = ["MAX_FRAME_BYTES", "FrameDecoder", "FrameError", "encode_frame"]

_HEAD = struct.Struct("!II")
_LEN = struct.Struct("!Q")
# A header announcing more than this is refused before anything is allocated. Only an
# authenticated peer gets to send frames, so this guards against corruption, not attack.
MAX_FRAME_BYTES = 64 << 30
_MAX_BUFFERS = 1 << 16
# Frames whose body exceeds this are received straight into their own buffer.
_BIG = 1 << 20


class FrameError(Exception):
    """The byte stream is not a valid frame sequence (the connection must be dropped)."""


def encode_frame(message: Any) -> list[bytes | memoryview]:
    """Return the chunks to send, in order, for ``message``.

    Small frames come back as a single ``bytes`` chunk so that one ``send``
    carries them; large buffers are returned as memoryviews, never copied.
    """
    raw: list[memoryview] = []
    meta = pickle.dumps(message, protocol=5, buffer_callback=lambda b: raw.append(b.raw()))
    head = _HEAD.pack(len(meta), len(raw))
    if not raw:
        return [head + meta]
    lens = b"".join(_LEN.pack(m.nbytes) for m in raw)
    if sum(m.nbytes for m in raw) < _BIG:
        return [b"".join([head, lens, meta, *raw])]
    return [head + lens + meta, *raw]


class FrameDecoder:
    """Incremental decoder: ``get_buffer()`` to receive into, ``feed(n)`` to parse.

    It is shaped like :class:`asyncio.BufferedProtocol` so that bytes go from
    the kernel straight into the decoder's memory: small frames share one
    reusable buffer, a large frame gets a buffer of its own which then backs
    the out-of-band buffers of the decoded message (no copy).
    """

    def __init__(self, initial: int = 1 << 16) -> None:
        self._buf = bytearray(initial)
        self._start = 0
        self._end = 0
        self._big: bytearray | None = None
        self._big_filled = 0
        self._big_meta_len = 0
        self._big_lens: tuple[int, ...] = ()

    def get_buffer(self) -> memoryview:
        """Return writable memory for the next bytes of the stream."""
        if self._big is not None:
            return memoryview(self._big)[self._big_filled :]
        if self._end == len(self._buf):
            pending = self._end - self._start
            if self._start > 0:
                self._buf[:pending] = self._buf[self._start : self._end]
                self._start, self._end = 0, pending
            if self._end == len(self._buf):
                self._buf.extend(bytes(len(self._buf)))
        return memoryview(self._buf)[self._end :]

    def feed(self, nbytes: int) -> list[Any]:
        """Account for ``nbytes`` written into the last buffer; return complete messages."""
        if self._big is not None:
            self._big_filled += nbytes
            if self._big_filled < len(self._big):
                return []
            big, self._big = self._big, None
            return [self._decode(memoryview(big), self._big_meta_len, self._big_lens, owned=True)]
        self._end += nbytes
        out: list[Any] = []
        buf = self._buf
        while True:
            avail = self._end - self._start
            if avail < _HEAD.size:
                break
            meta_len, nbuf = _HEAD.unpack_from(buf, self._start)
            if nbuf > _MAX_BUFFERS:
                raise FrameError(f"frame announces {nbuf} buffers")
            head = _HEAD.size + _LEN.size * nbuf
            if avail < head:
                break
            lens = struct.unpack_from(f"!{nbuf}Q", buf, self._start + _HEAD.size)
            body = meta_len + sum(lens)
            if body > MAX_FRAME_BYTES:
                raise FrameError(f"frame of {body} bytes exceeds the limit")
            if avail - head >= body:
                begin = self._start + head
                view = memoryview(buf)[begin : begin + body]
                out.append(self._decode(view, meta_len, lens, owned=False))
                view.release()
                self._start += head + body
                continue
            if body >= _BIG:
                # Move what we have of the body into its own buffer and receive the rest there.
                have = avail - head
                big = bytearray(body)
                begin = self._start + head
                big[:have] = buf[begin : begin + have]
                self._big, self._big_filled = big, have
                self._big_meta_len, self._big_lens = meta_len, lens
                self._start = self._end = 0
            break
        if self._start == self._end:
            self._start = self._end = 0
        return out

    @staticmethod
    def _decode(view: memoryview, meta_len: int, lens: tuple[int, ...], *, owned: bool) -> Any:
        buffers: list[memoryview | bytearray] = []
        pos = meta_len
        for n in lens:
            # Buffers inside the shared receive buffer are copied (it is reused);
            # a big frame's own buffer is handed over as it is.
            chunk = view[pos : pos + n]
            buffers.append(chunk if owned else bytearray(chunk))
            pos += n
        try:
            return pickle.loads(view[:meta_len], buffers=buffers)
        except Exception as exc:
            raise FrameError(f"undecodable frame: {exc!r}") from exc
