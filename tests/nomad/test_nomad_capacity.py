"""A shared cluster: workers wait for room, give it back, and leave nothing behind.

On the fake-GPU agent (2 x H100, 1 x A100) a pool asking for H100s has room
for two workers at most, so capacity can be made scarce in seconds. Each
worker is one dispatch of its pool's job: what the pool no longer wants is
never placed later, and nothing it stopped is replaced.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Iterator
from typing import Any

import gpu_funcs
import pytest
from agent import DevAgent

import jupyter_remote as jr
from jupyter_remote.controller import controller

pytestmark = [pytest.mark.nomad, pytest.mark.usefixtures("gpu_cluster")]
_TERMINAL = ("complete", "failed", "lost")


@pytest.fixture
def app(request: pytest.FixtureRequest) -> Iterator[jr.App]:
    app = jr.App(f"cap-{request.node.name[:40]}", backend="nomad")
    with app.run():
        yield app


def _job_id(label: str) -> str:
    backend: Any = controller().backends["nomad"]
    return str(backend._jobs[label].job_id)


def _settled(agent: DevAgent, job_id: str, seconds: float) -> list[dict[str, Any]]:
    """The job's worker allocations once every one has ended, watched for ``seconds`` more."""
    deadline = time.monotonic() + 60
    allocs = agent.worker_allocations(job_id)
    while time.monotonic() < deadline and not all(a["ClientStatus"] in _TERMINAL for a in allocs):
        time.sleep(0.5)
        allocs = agent.worker_allocations(job_id)
    time.sleep(seconds)  # a stray would be placed now that the node is free
    return agent.worker_allocations(job_id)


def test_workers_the_pool_no_longer_wants_are_never_placed(
    app: jr.App, nomad_gpu_agent: DevAgent
) -> None:
    f = app.function(gpu="H100", max_containers=4, scaledown_window=1)(gpu_funcs.visible_gpus)
    results = list(f.map([1.0] * 4))  # 4 workers asked for, room for 2: 2 wait, then are withdrawn
    assert len(results) == 4
    pids = {r.pid for r in results}
    allocs = _settled(nomad_gpu_agent, _job_id(f"{app.name}.visible_gpus"), 4)
    assert len(allocs) == len(pids) <= 2, [(a["JobID"], a["ClientStatus"]) for a in allocs]


def test_a_warm_worker_after_scale_down_leaves_no_stray(
    app: jr.App, nomad_gpu_agent: DevAgent
) -> None:
    f = app.function(gpu="H100", scaledown_window=1)(gpu_funcs.visible_gpus)
    first = f.remote()
    deadline = time.monotonic() + 30
    while f._pool is not None and f._pool.alive() and time.monotonic() < deadline:  # type: ignore[union-attr]
        time.sleep(0.2)  # the worker retires after its scaledown window
    second = f.remote()
    assert first.pid != second.pid
    # With one scaled job, the second worker re-created the first one's allocation too.
    allocs = _settled(nomad_gpu_agent, _job_id(f"{app.name}.visible_gpus"), 3)
    assert len(allocs) == 2, [(a["Name"], a["ClientStatus"]) for a in allocs]


def test_waiting_for_capacity_is_not_a_connect_timeout(
    app: jr.App, monkeypatch: pytest.MonkeyPatch
) -> None:
    ctl = controller()
    monkeypatch.setattr(ctl, "settings", dataclasses.replace(ctl.settings, worker_start_timeout=2))
    hog = app.function(gpu="H100:2", name="hog")(gpu_funcs.visible_gpus)
    held = hog.spawn(8.0)  # both H100s, for 8 s
    deadline = time.monotonic() + 60
    while not any(w.state == "ready" for w in hog._pool.workers.values()):  # type: ignore[union-attr]
        assert time.monotonic() < deadline, "the hog never started"
        time.sleep(0.1)
    waiter = app.function(gpu="H100", name="waiter")(gpu_funcs.visible_gpus)
    t0 = time.monotonic()
    seen = waiter.remote()  # waits ~6 s for a GPU: longer than the 2 s connect timeout
    assert time.monotonic() - t0 > 2
    assert seen.gpus and held.get(timeout=60).gpus


def test_idle_workers_of_other_pools_are_given_back(app: jr.App) -> None:
    warm = app.function(gpu="H100:2", scaledown_window=600, name="warm")(gpu_funcs.visible_gpus)
    assert len(warm.remote().gpus) == 2  # its worker stays warm for 10 minutes, holding both
    other = app.function(gpu="H100", name="other")(gpu_funcs.visible_gpus)
    t0 = time.monotonic()
    assert len(other.remote().gpus) == 1
    assert time.monotonic() - t0 < 60  # not the 600 s scaledown window
    assert not warm._pool.alive()  # type: ignore[union-attr]
