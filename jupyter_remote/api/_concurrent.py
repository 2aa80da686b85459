"""``@concurrent``: one worker runs several inputs at once (Modal's decorator).

Stacked under ``@app.function()``, or on the class under ``@app.cls()``. It
marks the function or class (returned unchanged, so ``.local()`` and plain calls
are not affected); ``Function`` reads the mark.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple, TypeVar

from ..exceptions import ConfigError

__all__ = ["CONCURRENT_MARK", "Concurrency", "concurrency_of", "concurrent", "parse_concurrency"]

CONCURRENT_MARK = "__jupyter_remote_concurrent__"
MAX_INPUTS = 10_000

T = TypeVar("T")


class Concurrency(NamedTuple):
    max_inputs: int = 1
    target_inputs: int = 1


def _count(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"@concurrent({name}=...) takes an int, not {type(value).__name__}")
    if not 1 <= value <= MAX_INPUTS:
        raise ConfigError(f"@concurrent({name}={value}): accepted values are 1 to {MAX_INPUTS}")
    return value


def concurrent(
    _warn_parentheses_missing: Any = None,
    *,
    max_inputs: int | None = None,
    target_inputs: int | None = None,
) -> Callable[[T], T]:
    """Let one worker run up to ``max_inputs`` inputs at once.

    ``async`` functions run them as tasks on the worker's event loop; sync ones in
    threads (the code must be thread-safe). The autoscaler aims at ``target_inputs``
    per worker (default ``max_inputs``); a worker takes up to ``max_inputs`` when
    all are that busy.

    >>> import jupyter_remote as jr
    >>> app = jr.App("doc")
    >>> @app.function()
    ... @jr.concurrent(max_inputs=10)
    ... async def fetch(url: str) -> int:
    ...     return len(url)
    """
    if _warn_parentheses_missing is not None:
        raise TypeError(
            "Positional arguments are not allowed. Did you forget parentheses? "
            "Suggestion: `@jupyter_remote.concurrent(max_inputs=N)`."
        )
    if max_inputs is None:
        raise TypeError(
            "@concurrent() needs max_inputs=, the most inputs one worker runs at once: "
            "e.g. `@jupyter_remote.concurrent(max_inputs=10)`"
        )
    mark = tuple(parse_concurrency(max_inputs, target_inputs))  # plain: the worker needs no API

    def deco(obj: T) -> T:
        from ._cls import Cls
        from ._function import Function

        if isinstance(obj, Function | Cls):
            raise TypeError(
                "@concurrent(...) goes under @app.function() / @app.cls(), not above it: "
                "write @app.function() first, then @jupyter_remote.concurrent(...)"
            )
        if not callable(obj):
            raise TypeError(f"@concurrent(...) decorates a function or a class (got {obj!r})")
        setattr(obj, CONCURRENT_MARK, mark)
        return obj

    return deco


def parse_concurrency(max_inputs: Any, target_inputs: Any = None) -> Concurrency:
    """Check ``max_inputs`` and ``target_inputs`` (which defaults to ``max_inputs``)."""
    most = _count("max_inputs", max_inputs)
    target = most if target_inputs is None else _count("target_inputs", target_inputs)
    if target > most:
        raise ConfigError(
            f"@concurrent(target_inputs={target}) is above max_inputs={most}; "
            "target_inputs is what each worker aims at, max_inputs its limit"
        )
    return Concurrency(most, target)


def concurrency_of(obj: Any) -> Concurrency:
    """What ``@concurrent`` set on a function or class (one input at a time without it)."""
    mark = getattr(obj, CONCURRENT_MARK, None)
    return Concurrency(*mark) if isinstance(mark, tuple) and len(mark) == 2 else Concurrency()
