"""A call (one ``.remote``, ``.map``, ``.spawn``): its inputs, outcomes and result channel.

All ``CallState`` methods run on the controller's loop thread. Outcomes
reach the caller's thread through a :class:`ResultChannel`, which sync code
waits on with a condition variable and async code with a future; results stay
pickled until the caller takes them, so the loop thread only routes bytes.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, NamedTuple

from .._outcomes import Outcome, OutcomeQueue
from ..exceptions import FunctionTimeoutError, WorkerDiedError
from ..protocol import Failure, FunctionDef, Payload, failure_from_exception
from ..retries import Retries

if TYPE_CHECKING:
    from ._pool import Pool

__all__ = [
    "Batch",
    "CallLogs",
    "CallState",
    "EventItem",
    "Outcome",
    "OutputLine",
    "ResultChannel",
    "print_event",
    "print_output",
]

# Outcome kinds pushed into a ResultChannel.
OK, ERR, YIELD, END = "ok", "err", "yield", "end"
# ("ok", range(lo, hi), payload)             results of inputs lo .. hi-1, one pickled list
# ("ok", [(position, index), ...], payload)  results of several inputs, one pickled list
# ("err", index, Failure)                    an input failed for good
# ("yield", index, payload)                  one value yielded by a generator
# ("end", None, None)                        every input has its final outcome (or cancelled)

_batch_ids = itertools.count(1)
_call_ids = itertools.count(1)


class ResultChannel(OutcomeQueue):
    """Outcomes from the loop thread to one consumer (a thread or another event loop)."""


@dataclass(eq=False)
class Batch:
    """Some inputs of a call sent to one worker as one message."""

    call: CallState
    first: int
    args: Payload
    size: int
    offsets: tuple[int, ...] | None = None
    batch_id: int = field(default_factory=lambda: next(_batch_ids))
    sent: int = 0  # inputs counted in call.inflight while a worker holds this batch

    def pending(self) -> list[int]:
        """Indexes of this batch's inputs that still have no outcome and no retry scheduled."""
        offs = self.offsets if self.offsets is not None else range(self.size)
        call = self.call
        return [
            self.first + o
            for o in offs
            if not call.done[self.first + o] and self.first + o not in call.retrying
        ]

    def count(self) -> int:
        """How many inputs this batch holds (those its ``offsets`` select)."""
        return self.size if self.offsets is None else len(self.offsets)

    def single(self, index: int) -> Batch:
        return Batch(self.call, self.first, self.args, self.size, (index - self.first,))


class OutputLine(NamedTuple):
    """Text user code wrote on a worker: which input, which worker, stdout (1) or stderr (2)."""

    input_index: int
    worker_id: str
    stream: int
    text: str


def _count_lines(text: str) -> int:
    """Lines in a piece of output: each newline ends one; text after the last is one more."""
    return text.count("\n") + (1 if text and not text.endswith("\n") else 0)


