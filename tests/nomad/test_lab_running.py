"""The server extension's backend and running-work endpoints against a real Nomad dev agent.

The agent's node has fake NVIDIA GPUs (the fake device plugin); a worker job
shaped like the backend's asks for one H100 and runs ``/bin/sh``. A real
``jupyter server`` (subprocess) with ``backend = "nomad"`` lists it as
``jupyter-remote ps`` does, with the GPU its allocation holds, tails its log
and stops it.
"""

from __future__ import annotations

import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from agent import H100_80GB, DevAgent
from test_nomad_cli import closed_port, dead_pid, meta, register, running, wait_for

from jupyter_remote.backends.base import WorkerSpec
from jupyter_remote.backends.nomad._client import NomadClient
from jupyter_remote.backends.nomad._config import NomadConfig
from jupyter_remote.backends.nomad._jobspec import job_variable_path
from jupyter_remote.resources import parse_gpu

sys.path.insert(0, str(Path(__file__).parent.parent / "lab"))
from browser import accept_dialog, sidebar_page
from jupyter_proc import Jupyter, running_jupyter

pytestmark = [pytest.mark.nomad, pytest.mark.slow]


@pytest.fixture
def prefix() -> str:
    return f"t{uuid.uuid4().hex[:6]}"


@pytest.fixture
def nomad(nomad_gpu_agent: DevAgent, prefix: str) -> Iterator[NomadClient]:
    with NomadClient(NomadConfig(address=nomad_gpu_agent.address, job_prefix=prefix)) as client:
        yield client
        for stub in client.list_jobs(f"{prefix}-"):
            client.stop_job(str(stub["ID"]), purge=True)
            client.delete_variable(job_variable_path(str(stub["ID"])))


def _env(agent: DevAgent, prefix: str) -> dict[str, str]:
    return {
        "JUPYTER_REMOTE_BACKEND": "nomad",
        "NOMAD_ADDR": agent.address,
        "JUPYTER_REMOTE_NOMAD_JOB_PREFIX": prefix,
    }


@pytest.fixture
def lab(nomad_gpu_agent: DevAgent, prefix: str, tmp_path: Path) -> Iterator[Jupyter]:
    with running_jupyter(tmp_path, env=_env(nomad_gpu_agent, prefix)) as server:
        yield server


def _register_gpu_job(nomad: NomadClient, job_id: str) -> None:
    register(
        nomad,
        job_id,
        meta(f"127.0.0.1:{closed_port()}", dead_pid()),
        "echo hello from the worker; echo warming up >&2; sleep 120",
        spec=WorkerSpec("app.f", cpu=0.1, memory=64, gpu=parse_gpu("H100")),
    )


def _until(api: httpx.Client, path: str, ok: Any) -> Any:
    deadline = time.monotonic() + 30
    while True:
        reply = api.get(path).json()
        if ok(reply) or time.monotonic() > deadline:
            return reply
        time.sleep(0.3)


def test_the_backend_names_the_cluster_and_its_gpus(
    lab: Jupyter, nomad_gpu_agent: DevAgent
) -> None:
    with lab.client() as api:
        status = api.get("backend").json()
    assert status["backend"] == "nomad"
    assert status["address"] == nomad_gpu_agent.address
    assert status["reachable"] is True
    gpus = {g["device"]: g for g in status["gpus"]}
    assert gpus[H100_80GB.model]["count"] == 2
    assert gpus[H100_80GB.model]["gpu"]


def test_a_gpu_job_is_listed_tailed_and_stopped(
    lab: Jupyter, nomad: NomadClient, prefix: str
) -> None:
    job_id = f"{prefix}-abc123-app-f"
    _register_gpu_job(nomad, job_id)
    wait_for(nomad, job_id, running(1))
    with lab.client() as api:
        listed = _until(api, "running", lambda r: r["jobs"] and r["jobs"][0]["gpus"])
        assert listed["listable"] is True
        [job] = listed["jobs"]
        assert (job["id"], job["function"], job["owner"]) == (job_id, "app.f", "alice")
        assert (job["status"], job["running"], job["pending"]) == ("running", 1, 0)
        assert job["gpus"] == [H100_80GB.model]
        assert "gpu=1" in job["resources"]

        logs = _until(
            api,
            f"running/{job_id}/logs?type=stdout",
            lambda r: "hello" in "".join(a["text"] for a in r["allocations"]),
        )
        assert "hello from the worker" in logs["allocations"][0]["text"]

        missing = api.post(f"running/{prefix}-nope/stop")
        assert missing.status_code == 404
        assert "jupyter-remote ps --all" in missing.json()["message"]
        assert api.post(f"running/{job_id}/stop").json() == {"job": job_id, "stopped": True}
        assert api.get("running").json()["jobs"] == []
        stopped = api.get("running?all=1").json()["jobs"]
        assert [(j["id"], j["status"]) for j in stopped] in (
            [(job_id, "stopped")],
            [(job_id, "stopping")],
        )


def test_the_sidebar_shows_a_gpu_job_its_log_and_stops_it(
    nomad_gpu_agent: DevAgent, nomad: NomadClient, prefix: str, tmp_path: Path
) -> None:
    job_id = f"{prefix}-abc123-app-f"
    _register_gpu_job(nomad, job_id)
    wait_for(nomad, job_id, running(1))
    env = _env(nomad_gpu_agent, prefix)
    with running_jupyter(tmp_path, app="lab", env=env) as lab, sidebar_page(lab) as page:
        backend = page.locator('.jr-Backend[data-backend="nomad"]')
        assert nomad_gpu_agent.address in backend.inner_text()
        assert "2 × " in page.locator(".jr-Section-backend").inner_text()
        row = page.locator(f'.jr-Job[data-job="{job_id}"]')
        row.wait_for()
        assert H100_80GB.model in row.inner_text()

        row.get_by_title(f"Logs of {job_id}").click()
        logs = page.locator(".jp-Dialog .jr-Logs")
        page.wait_for_function(
            "() => document.querySelector('.jp-Dialog .jr-Logs')?.textContent.includes('warming')"
        )
        assert "warming up" in logs.inner_text()
        accept_dialog(page)

        row.get_by_title(f"Stop {job_id}").click()
        accept_dialog(page)
        row.wait_for(state="detached")
    assert nomad.job(job_id)["Stop"] is True
