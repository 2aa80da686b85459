"""Calls a worker makes: user code on a worker calling a Function it holds a reference to.

A ``Function`` (``Cls``, or an instance of one) pickles as a :class:`FunctionRef`:
a key the caller's process knows it by, never its definition (which may hold
secret values of that function). On a worker, ``a.remote(x)`` becomes an
:class:`Invoke` over the worker's own connection; the controller starts the
call on ``a``'s pool as if the caller had made it, and streams the call's
outcomes back as :class:`InvokeOutcomes`, or answers :class:`InvokeRefused`.

Worker → controller: ``Invoke``, ``CancelInvoke``.
Controller → worker: ``InvokeOutcomes``, ``InvokeRefused``.

Outcomes travel exactly as the caller's result channel holds them
(``controller._calls``): ``("ok", range | [(position, index), ...], payload of a
list of values)``, ``("err", index, Failure)``, ``("yield", index, payload)``,
``("end", None, None)``; ``end`` is the last one of every call.

Inputs are chunked as batches are (see ``_messages``): each chunk is
``(first index, payload of (data, kwargs), count)``, ``data`` a tuple of
columns (``.map``) or a list of rows (``.remote``, ``.starmap``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple

from ._serialization import Failure, Payload, dumps

__all__ = [
    "OUTCOME_END",
    "OUTCOME_ERR",
    "OUTCOME_OK",
    "OUTCOME_YIELD",
    "CancelInvoke",
    "Chunk",
    "FunctionRef",
    "Invoke",
    "InvokeOutcomes",
    "InvokeRefused",
    "chunk_columns",
    "chunk_size",
]

OUTCOME_OK, OUTCOME_ERR, OUTCOME_YIELD, OUTCOME_END = "ok", "err", "yield", "end"

Chunk = tuple[int, Payload, int]  # (first input index, payload of (data, kwargs), count)


class FunctionRef(NamedTuple):
    """What a ``Function``, ``Cls`` or ``Cls`` instance pickles as.

    ``key`` names the object in the process that made the reference (see
    ``runtime._refs``); ``kind`` is ``"function"``, ``"cls"`` or ``"instance"``.
    A method of a class called on a worker adds ``method`` and, for a class
    constructed there (``Model(3).predict``), the pickled constructor arguments.
    """

    key: str
    kind: str
    label: str  # "app.name", for messages
    methods: tuple[str, ...] = ()  # the remote methods of a class
    method: str | None = None
    ctor: Payload | None = None  # (args, kwargs) of a class constructed on the worker


class Invoke(NamedTuple):
    """Worker → controller: start a call of ``ref`` (``.remote``, ``.map``, ``.spawn``...)."""

    request_id: int  # chosen by the worker, unique on its connection
    ref: FunctionRef
    chunks: tuple[Chunk, ...]
    n_inputs: int
    kind: str  # "call" (remote, spawn, remote_gen) or "map"
    generator: bool
    parent_call_id: int  # the call whose input made this one (-1: none known)


class CancelInvoke(NamedTuple):
    """Worker → controller: the worker no longer wants request ``request_id``'s outcomes."""

    request_id: int


class InvokeOutcomes(NamedTuple):
    """Controller → worker: outcomes of request ``request_id``, oldest first."""

    request_id: int
    outcomes: tuple[tuple[str, Any, Any], ...]


class InvokeRefused(NamedTuple):
    """Controller → worker: the call could not start; ``error`` says why (no outcome follows)."""

    request_id: int
    error: Failure


def chunk_size(n_inputs: int) -> int:
    """Inputs per chunk of a map made on a worker: ~64 chunks, at most 1024 inputs each.

    The worker does not know how large the target's pool may grow; 64 chunks keep
    every worker of a large pool busy and the per-chunk overhead small.

    >>> chunk_size(10), chunk_size(10_000), chunk_size(10**7)
    (1, 157, 1024)
    """
    return max(1, min(1024, -(-n_inputs // 64)))


def chunk_columns(
    columns: tuple[Sequence[Any], ...] | list[tuple[Any, ...]],
    kwargs: dict[str, Any],
    size: int,
) -> list[Chunk]:
    """Pickle inputs ``size`` at a time: a tuple of columns (map) or a list of rows.

    Raises whatever pickling raises; the caller names the culprit.

    >>> [(first, n) for first, _, n in chunk_columns(([1, 2, 3],), {}, 2)]
    [(0, 2), (2, 1)]
    """
    n = (len(columns[0]) if columns else 0) if isinstance(columns, tuple) else len(columns)
    chunks: list[Chunk] = []
    for first in range(0, n, size):
        stop = min(first + size, n)
        if isinstance(columns, tuple):
            data: Any = tuple(list(c[first:stop]) for c in columns)
        else:
            data = list(columns[first:stop])
        chunks.append((first, dumps((data, kwargs)), stop - first))
    return chunks
