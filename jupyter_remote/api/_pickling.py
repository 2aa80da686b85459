"""Every pickling decision of the caller side, with errors that name the culprit.

Functions are pickled once per definition (cloudpickle, by value when they
live in ``__main__`` or a notebook) and identified by the hash of their bytes;
arguments are pickled in the caller's thread before anything is sent, so an
unpicklable argument is reported with its position or name and type.
"""

from __future__ import annotations

import contextlib
import hashlib
import inspect
import linecache
import re
import types
import warnings
from collections.abc import Callable, Iterable, Iterator, Sized
from typing import Any

from ..config import Settings
from ..exceptions import RemoteError, RemoteTraceback, SerializationError
from ..protocol import Failure, FunctionDef, Payload, dumps, loads, safe_str, salvage

__all__ = [
    "Inputs",
    "describe_type",
    "function_def",
    "pickle_chunks",
    "pickle_inputs",
    "rebuild_exception",
]


def describe_type(obj: Any) -> str:
    t = type(obj)
    return t.__qualname__ if t.__module__ == "builtins" else f"{t.__module__}.{t.__qualname__}"


def _referenced_globals(fn: Any) -> dict[str, Any]:
    """Globals and closure values a function (and the functions it nests) refer to."""
    found: dict[str, Any] = {}
    func = inspect.unwrap(fn) if callable(fn) else fn
    if isinstance(func, type):
        for attr in vars(func).values():
            if isinstance(attr, types.FunctionType):
                found.update(_referenced_globals(attr))
        return found
    code = getattr(func, "__code__", None)
    if code is None:
        return found
    g = getattr(func, "__globals__", {})
    stack = [code]
    while stack:
        c = stack.pop()
        for name in c.co_names:
            if name in g and not isinstance(g[name], types.ModuleType):
                found[name] = g[name]
        stack.extend(k for k in c.co_consts if isinstance(k, types.CodeType))
    defaults = (getattr(func, "__defaults__", None) or ()) + tuple(
        (getattr(func, "__kwdefaults__", None) or {}).values()
    )
    for i, value in enumerate(defaults):
        found[f"<default argument {i}>"] = value
    for name, cell in zip(code.co_freevars, getattr(func, "__closure__", None) or (), strict=False):
        with contextlib.suppress(ValueError):  # an empty cell
            found[name] = cell.cell_contents
    return found


def _culprit(fn: Any) -> tuple[str, Any, int | None]:
    """The referenced global that fails to pickle, or else the largest one."""
    biggest: tuple[str, Any, int | None] = ("", None, None)
    for name, value in _referenced_globals(fn).items():
        if value is fn:
            continue
        try:
            size = dumps(value).nbytes
        except Exception:
            return name, value, None
        if biggest[2] is None or size > biggest[2]:
            biggest = (name, value, size)
    return biggest


def function_def(fn: Any, kind: str, name: str, settings: Settings) -> FunctionDef:
    """Pickle a function (or ``(cls, args, kwargs)``) once; refuse or warn when it is huge."""
    target = fn[0] if isinstance(fn, tuple) else fn
    try:
        payload = dumps(fn)
    except Exception as exc:
        culprit, value, _ = _culprit(target)
        which = (
            f": it refers to {culprit!r} (type {describe_type(value)}), which cannot be pickled"
            if culprit
            else ""
        )
        raise SerializationError(
            f"{name} cannot be sent to a worker{which} ({exc}). Create that object inside the "
            "function, or pass something picklable as an argument."
        ) from exc
    size = payload.nbytes
    if size > min(settings.function_warn_bytes, settings.function_max_bytes):
        culprit, value, csize = _culprit(target)
        blame = (
            f"; most of it is {culprit!r} (type {describe_type(value)}, {(csize or 0) >> 20} MiB)"
            if culprit
            else ""
        )
        advice = "Pass large data as an argument or load it inside the function (from a Volume)."
        if size > settings.function_max_bytes:
            raise SerializationError(
                f"{name} pickles to {size >> 20} MiB, over the limit of "
                f"{settings.function_max_bytes >> 20} MiB (setting function_max_bytes){blame}. "
                + advice
            )
        warnings.warn(
            f"{name} pickles to {size >> 20} MiB{blame}. {advice}", RuntimeWarning, stacklevel=4
        )
    digest = hashlib.sha256(payload.data)
    for b in payload.buffers:
        digest.update(b)
    return FunctionDef(digest.hexdigest()[:32], payload, kind, name)


