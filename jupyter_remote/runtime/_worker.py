"""The worker: connects to the controller, runs batches of inputs, streams results back.

Threads:

- the **main thread** runs user code (so signals, ``KeyboardInterrupt`` and
  libraries that insist on the main thread behave as they do locally);
- the **reader** receives frames; it queues batches for the main thread,
  handles ``Cancel`` (raising ``KeyboardInterrupt`` in the running input, and
  cancelling the calls that input made), files the outcomes of calls user code
  made (``a.remote`` on a worker, see ``_client``) under their request, and
  exits the process when the controller goes away (the dead-man switch);
- the **watchdog** flushes captured output, sends heartbeats, enforces
  per-input timeouts by reporting the input and exiting (the controller
  replaces the worker), and tells the main thread when a slow batch's
  partial results are due. The main thread's loop over inputs reads no clock.

Inputs of ``async`` functions, and of definitions that take several inputs at
once (``@concurrent``), run on the worker's event loop (a thread of its own) or
in a thread pool, and the main thread goes back to its inbox: see ``_concurrent``.
"""

from __future__ import annotations

import contextlib
import inspect
import itertools
import os
import queue
import signal
import socket
import sys
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

from ..protocol import (
    ENTER_MARK,
    EXIT_MARK,
    Cancel,
    Event,
    Failure,
    FrameDecoder,
    FunctionDef,
    Heartbeat,
    InvokeOutcomes,
    InvokeRefused,
    Output,
    Ping,
    Results,
    RunBatch,
    Shutdown,
    TimedOut,
    Yielded,
    dumps,
    encode_frame,
    failure_from_exception,
    loads,
    safe_str,
    salvage,
)
from ._capture import INPUT_TAG, CaptureStream, FdCapture, OutputBuffer
from ._client import Client
from ._concurrent import Runner, is_async
from ._context import set_sequential
from ._params import construct

__all__ = ["EXIT_TIMEOUT", "Worker", "emit"]

EXIT_TIMEOUT = 75  # exit status of a worker that stopped a timed-out input
HEARTBEAT_EVERY = 2.0
OUTPUT_EVERY = 0.03
PARTIAL_RESULTS_EVERY = 0.1


class _Loaded:
    """A function definition as the worker runs it."""

    def __init__(self, fdef: FunctionDef, call_hook: Callable[[Callable[[], Any]], Any]) -> None:
        self.kind = fdef.kind
        self.name = fdef.name
        self.obj: Any = None
        self._payload = fdef.payload
        self.entered = False
        self._call_hook = call_hook  # awaits async hooks on the worker's loop
        self.max_inputs = fdef.max_inputs
        # One slot per input that may run at once. Once some of its inputs ran in the Runner
        # (``shared``), the main thread holds one while it runs a batch itself, so a class
        # with sync and async methods never runs more; a plain sync function never pays it.
        self.slots = threading.Semaphore(fdef.max_inputs)
        self.shared = False
        self._concurrent: dict[str | None, bool] = {}
        os.environ.update(dict(fdef.env))  # secrets: visible to the user code, as env vars

    def target(self, method: str | None) -> Callable[..., Any]:
        if self.obj is None:
            loaded = loads(self._payload)
            if self.kind == "class":
                cls, args, kwargs = loaded
                self.obj = construct(cls, args, kwargs)
            else:
                self.obj = loaded
        if self.kind == "class":
            if not self.entered:
                for hook in _marked(self.obj, ENTER_MARK):
                    self._call_hook(hook)
                self.entered = True
            return getattr(self.obj, method or "__call__")  # type: ignore[no-any-return]
        return self.obj  # type: ignore[no-any-return]

    def exit(self) -> None:
        if self.kind == "class" and self.entered:
            for hook in _marked(self.obj, EXIT_MARK):
                self._call_hook(hook)

    def concurrent(self, method: str | None, target: Callable[..., Any]) -> bool:
        """Whether inputs of ``method`` run in the :class:`Runner` (async, or several at once)."""
        known = self._concurrent.get(method)
        if known is None:
            known = self._concurrent[method] = self.max_inputs > 1 or is_async(target)
        return known


def _marked(obj: Any, mark: str) -> list[Callable[[], Any]]:
    hooks = []
    for name in dir(type(obj)):
        attr = getattr(type(obj), name, None)
        if callable(attr) and getattr(attr, mark, False):
            hooks.append(getattr(obj, name))
    return hooks


def _count(data: Any) -> int:
    """How many inputs a batch's ``data`` holds (columns: their length; rows: their number)."""
    if isinstance(data, tuple):
        return len(data[0]) if data else 0
    return len(data)


