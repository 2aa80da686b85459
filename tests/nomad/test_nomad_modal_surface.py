"""Modal's everyday names on Nomad: task id, ``is_local``, ``ephemeral_disk``, ``shell``.

The job-spec test needs no agent; the others run functions on a real
``nomad agent -dev`` (tests/nomad/agent.py) and skip without the binary.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import surface_funcs as funcs
from agent import DevAgent
from test_nomad_cli import raw_exec_job

import jupyter_remote as jr
from jupyter_remote.backends.base import WorkerSpec

CONSOLE_SCRIPT = Path(sys.executable).parent / "jupyter-remote"
SHELL_TARGET = Path(__file__).parents[1] / "cli" / "scripts" / "shell_target.py"


def _job(spec: WorkerSpec) -> dict[str, Any]:
    args = ["-m", "jupyter_remote.runtime"]
    return raw_exec_job("jr-disk", spec, {"app": "a"}, "python3", args, dispatched=False)


def test_ephemeral_disk_is_the_task_groups_ephemeral_disk() -> None:
    group = _job(WorkerSpec("a.f", ephemeral_disk=2048))["Job"]["TaskGroups"][0]
    assert group["EphemeralDisk"] == {"SizeMB": 2048}
    assert "EphemeralDisk" not in _job(WorkerSpec("a.f"))["Job"]["TaskGroups"][0]


@pytest.fixture
def app(
    nomad_agent: DevAgent, monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest
) -> Iterator[jr.App]:
    monkeypatch.setenv("NOMAD_ADDR", nomad_agent.address)
    app = jr.App(f"surface-{request.node.name[:30]}", backend="nomad")
    with app.run():
        yield app


def _jobs_of(agent: DevAgent, app: jr.App) -> list[dict[str, Any]]:
    jobs = [agent.get(f"/v1/job/{stub['ID']}") for stub in agent.get("/v1/jobs")]
    # The pool's parameterized job; its dispatches (one per worker) carry its meta too.
    return [
        j for j in jobs if (j.get("Meta") or {}).get("app") == app.name and not j.get("ParentID")
    ]


@pytest.mark.nomad
def test_a_nomad_worker_has_its_task_id_and_is_not_local(
    app: jr.App, nomad_agent: DevAgent
) -> None:
    task_id, modal_task_id, local = app.function()(funcs.task_env).remote()
    assert local is False
    assert modal_task_id == task_id
    (job,) = _jobs_of(nomad_agent, app)
    assert task_id is not None and task_id.startswith(job["ID"])  # <job id>-<worker n>


@pytest.mark.nomad
def test_ephemeral_disk_reaches_nomad(app: jr.App, nomad_agent: DevAgent) -> None:
    f = app.function(ephemeral_disk=600)(funcs.task_env)
    assert f.remote()[2] is False  # placed and ran with that disk
    (job,) = _jobs_of(nomad_agent, app)
    assert job["TaskGroups"][0]["EphemeralDisk"]["SizeMB"] == 600


@pytest.mark.nomad
def test_single_use_containers_on_nomad(app: jr.App) -> None:
    f = app.function(single_use_containers=True, max_containers=2)(funcs.task_env_of)
    assert len(set(f.map(range(3)))) == 3


@pytest.mark.nomad
@pytest.mark.parametrize("advertise", ["127.0.0.1", "127.0.0.2"])  # .2: off loopback, TLS
def test_shell_on_a_nomad_worker(nomad_agent: DevAgent, advertise: str) -> None:
    env = {**os.environ, "NOMAD_ADDR": nomad_agent.address, "JUPYTER_REMOTE_PROGRESS": "0"}
    env["JUPYTER_REMOTE_ADVERTISE_HOST"] = advertise
    typed = (
        'echo "TASK=$JUPYTER_REMOTE_TASK_ID ALLOC=$NOMAD_ALLOC_ID VAR=$SHELL_TEST_VAR"\nexit 5\n'
    )
    proc = subprocess.run(
        [str(CONSOLE_SCRIPT), "shell", "--backend", "nomad", f"{SHELL_TARGET}::fit", "--cmd", "sh"],
        input=typed,
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert proc.returncode == 5, proc.stderr
    seen = re.findall(r"TASK=([^$\s]+) ALLOC=([^$\s]+) VAR=(\S+)", proc.stdout)
    assert len(seen) == 1, proc.stdout
    assert seen[0][2] == "from-the-function"  # the function's env, inside a Nomad allocation
