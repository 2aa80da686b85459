"""``FunctionCall``: a handle on a spawned call (Modal's ``FunctionCall``)."""

from __future__ import annotations

from typing import Any, Generic, TypeVar

from ..controller import CallState
from ._results import await_result, cancel, wait_result

__all__ = ["FunctionCall"]

T = TypeVar("T")
_MISSING = object()


class _Get(Generic[T]):
    def __init__(self, fc: FunctionCall[T]) -> None:
        self._fc = fc

    def __call__(self, timeout: float | None = None) -> T:
        """Wait for the result; ``OutputExpiredError`` (a ``TimeoutError``) after ``timeout`` s."""
        fc = self._fc
        if fc._result is _MISSING:
            try:
                fc._result = wait_result(fc._call, timeout)
            except TimeoutError:
                raise
            except BaseException as exc:
                fc._result, fc._error = None, exc
        if fc._error is not None:
            raise fc._error
        value: T = fc._result
        return value

    async def aio(self) -> T:
        fc = self._fc
        if fc._result is _MISSING:
            try:
                fc._result = await await_result(fc._call)
            except BaseException as exc:
                fc._result, fc._error = None, exc
        if fc._error is not None:
            raise fc._error
        value: T = fc._result
        return value


class FunctionCall(Generic[T]):
    """A running or finished call, from ``f.spawn(...)``.

    >>> call = square.spawn(5)      # doctest: +SKIP
    >>> call.get(timeout=30)        # doctest: +SKIP
    25
    """

    def __init__(self, call: CallState) -> None:
        self._call = call
        self._result: Any = _MISSING
        self._error: BaseException | None = None
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
        """Everything the call printed so far (stdout and stderr, in arrival order)."""
        return "".join(line.text for line in list(self._call.logs))

    @staticmethod
    def gather(*calls: FunctionCall[Any]) -> list[Any]:
        """Wait for every call; results in order (the first error is raised)."""
        return [c.get() for c in calls]
