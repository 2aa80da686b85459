"""The ``.map`` fast path: inputs as columns, results of consecutive inputs as one range.

Each piece is checked on its own: the caller's :class:`Inputs`, the worker's
``_run_batch`` (on a real socket pair), the controller's ``CallState.succeeded``
(exactly once, also after a requeue) and the caller's ``MapReader``.
"""

from __future__ import annotations

import itertools
import os
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from jupyter_remote.api._pickling import Inputs, pickle_chunks, pickle_inputs
from jupyter_remote.api._results import MapReader
from jupyter_remote.controller import END, ERR, OK, CallState, Outcome
from jupyter_remote.controller._calls import Batch
from jupyter_remote.protocol import (
    FrameDecoder,
    FunctionDef,
    Heartbeat,
    Results,
    RunBatch,
    TimedOut,
    dumps,
    failure_from_exception,
    loads,
)
from jupyter_remote.retries import Retries
from jupyter_remote.runtime._worker import EXIT_TIMEOUT, Worker, compact_offsets, increasing

# -- the caller's inputs ---------------------------------------------------------------------


def test_columns_follow_zip() -> None:
    assert Inputs.from_columns(((x for x in "abc"),)).data == (["a", "b", "c"],)
    # Containers are read whole, then cut to the shortest, as zip would.
    inputs = Inputs.from_columns(([1, 2, 3], range(10), "xy"))
    assert inputs.data == ([1, 2], [0, 1], ["x", "y"])
    assert inputs.n == len(inputs) == 2
    # Iterators are zipped: an endless one stops at the shortest.
    inputs = Inputs.from_columns((iter([5, 6, 7]), itertools.count()))
    assert inputs.data == ([5, 6, 7], [0, 1, 2])
    assert Inputs.from_columns((iter([]), itertools.count())).data == ([], [])


def test_rows_are_tuples_and_kwargs_are_shared() -> None:
    kwargs = {"c": 1}
    inputs = Inputs.from_rows([[1, 2], (3,), "ab"], kwargs)
    assert inputs.data == [(1, 2), (3,), ("a", "b")]
    assert inputs.kwargs == kwargs and inputs.kwargs is not kwargs
    assert inputs.args(2) == ("a", "b")
    assert Inputs.from_columns(([1, 2], [3, 4])).args(1) == (2, 4)


def test_chunks_are_column_slices() -> None:
    inputs = Inputs.from_columns((range(5), range(10, 15)), {"k": 0})
    assert inputs.chunk(1, 3) == (([1, 2], [11, 12]), {"k": 0})
    whole = inputs.chunk(0, 5)
    assert whole[0] is inputs.data  # one chunk: no copy
    assert Inputs.from_rows([(1,), (2,)]).chunk(1, 2) == ([(2,)], {})


# -- the worker ------------------------------------------------------------------------------


def add(a: int, b: int, c: int = 0) -> int:
    return a + b + c


def inverse(x: int) -> float:
    return 1 / x


def test_compact_offsets() -> None:
    assert compact_offsets(range(3, 9)) == range(3, 9)
    assert compact_offsets(range(0, 9)[4:]) == range(4, 9)
    assert compact_offsets([4, 5, 6]) == range(4, 7)
    assert compact_offsets(range(0, 9, 2)[1:3]) == (2, 4)
    assert compact_offsets([4, 6, 7]) == (4, 6, 7)
    assert compact_offsets((7,)) == (7,)  # one offset: a tuple, cheaper to send
    assert compact_offsets(range(0)) == ()


def test_offsets_run_in_increasing_order_once() -> None:
    offsets = (1, 4, 9)
    assert increasing(offsets) is offsets
    assert increasing((5, 2, 5, 3)) == [2, 3, 5]


@pytest.fixture
def worker() -> Iterator[tuple[Worker, socket.socket]]:
    ours, theirs = socket.socketpair()
    w = Worker(ours, "w-test", dead_after=60.0)
    yield w, theirs
    ours.close()
    theirs.close()


