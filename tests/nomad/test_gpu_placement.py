"""GPU placement on a real scheduler: a dev agent whose node shows 2 x H100 80GB, 1 x A100 40GB.

The GPUs are fake (the ``nomad-device-fakegpu`` device plugin, see
``../shared/nomad/README.md``), but their fingerprint, the device requests,
constraints, affinities, Nomad's choice of GPU and the reserved-GPU
environment are real: the plugin reports GPU UUIDs as instance ids and Nomad
sets ``NVIDIA_VISIBLE_DEVICES`` to the ones it reserved, which the worker turns
into ``CUDA_VISIBLE_DEVICES``. Everything goes through the public API.
Skipped (one line) without ``nomad`` or the plugin.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator

import gpu_funcs
import pytest
from agent import A100_40GB, H100_80GB, DevAgent
from kernel_harness import start_kernel

import jupyter_remote as jr

pytestmark = [pytest.mark.nomad, pytest.mark.usefixtures("gpu_cluster")]

FAIL_FAST_S = 10  # a refusal takes one API round trip; the capacity wait would be 300 s


@pytest.fixture
def app(request: pytest.FixtureRequest) -> Iterator[jr.App]:
    # Stopping the app purges its jobs, so the next test finds every GPU free.
    app = jr.App(f"gpu-{request.node.name[:40]}", backend="nomad")
    with app.run():
        yield app


@pytest.fixture(scope="module")
def h100s(nomad_gpu_agent: DevAgent) -> set[str]:
    """The UUIDs the plugin reports for the node's two H100s."""
    ids = set(nomad_gpu_agent.gpu_ids()[H100_80GB.model])
    assert len(ids) == H100_80GB.count
    return ids


@pytest.fixture(scope="module")
def a100(nomad_gpu_agent: DevAgent) -> str:
    (uuid,) = nomad_gpu_agent.gpu_ids()[A100_40GB.model]
    return uuid


def test_one_h100(app: jr.App, h100s: set[str]) -> None:
    seen = app.function(gpu="H100")(gpu_funcs.visible_gpus).remote()
    assert len(seen.gpus) == 1 and set(seen.gpus) <= h100s, seen
    assert seen.cuda == seen.nvidia  # raw_exec: CUDA sees only what Nomad reserved


def test_two_h100s_on_one_worker(app: jr.App, h100s: set[str]) -> None:
    seen = app.function(gpu="H100:2")(gpu_funcs.visible_gpus).remote()
    assert sorted(seen.gpus) == sorted(h100s), seen


def test_concurrent_h100_workers_get_different_gpus(app: jr.App, h100s: set[str]) -> None:
    first = app.function(gpu="H100", name="first")(gpu_funcs.visible_gpus)
    second = app.function(gpu="H100", name="second")(gpu_funcs.visible_gpus)
    calls = [first.spawn(3.0), second.spawn(3.0)]
    a, b = (call.get(timeout=90) for call in calls)
    assert a.start < b.end and b.start < a.end, "the two workers did not run at the same time"
    assert len(a.gpus) == len(b.gpus) == 1
    assert {*a.gpus, *b.gpus} == h100s, (a, b)


def test_map_spreads_over_both_h100s(app: jr.App, h100s: set[str]) -> None:
    f = app.function(gpu="H100", max_containers=2)(gpu_funcs.visible_gpus)
    results = list(f.map([1.5] * 4))
    by_worker: dict[int, set[str | None]] = {}
    for seen in results:
        by_worker.setdefault(seen.pid, set()).add(seen.cuda)
    assert len(by_worker) == 2, by_worker
    assert all(len(cuda) == 1 for cuda in by_worker.values()), by_worker
    assert {c for cuda in by_worker.values() for c in cuda} == h100s, by_worker


def test_preference_list_takes_the_first_model_the_cluster_has(
    app: jr.App, h100s: set[str], a100: str
) -> None:
    prefers_missing = app.function(gpu=["A100-80GB", "H100"], name="missing_first")
    assert set(prefers_missing(gpu_funcs.visible_gpus).remote().gpus) <= h100s
    # Both present: the order decides (Nomad's device affinities), not the table.
    for order, expected in ((["A100-40GB", "H100"], {a100}), (["H100", "A100-40GB"], h100s)):
        f = app.function(gpu=order, name="order_" + "_".join(order).replace("-", ""))
        seen = f(gpu_funcs.visible_gpus).remote()
        assert len(seen.gpus) == 1 and set(seen.gpus) <= expected, (order, seen)


def _fails_fast(app: jr.App, gpu: str, nomad_gpu_agent: DevAgent) -> str:
    f = app.function(gpu=gpu, name="refused")(gpu_funcs.visible_gpus)
    start = time.monotonic()
    with pytest.raises(jr.GpuUnavailableError) as info:
        f.remote()
    assert time.monotonic() - start < FAIL_FAST_S
    # Refused before anything was submitted: no job holds or waits for a GPU.
    jobs = [j["ID"] for j in nomad_gpu_agent.get("/v1/jobs") if j["ID"].endswith("-refused")]
    assert not jobs, jobs
    return str(info.value)


def test_model_no_node_has_fails_fast_naming_what_there_is(
    app: jr.App, nomad_gpu_agent: DevAgent
) -> None:
    message = _fails_fast(app, "A100-80GB", nomad_gpu_agent)
    assert "no node has a GPU matching gpu='A100-80GB'" in message
    # The cluster's GPUs as gpu= values, each with what the node reports.
    assert (
        "this cluster has: 2 x gpu='H100' (NVIDIA H100 80GB HBM3), "
        "1 x gpu='A100-40GB' (NVIDIA A100-SXM4-40GB)"
    ) in message, message
    assert "e.g. gpu='H100'" in message
    assert nomad_gpu_agent.address in message


def test_more_gpus_than_a_node_has_fails_fast_with_the_most_it_can_get(
    app: jr.App, nomad_gpu_agent: DevAgent
) -> None:
    message = _fails_fast(app, "H100:3", nomad_gpu_agent)
    assert "no node has 3 GPUs of one model matching gpu='H100:3'" in message, message
    assert "2 x gpu='H100' (NVIDIA H100 80GB HBM3)" in message
    assert "Ask for at most 2 per worker, e.g. gpu='H100:2'" in message


CELL = "%%remote gpu=H100\nimport os\nos.environ.get('CUDA_VISIBLE_DEVICES')"


def test_remote_cell_in_a_kernel_gets_an_h100(nomad_gpu_agent: DevAgent, h100s: set[str]) -> None:
    kernel = start_kernel(
        {
            "JUPYTER_REMOTE_BACKEND": "nomad",
            "NOMAD_ADDR": nomad_gpu_agent.address,
            # A %%remote cell runs in IPython on the worker: the node's Python needs it.
            "JUPYTER_REMOTE_NOMAD_PYTHON": sys.executable,
        }
    )
    try:
        ex = kernel.ok(CELL, timeout=90)
        (result,) = ex.of("execute_result")
        uuid = result["data"]["text/plain"].strip("'")
        assert uuid in h100s, (uuid, ex.stderr)
    finally:
        kernel.close(now=False)  # a clean exit stops the kernel's Nomad jobs


def test_agent_reports_the_fake_gpus(nomad_gpu_agent: DevAgent) -> None:
    ids = nomad_gpu_agent.gpu_ids()
    assert {model: len(uuids) for model, uuids in ids.items()} == {
        H100_80GB.model: 2,
        A100_40GB.model: 1,
    }
    assert all(u.startswith("GPU-") for uuids in ids.values() for u in uuids)
