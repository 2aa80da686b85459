"""Which input is running: ``current_input_id()`` and ``current_function_call_id()``.

Modal's names and shapes (``in-...``, ``fc-...``), built from our ids: the call id
is the caller's ``FunctionCall.object_id``. Inputs that run concurrently (tasks on
the worker's event loop, threads) each set :data:`CALL_REF` and the output tag in
their own context; inputs run one by one on the main thread set nothing (no cost
per input) and are found through :data:`sequential`, which the worker installs.
"""

from __future__ import annotations

from collections.abc import Callable
from contextvars import ContextVar

from ..protocol import input_object_id
from ._capture import INPUT_TAG

__all__ = ["CALL_REF", "current_function_call_id", "current_input_id", "set_sequential"]

# The call object id of the input running in this context (concurrent inputs only).
CALL_REF: ContextVar[str] = ContextVar("jupyter_remote_call_ref")


def _nothing() -> tuple[str, int] | None:
    return None


# ``(call_ref, index)`` of the input the worker's main thread runs now, else None.
_sequential: Callable[[], tuple[str, int] | None] = _nothing


def set_sequential(find: Callable[[], tuple[str, int] | None]) -> None:
    global _sequential
    _sequential = find


def _running() -> tuple[str, int] | None:
    ref = CALL_REF.get(None)
    if ref is not None:
        return ref, INPUT_TAG.get((-1, -1))[1]
    return _sequential()


def current_input_id() -> str | None:
    """The id of the input running here (``"in-..."``), or None outside one.

    >>> import jupyter_remote as jr
    >>> jr.current_input_id() is None   # in the caller, no input runs
    True
    """
    running = _running()
    return None if running is None else input_object_id(*running)


def current_function_call_id() -> str | None:
    """The id of the call of the input running here (its ``FunctionCall.object_id``), or None.

    >>> import jupyter_remote as jr
    >>> jr.current_function_call_id() is None
    True
    """
    running = _running()
    return None if running is None else running[0]
