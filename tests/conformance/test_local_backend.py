"""The conformance suite on the embedded local backend, plus what only it can check."""

from __future__ import annotations

import contextlib
import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import bare_node_backend
import conformance_funcs as funcs
import pytest
from conformance_suite import BackendConformance, _alive, kill_caller_and_wait

import jupyter_remote as jr

CALLER = """
import subprocess, sys, time
sys.path.insert(0, {path!r})
import jupyter_remote as jr, conformance_funcs as funcs
app = jr.App("orphans")
f = app.function(max_containers=2)(funcs.sleep_pid)
calls = [f.spawn(60) for _ in range(2)]
pool = calls[0]._call.pool
deadline = time.monotonic() + 30
while sum(1 for w in pool.workers.values() if w.inflight) < 2:
    assert time.monotonic() < deadline
    time.sleep(0.05)
for w in pool.workers.values():
    out = subprocess.run(["pgrep", "-f", w.worker_id], capture_output=True, text=True).stdout
    for line in out.split():
        print(line, flush=True)
print("ready", flush=True)
time.sleep(120)
"""


class TestLocalBackend(BackendConformance):
    backend = "local"


def test_caller_killed_leaves_no_worker() -> None:
    script = CALLER.format(path=str(Path(__file__).parent))
    pids, gone = kill_caller_and_wait(script, dict(os.environ), timeout=30)
    assert len(pids) == 2, pids
    assert gone, f"workers still alive 30 s after the caller died: {pids}"


def test_timeout_holds_on_a_frozen_worker(tmp_path: Path) -> None:
    """A worker that cannot stop its input (SIGSTOP): the controller enforces timeout= itself."""
    log = tmp_path / "attempts"
    app = jr.App("frozen-worker", backend="local")
    with app.run():
        f = app.function(timeout=2)(funcs.sleep_pid_logged)
        pid = f.remote(0, str(tmp_path / "warm"))
        call = f.spawn(60, str(log))
        deadline = time.monotonic() + 30
        while not log.exists():
            assert time.monotonic() < deadline, "the input never started"
            time.sleep(0.02)
        os.kill(pid, signal.SIGSTOP)
        started = time.monotonic()
        try:
            with pytest.raises(jr.FunctionTimeoutError, match="past its timeout"):
                call.get(timeout=25)
            waited = time.monotonic() - started
            assert waited < 20, f"failed {waited:.1f}s after the input started"
            assert log.read_text().split() == [str(pid)]  # not run again elsewhere
            assert f.remote(0, str(tmp_path / "after")) != pid  # a new worker serves the next
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


def _gone_within(pid: int, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while _alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    return not _alive(pid)


def test_processes_a_function_started_go_with_a_retired_worker() -> None:
    app = jr.App("children-retired")
    f = app.function()(funcs.start_sleeper)
    with app.run():
        child = f.remote("unused")
        assert _alive(child)
    # app.stop(): the idle worker runs its @exit hooks and exits by itself.
    assert _gone_within(child, 10), f"sleep {child} outlived app.stop()"


def test_processes_a_function_started_go_with_a_killed_worker(tmp_path: Path) -> None:
    marker = str(tmp_path / "first")
    app = jr.App("children-killed")
    f = app.function()(funcs.start_sleeper)
    with app.run():
        second = f.remote(marker, die=True)  # the first attempt's worker is SIGKILLed
        first = int(Path(marker).read_text())
        assert _gone_within(first, 10), f"sleep {first} outlived its killed worker"
        assert _alive(second)
    assert _gone_within(second, 10), f"sleep {second} outlived app.stop()"


CALLER_OF_SLEEPER = """
import sys
sys.path.insert(0, {path!r})
import jupyter_remote as jr, conformance_funcs as funcs
app = jr.App("orphan-children")
f = app.function()(funcs.start_sleeper)
with app.run():
    print(f.remote("unused"), flush=True)
    print("ready", flush=True)
    import time; time.sleep(120)
"""


def test_caller_killed_leaves_no_process_a_function_started() -> None:
    script = CALLER_OF_SLEEPER.format(path=str(Path(__file__).parent))
    pids, gone = kill_caller_and_wait(script, dict(os.environ), timeout=30)
    assert len(pids) == 1, pids
    assert gone, f"sleep {pids} still alive 30 s after the caller died"


class TestBareNodeBootstrap(BackendConformance):
    """The whole suite again, with workers that fetch the runtime like a bare Nomad node."""

    backend = "bare-local"

    @pytest.fixture(autouse=True)
    def _registered(self) -> Iterator[None]:
        bare_node_backend.register()
        yield
        bare_node_backend.unregister()

    def test_large_arguments_and_results(self, app: jr.App) -> None:
        pytest.skip("a bare node has no numpy; payloads are covered by TestLocalBackend")

    def test_runtime_is_fetched_once_and_cached(self, app: jr.App) -> None:
        import conformance_funcs as funcs

        f = app.function()(funcs.pid)
        assert f.remote() > 0
        cached = [n for n in os.listdir(bare_node_backend.CACHE) if n.endswith(".zip")]
        assert len(cached) == 1
        mtime = os.path.getmtime(os.path.join(bare_node_backend.CACHE, cached[0]))
        app.stop()
        assert f.remote() > 0  # a new worker: it finds the cached runtime
        assert os.path.getmtime(os.path.join(bare_node_backend.CACHE, cached[0])) == mtime
