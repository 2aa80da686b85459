"""``@app.cls`` parameters and ``with_options`` on real workers: every backend runs these.

Subclass :class:`ClsParametersConformance` with ``backend`` set. A pool is
told apart by its workers' pids: the same parameters (or options) reach the
same worker, other ones another.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import ClassVar

import cls_params_funcs as pf
import pytest

import jupyter_remote as jr


class ClsParametersConformance:
    backend: ClassVar[str]

    @pytest.fixture
    def app(self, request: pytest.FixtureRequest) -> Iterator[jr.App]:
        app = jr.App(f"cp-{request.node.name[:40]}", backend=self.backend)
        with app.run():
            yield app

    def test_parameters_select_the_pool_and_reach_enter(self, app: jr.App) -> None:
        model = app.cls()(pf.Model)
        default, pid = model().describe.remote()
        assert default == "small/2/False/b'\\x00'"
        # The defaults spelled out are the same parameters: the same pool, the same worker.
        assert model(size="small", layers=2).describe.remote() == (default, pid)
        large, large_pid = model(size="large", verbose=True, seed=b"\x01").describe.remote()
        assert large == "large/2/True/b'\\x01'"
        assert large_pid != pid
        assert model(size="large", verbose=True, seed=b"\x01").describe.remote()[1] == large_pid
        assert model(layers=5).describe.remote()[0] == "small/5/False/b'\\x00'"

    def test_required_parameter(self, app: jr.App) -> None:
        required = app.cls()(pf.Required)
        assert required(name="ada").hello.remote() == "hello ada"
        assert required(name="ada").hello.local() == "hello ada"
        with pytest.raises(TypeError, match="missing the parameter 'name'"):
            required()

    def test_local_runs_enter_with_the_parameters(self, app: jr.App) -> None:
        model = app.cls()(pf.Model)
        assert model(size="tiny").describe.local()[0] == "tiny/2/False/b'\\x00'"

    def test_cls_with_options_runs_in_its_own_pool(self, app: jr.App) -> None:
        model = app.cls()(pf.Model)
        _, pid = model(size="a").describe.remote()
        tuned = model.with_options(env={"JR_VARIANT": "tuned"}, timeout=60)
        assert tuned(size="a").env.remote("JR_VARIANT") == "tuned"
        assert tuned(size="a").describe.remote()[1] != pid
        # The plain class keeps its worker (its pool was not replaced by the variant's).
        assert model(size="a").env.remote("JR_VARIANT") is None
        assert model(size="a").describe.remote()[1] == pid

    def test_function_with_options_runs_in_its_own_pool(self, app: jr.App) -> None:
        fn = app.function()(pf.pid_and_env)
        pid, seen = fn.remote("JR_VARIANT")
        assert seen is None
        variant = fn.with_options(env={"JR_VARIANT": "v"})
        v_pid, v_seen = variant.remote("JR_VARIANT")
        assert v_seen == "v" and v_pid != pid
        assert fn.remote("JR_VARIANT") == (pid, None)
        assert variant.remote("JR_VARIANT") == (v_pid, "v")

    def test_a_worker_constructs_an_instance_by_its_parameters(self, app: jr.App) -> None:
        model = app.cls()(pf.Model)
        build = app.function()(pf.construct_on_worker)
        loaded, pid = build.remote(model, size="from-worker")
        assert loaded == "from-worker/2/False/b'\\x00'"
        assert model(size="from-worker").describe.remote()[1] == pid
        with pytest.raises(TypeError, match="unknown parameter 'sise'"):
            build.remote(model, sise="x")
