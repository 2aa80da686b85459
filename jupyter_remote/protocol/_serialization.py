"""Pickling of user objects (functions, arguments, results, exceptions).

User objects are pickled with cloudpickle into a :class:`Payload`: the pickle
stream plus its out-of-band buffers (protocol 5). A payload rides inside a
protocol message as opaque data, so decoding a frame never runs user code;
the payload is only unpickled where it is used.
"""

from __future__ import annotations

import pickle
import sys
import traceback
from typing import Any

import cloudpickle

__all__ = [
    "Failure",
    "Payload",
    "dumps",
    "failure_from_exception",
    "loads",
    "python_version",
]

# Payload data at least this large travels out of band too (no copy into the frame's pickle).
_INLINE_LIMIT = 1 << 16


def python_version() -> tuple[int, int]:
    return (sys.version_info.major, sys.version_info.minor)


class Payload:
    """A cloudpickled object: ``data`` plus its out-of-band ``buffers``."""

    __slots__ = ("buffers", "data")

    def __init__(self, data: bytes | memoryview, buffers: list[Any]) -> None:
        self.data = data
        self.buffers = buffers

    @property
    def nbytes(self) -> int:
        return len(self.data) + sum(memoryview(b).nbytes for b in self.buffers)

    def __reduce_ex__(self, protocol: Any) -> tuple[Any, ...]:
        data: Any = self.data
        if len(data) >= _INLINE_LIMIT:
            data = pickle.PickleBuffer(data)
        return (Payload, (data, [pickle.PickleBuffer(b) for b in self.buffers]))

    def __repr__(self) -> str:
        return f"<Payload {self.nbytes} bytes>"


def dumps(obj: Any) -> Payload:
    """Pickle ``obj`` with cloudpickle; raises whatever pickling raises."""
    buffers: list[Any] = []
    data = cloudpickle.dumps(obj, protocol=5, buffer_callback=buffers.append)
    return Payload(data, [b.raw() for b in buffers])


def loads(payload: Payload) -> Any:
    return pickle.loads(payload.data, buffers=payload.buffers)


class Failure:
    """An exception raised by user code, ready to travel to the caller.

    ``exc`` is the pickled exception when it pickles (it is rebuilt as its own
    type in the caller), else ``None``; ``type_name``, ``message`` and
    ``traceback`` are always there.
    """

    __slots__ = ("exc", "message", "traceback", "type_name")

    def __init__(self, exc: Payload | None, type_name: str, message: str, traceback: str) -> None:
        self.exc = exc
        self.type_name = type_name
        self.message = message
        self.traceback = traceback

    def __reduce__(self) -> tuple[Any, ...]:
        return (Failure, (self.exc, self.type_name, self.message, self.traceback))

    def __repr__(self) -> str:
        return f"<Failure {self.type_name}: {self.message}>"


def failure_from_exception(exc: BaseException, *, skip_frames: int = 0) -> Failure:
    """Capture ``exc`` with its traceback, dropping the first ``skip_frames`` (ours)."""
    tb = exc.__traceback__
    for _ in range(skip_frames):
        if tb is not None and tb.tb_next is not None:
            tb = tb.tb_next
    text = "".join(traceback.format_exception(type(exc), exc, tb))
    payload: Payload | None
    try:
        payload = dumps(exc.with_traceback(None))
        # An exception that pickles but cannot be rebuilt is as good as unpicklable.
        loads(payload)
    except Exception:
        payload = None
    name = f"{type(exc).__module__}.{type(exc).__qualname__}"
    if type(exc).__module__ == "builtins":
        name = type(exc).__qualname__
    return Failure(payload, name, str(exc), text)
