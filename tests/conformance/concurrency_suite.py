"""Async functions and ``@concurrent`` on real workers: every backend runs these.

Subclass :class:`ConcurrencyConformance` with ``backend`` set. Concurrency is
proven by inputs that wait for each other (see ``concurrency_funcs``): they
finish only if the worker runs them at once; nothing asserts on a duration.
"""

from __future__ import annotations

import _thread
import asyncio
import re
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import ClassVar

import concurrency_funcs as cf
import pytest

import jupyter_remote as jr
from jupyter_remote.api._function import set_call_hook
from jupyter_remote.controller import CallState, controller
from jupyter_remote.exceptions import RemoteTraceback


def _input_ids(call_id: str, xs: range) -> list[str]:
    assert re.fullmatch(r"fc-[0-9a-f]+-\d+", call_id), call_id
    return [f"in-{call_id.removeprefix('fc-')}-{x}" for x in xs]


def _wait_for_file(path: Path, what: str) -> None:
    deadline = time.monotonic() + cf.WAIT
    while not path.exists():
        assert time.monotonic() < deadline, f"{what} never happened"
        time.sleep(0.02)


class ConcurrencyConformance:
    backend: ClassVar[str]

    @pytest.fixture
    def app(self, request: pytest.FixtureRequest) -> Iterator[jr.App]:
        app = jr.App(f"cc-{request.node.name[:40]}", backend=self.backend)
        with app.run():
            yield app

    @pytest.fixture
    def token(self) -> str:
        return uuid.uuid4().hex

    # -- async functions ---------------------------------------------------------------

    def test_async_function_returns_its_value_sync_and_aio(self, app: jr.App) -> None:
        double = app.function()(cf.double)
        assert double.remote(21) == 42
        assert asyncio.run(double.remote.aio(5)) == 10
        assert double.spawn(4).get(timeout=cf.WAIT) == 8
        assert list(double.map(range(5))) == [0, 2, 4, 6, 8]

    def test_async_generator_streams_sync_and_aio(self, app: jr.App) -> None:
        acount = app.function()(cf.acount)
        assert list(acount.remote_gen(4)) == [0, 1, 2, 3]

        async def main() -> list[int]:
            return [v async for v in acount.remote_gen.aio(3)]

        assert asyncio.run(main()) == [0, 1, 2]
        with pytest.raises(TypeError, match="remote_gen"):
            acount.remote(3)

    def test_async_exception_keeps_its_type_and_remote_traceback(self, app: jr.App) -> None:
        araise = app.function()(cf.araise)
        with pytest.raises(ValueError, match="async failure 7") as info:
            araise.remote(7)
        remote = info.value.__cause__
        assert isinstance(remote, RemoteTraceback)
        assert "in araise" in str(remote) and "_concurrent.py" not in str(remote)

    def test_coroutine_from_a_sync_wrapper_is_explained(self, app: jr.App) -> None:
        hidden = app.function()(cf.hidden_coroutine)
        with pytest.raises(jr.SerializationError, match="make the wrapper `async def` too"):
            hidden.remote(1)

    def test_async_retries_cover_user_exceptions(self, app: jr.App, tmp_path: Path) -> None:
        flaky = app.function(retries=jr.Retries(max_retries=2, initial_delay=0.01))(cf.fail_twice)
        assert flaky.remote(str(tmp_path / "attempts")) == 3

    def test_async_timeout_replaces_the_worker(self, app: jr.App) -> None:
        asleep = app.function(timeout=1, max_containers=1)(cf.asleep)
        with pytest.raises(jr.FunctionTimeoutError, match="timeout of 1s"):
            asleep.remote(cf.WAIT * 4)
        assert asleep.remote(0) == 0  # a new worker takes the next input

    def test_cancel_cancels_the_running_coroutine(self, app: jr.App, tmp_path: Path) -> None:
        waiter = app.function()(cf.wait_cancelled)
        started, marker = tmp_path / "started", tmp_path / "marker"
        call = waiter.spawn(str(started), str(marker))
        _wait_for_file(started, "the input starting")
        call.cancel()
        with pytest.raises(jr.CallCancelledError):
            call.get(timeout=cf.WAIT)
        _wait_for_file(marker, "the coroutine's cancellation")
        assert marker.read_text() == "cancelled"

    def test_ctrl_c_cancels_the_running_coroutine(self, app: jr.App, tmp_path: Path) -> None:
        waiter = app.function()(cf.wait_cancelled)
        started, marker = tmp_path / "started", tmp_path / "marker"

        def interrupt_once_started() -> None:
            _wait_for_file(started, "the input starting")
            _thread.interrupt_main()  # what Ctrl-C (a kernel interrupt) does

        thread = threading.Thread(target=interrupt_once_started, daemon=True)
        thread.start()
        with pytest.raises(KeyboardInterrupt):
            waiter.remote(str(started), str(marker))
        thread.join()
        _wait_for_file(marker, "the coroutine's cancellation")
        assert marker.read_text() == "cancelled"

    def test_async_without_concurrent_runs_one_input_at_a_time(
        self, app: jr.App, token: str
    ) -> None:
        peak1 = app.function(max_containers=1)(cf.peak1)
        assert set(peak1.map([token] * 6, range(6))) == {1}

    # -- @concurrent ---------------------------------------------------------------------

    def test_async_inputs_run_at_once_up_to_max_inputs(self, app: jr.App, token: str) -> None:
        meet4 = app.function(max_containers=1)(cf.meet4)
        calls = meet4.map([token] * 8, [4] * 8, range(8))
        results = list(calls)
        assert [r[0] for r in results] == list(range(8))
        # Each input saw its own ids while the others ran (contextvars, not a global).
        assert [r[1] for r in results] == _input_ids(calls.object_id, range(8))
        assert {r[2] for r in results} == {calls.object_id}

    def test_max_inputs_is_a_limit(self, app: jr.App, token: str) -> None:
        peak2 = app.function(max_containers=1)(cf.peak2)
        assert set(peak2.map([token] * 6, range(6))) == {2}

    def test_sync_inputs_run_at_once_in_threads(self, app: jr.App, token: str) -> None:
        meet = app.function(max_containers=1)(cf.meet_threads)
        calls = meet.map([token] * 3, [3] * 3, range(3))
        results = list(calls)
        assert [r[1] for r in results] == _input_ids(calls.object_id, range(3))

    def test_output_of_concurrent_inputs_is_attributed_to_each(
        self, app: jr.App, token: str
    ) -> None:
        meet4 = app.function(max_containers=1)(cf.meet4)
        calls = meet4.map([token] * 4, [4] * 4, range(4))
        list(calls)
        lines = calls._reader.call.logs.lines()
        assert lines
        for line in lines:
            for word in ("arrived", "met"):
                for number in re.findall(rf"{word} (\d+)", line.text):
                    assert int(number) == line.input_index, line
        text = calls.logs()
        assert all(f"met {x}\n" in text for x in range(4))

    def test_timeout_fails_its_input_and_the_others_run_again(
        self, app: jr.App, tmp_path: Path
    ) -> None:
        f = app.function(timeout=1, max_containers=1)(cf.stuck_or_second_try)
        marker = tmp_path / "marker"
        out = list(f.map([0, 1], [str(marker)] * 2, return_exceptions=True))
        assert isinstance(out[0], jr.FunctionTimeoutError) and "input 0 ran" in str(out[0])
        assert out[1] == 1  # it ran beside input 0, was run again, and no death was counted
        assert marker.read_text() == "first attempt"

    def test_cancel_interrupts_a_sync_input_in_a_thread(self, app: jr.App, tmp_path: Path) -> None:
        spin = app.function()(cf.spin_interruptible)
        started, marker = tmp_path / "started", tmp_path / "marker"
        call = spin.spawn(str(started), str(marker))
        _wait_for_file(started, "the input starting")
        call.cancel()
        with pytest.raises(jr.CallCancelledError):
            call.get(timeout=cf.WAIT)
        _wait_for_file(marker, "the thread's interruption")
        assert marker.read_text() == "interrupted"

    def test_output_of_a_nested_call_goes_where_its_own_input_goes(
        self, app: jr.App, token: str
    ) -> None:
        outer = cf.build_nested(app)
        routes: dict[str, list[str]] = {}

        def route(call: CallState) -> None:  # what the notebook does: output into its cell
            lines = routes.setdefault(f"call {len(routes)}", [])
            call.on_output = lambda line: lines.append(line.text)

        set_call_hook(route)
        try:
            calls = [outer.spawn(token, word) for word in ("first", "second")]
        finally:
            set_call_hook(None)
        assert [c.get(timeout=cf.WAIT) for c in calls] == ["first", "second"]
        nested = {key: [t for t in lines if "nested" in t] for key, lines in routes.items()}
        assert nested == {
            "call 0": ["nested call of first\n"],
            "call 1": ["nested call of second\n"],
        }, routes

    def test_cls_async_hooks_and_concurrent_methods(
        self, app: jr.App, token: str, tmp_path: Path
    ) -> None:
        Service = app.cls(max_containers=1)(cf.Service)
        marker = tmp_path / "exited"
        service = Service(exit_marker=str(marker))
        results = list(service.ameet.map([token] * 3, [3] * 3, range(3)))
        assert [r[0][0] for r in results] == [0, 1, 2]
        assert {r[1] for r in results} == {(None, True)}  # @enter: awaited, outside any input
        threads = list(service.smeet.map([token + "-sync"] * 3, [3] * 3, range(3)))
        assert [r[0] for r in threads] == [0, 1, 2]
        app.stop()
        assert marker.read_text() == "async exit ran"

    def test_sync_and_async_methods_without_concurrent_never_overlap(
        self, app: jr.App, tmp_path: Path
    ) -> None:
        mixed = app.cls(max_containers=1)(cf.Mixed)()
        started = tmp_path / "started"
        holding = mixed.hold.spawn(str(started))
        _wait_for_file(started, "the async input starting")
        # Two calls queued: the controller sends the worker a second batch while it is busy.
        peeks = [mixed.peek.spawn() for _ in range(2)]
        assert [p.get(timeout=cf.WAIT) for p in peeks] == [False, False]
        assert holding.get(timeout=cf.WAIT) is True

    def test_cls_with_concurrency_sets_it_for_a_class(self, app: jr.App, token: str) -> None:
        Meeter = app.cls(max_containers=1)(cf.Meeter).with_concurrency(max_inputs=4)
        results = list(Meeter().meet.map([token] * 4, [4] * 4, range(4)))
        assert [r[0] for r in results] == [0, 1, 2, 3]

    # -- ids and autoscaling -----------------------------------------------------------

    def test_ids_of_inputs_run_one_by_one(self, app: jr.App) -> None:
        ids = app.function()(cf.plain_ids)
        call = ids.spawn(0)
        (input_id,) = _input_ids(call.object_id, range(1))
        assert call.get(timeout=cf.WAIT) == (0, input_id, call.object_id)
        calls = ids.map(range(3))
        assert [r[1] for r in calls] == _input_ids(calls.object_id, range(3))
        assert jr.current_input_id() is None and jr.current_function_call_id() is None

    @pytest.mark.parametrize(("fn", "workers"), [("pid_targeted", 2), ("pid_concurrent", 1)])
    def test_autoscaling_aims_at_target_inputs(self, app: jr.App, fn: str, workers: int) -> None:
        f = app.function(max_containers=4)(getattr(cf, fn))
        calls = f.map(range(4))
        pool = calls._reader.call.pool

        async def launched() -> int:  # on the loop, right after the call was added
            return len(pool.workers)

        # Read then, not after the map: a worker still starting once the work is done may be
        # withdrawn (a backend that reports placement gives it back unplaced).
        assert controller().loop.run(launched()) == workers
        assert len(list(calls)) == 4
