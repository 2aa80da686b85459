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
from collections.abc import Callable, Iterable
from typing import Any

from ..config import Settings
from ..exceptions import RemoteError, RemoteTraceback, SerializationError
from ..protocol import Failure, FunctionDef, Payload, dumps, loads

__all__ = [
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


def pickle_inputs(name: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Payload:
    try:
        return dumps([(args, kwargs)])
    except Exception as exc:
        raise _argument_error(name, args, kwargs, exc, "") from exc


def pickle_chunks(
    name: str, inputs: Iterable[tuple[tuple[Any, ...], dict[str, Any]]], chunk_size: int
) -> list[tuple[int, Payload, int]]:
    """Pickle inputs ``chunk_size`` at a time: ``[(first index, payload, count), ...]``."""
    chunks: list[tuple[int, Payload, int]] = []
    items = list(inputs)
    for first in range(0, len(items), chunk_size):
        part = items[first : first + chunk_size]
        try:
            chunks.append((first, dumps(part), len(part)))
        except Exception as exc:
            for i, (a, kw) in enumerate(part):
                try:
                    dumps((a, kw))
                except Exception as inner:
                    raise _argument_error(name, a, kw, inner, f"input {first + i}: ") from exc
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
        except Exception:
            exc = None
    if not isinstance(exc, BaseException):
        return RemoteError(f"{failure.type_name}: {failure.message}", tb)
    exc.__cause__ = RemoteTraceback(tb)
    return exc


def load_values(payload: Payload, what: Callable[[], str]) -> list[Any]:
    try:
        values: list[Any] = loads(payload)
    except Exception as exc:
        raise SerializationError(
            f"the result of {what()} cannot be unpickled here ({exc}); is the module that defines "
            "it importable in the caller?"
        ) from exc
    return values
