"""A stranger on a Nomad node cannot become a worker (a real dev agent, raw_exec).

As ``nobody`` on the node (the tests run as root, like the Nomad client):
the worker's credential file and its process environment are unreadable; a
credential taken from a worker that connected is refused, as is a second
connection claiming its id; and the task's Python keeps the task directory,
which Nomad leaves writable by everyone under raw_exec, off ``sys.path``.
"""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import conformance_funcs as funcs
import pytest
from agent import DevAgent

import jupyter_remote as jr
from jupyter_remote.controller import controller
from jupyter_remote.protocol import python_version
from jupyter_remote.runtime._fetch import Link

pytestmark = pytest.mark.nomad
ROOT = os.geteuid() == 0
NOBODY = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]


@pytest.fixture
def app(nomad_agent: DevAgent) -> Iterator[jr.App]:
    os.environ["NOMAD_ADDR"] = nomad_agent.address
    app = jr.App("security", backend="nomad")
    yield app
    app.stop()


def _as_nobody(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*NOBODY, *argv], capture_output=True, text=True, timeout=30)


def _running_worker(app: jr.App, nomad_agent: DevAgent) -> tuple[str, int, dict[str, str]]:
    """Start a worker busy for a while: its id, its pid, and its allocation."""
    f = app.function(max_containers=1)(funcs.sleep_pid)
    call = f.spawn(20)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        pool = call._call.pool
        busy = [w for w in pool.workers.values() if w.inflight]
        if busy:
            worker_id = busy[0].worker_id
            job_id, _, number = worker_id.rpartition("-")
            allocs = nomad_agent.worker_allocations(job_id)
            meta = {a["ID"]: nomad_agent.get(f"/v1/job/{quote(a['JobID'], safe='')}")["Meta"]
                    for a in allocs}  # fmt: skip
            alloc = next(a for a in allocs if meta[a["ID"]].get("worker") == number)
            pid = int(
                subprocess.run(
                    ["pgrep", "-f", f"worker-id {worker_id}$"], capture_output=True, text=True
                ).stdout.split()[0]
            )
            return worker_id, pid, alloc
        time.sleep(0.1)
    raise AssertionError("the worker never started")


@pytest.mark.skipif(
    not ROOT or shutil.which("setpriv") is None, reason="needs root and setpriv (util-linux)"
)
def test_nobody_on_the_node_cannot_read_or_use_a_workers_credential(
    app: jr.App, nomad_agent: DevAgent
) -> None:
    worker_id, pid, alloc = _running_worker(app, nomad_agent)
    secrets = nomad_agent.data_dir / "alloc" / alloc["ID"] / "worker" / "secrets" / "token.env"
    assert stat.S_IMODE(secrets.stat().st_mode) == 0o600
    text = secrets.read_text()
    token = text.split("JUPYTER_REMOTE_TOKEN=", 1)[1].split()[0]
    assert len(token) == 64
    # nobody: the file and the worker's environment are closed to it.
    denied = _as_nobody("cat", str(secrets))
    assert denied.returncode != 0 and "Permission denied" in denied.stderr
    denied = _as_nobody("cat", f"/proc/{pid}/environ")
    assert denied.returncode != 0 and "Permission denied" in denied.stderr
    # Even holding it, nobody gets nothing: the credential was spent when the worker connected.
    host, port = controller().loopback
    link = Link(host, port, worker_id, token, None)
    sock = link.open(5)
    with pytest.raises(ConnectionError):
        link.authenticate(sock, {"pid": 1, "python": list(python_version())})
    sock.close()
    # No other worker shares it: the job's variable holds one credential per allocation.
    job_id = worker_id.rpartition("-")[0]
    items = nomad_agent.get(f"/v1/var/nomad/jobs/{job_id}")["Items"]
    assert set(items) <= {"w0", "fingerprint"}


def test_the_task_directory_is_not_on_the_workers_path(app: jr.App, nomad_agent: DevAgent) -> None:
    f = app.function()(funcs.path_and_cwd)
    path, cwd = f.remote()
    assert "/alloc/" in cwd  # the task directory
    assert "" not in path and not any(Path(p).resolve() == Path(cwd).resolve() for p in path)
    job_id = next(iter(f._pool.workers)).rsplit("-", 1)[0]  # type: ignore[union-attr]
    args = nomad_agent.get(f"/v1/job/{job_id}")["TaskGroups"][0]["Tasks"][0]["Config"]["args"]
    assert args[:2] == ["-P", "-c"]


def test_off_loopback_workers_pin_the_controllers_certificate(
    app: jr.App, nomad_agent: DevAgent, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("JUPYTER_REMOTE_ADVERTISE_HOST", "127.0.0.2")  # as if on another machine
    f = app.function()(funcs.square)
    assert f.remote(9) == 81
    ws = next(iter(f._pool.workers.values()))  # type: ignore[union-attr]
    assert ws.conn is not None
    assert str(ws.conn.transport.get_extra_info("cipher")[1]).startswith("TLS")
    job_id = ws.worker_id.rpartition("-")[0]
    spec = nomad_agent.get(f"/v1/job/{job_id}")
    assert "127.0.0.2:" in spec["Meta"]["controller"]
    pin = nomad_agent.get(f"/v1/var/nomad/jobs/{job_id}")["Items"]["fingerprint"]
    assert len(pin) == 64 and pin not in str(spec)