def increasing(offsets: Sequence[int]) -> Sequence[int]:
    """A batch's offsets in increasing order, each once (as the controller sends them)."""
    if all(a < b for a, b in itertools.pairwise(offsets)):
        return offsets
    return sorted(set(offsets))


def compact_offsets(offsets: Sequence[int]) -> tuple[int, ...] | range:
    """Increasing ``offsets`` as a ``range`` when there are several consecutive ones.

    Each offset appears once, so a look at both ends suffices. The controller
    marks the inputs of a range done in one step; a single offset stays a tuple,
    which is quicker to encode and decode (the ``.remote`` round trip).
    """
    n = len(offsets)
    if n > 1 and offsets[-1] - offsets[0] == n - 1:
        return range(offsets[0], offsets[0] + n)
    return tuple(offsets)


_current: Worker | None = None


def emit(kind: str, data: Any) -> bool:
    """Send ``data`` (picklable) to the caller as an event of the running input.

    Returns False outside a worker (plain local execution), where nothing is sent.
    """
    if _current is None:
        return False
    _current.emit(kind, data)
    return True


def _kill_group_but_me() -> None:
    """SIGKILL the other members of the process group this worker leads (Linux ``/proc``).

    Not ``killpg``: that would kill this process too and hide its exit status. Two passes
    catch a child forked while the first one ran.
    """
    me, group = os.getpid(), os.getpgrp()
    for _ in range(2):
        with contextlib.suppress(OSError):
            for entry in os.listdir("/proc"):
                if not entry.isdigit() or int(entry) == me:
                    continue
                try:
                    with open(f"/proc/{entry}/stat", "rb") as fh:
                        stat = fh.read()
                    # Fields after the command name (which may hold spaces or parentheses).
                    if int(stat.rsplit(b")", 1)[1].split()[2]) == group:
                        os.kill(int(entry), signal.SIGKILL)
                except (OSError, ValueError, IndexError):
                    pass


