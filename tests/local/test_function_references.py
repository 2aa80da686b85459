"""Functions calling Functions from workers: references, nested calls, their cancellation.

Every call here runs on real worker processes of the local backend; the
nested ones go from the calling worker to its controller over the worker's
own connection and out to the target's pool.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import pytest
import ref_funcs

import jupyter_remote as jr
from jupyter_remote.api._function import set_call_hook
from jupyter_remote.controller import CallState, controller


@pytest.fixture
def app(request: pytest.FixtureRequest) -> Iterator[jr.App]:
    app = jr.App(f"refs-{request.node.name[:40]}", backend="local")
    with app.run():
        yield app


@pytest.fixture
def fns(app: jr.App) -> SimpleNamespace:
    return ref_funcs.build(app)


def _pool_of(app: jr.App, tag: str) -> object | None:
    return controller().pools.get((app.name, tag, "local"))


def test_a_function_calls_another_one_the_caller_never_called(
    app: jr.App, fns: SimpleNamespace
) -> None:
    assert _pool_of(app, "a") is None
    assert fns.b.remote(1) == 20
    assert _pool_of(app, "a") is not None  # created from the definition the caller holds


def test_map_starmap_and_for_each_from_a_worker(fns: SimpleNamespace) -> None:
    got = fns.mapper.remote(20)
    assert got["map"] == list(range(1, 21))
    assert got["unordered"] == list(range(1, 21))
    assert got["starmap"] == [2 * i for i in range(20)]
    assert got["for_each"] is None


def test_spawn_and_get_from_a_worker(fns: SimpleNamespace) -> None:
    assert fns.spawner.remote(4) == [1, 2, 3, 4]


def test_a_remote_exception_keeps_its_type_through_two_hops(fns: SimpleNamespace) -> None:
    with pytest.raises(ref_funcs.Boom, match="deep down"):
        fns.relay.remote("deep down")
    caught = fns.catcher.remote("on the worker")
    assert caught == "caught Boom: on the worker (cause RemoteTraceback)"


def test_a_result_that_cannot_be_unpickled_on_the_worker_is_named(fns: SimpleNamespace) -> None:
    message = fns.receives_unloadable.remote()
    assert message.startswith("the results of refs-test_a_result_that_cannot_be_unpi")
    assert "cannot be unpickled on this worker (RuntimeError: this value cannot be rebuilt)" in (
        message
    )


def test_generators_and_async_variants_from_a_worker(fns: SimpleNamespace) -> None:
    assert fns.counter.remote(4) == [0, 1, 2, 3]
    got = fns.asynchronous.remote(3)
    assert got == {"remote": 4, "map": [1, 2, 3], "spawn": 4, "gen": [0, 1, 2]}


def test_a_function_as_argument_and_as_return_value(fns: SimpleNamespace) -> None:
    assert fns.apply.remote(fns.a, 1) == 2
    assert fns.give.remote() is fns.a  # a reference comes back as the caller's own Function


def test_cls_and_instances_from_a_worker(fns: SimpleNamespace) -> None:
    assert fns.use_cls.remote(1) == 101
    assert fns.use_instance.remote(fns.model(7), 1) == 8


def test_local_run_of_the_caller_calls_the_other_remotely(fns: SimpleNamespace) -> None:
    assert fns.b.local(2) == 30


def test_output_of_a_nested_call_goes_where_the_outer_calls_goes(fns: SimpleNamespace) -> None:
    seen: list[CallState] = []
    lines: list[str] = []

    def route(call: CallState) -> None:  # what the notebook does: output into the cell
        seen.append(call)
        call.on_output = lambda line: lines.append(line.text)

    set_call_hook(route)
    try:
        assert fns.calls_loud.remote(5) == 5
    finally:
        set_call_hook(None)
    assert [call.fdef.name for call in seen] == ["calls_loud"]  # the hook sees the caller's
    assert "loud says 5\n" in lines


def test_cancelling_the_outer_call_interrupts_the_nested_one(
    fns: SimpleNamespace, tmp_path: Path
) -> None:
    marker = str(tmp_path / "slow")
    call = fns.waits_on_slow.spawn(marker)
    _wait_for(Path(marker + ".started"))
    call.cancel()
    _wait_for(Path(marker + ".interrupted"))
    with pytest.raises(jr.CallCancelledError):
        call.get(timeout=10)


def test_a_timeout_of_the_outer_call_cancels_the_nested_one(
    fns: SimpleNamespace, tmp_path: Path
) -> None:
    marker = str(tmp_path / "slow")
    with pytest.raises(jr.FunctionTimeoutError):
        fns.waits_briefly.remote(marker)
    _wait_for(Path(marker + ".interrupted"))


def test_nested_inputs_count_for_the_targets_autoscaling(app: jr.App) -> None:
    fns = ref_funcs.build(app, max_containers=3)
    assert fns.mapper.remote(6)["map"] == list(range(1, 7))
    pool = _pool_of(app, "a")
    assert pool is not None
    assert len(pool.workers) >= 2  # type: ignore[attr-defined]


def test_recursion_needs_room_or_is_refused(app: jr.App) -> None:
    fact = ref_funcs.build_recursive(app, max_containers=3)
    assert fact.remote(3) == 6
    lonely = ref_funcs.build_recursive(app, max_containers=1, name="lonely")
    with pytest.raises(jr.ConfigError, match="max_containers=1"):
        lonely.remote(2)


def test_recursion_deeper_than_the_pool_ends_at_the_outer_timeout(app: jr.App) -> None:
    fact = ref_funcs.build_recursive(app, max_containers=2, timeout=3, name="deep")
    start = time.monotonic()
    with pytest.raises(jr.FunctionTimeoutError):
        fact.remote(3)  # needs three workers at once
    assert time.monotonic() - start < 30


def test_a_worker_waiting_on_its_own_pool_gets_no_more_of_its_work(app: jr.App) -> None:
    tree = ref_funcs.build_tree(app, max_containers=2)
    assert list(tree.map([0, 0])) == [1, 1]
    pool = _pool_of(app, "tree")
    deadline = time.monotonic() + 30
    while sum(w.state == "ready" for w in pool.workers.values()) < 2:  # type: ignore[attr-defined]
        assert time.monotonic() < deadline, "the second worker did not connect"
        time.sleep(0.05)
    # Two ready workers and four queued inputs: a pool sends two to each, unless one of
    # them is the worker waiting for those inputs (they would wait behind it forever).
    assert tree.spawn(1).get(timeout=30) == 4


def test_a_function_of_an_app_that_is_not_running_is_refused(app: jr.App) -> None:
    other = jr.App("refs-not-running", backend="local")
    calls_elsewhere = ref_funcs.build_other_app_caller(app, other)
    with pytest.raises(jr.NotFoundError, match="'refs-not-running' is not running"):
        calls_elsewhere.remote(1)


def _wait_for(path: Path, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        assert time.monotonic() < deadline, f"{path.name} did not appear within {timeout}s"
        time.sleep(0.05)
