"""Turning a call's outcomes into values, exceptions and iterators, sync and async.

One code path per consumer shape: a single result (``.remote``, ``.get``),
a stream of values in order or as completed (``.map``), and yielded values
(``.remote_gen``). Ctrl-C or leaving an iterator early cancels the call.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import AsyncIterator, Callable, Generator, Iterator
from typing import Any, TypeVar

from ..controller import END, ERR, OK, YIELD, CallState, Outcome, loop_thread
from ..exceptions import CallCancelledError, OutputExpiredError
from ..protocol import loads
from ._pickling import load_values, rebuild_exception
from ._progress import Progress

__all__ = [
    "MapCall",
    "MapReader",
    "aiter_generator",
    "await_result",
    "cancel",
    "iter_generator",
    "wait_result",
]

T_co = TypeVar("T_co", covariant=True)


def cancel(call: CallState) -> None:
    """Cancel from any thread: drop queued inputs, interrupt running ones."""
    loop_thread().call_soon(call.pool.cancel, call)


def _what(call: CallState) -> Callable[[], str]:
    return lambda: f"{call.fdef.name}()"


class _Single:
    """Reduces outcomes to the first input's result (or error); kept by a ``FunctionCall``.

    Outcomes are taken from the channel once, so whatever waits on a call more
    than once (``FunctionCall.get``) feeds the same ``_Single``: what arrived
    stays, and an outcome that did not arrive yet can still be waited for.
    """

    def __init__(self, call: CallState) -> None:
        self.call = call
        self.done = False
        self.value: Any = None
        self.error: BaseException | None = None

    def feed(self, outcomes: list[Outcome]) -> None:
        for kind, a, b in outcomes:
            if self.done:
                return
            if kind == OK:
                pos = 0 if type(a) is range else a[0][0]
                try:
                    values, errors = load_values(b, a, _what(self.call))
                    self.value = values[pos]
                    self.error = errors[0] if errors else None
                except Exception as exc:  # a result payload that does not load at all
                    self.error = exc
                self.done = True
            elif kind == ERR:
                self.error = rebuild_exception(b, self.call.source_file)
                self.done = True
            elif kind == END:
                self.error = CallCancelledError(
                    f"the call of {self.call.fdef.name}() was cancelled"
                )
                self.done = True

    def result(self) -> Any:
        if self.error is not None:
            raise self.error
        return self.value

    def expired(self, timeout: float) -> OutputExpiredError:
        return OutputExpiredError(
            f"{self.call.fdef.name}() has not finished after {timeout:g}s; call .get() again "
            "to keep waiting, or .cancel() it"
        )


def wait_result(
    call: CallState, timeout: float | None = None, single: _Single | None = None
) -> Any:
    """Block until the call's single result is in; Ctrl-C cancels the call.

    ``timeout=0`` polls: an outcome already in is returned, else
    ``OutputExpiredError`` at once. Pass the call's ``_Single`` to wait again later.
    """
    single = _Single(call) if single is None else single
    deadline = None if timeout is None else time.monotonic() + timeout
    try:
        while not single.done:
            left = None if deadline is None else max(0.0, deadline - time.monotonic())
            single.feed(call.channel.take(left))
            if left == 0 and not single.done and timeout is not None:
                raise single.expired(timeout)
    except KeyboardInterrupt:
        cancel(call)
        raise
    return single.result()


async def await_result(
    call: CallState, timeout: float | None = None, single: _Single | None = None
) -> Any:
    """``wait_result`` for async code: cancelling the awaiting task cancels the call."""
    single = _Single(call) if single is None else single
    try:
        async with asyncio.timeout(timeout):
            while not single.done:
                # atake returns at once when outcomes are in: timeout=0 polls.
                single.feed(await call.channel.atake())
    except TimeoutError:
        if timeout is None or single.done:
            raise
        raise single.expired(timeout) from None
    except BaseException:
        if not single.done:
            cancel(call)
        raise
    return single.result()


class MapReader:
    """Outcomes of a map call as values, in input order or as completed.

    Results arrive a chunk at a time (the values of a run of consecutive inputs,
    or of scattered ones after retries); in order, chunks that come early wait in
    ``pending`` under their first index, and whole chunks are appended to the
    output once the inputs before them are in.
    """

    def __init__(
        self, call: CallState, order: bool, return_exceptions: bool, progress: Progress | None
    ) -> None:
        self.call = call
        self.order = order
        self.return_exceptions = return_exceptions
        self.progress = progress
        self.next_index = 0
        self.pending: dict[int, list[Any]] = {}  # first index -> values of consecutive inputs
        self.ended = False

    def feed(self, outcomes: list[Outcome]) -> list[Any]:
        out: list[Any] = []
        order = self.order
        for kind, a, b in outcomes:
            if kind == OK:
                values, errors = load_values(b, a, _what(self.call))
                if errors and not self.return_exceptions:  # only its input failed: as an ERR
                    cancel(self.call)
                    raise errors[0]
                if type(a) is range:  # values of inputs a.start .. a.stop-1
                    if not order:
                        out += values
                    elif a.start == self.next_index:
                        out += values
                        self.next_index = a.stop
                    else:
                        self.pending[a.start] = values
                else:  # [(position in values, index), ...]
                    for pos, index in a:
                        self._ready(out, index, [values[pos]])
            elif kind == ERR:
                exc = rebuild_exception(b, self.call.source_file)
                if not self.return_exceptions:
                    cancel(self.call)
                    raise exc
                self._ready(out, int(a), [exc])
            elif kind == END:
                self.ended = True
        if self.progress is not None:
            self.progress.update(self.call)
        pending = self.pending
        if order and pending:
            # Each input arrives exactly once, so a chunk that continues the output
            # starts exactly at next_index.
            while self.next_index in pending:
                chunk = pending.pop(self.next_index)
                out += chunk
                self.next_index += len(chunk)
        return out

    def _ready(self, out: list[Any], index: int, values: list[Any]) -> None:
        if not self.order:
            out += values
        elif index == self.next_index:
            out += values
            self.next_index += 1
        else:
            self.pending[index] = values

    def finish(self) -> None:
        if self.progress is not None:
            self.progress.close(self.call)
        if self.call.cancelled and self.next_index < self.call.n_inputs and self.order:
            raise CallCancelledError(f"the map over {self.call.fdef.name}() was cancelled")

    def __iter__(self) -> Iterator[Any]:
        """Values one by one, flattened in C from the lists ``chunks`` yields."""
        return itertools.chain.from_iterable(self.chunks())

    def chunks(self) -> Generator[list[Any], None, None]:
        """Lists of values, as they become ready; leaving early cancels the call."""
        try:
            while not self.ended:
                values = self.feed(self.call.channel.take())
                if values:
                    yield values
            self.finish()
        finally:
            if not self.call.finished:
                cancel(self.call)
            if self.progress is not None:
                self.progress.close(self.call)

    async def __aiter__(self) -> AsyncIterator[Any]:
        try:
            while not self.ended:
                for value in self.feed(await self.call.channel.atake()):
                    yield value
            self.finish()
        finally:
            if not self.call.finished:
                cancel(self.call)
            if self.progress is not None:
                self.progress.close(self.call)


class MapCall(Iterator[T_co]):
    """What ``.map`` / ``.starmap`` return: an iterator of results, plus the call's handles."""

    def __init__(self, reader: MapReader) -> None:
        self._reader = reader
        self._chunks = reader.chunks()
        self._it = itertools.chain.from_iterable(self._chunks)

    def __iter__(self) -> Iterator[T_co]:
        # The flattening iterator itself (shared state with ``next(self)``): ``list(f.map(xs))``
        # and ``for`` loops then take each value without a Python call per value.
        return self._it

    def __next__(self) -> T_co:
        value: T_co = next(self._it)
        return value

    @property
    def object_id(self) -> str:
        return self._reader.call.object_id

    def logs(self) -> str:
        """What the inputs printed so far, in arrival order: at most the last ``log_lines``.

        Lines past the setting ``log_lines`` (env ``JUPYTER_REMOTE_LOG_LINES``, default
        10,000) are dropped from the front, and a first line then says how many.
        """
        return self._reader.call.logs.text()

    def cancel(self) -> None:
        cancel(self._reader.call)

    def close(self) -> None:
        """Stop iterating; the remaining inputs are cancelled."""
        self._chunks.close()


