"""``FunctionCall``: a handle on a spawned call (Modal's ``FunctionCall``)."""

from __future__ import annotations

from typing import Any, Generic, TypeVar

from ..controller import CallState
from ._results import _Single, await_result, cancel, wait_result

__all__ = ["FunctionCall"]

T = TypeVar("T")


class _Get(Generic[T]):
    def __init__(self, fc: FunctionCall[T]) -> None:
        self._fc = fc

    def __call__(self, timeout: float | None = None) -> T:
        """Wait for the result; ``OutputExpiredError`` (a ``TimeoutError``) after ``timeout`` s.

        ``timeout=0`` polls: the result if it is in, else ``OutputExpiredError`` at
        once. A get that timed out or was interrupted (Ctrl-C, which also cancels
        the call) leaves nothing behind: the next one waits again. The result, or
        the error the call ended with, is kept and returned by every later get.
        """
        value: T = wait_result(self._fc._call, timeout, self._fc._single)
        return value

    async def aio(self, timeout: float | None = None) -> T:
        """``get`` for async code, with the same ``timeout``; cancelling it cancels the call."""
        value: T = await await_result(self._fc._call, timeout, self._fc._single)
        return value


class FunctionCall(Generic[T]):
    """A running or finished call, from ``f.spawn(...)``.

    >>> call = square.spawn(5)      # doctest: +SKIP
    >>> call.get(timeout=30)        # doctest: +SKIP
    25
    """

    def __init__(self, call: CallState) -> None:
        self._call = call
        self._single = _Single(call)  # the outcome, once taken from the call's channel
        self.get: _Get[T] = _Get(self)

    @property
    def object_id(self) -> str:
        return self._call.object_id

    def __repr__(self) -> str:
        state = "done" if self._call.finished else "running"
        return f"<FunctionCall {self.object_id} {self._call.fdef.name} {state}>"

    def cancel(self) -> None:
        """Drop queued inputs and interrupt running ones (``KeyboardInterrupt`` remotely)."""
        cancel(self._call)

    def logs(self) -> str:
        """What the call printed so far (stdout and stderr, in arrival order).

        At most the last ``log_lines`` lines (setting, env ``JUPYTER_REMOTE_LOG_LINES``,
        default 10,000) are kept; when earlier ones were dropped, a first line says how many.
        """
        return self._call.logs.text()

    @staticmethod
    def from_id(object_id: str) -> Any:
        """A call spawned from a deployed function, in any process: ``.get()`` its result.

        >>> call = jr.Function.from_name("shop", "square").spawn(4)   # doctest: +SKIP
        >>> jr.FunctionCall.from_id(call.object_id).get()             # doctest: +SKIP
        16
        """
        from ._deploy import DeployedCall

        return DeployedCall(object_id)

    @staticmethod
    def gather(*calls: FunctionCall[Any]) -> list[Any]:
        """Wait for every call; results in order (the first error is raised)."""
        return [c.get() for c in calls]
