"""Modal's everyday names as workers see them, on the local backend (real worker processes)."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
import surface_funcs as funcs

import jupyter_remote as jr


@pytest.fixture
def app(request: pytest.FixtureRequest) -> Iterator[jr.App]:
    app = jr.App(f"surface-{request.node.name[:40]}", backend="local")
    with app.run():
        yield app


def test_the_worker_has_its_task_id_and_is_not_local(app: jr.App) -> None:
    task_id, modal_task_id, local = app.function()(funcs.task_env).remote()
    assert task_id and modal_task_id == task_id
    assert local is False
    assert jr.is_local() and "JUPYTER_REMOTE_TASK_ID" not in os.environ


def test_image_imports_raise_on_the_worker(app: jr.App) -> None:
    with pytest.raises(ModuleNotFoundError, match="a_module_that_is_nowhere"):
        app.function()(funcs.import_in_image_block).remote()


def test_single_use_containers_run_one_input_per_worker(app: jr.App) -> None:
    f = app.function(single_use_containers=True, max_containers=2)(funcs.task_env_of)
    ids = list(f.map(range(5)))
    assert len(set(ids)) == 5  # five inputs, five workers, never more than two at once
    assert len({f.remote(0), f.remote(1)}) == 2


def test_max_inputs_1_is_single_use_and_workers_are_reused_without_it(app: jr.App) -> None:
    once = app.function(max_inputs=1, max_containers=1)(funcs.task_env_of)
    assert len(set(once.map(range(3)))) == 3
    reused = app.function(max_containers=1, name="reused")(funcs.task_env_of)
    assert len(set(reused.map(range(3)))) == 1