class Worker:
    def __init__(self, sock: socket.socket, worker_id: str, dead_after: float) -> None:
        self.sock = sock
        self.worker_id = worker_id
        self.output = OutputBuffer()
        self._log_fd = 2
        self._fds: FdCapture | None = None
        self._dead_after = dead_after
        self._send_lock = threading.Lock()
        self._flush_lock = threading.Lock()
        self.client = Client(self.send)  # calls user code makes (``a.remote`` on a worker)
        self._inbox: queue.SimpleQueue[RunBatch | Shutdown] = queue.SimpleQueue()
        self._defs: dict[str, _Loaded] = {}
        self._cancelled: set[int] = set()
        self._last_rx = time.monotonic()
        # The batch now running, read by the reader and the watchdog; the input running is
        # the one ``output.tag`` names (a new tuple per input), while ``_interruptible``.
        self._running: RunBatch | None = None
        self._interruptible = False
        # Set by the watchdog when the running batch has results to report (partial results).
        self._results_due = False
        self._results_at = 0.0
        self._runner = Runner(self)

    @property
    def cancelled_calls(self) -> set[int]:
        return self._cancelled

    # -- plumbing ---------------------------------------------------------------

    def log(self, text: str) -> None:
        # Best effort: the log's reader may be gone with the caller (a closed pipe), and a
        # failed log must never keep the dead-man switch from exiting.
        with contextlib.suppress(OSError):
            os.write(self._log_fd, f"[worker {self.worker_id}] {text}\n".encode())

    def capture_process_output(self) -> None:
        """Send fds 1 and 2 (C code, subprocesses) to the caller; keep a log fd for ourselves."""
        self._fds = FdCapture(self.output, lambda exc: self.log(f"capture failed: {exc!r}"))
        self._log_fd = self._fds.log_fd

    def send(self, message: Any) -> None:
        chunks = encode_frame(message)
        with self._send_lock:
            for chunk in chunks:
                self.sock.sendall(chunk)

    def flush_output(self) -> None:
        # Taken and sent under one lock: a result sent after this call never overtakes
        # output another thread (the watchdog, a concurrent input) took just before.
        with self._flush_lock:
            items = self.output.take()
            if items:
                self.send(Output(items))
        if items:
            # A copy in the worker's own log (the backend's log file, Nomad's task logs):
            # the last lines explain a worker that dies, and `jupyter-remote logs` shows them.
            with contextlib.suppress(OSError):
                os.write(self._log_fd, "".join(text for *_, text in items).encode())

    def current_tag(self) -> tuple[int, int]:
        """``(call_id, index)`` of the input running in this context (or on the main thread)."""
        return INPUT_TAG.get(self.output.tag)

    def emit(self, kind: str, data: Any) -> None:
        """Send a structured event for the running input (after the output before it)."""
        call_id, index = self.current_tag()
        payload = dumps(data)
        self.flush_output()
        self.send(Event(call_id, index, kind, payload))

    def _die(self, why: str, status: int = 0) -> None:
        """Exit now. Status 0 means the controller is gone and nobody will stop what user
        code started: take the rest of our process group (the local backend's session)."""
        self.log(why)
        if status == 0 and os.getpgrp() == os.getpid():
            _kill_group_but_me()
        os._exit(status)

    def _reader(self) -> None:
        decoder = FrameDecoder()
        try:
            while True:
                n = self.sock.recv_into(decoder.get_buffer())
                if n == 0:
                    self._die("controller closed the connection; exiting")
                self._last_rx = time.monotonic()
                for msg in decoder.feed(n):
                    if isinstance(msg, RunBatch | Shutdown):
                        self._inbox.put(msg)
                    elif isinstance(msg, Cancel):
                        self._cancel(msg.call_id)
                    elif isinstance(msg, InvokeOutcomes | InvokeRefused):
                        self.client.deliver(msg)
                    elif not isinstance(msg, Ping):
                        self.log(f"ignoring unexpected message {type(msg).__name__}")
        except OSError as exc:
            self._die(f"connection to the controller lost ({exc}); exiting")
        except BaseException as exc:
            self._die(f"reader failed: {exc!r}; exiting", 1)

    def _cancel(self, call_id: int) -> None:
        self._cancelled.add(call_id)
        self._runner.cancel(call_id)
        self.client.cancel_children(call_id)  # the calls its inputs made are cancelled too
        running = self._running
        if running is not None and running[1] == call_id and self._interruptible:
            os.kill(os.getpid(), signal.SIGINT)

    def _on_sigint(self, signum: int, frame: Any) -> None:
        running = self._running
        if self._interruptible and running is not None and running[1] in self._cancelled:
            raise KeyboardInterrupt

    def _watchdog(self) -> None:
        last_beat = time.monotonic()
        # The input seen running (its output tag: the same object while it runs) and since
        # when: the main thread reads no clock per input, so timeouts are enforced from here,
        # at most one period late.
        seen: tuple[int, int] | None = None
        seen_at = 0.0
        # User code holding the GIL starves this thread and the reader alike: after such a
        # gap the reader gets its turn (and the controller's pings) before silence counts.
        awake = quiet_from = time.monotonic()
        while True:
            time.sleep(OUTPUT_EVERY)
            now = time.monotonic()
            if now - awake > 1.0:
                quiet_from = now
            awake = now
            try:
                running = self._running
                if running is not None and running.timeout and self._interruptible:
                    tag = self.output.tag
                    if tag is not seen:
                        seen, seen_at = tag, now
                    elif now - seen_at > running.timeout:
                        self.flush_output()
                        self.send(TimedOut(running.batch_id, tag[1] - running.first, now - seen_at))
                        self._die("input ran past its timeout; exiting", EXIT_TIMEOUT)
                else:
                    seen = None
                over = self._runner.overdue(now)
                if over is not None:
                    self._runner.flush_all()  # what finished is not run again elsewhere
                    self.flush_output()
                    self.send(TimedOut(*over))
                    self._die("input ran past its timeout; exiting", EXIT_TIMEOUT)
                if running is not None and now - self._results_at > PARTIAL_RESULTS_EVERY:
                    self._results_due = True
                self._runner.flush_due(now, PARTIAL_RESULTS_EVERY)
                self.flush_output()
                if now - last_beat > HEARTBEAT_EVERY:
                    self.send(Heartbeat())
                    last_beat = now
            except OSError as exc:
                self._die(f"connection to the controller lost ({exc}); exiting")
            if now - max(self._last_rx, quiet_from) > self._dead_after:
                self._die(f"no word from the controller for {self._dead_after:.0f}s; exiting")

    # -- running inputs --------------------------------------------------------

    def serve(self) -> None:
        global _current
        _current = self
        set_sequential(self._sequential_input)
        signal.signal(signal.SIGINT, self._on_sigint)
        signal.signal(signal.SIGTERM, lambda *_: self._inbox.put(Shutdown()))
        sys.stdout = CaptureStream(self.output, 1, "<stdout>")
        sys.stderr = CaptureStream(self.output, 2, "<stderr>")
        threading.Thread(target=self._reader, name="jr-reader", daemon=True).start()
        threading.Thread(target=self._watchdog, name="jr-watchdog", daemon=True).start()
        while True:
            msg = self._inbox.get()
            if isinstance(msg, Shutdown):
                break
            self._run_batch(msg)
        self._runner.drain()
        for loaded in self._defs.values():
            try:
                loaded.exit()
            except BaseException as exc:
                print(f"@exit hook of {loaded.name} failed: {exc!r}", file=sys.stderr)
        self.flush_output()

    def _run_batch(self, batch: RunBatch) -> None:
        if batch.function is not None and batch.function.hash not in self._defs:
            self._defs[batch.function.hash] = _Loaded(batch.function, self._runner.call_hook)
        data: Any = []
        kwargs: dict[str, Any] = {}
        unloadable: list[tuple[int, Failure]] = []
        target: Callable[..., Any]
        try:
            loaded = self._defs[batch.function_hash]
            try:
                data, kwargs = loads(batch.args)
            except BaseException as exc:
                # Some inputs cannot be rebuilt here: they fail, the rest of the batch runs.
                data, kwargs, unloadable = _salvage_inputs(batch, loaded.name, exc)
            target = loaded.target(batch.method)
        except BaseException as exc:
            # Loading the function, the arguments or running @enter failed: every input fails.
            fail = failure_from_exception(exc)
            every = batch.size or max(_count(data), 1)
            offs = batch.offsets if batch.offsets is not None else range(every)
            self.flush_output()
            self.send(Results(batch.batch_id, (), None, tuple((o, fail) for o in offs), (), True))
            return
        columns = isinstance(data, tuple)  # a tuple of columns (map), or a list of rows
        offsets = range(_count(data)) if batch.offsets is None else increasing(batch.offsets)
        if unloadable:
            skip = {off for off, _ in unloadable}
            offsets = [off for off in offsets if off not in skip]
        if loaded.concurrent(batch.method, target):
            loaded.shared = True

            def args_of(off: int) -> tuple[Any, ...]:
                return tuple(c[off] for c in data) if columns else tuple(data[off])

            self._runner.run_batch(
                batch, loaded.slots, loaded.max_inputs, target, offsets, args_of, kwargs, unloadable
            )
            return
        # The common map of one argument calls ``target(column[off])``, nothing more.
        fast = columns and len(data) == 1 and not kwargs and not batch.generator
        column = data[0] if fast else ()
        call_id = batch.call_id
        first = batch.first
        output = self.output
        cancelled_calls = self._cancelled
        values: list[Any] = []
        failures: list[tuple[int, Failure]] = unloadable
        cancelled: list[int] = []
        start = 0  # position in offsets of the first input not reported yet
        self._results_due = False
        self._results_at = time.monotonic()
        shared = loaded.shared  # only the main thread sets it: it cannot change in this batch
        if shared:
            loaded.slots.acquire()  # free unless async inputs of this class still run
        self._running = batch
        for pos, off in enumerate(offsets):
            if call_id in cancelled_calls:
                cancelled.append(off)
                continue
            output.tag = (call_id, first + off)
            try:
                self._interruptible = True
                try:
                    if fast:
                        value = target(column[off])
                    elif batch.generator:
                        args = tuple(c[off] for c in data) if columns else data[off]
                        self.run_generator(batch, off, target, args, kwargs)
                        value = None
                    elif columns:
                        value = target(*[c[off] for c in data], **kwargs)
                    else:
                        value = target(*data[off], **kwargs)
                finally:
                    self._interruptible = False
            except KeyboardInterrupt as exc:
                if call_id in cancelled_calls:
                    cancelled.append(off)
                else:
                    failures.append((off, failure_from_exception(exc, skip_frames=2)))
            except BaseException as exc:
                failures.append((off, failure_from_exception(exc, skip_frames=2)))
            else:
                values.append(value)
            if self._results_due:
                ran = offsets[start : pos + 1]
                self.send_results(batch.batch_id, ran, values, failures, cancelled)
                values, failures, cancelled = [], [], []
                start = pos + 1
        self._running = None
        if shared:
            loaded.slots.release()
            self._runner.released()
        # Late output (a subprocess's last lines) still belongs to the batch's last input.
        if self._fds is not None:
            self._fds.settle()
        self.send_results(batch.batch_id, offsets[start:], values, failures, cancelled, done=True)

    def _sequential_input(self) -> tuple[str, int] | None:
        """``(call_ref, index)`` of the input the main thread runs now (for ``_context``)."""
        running = self._running
        if running is None or not self._interruptible:
            return None
        return running.call_ref, self.output.tag[1]

    def yielded(self, batch: RunBatch, off: int, value: Any) -> None:
        """Send one value a generator input yielded (after the output before it)."""
        payload = dumps(value)
        self.flush_output()
        self.send(Yielded(batch.batch_id, off, payload))

    def run_generator(
        self,
        batch: RunBatch,
        off: int,
        target: Callable[..., Any],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
    ) -> None:
        gen = target(*args, **kwargs)
        if not inspect.isgenerator(gen):
            raise TypeError(f"{getattr(target, '__name__', target)!r} is not a generator function")
        for value in gen:
            self.yielded(batch, off, value)

    def send_results(
        self,
        batch_id: int,
        ran: Sequence[int],
        values: list[Any],
        failures: list[tuple[int, Failure]],
        cancelled: list[int],
        *,
        done: bool = False,
    ) -> None:
        """Report the inputs at offsets ``ran``: ``values`` for those not failed or cancelled."""
        ok: Sequence[int] = ran
        if failures or cancelled:
            bad = {off for off, _ in failures}
            bad.update(cancelled)
            ok = [off for off in ran if off not in bad]
        payload = None
        if values:
            try:
                payload = dumps(values)
            except BaseException:  # even SystemExit from a __reduce__: only its input fails
                ok, values = self._drop_unpicklable(list(ok), values, failures)
                payload = dumps(values) if ok else None
        offsets = compact_offsets(ok) if payload is not None else ()
        self.flush_output()
        self.send(Results(batch_id, offsets, payload, tuple(failures), tuple(cancelled), done))
        self._results_at = time.monotonic()
        self._results_due = False

    @staticmethod
    def _drop_unpicklable(
        ok: list[int], values: list[Any], failures: list[tuple[int, Failure]]
    ) -> tuple[list[int], list[Any]]:
        from ..exceptions import SerializationError

        keep_ok: list[int] = []
        keep: list[Any] = []
        for off, value in zip(ok, values, strict=True):
            try:
                dumps(value)
            except BaseException as exc:
                err = SerializationError(
                    f"the return value of type {type(value).__module__}."
                    f"{type(value).__qualname__} cannot be pickled ({type(exc).__name__}: "
                    f"{safe_str(exc)}); return plain data "
                    "(numbers, strings, lists, dicts, numpy arrays) or save it to a Volume"
                )
                if inspect.iscoroutine(value):
                    value.close()  # never awaited: say why, not "never awaited" on exit
                    err = SerializationError(
                        "the function returned a coroutine but is not an `async def` (a "
                        "decorator's wrapper hides it): make the wrapper `async def` too, "
                        "`return await fn(*args, **kwargs)`, so the worker awaits it"
                    )
                failures.append((off, failure_from_exception(err)))
            else:
                keep_ok.append(off)
                keep.append(value)
        return keep_ok, keep


