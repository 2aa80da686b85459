"""The messages between controller and worker.

The connection opens with the handshake of ``_handshake`` (no pickle is read
before both sides have proven they hold the session token), then carries frames
(see ``_framing``) each holding one of the messages below.

Controller → worker: ``RunBatch``, ``Cancel``, ``Ping``, ``Shutdown``.
Worker → controller: ``Results``, ``Yielded``, ``Output``, ``Event``, ``TimedOut``,
``Heartbeat``.
Calls that user code on a worker makes (``a.remote(x)`` there) have messages of
their own, in ``_invoke``.

A batch is a slice of one call's inputs ``first .. first+n-1``: ``args`` is a
payload of ``(data, kwargs)``, ``kwargs`` shared by every input and ``data``
either a tuple of columns (``.map``: input ``first+i`` is
``f(*(column[i] for column in data), **kwargs)``) or a list of rows
(``.starmap``, ``.remote``: ``f(*data[i], **kwargs)``). ``offsets`` selects
which of them to run (``None``: all), so a retry or a requeue after a worker
death re-sends the same payload with fewer offsets. ``Results.offsets`` is a
``range`` when several inputs that succeeded are consecutive.

A payload that ``loads`` refuses is read again input by input (``salvage``): only
the inputs holding something that cannot be rebuilt fail, as results do in the
caller.
"""

from __future__ import annotations

import os
from typing import NamedTuple

from ._serialization import Failure, Payload

__all__ = [
    "ENTER_MARK",
    "EXIT_MARK",
    "METHOD_MARK",
    "Cancel",
    "Event",
    "FunctionDef",
    "Heartbeat",
    "Output",
    "Ping",
    "Results",
    "RunBatch",
    "Shutdown",
    "TimedOut",
    "Yielded",
    "input_object_id",
    "new_token",
]


class FunctionDef(NamedTuple):
    """What a worker runs: a function, or a class with constructor arguments."""

    hash: str
    payload: Payload  # cloudpickle of the function, or of (cls, args, kwargs)
    kind: str  # "function" | "class"
    name: str
    # Environment set before the function loads: resolved Secret values. They travel
    # only over this authenticated channel, never in a job spec, argv or log.
    env: tuple[tuple[str, str], ...] = ()
    # How many inputs one worker runs at once (``@concurrent(max_inputs=)``; 1: one by one).
    max_inputs: int = 1

    def __repr__(self) -> str:
        keys = ", ".join(k for k, _ in self.env)
        return f"FunctionDef({self.name!r}, {self.kind}, {self.hash[:12]}, env keys=[{keys}])"


class RunBatch(NamedTuple):
    batch_id: int
    call_id: int
    function_hash: str
    function: FunctionDef | None  # sent with the first batch a worker gets for this hash
    method: str | None  # method name for classes
    first: int  # index of the payload's first input within the call
    args: Payload
    offsets: tuple[int, ...] | None
    timeout: float | None
    generator: bool
    size: int = 0  # inputs in ``args``: all of them fail if no input can be told apart
    call_ref: str = ""  # the call's object id (``fc-...``): ``current_function_call_id()``


class Cancel(NamedTuple):
    call_id: int


class Ping(NamedTuple):
    pass


class Shutdown(NamedTuple):
    pass


class Results(NamedTuple):
    """Outcomes of some inputs of a batch; ``done`` marks the batch's last message."""

    batch_id: int
    offsets: tuple[int, ...] | range  # offsets that succeeded, in the order of values
    values: Payload | None  # a pickled list of their results
    failures: tuple[tuple[int, Failure], ...]
    cancelled: tuple[int, ...]
    done: bool


class Yielded(NamedTuple):
    batch_id: int
    offset: int
    value: Payload


class Output(NamedTuple):
    """Captured stdout/stderr: ``(call_id, index, stream, text)`` with stream 1 or 2."""

    items: tuple[tuple[int, int, int, str], ...]


class TimedOut(NamedTuple):
    batch_id: int
    offset: int
    elapsed: float


class Event(NamedTuple):
    """Structured output of an input, e.g. ``("display", {...})`` from a remote notebook cell."""

    call_id: int
    input_index: int
    kind: str
    data: Payload


class Heartbeat(NamedTuple):
    pass


# Attributes that ``@enter``, ``@exit`` and ``@method`` set on methods of a class.
ENTER_MARK = "__jupyter_remote_enter__"
EXIT_MARK = "__jupyter_remote_exit__"
METHOD_MARK = "__jupyter_remote_method__"


def input_object_id(call_ref: str, index: int) -> str:
    """The id of input ``index`` of the call whose object id is ``call_ref``.

    Shaped like Modal's (``fc-...`` for a call, ``in-...`` for an input) from our own ids:

    >>> input_object_id("fc-1f2e-7", 3)
    'in-1f2e-7-3'
    """
    return f"in-{call_ref.removeprefix('fc-')}-{index}"


def new_token() -> str:
    """A fresh per-session secret (64 hex characters)."""
    return os.urandom(32).hex()