def _run(
    worker: tuple[Worker, socket.socket],
    fn: Any,
    payload: Any,
    first: int = 0,
    offsets: tuple[int, ...] | None = None,
) -> list[Results]:
    w, peer = worker
    fdef = FunctionDef("h-" + fn.__name__, dumps(fn), "function", fn.__name__)
    w._run_batch(RunBatch(1, 2, fdef.hash, fdef, None, first, payload, offsets, None, False))
    decoder = FrameDecoder()
    out: list[Results] = []
    peer.settimeout(5)
    while not (out and out[-1].done):
        n = peer.recv_into(decoder.get_buffer())
        out += [m for m in decoder.feed(n) if isinstance(m, Results)]
    return out


def _values(res: Results) -> list[Any]:
    assert res.values is not None
    values: list[Any] = loads(res.values)
    return values


def test_worker_runs_a_column_and_reports_a_range(worker: tuple[Worker, socket.socket]) -> None:
    inputs = Inputs.from_columns((range(100, 110),))
    [res] = _run(worker, inverse, pickle_chunks("inverse", inputs, 10)[0][1], first=20)
    assert res.offsets == range(10) and res.done
    assert _values(res) == [1 / x for x in range(100, 110)]
    assert worker[0].output.tag == (2, 29)  # output was tagged with each input's index


def test_worker_runs_columns_and_rows_with_kwargs(worker: tuple[Worker, socket.socket]) -> None:
    inputs = Inputs.from_columns(([1, 2, 3], [10, 20, 30]), {"c": 100})
    [res] = _run(worker, add, pickle_chunks("add", inputs, 3)[0][1])
    assert res.offsets == range(3) and _values(res) == [111, 122, 133]
    rows = Inputs.from_rows([(1, 2), (3, 4, 5)])
    [res] = _run(worker, add, pickle_chunks("add", rows, 3)[0][1])
    assert _values(res) == [3, 12]
    [res] = _run(worker, add, pickle_inputs("add", (1, 2), {"c": 3}))
    assert res.offsets == (0,) and _values(res) == [6]


def test_worker_reports_failures_and_the_rest(worker: tuple[Worker, socket.socket]) -> None:
    payload = pickle_chunks("inverse", Inputs.from_columns(([1, 2, 0, 4],)), 4)[0][1]
    [res] = _run(worker, inverse, payload)
    assert res.offsets == (0, 1, 3)  # not consecutive: a tuple
    assert _values(res) == [1.0, 0.5, 0.25]
    [(off, failure)] = res.failures
    assert off == 2 and failure.type_name == "ZeroDivisionError"
    # A retry runs one offset of the same payload.
    [res] = _run(worker, inverse, payload, offsets=(2, 3))
    assert res.offsets == (3,) and _values(res) == [0.25]


def _run_watched(payload: Any, timeout: float | None) -> tuple[list[Any], int]:
    """Run one batch of ``time.sleep`` in a forked worker with its watchdog thread.

    Returns the messages it sent and its exit status. The watchdog ends its
    process when an input runs past its timeout, hence the fork.
    """
    ours, theirs = socket.socketpair()
    fdef = FunctionDef("h-sleep", dumps(time.sleep), "function", "sleep")
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        status = 1
        try:
            theirs.close()
            w = Worker(ours, "w-watched", dead_after=60.0)
            threading.Thread(target=w._watchdog, daemon=True).start()
            w._run_batch(RunBatch(7, 2, fdef.hash, fdef, None, 10, payload, None, timeout, False))
            status = 0
        finally:
            os._exit(status)
    ours.close()
    decoder = FrameDecoder()
    messages: list[Any] = []
    theirs.settimeout(10)
    while n := theirs.recv_into(decoder.get_buffer()):
        messages += decoder.feed(n)
    theirs.close()
    _, status = os.waitpid(pid, 0)
    return [m for m in messages if not isinstance(m, Heartbeat)], os.waitstatus_to_exitcode(status)


def test_watchdog_stops_the_input_past_its_timeout_in_a_batch() -> None:
    payload = pickle_chunks("sleep", Inputs.from_columns(([0.0] * 5 + [30.0, 0.0],)), 7)[0][1]
    t0 = time.monotonic()
    messages, status = _run_watched(payload, timeout=0.3)
    assert status == EXIT_TIMEOUT and time.monotonic() - t0 < 3
    timed_out = messages[-1]
    assert isinstance(timed_out, TimedOut)
    assert (timed_out.batch_id, timed_out.offset) == (7, 5)
    assert 0.3 < timed_out.elapsed < 1.0