class _Yields:
    """Reduces a generator call's outcomes to its values, its error and its end."""

    def __init__(self, call: CallState) -> None:
        self.call = call
        self._error: BaseException | None = None

    def feed(self, outcomes: list[Outcome]) -> tuple[list[Any], bool]:
        """The values in ``outcomes`` and whether the generator ended with them.

        Raises what the generator raised, or ``CallCancelledError`` if the call
        was cancelled, once the values before it are handed over: call it with
        the outcomes, yield the values, then ``end()``.
        """
        values: list[Any] = []
        for kind, _, b in outcomes:
            if kind == YIELD:
                values.append(loads(b))
            elif kind == ERR:
                self._error = rebuild_exception(b, self.call.source_file)
                return values, True
            elif kind == END:
                if self.call.cancelled:
                    self._error = CallCancelledError(f"{self.call.fdef.name}() was cancelled")
                return values, True
        return values, False

    def end(self) -> None:
        """After the values of the last ``feed``: raise the generator's error, if any."""
        if self._error is not None:
            raise self._error


def iter_generator(call: CallState) -> Iterator[Any]:
    """Values a remote generator yields, as they are yielded."""
    reader = _Yields(call)
    try:
        while True:
            values, ended = reader.feed(call.channel.take())
            yield from values
            if ended:
                reader.end()
                return
    finally:
        if not call.finished:
            cancel(call)


async def aiter_generator(call: CallState) -> AsyncIterator[Any]:
    """``iter_generator`` for async code."""
    reader = _Yields(call)
    try:
        while True:
            values, ended = reader.feed(await call.channel.atake())
            for value in values:
                yield value
            if ended:
                reader.end()
                return
    finally:
        if not call.finished:
            cancel(call)
