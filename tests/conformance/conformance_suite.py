"""The backend conformance suite: every backend runs these (subclass ``BackendConformance``).

Workers are real processes; nothing of ours is mocked. A subclass sets
``backend`` and may override the ``app`` fixture to add configuration.
"""

from __future__ import annotations

import asyncio
import os
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import conformance_funcs as funcs
import numpy as np
import pytest

import jupyter_remote as jr
from jupyter_remote.exceptions import RemoteTraceback

SENTINEL = "s3cr3t-VALUE-4711"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie (exited, not yet reaped) counts as gone
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().split()[2] != "Z"
    except OSError:
        return False


class BackendConformance:
    backend: ClassVar[str]

    @pytest.fixture
    def app(self, request: pytest.FixtureRequest) -> Iterator[jr.App]:
        app = jr.App(f"conf-{request.node.name[:40]}", backend=self.backend)
        with app.run():
            yield app

    # -- the verbs ---------------------------------------------------------------------

    def test_remote_and_local(self, app: jr.App, capfd: pytest.CaptureFixture[str]) -> None:
        square = app.function()(funcs.square)
        assert square.remote(7) == 49
        assert square.local(6) == 36
        out = capfd.readouterr().out
        assert "squaring 7" in out and "squaring 6" in out

    def test_output_streams_are_captured_with_c_level_output(
        self, app: jr.App, capfd: pytest.CaptureFixture[str]
    ) -> None:
        echo = app.function()(funcs.echo_stderr)
        assert echo.remote("hello") == "hello"
        time.sleep(0.3)  # fd-level output is drained by a thread on the worker
        captured = capfd.readouterr()
        assert "hello" in captured.err
        assert "from-subprocess-hello" in captured.out

    def test_output_is_tagged_with_input_and_worker(self, app: jr.App) -> None:
        square = app.function()(funcs.square)
        call = square.spawn(3)
        assert call.get(timeout=30) == 9
        assert call.logs() == "squaring 3\n"  # output is delivered before the result
        (line,) = call._call.logs
        assert line.input_index == 0 and line.stream == 1
        assert "conf-test_output" in line.worker_id, line

    def test_map_is_ordered_and_takes_several_iterables(self, app: jr.App) -> None:
        add = app.function()(funcs.add)
        assert list(add.map(range(200), range(200))) == [2 * i for i in range(200)]
        assert list(add.map([1, 2], [10, 20], kwargs={"c": 100})) == [111, 122]

    def test_map_unordered_yields_every_result(self, app: jr.App) -> None:
        f = app.function(max_containers=2)(funcs.sleep_return)
        delays = [1.0, 0.0, 0.0, 0.0]
        out = list(f.map(delays, order_outputs=False))
        assert sorted(out) == sorted(delays)
        assert out[-1] == 1.0  # the slow one finishes last

    def test_map_return_exceptions(self, app: jr.App) -> None:
        f = app.function()(funcs.fail_on)
        out = list(f.map(range(6), return_exceptions=True))
        assert out[:3] == [0, 1, 2] and out[4:] == [4, 5]
        assert isinstance(out[3], funcs.CustomError)

    def test_map_raises_the_first_error_with_remote_traceback(self, app: jr.App) -> None:
        f = app.function()(funcs.fail_on)
        with pytest.raises(funcs.CustomError, match="bad input 3") as info:
            list(f.map(range(6)))
        cause = info.value.__cause__
        assert isinstance(cause, RemoteTraceback)
        assert "fail_on" in cause.tb and "raise CustomError" in cause.tb

    def test_starmap_and_for_each(self, app: jr.App, tmp_path: Path) -> None:
        add = app.function()(funcs.add)
        assert list(add.starmap([(1, 2), (3, 4)], kwargs={"c": 1})) == [4, 8]
        flaky = app.function()(funcs.flaky)
        flaky.for_each([str(tmp_path / "a"), str(tmp_path / "b")], [0, 0])
        assert (tmp_path / "a").read_text() == "x" and (tmp_path / "b").read_text() == "x"

    def test_spawn_get_gather(self, app: jr.App) -> None:
        f = app.function()(funcs.sleep_return)
        calls = [f.spawn(0.01 * i) for i in range(3)]
        assert calls[0].object_id.startswith("fc-")
        assert jr.FunctionCall.gather(*calls) == [0.0, 0.01, 0.02]
        slow = f.spawn(2.0)
        with pytest.raises(TimeoutError):
            slow.get(timeout=0.2)
        assert slow.get(timeout=30) == 2.0

    def test_get_polls_waits_again_and_keeps_outcomes(self, app: jr.App) -> None:
        """Modal's polling (``get(timeout=0)``); a get that timed out leaves the call waitable."""
        square = app.function()(funcs.square)
        call = square.spawn(7)
        deadline = time.monotonic() + 30
        while True:
            try:
                assert call.get(timeout=0) == 49
                break
            except jr.OutputExpiredError:
                assert time.monotonic() < deadline, "get(timeout=0) never saw the result"
                time.sleep(0.05)
        assert call.get(timeout=0) == 49  # the result stays with the handle

        slow = app.function(timeout=1)(funcs.sleep_pid).spawn(30)
        with pytest.raises(jr.FunctionTimeoutError):
            slow.get(timeout=30)
        start = time.monotonic()
        with pytest.raises(jr.FunctionTimeoutError):  # its outcome, again; no new wait
            slow.get(timeout=5)
        assert time.monotonic() - start < 1

        later = app.function()(funcs.sleep_return).spawn(1.0)

        async def main() -> float:
            with pytest.raises(jr.OutputExpiredError, match="has not finished"):
                await later.get.aio(timeout=0.1)
            return await later.get.aio(timeout=30)

        assert asyncio.run(main()) == 1.0
        assert later.get(timeout=0) == 1.0

    def test_interrupted_get_cancels_and_is_not_remembered(self, app: jr.App) -> None:
        """Ctrl-C in ``get()`` cancels the call; a later ``get()`` tells that, not Ctrl-C again."""
        import _thread

        call = app.function()(funcs.sleep_pid).spawn(30)
        timer = threading.Timer(0.5, _thread.interrupt_main)
        timer.start()
        try:
            with pytest.raises(KeyboardInterrupt):
                call.get(timeout=20)
        finally:
            timer.cancel()
        for _ in range(2):
            with pytest.raises(jr.CallCancelledError):
                try:
                    call.get(timeout=10)
                except KeyboardInterrupt:  # not to pytest: it would end the whole run
                    pytest.fail("a later get() raised the Ctrl-C of an earlier one again")

    def test_remote_gen_and_its_aio_twin_raise_when_cancelled(self, app: jr.App) -> None:
        gen = app.function()(funcs.ticks)
        values = gen.remote_gen(0.05)
        assert next(values) == 0
        app.stop()  # cancels the running call
        with pytest.raises(jr.CallCancelledError):
            for _ in values:
                pass

        async def main() -> None:
            values = gen.remote_gen.aio(0.05)
            assert await values.__anext__() == 0
            app.stop()
            async for _ in values:
                pass

        with pytest.raises(jr.CallCancelledError):
            asyncio.run(main())

    def test_remote_gen_streams_values(self, app: jr.App) -> None:
        gen = app.function()(funcs.countdown)
        assert list(gen.remote_gen(4)) == [4, 3, 2, 1]
        with pytest.raises(TypeError, match="remote_gen"):
            gen.remote(3)

    def test_cls_enter_runs_once_per_worker(self, app: jr.App) -> None:
        Model = app.cls(max_containers=1)(funcs.Model)
        model = Model(scale=3)
        results = list(model.predict.map(range(5)))
        assert [r[0] for r in results] == [0, 30, 60, 90, 120]
        assert {r[1] for r in results} == {1}  # @enter ran once; state persisted
        assert len({r[2] for r in results}) == 1
        assert model.predict.remote(1)[0] == 30
        assert Model(scale=1).predict.remote(2)[0] == 20
        assert model.predict.local(2)[0] == 60

    def test_exit_hooks_run_when_the_app_stops(self, app: jr.App, tmp_path: Path) -> None:
        Model = app.cls()(funcs.Model)
        marker = tmp_path / "exited"
        assert Model(2, exit_marker=str(marker)).predict.remote(1)[0] == 20
        app.stop()
        assert marker.read_text() == "exited after 1 enter"

    def test_aio_variants(self, app: jr.App) -> None:
        square = app.function()(funcs.square)

        async def main() -> tuple[int, list[int], int]:
            one = await square.remote.aio(3)
            many = [v async for v in square.map.aio([1, 2, 3])]
            call = await square.spawn.aio(4)
            return one, many, await call.get.aio()

        assert asyncio.run(main()) == (9, [1, 4, 9], 16)

    def test_sync_api_inside_a_running_event_loop(self, app: jr.App) -> None:
        square = app.function()(funcs.square)

        async def main() -> int:
            return square.remote(5)  # what a Jupyter kernel does: sync call, loop running

        assert asyncio.run(main()) == 25

    def test_redefinition_replaces_the_function(self, app: jr.App) -> None:
        ns: dict[str, Any] = {}
        exec("def f(x):\n    return x + 1\n", ns)
        f1 = app.function(name="redefined")(ns["f"])
        assert f1.remote(1) == 2
        exec("def f(x):\n    return x + 100\n", ns)
        f2 = app.function(name="redefined")(ns["f"])
        assert f2.remote(1) == 101
        assert app.registered_functions["redefined"] is f2

    # -- errors ------------------------------------------------------------------------

    def test_user_exception_keeps_its_type(self, app: jr.App) -> None:
        f = app.function()(funcs.fail_on)
        with pytest.raises(funcs.CustomError, match="bad input 3"):
            f.remote(3)

    def test_unpicklable_exception_becomes_remote_error(self, app: jr.App) -> None:
        f = app.function()(funcs.raise_unpicklable)
        with pytest.raises(jr.RemoteError, match="UnpicklableError: cannot travel") as info:
            f.remote()
        assert "raise_unpicklable" in info.value.remote_traceback

    def test_unpicklable_argument_is_named(self, app: jr.App) -> None:
        f = app.function()(funcs.identity)
        lock = threading.Lock()
        with pytest.raises(
            jr.SerializationError, match=r"argument 0 of identity\(\) \(type _thread.lock\)"
        ):
            f.remote(lock)
        add = app.function()(funcs.add)
        with pytest.raises(
            jr.SerializationError, match=r"argument 'c' of add\(\) \(type _thread.lock\)"
        ):
            add.remote(1, 2, c=lock)
        with pytest.raises(jr.SerializationError, match=r"input 2: argument 0"):
            list(f.map([1, 2, lock]))

    def test_argument_that_cannot_be_unpickled_fails_only_its_input(self, app: jr.App) -> None:
        f = app.function(max_containers=1)(funcs.identity)
        inputs: list[Any] = list(range(100))
        inputs[50] = funcs.FailsToLoad()
        out = list(f.map(inputs, return_exceptions=True))
        err = out[50]
        assert isinstance(err, jr.SerializationError), err
        assert "input 50 of identity(): argument 0 cannot be unpickled on the worker" in str(err)
        assert "RuntimeError: this argument cannot be rebuilt on the worker" in str(err)
        assert out[:50] + out[51:] == [i for i in range(100) if i != 50]  # the rest of its batch

    def test_argument_that_cannot_be_unpickled_lets_its_batch_run(
        self, app: jr.App, tmp_path: Path
    ) -> None:
        inputs: list[Any] = list(range(96))  # one worker: batches of 3 inputs
        inputs[1] = funcs.SetstateFails(1)
        for retries in (0, 1):
            f = app.function(max_containers=1, retries=jr.Retries(retries, initial_delay=0.01))(
                funcs.record
            )
            log = tmp_path / f"runs-{retries}"
            log.write_text("")
            with pytest.raises(
                jr.SerializationError,
                match=r"input 1 of record\(\): argument 0 .*SetstateFails.*ValueError: cannot "
                "restore this state",
            ):
                list(f.map(inputs, [str(log)] * 96))
            deadline = time.monotonic() + 10
            while "2" not in log.read_text().split() and time.monotonic() < deadline:
                time.sleep(0.05)
            runs = log.read_text().split()
            assert "0" in runs and "2" in runs and "1" not in runs, (retries, runs)
            assert len(runs) == len(set(runs)), (retries, runs)  # each ran once

    def test_remote_argument_of_a_module_only_the_caller_has(self, app: jr.App) -> None:
        f = app.function()(funcs.identity)
        with pytest.raises(
            jr.SerializationError,
            match=r"input 0 of identity\(\): argument 0 .*jr_caller_only\.Thing.*No module named",
        ):
            f.remote(funcs.caller_only_value(7))
        with pytest.raises(jr.SerializationError, match="ValueError: cannot restore"):
            f.remote(funcs.SetstateFails(1))
        assert f.remote(8) == 8

    def test_result_the_caller_cannot_unpickle_fails_only_its_input(self, app: jr.App) -> None:
        f = app.function(max_containers=1)(funcs.worker_only_value)
        out = list(f.map(range(100), kwargs={"bad": 50}, return_exceptions=True))
        err = out[50]
        assert isinstance(err, jr.SerializationError), err
        assert "input 50 of worker_only_value()" in str(err)
        assert "jr_worker_only.Thing" in str(err)
        assert out[:50] + out[51:] == [i for i in range(100) if i != 50]
        unordered = f.map(range(20), kwargs={"bad": 3}, order_outputs=False, return_exceptions=True)
        values = list(unordered)
        assert sorted(v for v in values if isinstance(v, int)) == [i for i in range(20) if i != 3]
        assert sum(isinstance(v, jr.SerializationError) for v in values) == 1
        with pytest.raises(jr.SerializationError, match=r"input 5 of .*jr_worker_only\.Thing"):
            list(f.map(range(10), kwargs={"bad": 5}))
        with pytest.raises(jr.SerializationError, match=r"jr_worker_only\.Thing"):
            f.remote(1, 1)
        assert f.remote(2, 1) == 2

    @pytest.mark.parametrize("kind", ["str", "reduce"])
    def test_exception_that_breaks_when_shown_or_pickled_keeps_the_worker(
        self, app: jr.App, tmp_path: Path, kind: str
    ) -> None:
        f = app.function(max_containers=1)(funcs.raise_odd)
        log = tmp_path / "runs"
        out = list(f.map([kind] * 5, range(5), [str(log)] * 5, return_exceptions=True))
        err = out[2]
        if kind == "str":  # it pickles: it comes back as its own type
            assert type(err) is funcs.BrokenStr
            tb = str(err.__cause__)
            assert "conformance_funcs.BrokenStr: <exception str() failed>" in tb
        else:
            assert isinstance(err, jr.RemoteError), err
            assert "conformance_funcs.ReduceExits: odd input 2" in str(err)
            tb = err.remote_traceback
        assert "in raise_odd" in tb  # the remote traceback
        pids = {out[i] for i in (0, 1, 3, 4)}
        assert len(pids) == 1  # one worker served them all: it survived input 2
        assert sorted(log.read_text().split()) == ["0", "1", "2", "3", "4"]  # input 2 ran once
        assert f.remote(kind, 5, str(log)) in pids
        retrying = app.function(retries=jr.Retries(1, initial_delay=0.01))(funcs.raise_odd)
        log.write_text("")
        with pytest.raises((funcs.BrokenStr, jr.RemoteError)):
            retrying.remote(kind, 2, str(log))
        assert log.read_text().split() == ["2", "2"]  # the user's retries apply, once

    def test_unpicklable_result_is_an_error_naming_its_type(self, app: jr.App) -> None:
        f = app.function()(funcs.make_lock)
        with pytest.raises(jr.SerializationError, match=r"_thread\.lock"):
            f.remote()

    def test_retries_cover_user_exceptions(self, app: jr.App, tmp_path: Path) -> None:
        retrying = app.function(retries=jr.Retries(2, initial_delay=0.05))(funcs.flaky)
        assert retrying.remote(str(tmp_path / "c1"), 2) == 3
        with pytest.raises(funcs.CustomError, match="attempt 3 fails"):
            retrying.remote(str(tmp_path / "c2"), 5)
        assert len((tmp_path / "c2").read_text()) == 3  # first attempt + 2 retries

    def test_timeout_replaces_the_worker(self, app: jr.App) -> None:
        f = app.function(timeout=1)(funcs.sleep_pid)
        start = time.monotonic()
        with pytest.raises(jr.FunctionTimeoutError, match="past its timeout") as info:
            f.remote(30)
        assert isinstance(info.value, TimeoutError)
        assert time.monotonic() - start < 4
        assert f.remote(0) > 0  # a fresh worker serves the next call

    def test_input_holding_the_gil_runs_past_the_silence_bound(
        self, app: jr.App, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """The worker's threads cannot run (no heartbeats) while user code holds the GIL."""
        from jupyter_remote.controller import _pool

        monkeypatch.setattr(_pool, "UNRESPONSIVE_AFTER", 2.5)  # shorter than the input
        f = app.function(timeout=60)(funcs.hold_gil_pid)
        first = f.remote(0)
        start = time.monotonic()
        assert f.remote(6) == first  # it ran to its end, on the same worker
        assert time.monotonic() - start >= 6
        assert f.remote(0) == first  # and the worker was not replaced afterwards

    def test_cancel_interrupts_running_input(self, app: jr.App, tmp_path: Path) -> None:
        f = app.function()(funcs.sleep_interruptible)
        marker = tmp_path / "marker"
        call = f.spawn(30, str(marker))
        deadline = time.monotonic() + 15
        while not call._call.pool.workers or not any(
            w.inflight for w in call._call.pool.workers.values()
        ):
            assert time.monotonic() < deadline
            time.sleep(0.05)
        time.sleep(0.3)
        call.cancel()
        with pytest.raises(jr.CallCancelledError):
            call.get(timeout=10)
        deadline = time.monotonic() + 5
        while not marker.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert marker.read_text() == "interrupted"

    def test_worker_killed_mid_map_loses_nothing(self, app: jr.App, tmp_path: Path) -> None:
        f = app.function(max_containers=2)(funcs.kill_self_once)
        marker = str(tmp_path / "killed")
        out = list(f.map(range(40), [marker] * 40))
        assert out == [x * 10 for x in range(40)]  # every result, once, in order
        assert Path(marker).read_text() == "killed"
        runs = Path(marker + ".runs").read_text().split()
        assert runs.count("5") == 2  # input 5 ran again after its worker died

    def test_input_that_always_kills_its_worker_fails_with_the_reason(self, app: jr.App) -> None:
        f = app.function()(funcs.kill_self_always)
        with pytest.raises(jr.WorkerDiedError, match="SIGKILL") as info:
            f.remote(1)
        assert "allocating a huge buffer for input 1" in str(info.value)  # its last output

    # -- secrets -----------------------------------------------------------------------

    def test_secrets_become_environment_variables(
        self,
        app: jr.App,
        tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch,
        request: pytest.FixtureRequest,
    ) -> None:
        monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
        from jupyter_remote.state import secret_store

        store = secret_store(self.backend)  # the local file, or Nomad Variables
        store.put("db", {"DB_PASSWORD": SENTINEL, "DB_USER": "ann"}, overwrite=True)
        request.addfinalizer(lambda: store.delete("db"))
        f = app.function(
            secrets=[jr.Secret.from_name("db"), jr.Secret.from_dict({"TOKEN": "t-1"})]
        )(funcs.read_env)
        seen = f.remote("DB_PASSWORD", "DB_USER", "TOKEN")
        assert seen == {"DB_PASSWORD": SENTINEL, "DB_USER": "ann", "TOKEN": "t-1"}
        environ = app.function(secrets=[jr.Secret.from_name("db")])(funcs.initial_environ)
        assert SENTINEL not in environ.remote()  # not in the worker's command line or env
        assert SENTINEL not in repr(f._definition())

    def test_missing_secret_is_named(
        self, app: jr.App, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
        f = app.function(secrets=[jr.Secret.from_name("nope")])(funcs.read_env)
        with pytest.raises(jr.ConfigError, match=r"'nope'.*jupyter-remote secret create"):
            f.remote("X")

    # -- volumes -----------------------------------------------------------------------

    def test_volume_written_by_one_call_is_read_by_another(
        self, app: jr.App, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setenv("JUPYTER_REMOTE_VOLUMES_URL", str(tmp_path / "volumes"))
        vol = jr.Volume.from_name("datasets", create_if_missing=True)
        mount = f"/jr-conformance-{os.getpid()}"  # an absolute path, as users write /data
        try:
            writer = app.function(volumes={mount: vol})(funcs.write_and_commit)
            assert writer.remote(vol, f"{mount}/train.csv", "a,b\n1,2\n") == ["train.csv"]
            reader = app.function(volumes={mount: vol})(funcs.read_text)
            assert reader.remote(f"{mount}/train.csv") == "a,b\n1,2\n"
            assert b"".join(vol.read_file("train.csv")) == b"a,b\n1,2\n"
        finally:
            app.stop()
            if os.path.isdir(mount) and not os.listdir(mount):
                os.rmdir(mount)  # the empty mount point a bind mount leaves on the host

    # -- scaling -----------------------------------------------------------------------

    def test_max_containers_bounds_the_pool(self, app: jr.App) -> None:
        one = app.function(max_containers=1)(funcs.sleep_pid)
        assert len(set(one.map([0.05] * 6))) == 1
        two = app.function(max_containers=2)(funcs.sleep_pid)
        assert len(set(two.map([0.3] * 4))) == 2

    def test_warm_workers_are_reused(self, app: jr.App) -> None:
        f = app.function(scaledown_window=60)(funcs.pid)
        first = f.remote()
        assert {f.remote() for _ in range(5)} == {first}

    def test_idle_workers_scale_down(self, app: jr.App) -> None:
        f = app.function(scaledown_window=0.5)(funcs.pid)
        worker = f.remote()
        deadline = time.monotonic() + 10
        while _alive(worker) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not _alive(worker)
        assert f.remote() != worker  # a new worker starts on demand

    def test_min_containers_keeps_workers_up(self, app: jr.App) -> None:
        f = app.function(min_containers=2, scaledown_window=0.2)(funcs.sleep_pid)
        pids = set(f.map([0.3, 0.3]))
        time.sleep(1.5)
        assert all(_alive(p) for p in pids)

    def test_stop_with_min_containers_leaves_no_worker(self, app: jr.App) -> None:
        f = app.function(min_containers=2, max_containers=2)(funcs.sleep_pid)
        pids = set(f.map([0.3, 0.3]))
        assert len(pids) == 2
        app.stop()
        pool = f._pool
        assert pool is not None and pool.closed and not pool.workers
        time.sleep(1.0)  # a replacement would have been launched by now
        assert not pool.workers and not any(_alive(p) for p in pids)

    def test_app_stop_stops_workers(self, app: jr.App) -> None:
        f = app.function()(funcs.pid)
        worker = f.remote()
        app.stop()
        deadline = time.monotonic() + 10
        while _alive(worker) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not _alive(worker)
        assert f.remote() != worker  # the app starts again on the next call

    # -- payloads ----------------------------------------------------------------------

    def test_large_arguments_and_results(self, app: jr.App) -> None:
        f = app.function()(funcs.identity)
        arr = np.arange(25_000_000, dtype=np.float32)  # 100 MB
        back = f.remote(arr)
        assert back.dtype == arr.dtype and np.array_equal(back, arr)
        back[0] = 1.0  # results arrive writable
        nb = app.function()(funcs.nbytes)
        assert nb.remote(arr) == arr.nbytes
        blob = os.urandom(8 << 20)
        assert f.remote(blob) == blob

    def test_gpu_request_without_gpu_fails_fast(self, app: jr.App) -> None:
        if os.path.exists("/dev/nvidia0"):
            pytest.skip("this machine has a GPU")
        f = app.function(gpu="H100")(funcs.identity)
        start = time.monotonic()
        with pytest.raises(jr.GpuUnavailableError, match="H100") as info:
            f.remote(1)
        assert "nomad" in str(info.value).lower()
        assert time.monotonic() - start < 15


def kill_caller_and_wait(
    script: str, env: dict[str, str], timeout: float
) -> tuple[list[int], bool]:
    """Run ``script`` (prints worker pids, one per line, then 'ready'), SIGKILL it, watch pids."""
    import subprocess
    import sys

    proc = subprocess.Popen(
        [sys.executable, "-c", script], stdout=subprocess.PIPE, text=True, env=env
    )
    assert proc.stdout is not None
    pids: list[int] = []
    for line in proc.stdout:
        if line.strip() == "ready":
            break
        pids.append(int(line))
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    proc.stdout.close()
    deadline = time.monotonic() + timeout
    while any(_alive(p) for p in pids) and time.monotonic() < deadline:
        time.sleep(0.2)
    return pids, not any(_alive(p) for p in pids)
