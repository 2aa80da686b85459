"""Capture of the user code's stdout/stderr, tagged with the input that wrote it.

Python-level writes (``print``) go through :class:`CaptureStream`, which knows
exactly which input is running. Writes made below Python (C extensions,
subprocesses, ``os.system``) land on file descriptors 1 and 2, which are pipes
read by a thread and tagged with the input running when the bytes arrive.
The :class:`OutputBuffer` coalesces both and is flushed by the worker a few
dozen times a second and before each result, so output precedes results.

Inputs that run concurrently (async tasks, threads) set :data:`INPUT_TAG` in
their own context, so each one's ``print`` is tagged with that input; bytes on
the file descriptors cannot be told apart and go to the input started last.
"""

from __future__ import annotations

import codecs
import contextlib
import ctypes
import fcntl
import io
import os
import sys
import termios
import threading
import time
from collections.abc import Callable
from contextvars import ContextVar
from typing import Any

__all__ = ["INPUT_TAG", "CaptureStream", "FdCapture", "OutputBuffer"]

Tag = tuple[int, int]  # (call_id, index); (-1, -1) outside any input

# The tag of a concurrent input, in its own context; unset: ``OutputBuffer.tag``.
INPUT_TAG: ContextVar[Tag] = ContextVar("jupyter_remote_input_tag")


class OutputBuffer:
    """Thread-safe list of ``(call_id, index, stream, text)`` with merging of adjacent writes."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._items: list[tuple[int, int, int, str]] = []
        self.tag: Tag = (-1, -1)

    def write(self, stream: int, text: str, tag: Tag | None = None) -> None:
        call_id, index = tag if tag is not None else INPUT_TAG.get(self.tag)
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


class FdCapture:
    """Fds 1 and 2 as pipes drained into an :class:`OutputBuffer` by two threads.

    ``settle()`` flushes C stdio and waits (briefly) until the pipes are empty,
    so output written below Python by an input reaches the caller before its
    result; the worker calls it once per batch, not per input.
    """

    def __init__(self, buffer: OutputBuffer, on_error: Callable[[BaseException], None]) -> None:
        self.log_fd = os.dup(2)  # the worker's own diagnostics go to the backend's log
        self._buffer = buffer
        self._on_error = on_error
        self._readers: list[int] = []
        self._busy = [False, False]  # one flag per drain thread: no shared counter to race on
        self._libc: Any = None
        with contextlib.suppress(OSError):
            self._libc = ctypes.CDLL(None)
        for fd in (1, 2):
            r, w = os.pipe()
            os.dup2(w, fd)
            os.close(w)
            self._readers.append(r)
            threading.Thread(
                target=self._drain, args=(r, fd), name=f"jr-fd{fd}", daemon=True
            ).start()

    def settle(self, timeout: float = 0.5) -> None:
        if self._libc is not None:
            self._libc.fflush(None)
        deadline = time.monotonic() + timeout
        buf = bytearray(4)
        while time.monotonic() < deadline:
            pending = 0
            for r in self._readers:
                fcntl.ioctl(r, termios.FIONREAD, buf)
                pending += int.from_bytes(buf, sys.byteorder)
            if not pending and not any(self._busy):
                return
            time.sleep(0.001)

    def _drain(self, fd: int, stream: int) -> None:
        decoder = codecs.getincrementaldecoder("utf-8")("replace")
        try:
            while True:
                data = os.read(fd, 65536)
                self._busy[stream - 1] = True
                try:
                    text = decoder.decode(data, final=not data)
                    if text:
                        self._buffer.write(stream, text)
                finally:
                    self._busy[stream - 1] = False
                if not data:
                    return
        except BaseException as exc:  # pragma: no cover - reported through the worker log
            self._on_error(exc)