def _argument_error(
    name: str, args: tuple[Any, ...], kwargs: dict[str, Any], exc: Exception, where: str
) -> SerializationError:
    for i, value in enumerate(args):
        try:
            dumps(value)
        except Exception as inner:
            return SerializationError(
                f"{where}argument {i} of {name}() (type {describe_type(value)}) cannot be pickled: "
                f"{inner}. Pass plain data, or create that object inside the function."
            )
    for key, value in kwargs.items():
        try:
            dumps(value)
        except Exception as inner:
            return SerializationError(
                f"{where}argument {key!r} of {name}() (type {describe_type(value)}) cannot be "
                f"pickled: {inner}. Pass plain data, or create that object inside the function."
            )
    return SerializationError(f"{where}the arguments of {name}() cannot be pickled: {exc}")


class Inputs:
    """A call's inputs as they travel: positional arguments plus keyword arguments shared by all.

    ``.map(f, xs, ys)`` keeps one list per positional argument (``data`` is a tuple
    of columns); ``.starmap`` and ``.remote`` keep one tuple of positional arguments
    per input (``data`` is a list of rows). A chunk pickles as ``(data[slice], kwargs)``,
    the shape workers read (see ``protocol._messages``), so a map never builds an
    ``(args, kwargs)`` pair per input.

    >>> Inputs.from_columns(([1, 2, 3], "ab"), {"c": 0}).chunk(0, 2)
    (([1, 2], ['a', 'b']), {'c': 0})
    """

    __slots__ = ("data", "kwargs", "n")

    def __init__(
        self, data: tuple[list[Any], ...] | list[tuple[Any, ...]], kwargs: dict[str, Any]
    ) -> None:
        self.data = data
        self.kwargs = kwargs
        self.n = (len(data[0]) if data else 0) if isinstance(data, tuple) else len(data)

    @classmethod
    def from_columns(
        cls, iterables: tuple[Iterable[Any], ...], kwargs: dict[str, Any] | None = None
    ) -> Inputs:
        """Inputs of ``.map``: input ``i`` takes the ``i``-th item of each iterable (as ``zip``)."""
        kw = dict(kwargs or {})
        if len(iterables) == 1:
            return cls((list(iterables[0]),), kw)
        if all(isinstance(it, Sized) and not isinstance(it, Iterator) for it in iterables):
            # Containers: reading each one whole has no side effect, and is much faster
            # than zipping. Iterators are zipped, which stops at the shortest one.
            columns = [list(it) for it in iterables]
            n = min(len(c) for c in columns)
            return cls(tuple(c if len(c) == n else c[:n] for c in columns), kw)
        rows = list(zip(*iterables, strict=False))
        if not rows:
            return cls(tuple([] for _ in iterables), kw)
        return cls(tuple(list(c) for c in zip(*rows, strict=True)), kw)

    @classmethod
    def from_rows(
        cls, iterable: Iterable[Iterable[Any]], kwargs: dict[str, Any] | None = None
    ) -> Inputs:
        """Inputs of ``.starmap``: each item is the tuple of one input's positional arguments."""
        return cls(list(map(tuple, iterable)), dict(kwargs or {}))

    def __len__(self) -> int:
        return self.n

    def chunk(self, start: int, stop: int) -> tuple[Any, dict[str, Any]]:
        """What a worker receives for inputs ``start .. stop-1``."""
        data = self.data
        whole = start == 0 and stop >= self.n
        if isinstance(data, tuple):
            return (data if whole else tuple(c[start:stop] for c in data)), self.kwargs
        return (data if whole else data[start:stop]), self.kwargs

    def args(self, index: int) -> tuple[Any, ...]:
        """The positional arguments of input ``index``."""
        data = self.data
        if isinstance(data, tuple):
            return tuple(c[index] for c in data)
        return data[index]