class CallLogs:
    """The last ``limit`` lines a call's inputs printed (``call.logs()``), and how many went.

    Memory stays bounded by the setting ``log_lines`` however much a ``.map`` prints:
    older lines are dropped from the front, counted in ``dropped``, and ``text()``
    says so on its first line. Appended on the loop thread, read from the caller's.

    >>> logs = CallLogs(limit=2)
    >>> for i in range(3):
    ...     logs.append(OutputLine(0, "w-1", 1, f"line {i}\n"))
    >>> logs.dropped, logs.text()
    (1, '[1 earlier line dropped; the last 2 kept (setting log_lines)]\nline 1\nline 2\n')
    """

    def __init__(self, limit: int) -> None:
        self.limit = max(0, limit)
        self.dropped = 0  # lines dropped from the front
        self.appended = 0  # entries ever appended: a cursor for readers that poll
        self.newlines = 0  # newlines ever received, dropped ones included
        self._entries: deque[OutputLine] = deque()
        self._held = 0  # lines in _entries
        self._lock = threading.Lock()

    def append(self, line: OutputLine) -> None:
        n = _count_lines(line.text)
        with self._lock:
            entries = self._entries
            entries.append(line)
            self.appended += 1
            self.newlines += line.text.count("\n")
            self._held += n
            while self._held > self.limit:
                excess = self._held - self.limit
                first = entries[0]
                k = _count_lines(first.text)
                if k > excess:  # keep the end of this piece: cut its first `excess` lines
                    text, cut = first.text, -1
                    for _ in range(excess):
                        cut = text.index("\n", cut + 1)
                    entries[0] = first._replace(text=text[cut + 1 :])
                    k = excess
                else:
                    entries.popleft()
                self._held -= k
                self.dropped += k

    def lines(self) -> list[OutputLine]:
        """The pieces of output kept, oldest first (a copy)."""
        with self._lock:
            return list(self._entries)

    def __iter__(self) -> Iterator[OutputLine]:
        return iter(self.lines())

    def __len__(self) -> int:
        """Lines kept (at most ``limit``)."""
        return self._held

    def text(self) -> str:
        with self._lock:
            dropped, body = self.dropped, "".join(line.text for line in self._entries)
        if not dropped:
            return body
        s = "" if dropped == 1 else "s"
        return (
            f"[{dropped} earlier line{s} dropped; the last {self.limit} kept "
            f"(setting log_lines)]\n{body}"
        )


class EventItem(NamedTuple):
    """A structured event from user code on a worker (see ``jupyter_remote.runtime.emit``)."""

    input_index: int
    worker_id: str
    kind: str
    data: Any


def print_event(event: EventItem) -> None:
    """Default event route outside notebooks: show displayed objects as plain text."""
    if event.kind == "display" and isinstance(event.data, dict):
        text = (event.data.get("data") or {}).get("text/plain")
        if text:
            print_output(OutputLine(event.input_index, event.worker_id, 1, str(text) + "\n"))


def print_output(line: OutputLine) -> None:
    """Default output route: the caller's own stdout/stderr."""
    out = sys.stdout if line.stream == 1 else sys.stderr
    try:
        out.write(line.text)
        out.flush()
    except (OSError, ValueError):  # pragma: no cover - caller closed its streams
        pass


