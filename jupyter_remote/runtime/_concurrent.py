"""Inputs that run at once on one worker: coroutines on one event loop, sync code in threads.

A definition's inputs run here when its function (or method) is ``async`` or
when it takes several inputs at once (``@concurrent(max_inputs=N)``); plain sync
functions with one input at a time stay on the main thread (``_worker``), with no
cost added per input.

Each input takes one of the definition's ``max_inputs`` slots to start (so
``max_inputs=1`` runs them one by one) and gives it back when it ends. Async
inputs are started by the event loop (a thread started on first use, kept running
between inputs so background tasks live on, as in Modal): a batch waits there
until slots are free, and an input that ends starts the next one, so a batch of
async inputs costs no thread switch per input. Sync inputs are started by the
worker's main thread, which waits for a slot, in the definition's thread pool.
Each input sets its output tag and its ids in its own context (``INPUT_TAG``,
``CALL_REF``). Finished inputs of a batch are reported together: when the batch
is done, else by the watchdog every ``PARTIAL_RESULTS_EVERY``
(:meth:`Runner.flush_due`).

Cancelling a call cancels its running tasks (``CancelledError`` in the coroutine)
and interrupts its running threads with ``KeyboardInterrupt`` at their next Python
instruction (a blocking C call finishes first). A timeout is handled as for inputs
run one by one: the worker reports the input and exits, and the controller runs the
others elsewhere (:meth:`Runner.overdue`).
"""

from __future__ import annotations

import contextvars
import ctypes
import inspect
import threading
import time
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any, TypeVar

from ..protocol import Failure, RunBatch, failure_from_exception
from ._capture import INPUT_TAG
from ._context import CALL_REF

if TYPE_CHECKING:
    import asyncio  # imported on first async use: a worker of sync functions starts without it

    from ._worker import Worker

__all__ = ["Runner", "is_async"]

T = TypeVar("T")
_CANCELLED = object()  # the outcome of an input whose call was cancelled


def _nothing() -> None:
    pass


def _no_args(off: int) -> tuple[Any, ...]:
    return ()


def is_async(target: Callable[..., Any]) -> bool:
    """Whether calling ``target`` gives a coroutine or an async generator to run on the loop."""
    return inspect.iscoroutinefunction(target) or inspect.isasyncgenfunction(target)


class _BatchRun:
    """A batch whose inputs were handed to the runner: their outcomes until reported."""

    def __init__(self, batch: RunBatch, failures: list[tuple[int, Failure]]) -> None:
        self.batch = batch
        self.lock = threading.Lock()  # held while reporting, so reports leave in order
        self.outstanding = 0  # inputs started and not finished
        self.admitted_all = False
        self.values: list[tuple[int, Any]] = []
        self.failures = failures
        self.cancelled: list[int] = []
        # What the loop needs to start the async inputs not started yet (loop thread only).
        self.pending: deque[int] = deque()
        self.target: Callable[..., Any] = _nothing
        self.args_of: Callable[[int], tuple[Any, ...]] = _no_args
        self.kwargs: dict[str, Any] = {}
        self.slots: threading.Semaphore | None = None


class _Active:
    """One running input."""

    __slots__ = ("interrupted", "interruptible", "off", "run", "started", "task", "thread")

    def __init__(self, run: _BatchRun, off: int) -> None:
        self.run = run
        self.off = off
        self.started = time.monotonic()
        self.task: asyncio.Task[None] | None = None
        self.thread = 0  # ident of the thread running a sync input
        self.interruptible = False  # a sync input is in user code
        self.interrupted = False