def test_slow_batches_report_partial_results() -> None:
    payload = pickle_chunks("sleep", Inputs.from_columns(([0.06] * 6,)), 6)[0][1]
    messages, status = _run_watched(payload, timeout=5.0)
    assert status == 0
    results = [m for m in messages if isinstance(m, Results)]
    assert len(results) >= 2 and not results[0].done and results[-1].done
    ran = [off for r in results for off in r.offsets]
    assert ran == list(range(6))  # each input once, in order
    assert all(isinstance(r.offsets, range) for r in results if len(r.offsets) > 1)


# -- the controller --------------------------------------------------------------------------


class _Pool:
    """What a CallState asks of its pool."""

    def __init__(self) -> None:
        self.finished: list[CallState] = []

    def call_finished(self, call: CallState) -> None:
        self.finished.append(call)

    def enqueue(self, batches: list[Batch], *, front: bool = False) -> None:
        pass


def _call(n: int) -> CallState:
    fdef = FunctionDef("h", dumps(None), "function", "f")
    return CallState(_Pool(), fdef, None, n, Retries(0), None)  # type: ignore[arg-type]


def _outcomes(call: CallState) -> list[Outcome]:
    return call.channel.take(0)


def test_a_range_of_results_is_one_outcome() -> None:
    call = _call(10)
    values = dumps(list(range(4)))
    call.succeeded(Batch(call, 4, values, 4), range(4), values)
    assert _outcomes(call) == [(OK, range(4, 8), values)]
    assert bytes(call.done) == bytes([0, 0, 0, 0, 1, 1, 1, 1, 0, 0])
    assert call.n_succeeded == 4 and not call.finished


def test_a_duplicate_after_a_requeue_is_dropped() -> None:
    call = _call(6)
    batch = Batch(call, 0, dumps(None), 6)
    # Input 3 was requeued alone and its result came first...
    call.succeeded(batch.single(3), range(3, 4), dumps(["3"]))
    # ...then the whole batch reports: input 3 must not be delivered twice.
    values = dumps(list("012345"))
    call.succeeded(batch, range(6), values)
    first, second, end = _outcomes(call)
    assert first[:2] == (OK, range(3, 4))
    assert second == (OK, [(0, 0), (1, 1), (2, 2), (4, 4), (5, 5)], values)
    assert end == (END, None, None)
    assert call.n_succeeded == 6 and call.finished
    call.succeeded(batch, range(6), values)  # once finished, nothing more
    assert _outcomes(call) == []


def test_a_sparse_result_goes_item_by_item() -> None:
    call = _call(5)
    values = dumps(["a", "b"])
    call.succeeded(Batch(call, 0, values, 5), (1, 3), values)
    assert _outcomes(call) == [(OK, [(0, 1), (1, 3)], values)]


# -- the caller's reader ---------------------------------------------------------------------


def _reader(n: int, order: bool, return_exceptions: bool = True) -> MapReader:
    return MapReader(_call(n), order, return_exceptions, None)


def _error(index: int) -> Outcome:
    return (ERR, index, failure_from_exception(ValueError(f"bad {index}")))


def test_reader_in_order_joins_chunks() -> None:
    r = _reader(9, order=True)
    assert r.feed([(OK, range(4, 7), dumps([4, 5, 6]))]) == []
    assert r.feed([(OK, [(1, 8), (0, 3)], dumps([3, 8]))]) == []
    out = r.feed([(OK, range(0, 2), dumps([0, 1]))])
    assert out == [0, 1]
    out = r.feed([_error(2)])
    assert [repr(v) for v in out] == ["ValueError('bad 2')", "3", "4", "5", "6"]
    assert r.feed([(OK, range(7, 8), dumps([7])), (END, None, None)]) == [7, 8]
    assert r.ended and r.next_index == 9 and not r.pending


def test_reader_as_completed_yields_whole_chunks() -> None:
    r = _reader(5, order=False)
    assert r.feed([(OK, range(3, 5), dumps([3, 4])), (OK, [(0, 1)], dumps([1]))]) == [3, 4, 1]
    out = r.feed([_error(0), (OK, range(2, 3), dumps([2]))])
    assert isinstance(out[0], ValueError) and out[1:] == [2]
