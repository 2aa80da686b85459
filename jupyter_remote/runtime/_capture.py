"""Capture of the user code's stdout/stderr, tagged with the input that wrote it.

Python-level writes (``print``) go through :class:`CaptureStream`, which knows
exactly which input is running. Writes made below Python (C extensions,
subprocesses, ``os.system``) land on file descriptors 1 and 2, which are pipes
read by a thread and tagged with the input running when the bytes arrive.
The :class:`OutputBuffer` coalesces both and is flushed by the worker a few
dozen times a second and before each result, so output precedes results.
"""

from __future__ import annotations

import codecs
import io
import os
import threading
from collections.abc import Callable

__all__ = ["CaptureStream", "OutputBuffer", "capture_fds"]

Tag = tuple[int, int]  # (call_id, index); (-1, -1) outside any input


class OutputBuffer:
    """Thread-safe list of ``(call_id, index, stream, text)`` with merging of adjacent writes."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._items: list[tuple[int, int, int, str]] = []
        self.tag: Tag = (-1, -1)

    def write(self, stream: int, text: str, tag: Tag | None = None) -> None:
        call_id, index = tag if tag is not None else self.tag
        with self._lock:
            items = self._items
            if items:
                last = items[-1]
                if last[0] == call_id and last[1] == index and last[2] == stream:
                    items[-1] = (call_id, index, stream, last[3] + text)
                    return
            items.append((call_id, index, stream, text))

    def take(self) -> tuple[tuple[int, int, int, str], ...]:
        with self._lock:
            items, self._items = self._items, []
        return tuple(items)


class CaptureStream(io.TextIOBase):
    """A text stream that forwards writes into an :class:`OutputBuffer`."""

    def __init__(self, buffer: OutputBuffer, stream: int, name: str) -> None:
        super().__init__()
        self._buffer = buffer
        self._stream = stream
        self._name = name

    @property
    def name(self) -> str:
        return self._name

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return "utf-8"

    def writable(self) -> bool:
        return True

    def isatty(self) -> bool:
        return False

    def write(self, text: str) -> int:
        if not isinstance(text, str):
            raise TypeError(f"write() argument must be str, not {type(text).__name__}")
        if text:
            self._buffer.write(self._stream, text)
        return len(text)

    def flush(self) -> None:
        pass


def capture_fds(buffer: OutputBuffer, on_error: Callable[[BaseException], None]) -> int:
    """Point fds 1 and 2 at pipes drained into ``buffer``; return a dup of the original fd 2.

    The returned descriptor is where the worker writes its own diagnostics, so
    they reach the backend's log (and the user, if the worker fails to start).
    """
    log_fd = os.dup(2)
    for fd, stream in ((1, 1), (2, 2)):
        r, w = os.pipe()
        os.dup2(w, fd)
        os.close(w)
        t = threading.Thread(
            target=_drain, args=(r, stream, buffer, on_error), name=f"jr-fd{fd}", daemon=True
        )
        t.start()
    return log_fd


def _drain(
    fd: int, stream: int, buffer: OutputBuffer, on_error: Callable[[BaseException], None]
) -> None:
    decoder = codecs.getincrementaldecoder("utf-8")("replace")
    try:
        while True:
            data = os.read(fd, 65536)
            text = decoder.decode(data, final=not data)
            if text:
                buffer.write(stream, text)
            if not data:
                return
    except BaseException as exc:  # pragma: no cover - reported through the worker log
        on_error(exc)