@dataclass(eq=False)
class CallState:
    pool: Pool
    fdef: FunctionDef
    method: str | None
    n_inputs: int
    retries: Retries
    timeout: float | None
    generator: bool = False
    max_deaths: int = 3
    on_output: Callable[[OutputLine], None] = print_output
    source_file: str | None = None  # where the function was defined, for remote tracebacks
    on_event: Callable[[EventItem], None] = print_event
    kind: str = "call"  # "call" (remote, spawn, remote_gen) or "map"
    log_lines: int = 10_000  # how many output lines call.logs() keeps (setting log_lines)
    call_id: int = field(default_factory=lambda: next(_call_ids))
    channel: ResultChannel = field(default_factory=ResultChannel)
    started_at: float = field(default_factory=time.monotonic)

    def __post_init__(self) -> None:
        self.object_id = f"fc-{os.getpid():x}-{self.call_id}"
        self.done = bytearray(self.n_inputs)
        self.n_succeeded = 0
        self.n_failed = 0
        self.attempts: dict[int, int] = {}
        self.deaths: dict[int, int] = {}
        self.retrying: set[int] = set()
        self.cancelled = False
        self.finished = self.n_inputs == 0
        self.logs = CallLogs(self.log_lines)
        self.inflight = 0  # inputs sent to workers and not yet answered
        if self.finished:
            self.channel.push((END, None, None))

    # -- outcomes -------------------------------------------------------------

    def succeeded(
        self, batch: Batch, offsets: tuple[int, ...] | range, values: Payload | None
    ) -> None:
        if self.finished or values is None:
            return
        done = self.done
        if type(offsets) is range and offsets.step == 1:
            # A run of consecutive inputs (the usual case): mark them all at once, unless
            # one already has its outcome (a duplicate after a requeue), then go item by item.
            lo = batch.first + offsets.start
            hi = batch.first + offsets.stop
            if hi > lo and not done.count(1, lo, hi):
                done[lo:hi] = b"\x01" * (hi - lo)
                self.n_succeeded += hi - lo
                self.channel.push((OK, range(lo, hi), values))
                self._check_end()
                return
        pairs = []
        for pos, off in enumerate(offsets):
            index = batch.first + off
            if not self.done[index]:
                self.done[index] = 1
                pairs.append((pos, index))
        if pairs:
            self.n_succeeded += len(pairs)
            self.channel.push((OK, pairs, values))
            self._check_end()

    def yielded(self, batch: Batch, offset: int, value: Payload) -> None:
        if not self.finished:
            self.channel.push((YIELD, batch.first + offset, value))

    def attempt_failed(self, batch: Batch, index: int, failure: Failure) -> None:
        """User code raised (or timed out): retry with backoff while the budget lasts."""
        if self.finished or self.done[index] or index in self.retrying:
            return
        attempt = self.attempts.get(index, 0) + 1
        self.attempts[index] = attempt
        if attempt <= self.retries.max_retries:
            self.retrying.add(index)
            delay = self.retries.delay(attempt)
            asyncio.get_running_loop().call_later(delay, self._retry, batch.single(index), index)
        else:
            self.fail(index, failure)

    def _retry(self, batch: Batch, index: int) -> None:
        self.retrying.discard(index)
        if not self.finished and not self.done[index]:
            self.pool.enqueue([batch], front=True)

    def timed_out(self, batch: Batch, offset: int, elapsed: float) -> None:
        err = FunctionTimeoutError(
            f"{self.fdef.name}: input {batch.first + offset} ran {elapsed:.1f}s, past its "
            f"timeout of {self.timeout:g}s; the worker running it was replaced. Raise timeout= "
            "in the decorator if the input needs longer."
        )
        self.attempt_failed(batch, batch.first + offset, failure_from_exception(err))

    def worker_died(self, batch: Batch, reason: str, log_tail: str) -> list[Batch]:
        """Inputs in flight on a dead worker: requeue each alone, or fail past the cap."""
        requeue: list[Batch] = []
        if self.finished:
            return requeue
        for index in batch.pending():
            deaths = self.deaths.get(index, 0) + 1
            self.deaths[index] = deaths
            if deaths > self.max_deaths:
                tail = (
                    f"\nThe worker's last output:\n{log_tail.rstrip()}" if log_tail.strip() else ""
                )
                err = WorkerDiedError(
                    f"{self.fdef.name}: input {index} was running on a worker that {reason}, "
                    f"{deaths} times; giving up. If it ran out of memory, raise memory= in the "
                    f"decorator.{tail}"
                )
                self.fail(index, failure_from_exception(err))
            else:
                requeue.append(batch.single(index))
        return requeue

    def fail(self, index: int, failure: Failure) -> None:
        if self.finished or self.done[index]:
            return
        self.done[index] = 1
        self.n_failed += 1
        self.channel.push((ERR, index, failure))
        self._check_end()

    def fail_all(self, exc: BaseException) -> None:
        failure = failure_from_exception(exc)
        for index in range(self.n_inputs):
            if not self.done[index]:
                self.retrying.discard(index)
                self.fail(index, failure)

    def cancel(self) -> None:
        if not self.finished:
            self.cancelled = True
            self.finished = True
            self.channel.push((END, None, None))

    @property
    def queued(self) -> int:
        return max(0, self.n_inputs - self.n_succeeded - self.n_failed - self.inflight)

    def event(self, item: EventItem) -> None:
        if not self.cancelled:
            self.on_event(item)

    def output(self, line: OutputLine) -> None:
        if self.cancelled:
            return
        self.logs.append(line)
        self.on_output(line)

    def _check_end(self) -> None:
        if self.n_succeeded + self.n_failed == self.n_inputs:
            self.finished = True
            self.channel.push((END, None, None))
            self.pool.call_finished(self)