def pickle_inputs(name: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Payload:
    """The payload of a single input (``.remote``, ``.spawn``): one row."""
    try:
        return dumps(([args], kwargs))
    except Exception as exc:
        raise _argument_error(name, args, kwargs, exc, "") from exc


def pickle_chunks(name: str, inputs: Inputs, chunk_size: int) -> list[tuple[int, Payload, int]]:
    """Pickle inputs ``chunk_size`` at a time: ``[(first index, payload, count), ...]``.

    When a chunk fails, its inputs are pickled one by one (only then) to name the
    input and the argument at fault.
    """
    chunks: list[tuple[int, Payload, int]] = []
    n = inputs.n
    for first in range(0, n, chunk_size):
        stop = min(first + chunk_size, n)
        try:
            chunks.append((first, dumps(inputs.chunk(first, stop)), stop - first))
        except Exception as exc:
            kw = inputs.kwargs
            for i in range(first, stop):
                args = inputs.args(i)
                try:
                    dumps((args, kw))
                except Exception as inner:
                    raise _argument_error(name, args, kw, inner, f"input {i}: ") from exc
            raise SerializationError(f"the inputs of {name}() cannot be pickled: {exc}") from exc
    return chunks


def chunk_size_for(n_inputs: int, max_workers: int) -> int:
    """Enough chunks to balance the load (~32 per worker), few enough to keep overhead low."""
    return max(1, min(1024, -(-n_inputs // (max_workers * 32))))


_DYNAMIC_FRAME = re.compile(r'^(\s*)File "<dynamic-code>", line (\d+), in (.+)$')


def localize_traceback(text: str, filename: str | None) -> str:
    """Point frames of functions pickled by value back at the caller's file, with source.

    cloudpickle renames their code's file to ``<dynamic-code>``; the caller knows
    where the function was defined (a script, a notebook cell) and has its lines.
    """
    if not filename or "<dynamic-code>" not in text:
        return text
    out: list[str] = []
    lines = text.splitlines()
    for i, line in enumerate(lines):
        m = _DYNAMIC_FRAME.match(line)
        if not m:
            out.append(line)
            continue
        indent, lineno, where = m.groups()
        out.append(f'{indent}File "{filename}", line {lineno}, in {where}')
        source = linecache.getline(filename, int(lineno)).strip()
        nxt = lines[i + 1] if i + 1 < len(lines) else ""
        if source and not nxt.startswith(indent + "  "):
            out.append(f"{indent}  {source}")
    return "\n".join(out) + ("\n" if text.endswith("\n") else "")


def rebuild_exception(failure: Failure, filename: str | None = None) -> BaseException:
    """The user's exception as its own type with the remote traceback as ``__cause__``."""
    exc: BaseException | None = None
    tb = localize_traceback(failure.traceback, filename)
    if failure.exc is not None:
        try:
            exc = loads(failure.exc)
        except KeyboardInterrupt:
            raise
        except BaseException:  # even SystemExit from its reconstruction: a RemoteError
            exc = None
    if not isinstance(exc, BaseException):
        return RemoteError(f"{failure.type_name}: {failure.message}", tb)
    exc.__cause__ = RemoteTraceback(tb)
    return exc


def load_values(
    payload: Payload, where: range | list[tuple[int, int]], what: Callable[[], str]
) -> tuple[list[Any], list[SerializationError]]:
    """The values of a chunk of results, and errors for those that cannot be unpickled here.

    ``where`` says whose results they are: inputs ``where`` (a range), or
    ``[(position in the chunk, input index), ...]``. A value that cannot be
    unpickled is replaced, in place, by the :class:`SerializationError` that names
    its type and input, so that only that input fails.
    """
    try:
        return loads(payload), []
    except KeyboardInterrupt:
        raise
    except BaseException as exc:
        error = exc
    try:
        values, cause_of = salvage(payload)
    except KeyboardInterrupt:
        raise
    except BaseException:
        raise SerializationError(
            f"the results of {what()} cannot be unpickled here ({type(error).__name__}: "
            f"{safe_str(error)}); is the module that defines them importable in the caller?"
        ) from error
    indexes = dict(where) if isinstance(where, list) else dict(enumerate(where))
    errors: list[SerializationError] = []
    for pos, value in enumerate(values):
        cause = cause_of(value)
        index = indexes.get(pos)
        if cause is None or index is None:  # fine, or not delivered (a duplicate)
            continue
        fix = "Install that module here too, or return" if cause.importing else "Return"
        err = SerializationError(
            f"the result of input {index} of {what()} cannot be unpickled here: "
            f"{cause.describe()}. {fix} plain data (numbers, strings, lists, dicts, numpy arrays)."
        )
        if not cause.importing:
            err.__cause__ = cause.error
            cause.error.__suppress_context__ = True
        values[pos] = err
        errors.append(err)
    return values, errors
