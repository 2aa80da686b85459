"""The backend conformance suite against a real Nomad dev agent, plus Nomad-only checks.

Workers are allocations of raw_exec jobs started by the agent; they run the
node's plain Python on the bootstrap text and fetch our runtime from the
controller, as on a real cluster. Skipped (one line) without a `nomad` binary.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import conformance_funcs as funcs
import pytest
from agent import DevAgent
from conformance_suite import BackendConformance

import jupyter_remote as jr

pytestmark = pytest.mark.nomad


@pytest.fixture(autouse=True)
def _nomad_env(nomad_agent: DevAgent) -> Iterator[None]:
    # Nodes cannot import the test's modules: the backend ships them by value by itself
    # (api/_shipping.py), as it does for a user's own packages.
    os.environ["NOMAD_ADDR"] = nomad_agent.address
    yield


class TestNomadBackend(BackendConformance):
    backend = "nomad"

    def test_large_arguments_and_results(self, app: jr.App) -> None:
        # The node's python has no numpy: large bytes and text instead of arrays.
        f = app.function()(funcs.identity)
        blob = os.urandom(16 << 20)
        assert f.remote(blob) == blob
        text = "é✓" * (4 << 20)
        assert f.remote(text) == text

    def test_allocation_stopped_from_outside_is_retried(
        self, app: jr.App, nomad_agent: DevAgent
    ) -> None:
        f = app.function(max_containers=1)(funcs.sleep_pid)
        call = f.spawn(3.0)
        deadline = time.monotonic() + 30
        allocs: list[dict[str, object]] = []
        while time.monotonic() < deadline:
            pool = call._call.pool
            if any(w.inflight for w in pool.workers.values()):
                job_id = next(iter(pool.workers)).rsplit("-", 1)[0]
                allocs = nomad_agent.worker_allocations(job_id)
                if allocs:
                    break
            time.sleep(0.1)
        assert allocs, "the worker never started"
        subprocess.run(
            ["nomad", "alloc", "stop", "-detach", str(allocs[0]["ID"])],
            check=True, capture_output=True, env={**os.environ, "NOMAD_ADDR": nomad_agent.address},
        )  # fmt: skip
        assert call.get(timeout=60) > 0  # the input ran again on a new worker

    def test_job_carries_no_secret_and_is_purged(
        self, app: jr.App, nomad_agent: DevAgent, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
        secret = jr.Secret.from_dict({"API_KEY": "s3cr3t-NOMAD-99"})
        f = app.function(secrets=[secret])(funcs.read_env)
        assert f.remote("API_KEY") == {"API_KEY": "s3cr3t-NOMAD-99"}
        job_id = next(iter(f._pool.workers)).rsplit("-", 1)[0]  # type: ignore[union-attr]
        spec = nomad_agent.request("GET", f"/v1/job/{job_id}")
        text = str(spec)
        assert "s3cr3t-NOMAD-99" not in text
        variable = nomad_agent.get(f"/v1/var/nomad/jobs/{job_id}")["Items"]
        assert variable and not any(v in text for v in variable.values())  # credentials: there
        assert spec["Meta"]["function"].endswith(".read_env")
        app.stop()
        with pytest.raises(Exception, match="404"):
            nomad_agent.get(f"/v1/job/{job_id}")


CALLER = """
import os, sys, time
sys.path.insert(0, {conf!r})
import conformance_funcs as funcs
import jupyter_remote as jr
app = jr.App("orphan", backend="nomad")
f = app.function(max_containers=2)(funcs.sleep_pid)
calls = [f.spawn(120) for _ in range(2)]
deadline = time.monotonic() + 60
while sum(1 for w in calls[0]._call.pool.workers.values() if w.inflight) < 2:
    assert time.monotonic() < deadline
    time.sleep(0.1)
print(next(iter(calls[0]._call.pool.workers)).rsplit("-", 1)[0], flush=True)
time.sleep(300)
"""


def test_caller_killed_leaves_no_running_allocation(nomad_agent: DevAgent) -> None:
    conf = str(Path(funcs.__file__).parent)
    env = {**os.environ, "NOMAD_ADDR": nomad_agent.address}
    proc = subprocess.Popen(
        [sys.executable, "-c", CALLER.format(conf=conf)], stdout=subprocess.PIPE, text=True, env=env
    )
    assert proc.stdout is not None
    job_id = proc.stdout.readline().strip()
    assert job_id, "the caller did not start its workers"
    proc.kill()
    proc.wait()
    proc.stdout.close()
    deadline = time.monotonic() + 60
    running: list[str] = ["?"]
    while running and time.monotonic() < deadline:
        allocs = nomad_agent.worker_allocations(job_id)
        running = [a["ID"] for a in allocs if a["ClientStatus"] in ("running", "pending")]
        time.sleep(1)
    assert not running, f"allocations still running 60 s after the caller died: {running}"