def _salvage_inputs(
    batch: RunBatch, name: str, error: BaseException
) -> tuple[Any, dict[str, Any], list[tuple[int, Failure]]]:
    """The inputs of a batch whose arguments ``loads`` refused, and failures for those at fault.

    Raises ``error`` when no input can be told apart (the payload itself is broken),
    and every input of the batch fails with it.
    """
    from ..exceptions import SerializationError

    try:
        (data, kwargs), cause_of = salvage(batch.args)
    except BaseException:
        raise error from None
    columns = isinstance(data, tuple)
    wanted = range(_count(data)) if batch.offsets is None else batch.offsets
    # Keyword arguments are shared: when one cannot be rebuilt, every input fails with it.
    shared = [(f"keyword argument {k!r}", cause_of(v)) for k, v in kwargs.items()]
    failures: list[tuple[int, Failure]] = []
    for off in wanted:
        args = tuple(c[off] for c in data) if columns else data[off]
        faults = shared + [(f"argument {i}", cause_of(arg)) for i, arg in enumerate(args)]
        fault = next(((which, cause) for which, cause in faults if cause is not None), None)
        if fault is None:
            continue
        which, cause = fault
        advice = (
            "Install that module where the function runs (an Image), or pass plain data."
            if cause.importing
            else "Pass plain data, or create that object inside the function."
        )
        err = SerializationError(
            f"input {batch.first + off} of {name}(): {which} cannot be unpickled on the worker: "
            f"{cause.describe()}. {advice}"
        )
        if not cause.importing:  # its traceback shows the reconstruction code that failed
            err.__cause__ = cause.error
            cause.error.__suppress_context__ = True  # not our first, failed ``loads``
        failures.append((off, failure_from_exception(err)))
    if not failures:
        raise error
    return data, kwargs, failures
