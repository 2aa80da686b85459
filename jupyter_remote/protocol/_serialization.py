"""Pickling of user objects (functions, arguments, results, exceptions).

User objects are pickled with cloudpickle into a :class:`Payload`: the pickle
stream plus its out-of-band buffers (protocol 5). A payload rides inside a
protocol message as opaque data, so decoding a frame never runs user code;
the payload is only unpickled where it is used. A payload that does not
unpickle is read again by :func:`salvage`, so that one bad input or result
fails alone instead of its whole batch; :func:`failure_from_exception` never
raises, whatever the exception does when shown or pickled.
"""

from __future__ import annotations

import io
import itertools
import pickle
import sys
import traceback
from collections.abc import Callable, Iterable
from typing import Any, NamedTuple

import cloudpickle

__all__ = [
    "Failure",
    "Payload",
    "Unloadable",
    "dumps",
    "failure_from_exception",
    "loads",
    "python_version",
    "safe_str",
    "salvage",
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


class Unloadable(NamedTuple):
    """Why part of a payload could not be rebuilt: what was imported or called, and its error."""

    what: str  # a class or function, "module.qualname"
    error: BaseException
    importing: bool  # True: looking ``what`` up failed (a module this side lacks)

    def describe(self) -> str:
        doing = "importing" if self.importing else "rebuilding"
        return f"{doing} {self.what} raised {type(self.error).__name__}: {safe_str(self.error)}"


def salvage(payload: Payload) -> tuple[Any, Callable[[Any], Unloadable | None]]:
    """Unpickle what can be of a payload that :func:`loads` refused.

    Each object that cannot be rebuilt (its class cannot be imported, its
    reconstruction or ``__setstate__`` raises) is replaced by a placeholder, and
    every object built from one (a list holding it, an instance whose state holds
    it) is marked too. Returns the rebuilt object and a function telling, for a
    part of it, why that part is not what was pickled (``None``: it is). So one
    bad input or result fails alone, not its whole batch.

    Only the failure path uses it: it runs the pure-Python unpickler, which calls
    reconstruction code a second time (the first time was the failed ``loads``).
    """
    unpickler = _Salvager(io.BytesIO(payload.data), buffers=payload.buffers)
    value = unpickler.load()
    marked = unpickler.marked
    return value, lambda obj: marked.get(id(obj), (None, None))[1]


class _Unbuilt:
    """Stands where an object could not be rebuilt."""

    __slots__ = ()


def _qualname(obj: Any) -> str:
    """``module.qualname`` of a class or function (of its type, for other objects)."""
    try:
        name = getattr(obj, "__qualname__", None)
        if not isinstance(name, str):
            obj = type(obj)
            name = obj.__qualname__
        module = getattr(obj, "__module__", None)
    except Exception:
        return type(obj).__qualname__
    return f"{module}.{name}" if isinstance(module, str) and module != "builtins" else name


def _reraise_interrupt(exc: BaseException) -> None:
    if isinstance(exc, KeyboardInterrupt):
        raise exc


class _Salvager(pickle._Unpickler):
    """The pure-Python unpickler, with placeholders where user reconstruction code fails.

    ``marked`` maps ``id(obj)`` to ``(obj, cause)`` for every object that is or holds a
    placeholder (holding ``obj`` keeps its id from being reused).
    """

    dispatch = dict(pickle._Unpickler.dispatch)  # noqa: RUF012 (the base class's name, filled below)

    def __init__(self, file: io.BytesIO, buffers: list[Any]) -> None:
        super().__init__(file, buffers=buffers)
        self.marked: dict[int, tuple[Any, Unloadable]] = {}
        # Set by ``load`` (undeclared in the stubs).
        self.stack: list[Any] = []
        self.metastack: list[list[Any]] = []
        self.append: Callable[[Any], None] = self.stack.append

    def _cause(self, objs: Iterable[Any]) -> Unloadable | None:
        marked = self.marked
        if marked:
            for obj in objs:
                hit = marked.get(id(obj))
                if hit is not None:
                    return hit[1]
        return None

    def _mark(self, obj: Any, cause: Unloadable) -> None:
        self.marked.setdefault(id(obj), (obj, cause))

    def _placeholder(self, cause: Unloadable) -> _Unbuilt:
        obj = _Unbuilt()
        self._mark(obj, cause)
        return obj

    def find_class(self, module: str, name: str) -> Any:
        try:
            return super().find_class(module, name)
        except BaseException as exc:
            _reraise_interrupt(exc)
            return self._placeholder(Unloadable(f"{module}.{name}", exc, True))

    def _call(self, func: Any, args: Iterable[Any], call: Callable[[], Any]) -> Any:
        cause = self._cause([func, *args])
        if cause is None:
            try:
                return call()
            except BaseException as exc:
                _reraise_interrupt(exc)
                cause = Unloadable(_qualname(func), exc, False)
        return self._placeholder(cause)

    def load_reduce(self) -> None:
        stack = self.stack
        args = stack.pop()
        func = stack[-1]
        stack[-1] = self._call(func, (args,), lambda: func(*args))

    def load_newobj(self) -> None:
        args = self.stack.pop()
        cls = self.stack.pop()
        self.append(self._call(cls, (args,), lambda: cls.__new__(cls, *args)))

    def load_newobj_ex(self) -> None:
        kwargs = self.stack.pop()
        args = self.stack.pop()
        cls = self.stack.pop()
        self.append(self._call(cls, (args, kwargs), lambda: cls.__new__(cls, *args, **kwargs)))


_Op = Callable[[Any], None]  # an entry of an unpickler's dispatch table


def _building(op: _Op) -> _Op:
    """An opcode that builds a container from items: mark the container if an item is marked."""

    def load(self: _Salvager) -> None:
        op(self)
        top = self.stack[-1]
        items = itertools.chain.from_iterable(top.items()) if isinstance(top, dict) else top
        cause = self._cause(items)
        if cause is not None:
            self._mark(top, cause)

    return load


def _filling(op: _Op, n_items: int) -> _Op:
    """An opcode that puts items into (or the state of) the object below them.

    It runs even when an item is marked (so a list of inputs keeps each at its
    place); when it raises, its items are consumed all the same and the object is
    marked. ``n_items``: how many items it takes, 0 for all those after a MARK.
    """

    def load(self: _Salvager) -> None:
        if n_items == 0:
            items, target = list(self.stack), self.metastack[-1][-1]
        else:
            items, target = self.stack[-n_items:], self.stack[-n_items - 1]
        try:
            op(self)
        except BaseException as exc:
            _reraise_interrupt(exc)
            self._mark(target, Unloadable(_qualname(type(target)), exc, False))
        cause = self._cause(items)
        if cause is not None:
            self._mark(target, cause)

    return load


def _install() -> None:
    table = _Salvager.dispatch
    base = pickle._Unpickler.dispatch
    own: dict[bytes, _Op] = {
        pickle.REDUCE: _Salvager.load_reduce,
        pickle.NEWOBJ: _Salvager.load_newobj,
        pickle.NEWOBJ_EX: _Salvager.load_newobj_ex,
    }
    for code, op in own.items():
        table[code[0]] = op
    building = (pickle.TUPLE, pickle.TUPLE1, pickle.TUPLE2, pickle.TUPLE3)
    for code in (*building, pickle.LIST, pickle.DICT, pickle.FROZENSET):
        table[code[0]] = _building(base[code[0]])
    for code, n_items in (
        (pickle.APPEND, 1),
        (pickle.APPENDS, 0),
        (pickle.SETITEM, 2),
        (pickle.SETITEMS, 0),
        (pickle.ADDITEMS, 0),
        (pickle.BUILD, 1),
    ):
        table[code[0]] = _filling(base[code[0]], n_items)


_install()


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
    """Capture ``exc`` with its traceback, dropping the first ``skip_frames`` (ours).

    It never raises: an exception whose ``__str__`` raises, or whose pickling raises
    anything (even ``SystemExit``), still becomes a Failure with its type name and,
    where it can be formatted, its traceback.
    """
    tb = exc.__traceback__
    for _ in range(skip_frames):
        if tb is not None and tb.tb_next is not None:
            tb = tb.tb_next
    kind = type(exc)
    name = (
        kind.__qualname__
        if kind.__module__ == "builtins"
        else f"{kind.__module__}.{kind.__qualname__}"
    )
    message = safe_str(exc)
    try:
        text = "".join(traceback.format_exception(kind, exc, tb))
    except BaseException as err:
        text = f"{name}: {message}\n(its traceback could not be formatted: {type(err).__name__})\n"
    payload: Payload | None
    try:
        payload = dumps(exc.with_traceback(None))
        # An exception that pickles but cannot be rebuilt is as good as unpicklable.
        loads(payload)
    except BaseException:
        payload = None
    return Failure(payload, name, message, text)


def safe_str(obj: object) -> str:
    """``str(obj)``, or a placeholder naming what went wrong when ``__str__`` raises."""
    try:
        text = str(obj)
    except BaseException as exc:
        return f"<str() failed: {type(exc).__name__}>"
    # A str subclass would need its module to be decoded: travel as a plain str.
    return text if type(text) is str else str.__str__(text)