class Runner:
    """Runs the inputs of async or concurrent definitions for a :class:`Worker`."""

    def __init__(self, worker: Worker) -> None:
        self._worker = worker
        self._loop: asyncio.AbstractEventLoop | None = None
        self._lock = threading.Lock()
        self._idle = threading.Condition(self._lock)
        self._active: dict[tuple[int, int], _Active] = {}  # (batch_id, offset) -> input
        self._runs: dict[int, _BatchRun] = {}  # batch_id -> batch with unreported outcomes
        self._pools: dict[int, ThreadPoolExecutor] = {}  # id(slots) -> that definition's pool
        self._waiting: list[_BatchRun] = []  # async batches with inputs to start (loop only)
        self._flushed_at = time.monotonic()

    # -- the event loop ------------------------------------------------------------

    def loop(self) -> asyncio.AbstractEventLoop:
        """The worker's event loop, started on first use (only the main thread calls this)."""
        if self._loop is None:
            import asyncio

            loop = asyncio.new_event_loop()
            thread = threading.Thread(target=self._serve_loop, args=(loop,), name="jr-loop")
            thread.daemon = True
            thread.start()
            self._loop = loop
        return self._loop

    @staticmethod
    def _serve_loop(loop: asyncio.AbstractEventLoop) -> None:
        import asyncio

        asyncio.set_event_loop(loop)
        loop.run_forever()

    def call_hook(self, hook: Callable[[], Any]) -> Any:
        """Call ``hook`` (``@enter``, ``@exit``); an ``async`` one is awaited on the loop."""
        value = hook()
        if inspect.isawaitable(value):
            return self.wait(value)
        return value

    def wait(self, awaitable: Awaitable[T]) -> T:
        async def run() -> T:
            return await awaitable

        loop = self.loop()  # first: it imports asyncio
        import asyncio

        return asyncio.run_coroutine_threadsafe(run(), loop).result()

    # -- admitting inputs: sync ones here, on the main thread ---------------------

    def run_batch(
        self,
        batch: RunBatch,
        slots: threading.Semaphore,
        max_inputs: int,
        target: Callable[..., Any],
        offsets: Sequence[int],
        args_of: Callable[[int], tuple[Any, ...]],
        kwargs: dict[str, Any],
        failures: list[tuple[int, Failure]],
    ) -> None:
        """Run the inputs at ``offsets``; return once the sync ones have all started."""
        run = _BatchRun(batch, failures)
        with self._lock:
            self._runs[batch.batch_id] = run
        if is_async(target):
            run.pending.extend(offsets)
            run.target, run.args_of, run.kwargs, run.slots = target, args_of, kwargs, slots
            self.loop().call_soon_threadsafe(self._queue_async, run)
            return
        cancelled_calls = self._worker.cancelled_calls
        pool = self._pool(slots, max_inputs)
        for off in offsets:
            slots.acquire()
            if batch.call_id in cancelled_calls:
                slots.release()
                with run.lock:
                    run.cancelled.append(off)
                continue
            active = self._start(run, off)
            pool.submit(self._thread_input, active, target, args_of(off), kwargs, slots)
        self._admitted_all(run)

    def _start(self, run: _BatchRun, off: int) -> _Active:
        active = _Active(run, off)
        with self._lock:
            self._active[run.batch.batch_id, off] = active
        with run.lock:
            run.outstanding += 1
        return active

    def _admitted_all(self, run: _BatchRun) -> None:
        with run.lock:
            run.admitted_all = True
            if run.outstanding == 0:
                self._report(run, done=True)

    def released(self) -> None:
        """A slot was given back outside the loop: async batches waiting may start now."""
        if self._waiting and self._loop is not None:
            self._loop.call_soon_threadsafe(self._admit)

    # -- starting async inputs (loop thread) ---------------------------------------

    def _queue_async(self, run: _BatchRun) -> None:
        self._waiting.append(run)
        self._admit()

    def _admit(self) -> None:
        """Start the inputs of waiting async batches that free slots allow, in order."""
        import asyncio

        loop = asyncio.get_running_loop()
        cancelled_calls = self._worker.cancelled_calls
        for run in list(self._waiting):
            slots = run.slots
            assert slots is not None
            while run.pending:
                if run.batch.call_id in cancelled_calls:
                    with run.lock:
                        run.cancelled.extend(run.pending)
                    run.pending.clear()
                elif slots.acquire(blocking=False):
                    active = self._start(run, run.pending.popleft())
                    coro = self._task_input(
                        active, run.target, run.args_of(active.off), run.kwargs, slots
                    )
                    # A fresh context: not the one of the input whose end started this one.
                    active.task = loop.create_task(coro, context=contextvars.Context())
                else:
                    break
            if not run.pending:
                self._waiting.remove(run)
                self._admitted_all(run)

    def _pool(self, slots: threading.Semaphore, max_inputs: int) -> ThreadPoolExecutor:
        pool = self._pools.get(id(slots))
        if pool is None:
            pool = ThreadPoolExecutor(max_workers=max_inputs, thread_name_prefix="jr-input")
            self._pools[id(slots)] = pool
        return pool

    # -- running inputs ------------------------------------------------------------

    def _enter(self, active: _Active) -> None:
        """Mark this context as running ``active``: its output tag and its ids."""
        batch = active.run.batch
        tag = (batch.call_id, batch.first + active.off)
        INPUT_TAG.set(tag)
        CALL_REF.set(batch.call_ref)
        self._worker.output.tag = tag  # output below Python goes to the input started last

    async def _task_input(
        self,
        active: _Active,
        target: Callable[..., Any],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        slots: threading.Semaphore,
    ) -> None:
        import asyncio

        batch = active.run.batch
        self._enter(active)
        outcome: Any = _CANCELLED
        try:
            if batch.call_id not in self._worker.cancelled_calls:
                if batch.generator:
                    await self._async_generator(active, target, args, kwargs)
                    outcome = None
                else:
                    outcome = await target(*args, **kwargs)
        except asyncio.CancelledError as exc:
            if batch.call_id not in self._worker.cancelled_calls:
                outcome = failure_from_exception(exc, skip_frames=1)
        except BaseException as exc:
            outcome = failure_from_exception(exc, skip_frames=1)
        finally:
            slots.release()
            self._finish(active, outcome)
            if self._waiting:
                self._admit()

    async def _async_generator(
        self, active: _Active, target: Callable[..., Any], args: tuple[Any, ...], kwargs: Any
    ) -> None:
        gen = target(*args, **kwargs)
        if not inspect.isasyncgen(gen):
            raise TypeError(f"{getattr(target, '__name__', target)!r} is not a generator function")
        async for value in gen:
            self._worker.yielded(active.run.batch, active.off, value)

    def _thread_input(
        self,
        active: _Active,
        target: Callable[..., Any],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        slots: threading.Semaphore,
    ) -> None:
        batch = active.run.batch
        self._enter(active)
        active.thread = threading.get_ident()
        outcome: Any = _CANCELLED
        try:
            try:
                if batch.call_id not in self._worker.cancelled_calls:
                    with self._lock:
                        active.interruptible = True
                    try:
                        if batch.generator:
                            self._worker.run_generator(batch, active.off, target, args, kwargs)
                            outcome = None
                        else:
                            outcome = target(*args, **kwargs)
                    finally:
                        with self._lock:
                            active.interruptible = False
            except KeyboardInterrupt as exc:
                if batch.call_id not in self._worker.cancelled_calls:
                    outcome = failure_from_exception(exc, skip_frames=2)
            except BaseException as exc:
                outcome = failure_from_exception(exc, skip_frames=2)
        except KeyboardInterrupt:  # a cancel that arrived as the input returned
            outcome = _CANCELLED
        finally:
            slots.release()
            self._finish(active, outcome)
            self.released()

    def _finish(self, active: _Active, outcome: Any) -> None:
        run = active.run
        with self._lock:
            self._active.pop((run.batch.batch_id, active.off), None)
        with run.lock:
            if outcome is _CANCELLED:
                run.cancelled.append(active.off)
            elif isinstance(outcome, Failure):
                run.failures.append((active.off, outcome))
            else:
                run.values.append((active.off, outcome))
            run.outstanding -= 1
            if run.admitted_all and run.outstanding == 0:
                self._report(run, done=True)

    def _report(self, run: _BatchRun, *, done: bool) -> None:
        """Send the outcomes ``run`` holds (caller holds ``run.lock``)."""
        if not done and not (run.values or run.failures or run.cancelled):
            return
        run.values.sort(key=lambda pair: pair[0])
        ok = [off for off, _ in run.values]
        values = [value for _, value in run.values]
        failures, cancelled = run.failures, run.cancelled
        run.values, run.failures, run.cancelled = [], [], []
        if done:
            with self._lock:
                self._runs.pop(run.batch.batch_id, None)
                self._idle.notify_all()
        self._worker.send_results(run.batch.batch_id, ok, values, failures, cancelled, done=done)

    # -- for the reader and the watchdog ------------------------------------------

    def cancel(self, call_id: int) -> None:
        """Cancel the running inputs of a call (its queued ones see ``cancelled_calls``)."""
        with self._lock:
            hits = [a for a in self._active.values() if a.run.batch.call_id == call_id]
            for active in hits:
                if active.interruptible and not active.interrupted:
                    active.interrupted = True  # once: a second one could land in our code
                    ctypes.pythonapi.PyThreadState_SetAsyncExc(
                        ctypes.c_ulong(active.thread), ctypes.py_object(KeyboardInterrupt)
                    )
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._cancel_tasks, call_id)

    def _cancel_tasks(self, call_id: int) -> None:
        with self._lock:
            hits = [a for a in self._active.values() if a.run.batch.call_id == call_id]
        for active in hits:
            if active.task is not None:
                active.task.cancel()

    def overdue(self, now: float) -> tuple[int, int, float] | None:
        """``(batch_id, offset, elapsed)`` of a running input past its timeout, if any."""
        if not self._active:
            return None
        with self._lock:
            for (batch_id, off), active in self._active.items():
                limit = active.run.batch.timeout
                if limit and now - active.started > limit:
                    return batch_id, off, now - active.started
        return None

    def flush_due(self, now: float, every: float) -> None:
        """Report finished inputs of batches still running, at most every ``every`` s."""
        if not self._runs or now - self._flushed_at < every:
            return
        self.flush_all()
        self._flushed_at = now

    def flush_all(self) -> None:
        with self._lock:
            runs = list(self._runs.values())
        for run in runs:
            with run.lock:
                if run.batch.batch_id in self._runs:
                    self._report(run, done=False)

    def drain(self) -> None:
        """Wait until every input handed to the runner has finished and been reported."""
        with self._idle:
            while self._runs:
                self._idle.wait(0.1)
