"""A pool: the workers of one function (one ``WorkerSpec``), its queue and its autoscaler.

Runs on the controller's loop thread. Batches wait in the queue until a ready
worker has room; a worker takes one batch at a time, or two while the queue
is longer than the pool (so a busy worker never waits a round trip for its
next batch). The pool grows with the queue up to ``max_containers``, keeps
``min_containers`` (+ ``buffer_containers`` while busy), and lets idle
workers go after ``scaledown_window`` seconds.

A function that takes several inputs at once (``@concurrent(max_inputs=N,
target_inputs=M)``) is dispatched by inputs instead: a worker takes batches
while it holds fewer than M inputs, and up to N once every worker holds M and
none is starting; the pool grows to hold its work at M inputs per worker.

Liveness never depends on a Python thread of the worker getting the GIL: user
code may hold it for minutes (a long C call), silencing the worker's heartbeats
while nothing is wrong. So a busy worker is not judged by its silence while
its input is within its ``timeout``; a dead peer or host is found by TCP
keepalive (answered by the kernels, see ``_server``) and by the backend's exit
reports. The controller enforces ``timeout=`` itself too, for a worker that
cannot (frozen, or its code holds the GIL): see :meth:`Pool.tick`.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..backends import Backend, WorkerExit, WorkerSpec
from ..exceptions import JupyterRemoteError, WorkerError, WorkerStartError
from ..protocol import (
    Cancel,
    Event,
    Failure,
    Output,
    Results,
    RunBatch,
    Shutdown,
    TimedOut,
    Yielded,
    failure_from_exception,
    loads,
)
from ._calls import EventItem, OutputLine

if TYPE_CHECKING:
    from ._calls import Batch, CallState
    from ._controller import Controller
    from ._server import Connection

__all__ = ["Pool", "Scaling", "WorkerState"]

# An idle worker silent this long (no heartbeat: it is frozen) is replaced. A busy one is
# left to run: user code may hold the GIL; it is judged by its input's timeout instead.
UNRESPONSIVE_AFTER = 30.0
# How long past its timeout an input may run, with the worker silent, before the controller
# fails it and replaces the worker (a worker that can still act stops the input itself).
TIMEOUT_GRACE = 5.0
STOP_GRACE = 10.0
CLOSE_GRACE = 3.0


@dataclass(frozen=True)
class Scaling:
    min_containers: int = 0
    max_containers: int | None = None
    buffer_containers: int = 0
    scaledown_window: float = 60.0
    single_use: bool = False  # each worker runs one input, then is retired (Modal's option)
    max_inputs: int = 1  # inputs one worker runs at once (``@concurrent``)
    target_inputs: int = 1  # inputs per worker the autoscaler aims at (<= max_inputs)


@dataclass(eq=False)
class WorkerState:
    worker_id: str
    state: str = "starting"  # starting | ready | stopping | gone
    conn: Connection | None = None
    inflight: dict[int, Batch] = field(default_factory=dict)
    known: set[str] = field(default_factory=set)
    started_at: float = field(default_factory=time.monotonic)  # or placed, on a scheduler
    placed: bool = False  # its task is starting on a node (always, once the backend launched it
    # unless the backend reports placement: then when it says so)
    waiting_for: str = ""  # what a worker not placed yet waits for (the backend's words)
    idle_since: float = field(default_factory=time.monotonic)
    last_seen: float = field(default_factory=time.monotonic)
    # When its running input started, at the latest: its first batch was sent to it idle, or
    # it last reported results (it reports finished inputs within ``PARTIAL_RESULTS_EVERY``).
    progress_at: float = field(default_factory=time.monotonic)
    exit: WorkerExit | None = None

    @property
    def load(self) -> int:
        """Inputs sent to this worker and not yet reported done (batch by batch)."""
        return sum(b.sent for b in self.inflight.values())


class Pool:
    def __init__(
        self,
        controller: Controller,
        label: str,
        backend: Backend,
        spec: WorkerSpec,
        scaling: Scaling,
    ) -> None:
        self.controller = controller
        self.label = label
        self.backend = backend
        self.spec = spec
        self.scaling = scaling
        self.max_workers = scaling.max_containers or backend.default_max_workers(spec)
        self.queue: deque[Batch] = deque()
        self.workers: dict[str, WorkerState] = {}
        self.calls: dict[int, CallState] = {}
        self.start_error: JupyterRemoteError | None = None
        self.closed = False

    # -- work in ---------------------------------------------------------------

    def add_call(self, call: CallState, batches: list[Batch]) -> None:
        if self.closed:
            call.fail_all(WorkerStartError(f"the pool of {self.label} was stopped (app.stop())"))
            return
        if self.start_error is not None and not self.alive():
            self.start_error = None  # try again: the user may have fixed the cause
        self.calls[call.call_id] = call
        self.enqueue(batches)

    def enqueue(self, batches: list[Batch], *, front: bool = False) -> None:
        if front:
            self.queue.extendleft(reversed(batches))
        else:
            self.queue.extend(batches)
        self.pump()

    def call_finished(self, call: CallState) -> None:
        self.calls.pop(call.call_id, None)

    def cancel(self, call: CallState) -> None:
        call.cancel()
        self.calls.pop(call.call_id, None)
        self.queue = deque(b for b in self.queue if b.call is not call)
        for ws in self.workers.values():
            if ws.conn is not None and any(b.call is call for b in ws.inflight.values()):
                ws.conn.send(Cancel(call.call_id))

    # -- dispatch --------------------------------------------------------------

    def pump(self) -> None:
        """Hand queued batches to ready workers, then adjust the pool's size."""
        queue = self.queue
        if queue and self.scaling.max_inputs > 1 and not self.scaling.single_use:
            self._pump_concurrent()
        elif queue:
            ready = [w for w in self.workers.values() if w.state == "ready"]
            ready.sort(key=lambda w: len(w.inflight))
            # A second batch per worker hides the round trip in long maps, but it must not
            # strand work behind a slow input while other workers are idle or starting.
            starting = any(w.state == "starting" for w in self.workers.values())
            room = 2 if not starting and len(queue) >= 2 * len(ready) else 1
            room = 1 if self.scaling.single_use else room
            for ws in ready:
                # A worker waiting on calls it made gets nothing more: it may be the work
                # it waits for (a function calling itself), stuck behind its own input.
                limit = 1 if ws.conn is not None and ws.conn.nested.waiting else room
                while queue and len(ws.inflight) < limit:
                    batch = queue.popleft()
                    if batch.call.finished:
                        continue
                    self._send(ws, batch)
                if not queue:
                    break
        self.autoscale()

    def _pump_concurrent(self) -> None:
        """Fill ready workers up to ``target_inputs`` each, then up to ``max_inputs``.

        The burst past ``target_inputs`` waits while workers are starting: they come
        to take that work (the autoscaler launched them for it).
        """
        queue = self.queue
        ready = [w for w in self.workers.values() if w.state == "ready"]
        s = self.scaling
        starting = any(w.state == "starting" for w in self.workers.values())
        for cap in (s.target_inputs,) if starting else (s.target_inputs, s.max_inputs):
            ready.sort(key=lambda w: w.load)
            for ws in ready:
                load = ws.load
                while queue and load < cap:
                    batch = queue.popleft()
                    if batch.call.finished:
                        continue
                    self._send(ws, batch)
                    load += batch.sent
            if not queue:
                return

    def _send(self, ws: WorkerState, batch: Batch) -> None:
        call = batch.call
        fdef = call.fdef
        first_time = fdef.hash not in ws.known
        ws.known.add(fdef.hash)
        if not ws.inflight:
            ws.progress_at = time.monotonic()
        ws.inflight[batch.batch_id] = batch
        batch.sent = batch.size if batch.offsets is None else len(batch.offsets)
        call.inflight += batch.sent
        assert ws.conn is not None
        ws.conn.send(
            RunBatch(
                batch.batch_id,
                call.call_id,
                fdef.hash,
                fdef if first_time else None,
                call.method,
                batch.first,
                batch.args,
                batch.offsets,
                call.timeout,
                call.generator,
                batch.size,
                call.object_id,
            )
        )

    # -- size ------------------------------------------------------------------

    def alive(self) -> list[WorkerState]:
        return [w for w in self.workers.values() if w.state in ("starting", "ready")]

    def autoscale(self) -> None:
        if self.closed:
            return  # a worker leaving during close() must not start a replacement
        s = self.scaling
        if s.max_inputs > 1:
            # A batch runs on one worker: at most max_inputs of its inputs at once.
            held = sum(min(b.count(), s.max_inputs) for b in self.queue)
            held += sum(w.load for w in self.workers.values())
            busy = -(-held // s.target_inputs)
        else:
            busy = len(self.queue) + sum(len(w.inflight) for w in self.workers.values())
        target = max(s.min_containers, busy + (s.buffer_containers if busy else 0))
        target = min(target, self.max_workers)
        alive = self.alive()
        for _ in range(target - len(alive)):
            self._launch()
        if len(alive) > target and self.backend.reports_placement:
            # Workers still waiting for room that nothing needs now: never let them be placed
            # (they would hold capacity other functions wait for). Never a placed one.
            unplaced = [w for w in alive if w.state == "starting" and not w.placed]
            for ws in unplaced[::-1][: len(alive) - target]:
                self.withdraw(ws)

    def withdraw(self, ws: WorkerState) -> None:
        """Give up on a worker that was not placed yet: the backend stops it before it runs."""
        ws.state = "gone"
        self.workers.pop(ws.worker_id, None)
        self.controller.forget(ws.worker_id)
        self._kill(ws)

    def _launch(self) -> None:
        wid = self.backend.new_worker_id(self.spec)
        ws = WorkerState(wid)
        self.workers[wid] = ws
        self.controller.register_worker(ws, self)
        asyncio.get_running_loop().create_task(self._start(ws))

    async def _start(self, ws: WorkerState) -> None:
        try:
            address = await self.controller.address_for(self.backend, ws.worker_id)
            await self.backend.launch(self.spec, ws.worker_id, address)
        except JupyterRemoteError as exc:  # ours says what to do (an image build, a GPU)
            self.start_failed(ws, exc)
        except Exception as exc:
            error = WorkerStartError(f"could not start a worker for {self.label}: {exc}")
            self.start_failed(ws, error)

    def tick(self, now: float) -> None:
        """Periodic housekeeping: start timeouts, overdue inputs, frozen workers, scale-down.

        A busy worker's silence alone never gets it killed: the input it runs may hold
        the GIL. Once that input is ``TIMEOUT_GRACE`` past its timeout with the worker
        silent as long, the worker could not stop it (frozen, or the GIL held): the
        input fails as timed out here and the worker is replaced.
        """
        timeout = self.controller.settings.worker_start_timeout
        placing = self.backend.reports_placement  # then the backend bounds the wait for room
        for ws in list(self.workers.values()):
            counting = ws.placed or not placing
            if ws.state == "starting" and counting and now - ws.started_at > timeout:
                self._kill(ws)
                self.start_failed(
                    ws,
                    WorkerStartError(
                        f"a worker for {self.label} did not connect within {timeout:g}s; if it "
                        "runs on another machine, check advertise_host (JUPYTER_REMOTE_"
                        "ADVERTISE_HOST) and that the caller's port is reachable"
                    ),
                )
            elif ws.state == "ready" and ws.inflight:
                if now - ws.last_seen > TIMEOUT_GRACE:
                    batch = next(iter(ws.inflight.values()))  # the one it runs: sent first
                    limit = batch.call.timeout
                    if limit and now - ws.progress_at > limit + TIMEOUT_GRACE:
                        self._overran(ws, batch, now - ws.progress_at)
            elif (ws.state == "ready" and now - ws.last_seen > UNRESPONSIVE_AFTER) or (
                ws.state == "stopping" and now - ws.idle_since > STOP_GRACE
            ):
                self._kill(ws)
        window = self.scaling.scaledown_window
        idle = [
            w
            for w in self.workers.values()
            if w.state == "ready" and not w.inflight and now - w.idle_since > window
        ]
        surplus = len(self.alive()) - self.scaling.min_containers
        if not self.queue:
            for ws in idle[: max(0, surplus)]:
                self.retire(ws)

    def waiting_for_capacity(self) -> bool:
        """Whether a worker of this pool waits for room on the cluster (never placed yet)."""
        return any(
            w.state == "starting" and not w.placed and w.waiting_for for w in self.workers.values()
        )

    def retire_idle(self) -> int:
        """Retire every idle ready worker beyond ``min_containers`` (another pool needs room)."""
        if self.queue:
            return 0
        idle = [w for w in self.workers.values() if w.state == "ready" and not w.inflight]
        surplus = len(self.alive()) - self.scaling.min_containers
        chosen = idle[: max(0, surplus)]
        for ws in chosen:
            self.retire(ws)
        return len(chosen)

    def retire(self, ws: WorkerState) -> None:
        if ws.conn is not None and ws.state == "ready":
            ws.state = "stopping"
            ws.idle_since = time.monotonic()
            ws.conn.send(Shutdown())

    def _overran(self, ws: WorkerState, batch: Batch, elapsed: float) -> None:
        """The input ``ws`` runs is past its timeout and the worker did not stop it."""
        pending = batch.pending()
        if pending:
            batch.call.timed_out(batch, pending[0] - batch.first, elapsed)
        self._replace_timed_out(ws)
        self._kill(ws)

    def _replace_timed_out(self, ws: WorkerState) -> None:
        """A worker stopped for a timeout: requeue its other inputs, not counted as deaths."""
        if ws.state != "ready":
            return
        ws.state = "lost"  # no more work for it; its exit or disconnection removes it
        requeue: list[Batch] = []
        for batch in ws.inflight.values():
            batch.call.inflight -= batch.sent
            if not batch.call.finished:
                requeue.extend(batch.single(index) for index in batch.pending())
        ws.inflight.clear()
        self.enqueue(requeue, front=True)

    def _kill(self, ws: WorkerState) -> None:
        asyncio.get_running_loop().create_task(self.backend.stop(ws.worker_id))

    # -- worker events -----------------------------------------------------------

    def connected(self, ws: WorkerState, conn: Connection) -> None:
        ws.conn = conn
        ws.state = "ready"
        ws.last_seen = ws.idle_since = time.monotonic()
        self.start_error = None
        self.pump()

    def message(self, ws: WorkerState, msg: Any) -> None:
        ws.last_seen = time.monotonic()
        if isinstance(msg, Results):
            ws.progress_at = ws.last_seen
            self._results(ws, msg)
        elif isinstance(msg, Yielded):
            batch = ws.inflight.get(msg.batch_id)
            if batch is not None:
                batch.call.yielded(batch, msg.offset, msg.value)
        elif isinstance(msg, Output):
            calls = self.calls
            for call_id, index, stream, text in msg.items:
                call = calls.get(call_id)
                if call is not None:
                    call.output(OutputLine(index, ws.worker_id, stream, text))
        elif isinstance(msg, Event):
            call = self.calls.get(msg.call_id)
            if call is not None:
                try:
                    data = loads(msg.data)
                except Exception as exc:  # an object the caller cannot unpickle
                    data = {"data": {"text/plain": f"<event that cannot be unpickled: {exc}>"}}
                call.event(EventItem(msg.input_index, ws.worker_id, msg.kind, data))
        elif isinstance(msg, TimedOut):
            batch = ws.inflight.get(msg.batch_id)
            if batch is not None:
                batch.call.timed_out(batch, msg.offset, msg.elapsed)
                self._replace_timed_out(ws)  # it exits now; its other inputs run elsewhere

    def _results(self, ws: WorkerState, msg: Results) -> None:
        batch = ws.inflight.get(msg.batch_id)
        if batch is None:
            return
        call = batch.call
        if msg.offsets:
            call.succeeded(batch, msg.offsets, msg.values)
        failure: Failure
        for off, failure in msg.failures:
            call.attempt_failed(batch, batch.first + off, failure)
        if msg.done:
            del ws.inflight[msg.batch_id]
            call.inflight -= batch.sent
            missing = batch.pending()
            if missing and not call.finished:  # a worker bug must not leave a call hanging
                error = WorkerError(f"{call.fdef.name}: the worker ended a batch without a result")
                for index in missing:
                    call.attempt_failed(batch, index, failure_from_exception(error))
            if not ws.inflight:
                ws.idle_since = time.monotonic()
            if self.scaling.single_use:
                self.retire(ws)  # its one input is done: a fresh worker takes the next
            self.pump()

    def disconnected(self, ws: WorkerState) -> None:
        """The connection dropped; requeue its work once the backend says why (or after 1 s)."""
        was = ws.state
        ws.conn = None
        ws.state = "lost"
        if was != "stopping":
            self._kill(ws)
        if ws.exit is not None:
            self._requeue(ws)
        else:
            asyncio.get_running_loop().call_later(1.0, self._requeue, ws)
        self.autoscale()

    def exited(self, ws: WorkerState, info: WorkerExit) -> None:
        ws.exit = info
        if ws.state == "starting" and isinstance(info.error, JupyterRemoteError):
            self.start_failed(ws, info.error)  # e.g. the cluster cannot place it: says why
        elif ws.state == "starting":
            tail = info.log_tail.strip()
            shown = f"\nIts output:\n{tail}" if tail else ""
            error = WorkerStartError(
                f"a worker for {self.label} {info.reason} before it connected.{shown}"
            )
            self.start_failed(ws, error)
        elif ws.state != "gone":
            ws.conn = None
            ws.state = "lost"
            self._requeue(ws)

    def _requeue(self, ws: WorkerState) -> None:
        if ws.state == "gone":
            return
        ws.state = "gone"
        reason = ws.exit.reason if ws.exit else "lost its connection"
        tail = ws.exit.log_tail if ws.exit else ""
        requeue: list[Batch] = []
        for batch in ws.inflight.values():
            batch.call.inflight -= batch.sent
            requeue.extend(batch.call.worker_died(batch, reason, tail))
        ws.inflight.clear()
        self.workers.pop(ws.worker_id, None)
        self.enqueue(requeue, front=True)

    def start_failed(self, ws: WorkerState, error: JupyterRemoteError) -> None:
        """A worker never connected: fail queued work unless another worker can take it."""
        ws.state = "gone"
        self.workers.pop(ws.worker_id, None)
        self.start_error = error
        if any(w.state in ("ready", "starting") for w in self.workers.values()):
            return  # another worker may still take the work; the last failure decides
        failed = {b.call for b in self.queue}
        self.queue.clear()
        for call in failed:
            call.fail_all(error)

    async def close(self, grace: float = CLOSE_GRACE) -> None:
        """Stop every worker: idle ones run their ``@exit`` hooks first; late ones are killed."""
        self.closed = True
        for call in list(self.calls.values()):
            self.cancel(call)
        self.queue.clear()
        for ws in list(self.workers.values()):
            if ws.state == "ready" and not ws.inflight:
                self.retire(ws)
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline and any(
            w.state == "stopping" for w in self.workers.values()
        ):
            await asyncio.sleep(0.02)
        for ws in list(self.workers.values()):
            if ws.conn is not None:
                ws.conn.close()
            await self.backend.stop(ws.worker_id)
        self.workers.clear()
        await self.backend.release(self.spec)
