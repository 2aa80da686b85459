"""``jupyter-remote ps|logs|stop|gc`` against a real ``nomad agent -dev``.

Jobs shaped like the backend's (``build_worker_job``, the same meta) are
registered directly, running ``/bin/sh`` instead of a worker, with meta that
points at a controller that is gone, alive, or unreachable.
"""

from __future__ import annotations

import contextlib
import io
import os
import socket
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from agent import DevAgent

from jupyter_remote.backends.base import WorkerSpec
from jupyter_remote.backends.nomad._client import NomadClient, NomadNotFoundError
from jupyter_remote.backends.nomad._config import NomadConfig
from jupyter_remote.backends.nomad._jobspec import build_worker_job, job_variable_path
from jupyter_remote.cli import _main
from jupyter_remote.cli._nomad import add_parser

pytestmark = pytest.mark.nomad

Cli = Callable[..., tuple[int, str, str]]


@pytest.fixture
def prefix(monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> str:
    """A job prefix of this test's own, so that gc never sees another test's jobs."""
    ident = f"t{uuid.uuid4().hex[:6]}"
    for name in list(os.environ):
        if name.startswith("NOMAD_") or name.startswith("JUPYTER_REMOTE_NOMAD_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("JUPYTER_REMOTE_NOMAD_JOB_PREFIX", ident)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    monkeypatch.delenv("JUPYTER_REMOTE_CONFIG", raising=False)
    # Until the commands are listed in _main._COMMANDS, add them the way _main would.
    if add_parser not in _main._COMMANDS:
        monkeypatch.setattr(_main, "_COMMANDS", (*_main._COMMANDS, add_parser))
    monkeypatch.setattr("sys.stdin", Pipe(""))
    return ident


@pytest.fixture
def nomad(nomad_agent: DevAgent, prefix: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    monkeypatch.setenv("NOMAD_ADDR", nomad_agent.address)
    with NomadClient(NomadConfig.load()) as client:
        yield client
        for stub in client.list_jobs(f"{prefix}-"):
            with contextlib.suppress(NomadNotFoundError):
                client.stop_job(str(stub["ID"]), purge=True)
            client.delete_variable(job_variable_path(str(stub["ID"])))


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str]) -> Cli:
    def run(*args: str) -> tuple[int, str, str]:
        code = _main.main(list(args))
        out, err = capsys.readouterr()
        return code, out, err

    return run


class Terminal(io.StringIO):
    """Stdin that says it is a terminal, with the user's answers already typed."""

    def isatty(self) -> bool:
        return True


class Pipe(io.StringIO):
    def isatty(self) -> bool:
        return False


def dead_pid() -> int:
    proc = subprocess.Popen(["true"])
    proc.wait()  # reaped: the pid names no process (until reused, which takes a while)
    return proc.pid


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def silent_controller() -> Iterator[str]:
    """An address whose connections time out: a listener with a full accept queue."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(0)
        address = listener.getsockname()
        with socket.create_connection(address, timeout=5):  # fills the queue
            yield f"{address[0]}:{address[1]}"


def meta(controller: str, pid: int, host: str | None = None) -> dict[str, str]:
    return {
        "jupyter_remote": "worker",
        "app": "app",
        "function": "app.f",
        "owner": "alice",
        "session": "abc123",
        "controller": controller,
        "controller_host": host or socket.gethostname(),
        "controller_pid": str(pid),
        "created": str(int(time.time()) - 90),
    }


def raw_exec_job(
    job_id: str,
    spec: WorkerSpec,
    job_meta: dict[str, str],
    python: str,
    command_args: list[str],
    dispatched: bool = True,
) -> dict[str, Any]:
    """A worker job as the backend builds it, for the raw_exec driver of a dev agent."""
    return build_worker_job(
        job_id=job_id,
        spec=spec,
        count=1,  # per dispatch
        driver="raw_exec",
        datacenters=["*"],
        node_pool=None,
        namespace="default",
        region=None,
        priority=50,
        python=python,
        docker_image="",
        command_args=command_args,
        env={},
        meta=job_meta,
        dispatched=dispatched,
    )


def register(
    nomad: NomadClient,
    job_id: str,
    job_meta: dict[str, str],
    script: str,
    count: int = 1,
    spec: WorkerSpec | None = None,
) -> None:
    """Register a job as the backend does: its variable, the job, then one dispatch a worker."""
    spec = spec or WorkerSpec("app.f", cpu=0.1, memory=64)
    body = raw_exec_job(job_id, spec, job_meta, "/bin/sh", ["-c", script])
    nomad.put_variable(job_variable_path(job_id), {"w0": "t0ken"})
    nomad.register_job(body["Job"])
    for number in range(count):
        nomad.dispatch_job(job_id, {"worker": str(number)})


def allocations(nomad: NomadClient, job_id: str) -> list[dict[str, Any]]:
    """The allocations of the workers dispatched from ``job_id``."""
    allocs = []
    for stub in nomad.list_jobs(f"{job_id}/dispatch-"):
        allocs += nomad.job_allocations(str(stub["ID"]))
    return allocs


def wait_for(
    nomad: NomadClient, job_id: str, ok: Callable[[list[dict[str, Any]]], bool]
) -> list[dict[str, Any]]:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        allocs = allocations(nomad, job_id)
        if ok(allocs):
            return allocs
        time.sleep(0.2)
    raise AssertionError(f"the allocations of {job_id} never got there: {allocs}")


def running(n: int) -> Callable[[list[dict[str, Any]]], bool]:
    return lambda allocs: sum(a["ClientStatus"] == "running" for a in allocs) == n


def finished(allocs: list[dict[str, Any]]) -> bool:
    return bool(allocs) and all(a["ClientStatus"] in ("complete", "failed") for a in allocs)


def test_ps_logs_and_gc_of_an_orphan(
    nomad: NomadClient, prefix: str, cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    job_id = f"{prefix}-abc123-app-f"
    script = "echo hello; echo oops >&2; sleep 60"
    register(nomad, job_id, meta(f"127.0.0.1:{closed_port()}", dead_pid()), script, count=2)
    allocs = wait_for(nomad, job_id, running(2))

    code, out, err = cli("ps")
    assert (code, err) == (0, "")
    header, row = out.splitlines()
    assert header.split() == [
        "JOB", "FUNCTION", "OWNER", "STATUS", "RUNNING", "PENDING", "RESOURCES", "AGE"
    ]  # fmt: skip
    assert row.split() == [job_id, "app.f", "alice", "running", "2", "0", "cpu=0.1",
                           "mem=64MiB", "1m"]  # fmt: skip

    # Both allocations have written their lines once they run... almost: wait for it.
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        code, out, err = cli("logs", job_id)
        if out.count("hello") == 2:
            break
        time.sleep(0.2)
    assert (code, err) == (0, "")
    prefixes = sorted(f"[{a['ID'][:8]}] hello" for a in allocs)
    assert sorted(out.splitlines()) == prefixes
    code, out, _ = cli("logs", job_id, "--stderr", "--alloc", allocs[0]["ID"][:6])
    assert (code, out) == (0, "oops\n")
    code, _, err = cli("logs", job_id, "--alloc", "zzzz")
    assert code == 1 and err.startswith(f"Error: job {job_id!r} has no allocation 'zzzz'")

    code, out, _ = cli("gc", "--dry-run")
    assert code == 0
    assert out.startswith(f"Would purge {job_id} (owner alice): its controller (pid ")
    assert nomad.job(job_id)["Status"] == "running"

    code, out, err = cli("gc")  # stdin is no terminal: nothing happens without --yes
    assert code == 2 and "pass --yes" in err
    assert nomad.job(job_id)["Status"] == "running"

    monkeypatch.setattr("sys.stdin", Terminal("n\n"))  # asks on a terminal
    code, out, err = cli("gc")
    assert (code, err) == (1, "Stop and purge 1 job(s)? [y/N] Nothing collected.\n")
    assert out.startswith(f"{job_id} (owner alice): its controller (pid ")
    monkeypatch.setattr("sys.stdin", Pipe(""))

    code, out, err = cli("gc", "--yes")
    assert (code, err) == (0, "")
    assert out.startswith(f"Purged {job_id} (owner alice): its controller (pid ")
    with pytest.raises(NomadNotFoundError):
        nomad.job(job_id)
    assert nomad.get_variable(job_variable_path(job_id)) is None

    code, out, _ = cli("ps", "--all")
    assert (code, out) == (0, f"No jupyter_remote jobs on {nomad.config.address}.\n")
    assert cli("gc", "--yes")[1] == "No orphaned jupyter_remote jobs.\n"


def test_gc_keeps_jobs_whose_controller_is_alive(nomad: NomadClient, prefix: str, cli: Cli) -> None:
    with socket.socket() as listener, silent_controller() as unreachable:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        alive = meta(f"127.0.0.1:{listener.getsockname()[1]}", os.getpid())
        # Running, and finished (idle): its controller may scale it up again.
        register(nomad, f"{prefix}-s1-busy", alive, "sleep 60")
        register(nomad, f"{prefix}-s1-idle", alive, "echo done")
        # Another host's controller, which refuses connections: gone.
        elsewhere = meta(f"127.0.0.1:{closed_port()}", 1, host="elsewhere.example")
        register(nomad, f"{prefix}-s2-refused", elsewhere, "sleep 60")
        # A controller that does not answer in time (unreachable from here): left alone
        # while its job runs, collected once the job has finished.
        silent = meta(unreachable, 1, host="elsewhere.example")
        register(nomad, f"{prefix}-s3-busy", silent, "sleep 60")
        register(nomad, f"{prefix}-s3-done", silent, "echo done")
        for job in ("s1-busy", "s2-refused", "s3-busy"):
            wait_for(nomad, f"{prefix}-{job}", running(1))
        for job in ("s1-idle", "s3-done"):
            wait_for(nomad, f"{prefix}-{job}", finished)

        code, out, err = cli("gc", "--yes")
        assert (code, err) == (0, "")
        lines = out.splitlines()
        assert lines[0].startswith(f"Left {prefix}-s3-busy (owner alice) alone: its controller ")
        assert sorted(line.split(" (")[0] for line in lines[1:]) == [
            f"Purged {prefix}-s2-refused",
            f"Purged {prefix}-s3-done",
        ]
        assert "refuses connections" in out
        ids = {stub["ID"] for stub in nomad.list_jobs(f"{prefix}-") if not stub["ParentID"]}
        assert ids == {f"{prefix}-s1-busy", f"{prefix}-s1-idle", f"{prefix}-s3-busy"}
        workers = {stub["ParentID"] for stub in nomad.list_jobs(f"{prefix}-") if stub["ParentID"]}
        assert workers == ids  # the collected jobs' workers went with them
        assert nomad.get_variable(job_variable_path(f"{prefix}-s1-busy")) is not None

    # The listener is closed: now its jobs are orphans too.
    code, out, _ = cli("gc", "--yes", "--dry-run")
    assert code == 0
    assert f"Would purge {prefix}-s1-busy (owner alice): its controller at 127.0.0.1:" in out
    assert f"Would purge {prefix}-s1-idle" in out


def test_gc_deletes_variables_whose_job_is_gone(nomad: NomadClient, prefix: str, cli: Cli) -> None:
    young = job_variable_path(f"{prefix}-young")
    nomad.put_variable(young, {"token": "t0ken"})
    code, out, _ = cli("gc", "--dry-run")
    assert (code, out) == (0, "No orphaned jupyter_remote jobs.\n")  # it may be registering
    assert nomad.get_variable(young) is not None
    nomad.delete_variable(young)


def test_logs_follow_until_the_task_ends(nomad: NomadClient, prefix: str, cli: Cli) -> None:
    job_id = f"{prefix}-f-logs"
    register(nomad, job_id, meta("127.0.0.1:9", os.getpid()), "echo one; sleep 2; echo two")
    wait_for(nomad, job_id, lambda allocs: bool(allocs))
    started = time.monotonic()
    code, out, err = cli("logs", job_id, "-f")
    assert (code, out, err) == (0, "one\ntwo\n", "")
    assert time.monotonic() - started < 30


def test_stop_and_purge(nomad: NomadClient, prefix: str, cli: Cli) -> None:
    job_id = f"{prefix}-stop-f"
    register(nomad, job_id, meta("127.0.0.1:9", os.getpid()), "sleep 60")
    wait_for(nomad, job_id, running(1))
    assert cli("stop", job_id) == (0, f"Stopped job {job_id}\n", "")
    assert nomad.job(job_id)["Stop"] is True
    wait_for(nomad, job_id, finished)
    assert cli("ps")[1].startswith("No jupyter_remote jobs on ")
    code, out, _ = cli("ps", "--all")
    assert code == 0 and out.splitlines()[1].split()[:4] == [job_id, "app.f", "alice", "stopped"]

    assert cli("stop", job_id, "--purge") == (0, f"Stopped and purged job {job_id}\n", "")
    with pytest.raises(NomadNotFoundError):
        nomad.job(job_id)
    assert nomad.get_variable(job_variable_path(job_id)) is None

    code, out, err = cli("stop", job_id)
    assert (code, out) == (1, "")
    assert err.startswith(f"Error: no job {job_id!r} in namespace 'default' at http://")


def test_stop_refuses_jobs_that_are_not_ours(nomad: NomadClient, prefix: str, cli: Cli) -> None:
    job_id = f"{prefix}-other"
    body = build_worker_job(
        job_id=job_id, spec=WorkerSpec("x"), count=0, driver="raw_exec", datacenters=["*"],
        node_pool=None, namespace="default", region=None, priority=50, python="/bin/sh",
        docker_image="", command_args=["-c", "true"], env={}, meta={"team": "data"},
    )  # fmt: skip
    nomad.register_job(body["Job"])
    code, out, err = cli("stop", job_id)
    assert (code, out) == (1, "")
    assert "was not started by jupyter_remote" in err
    assert cli("ps", "--all")[1].startswith("No jupyter_remote jobs on ")


def test_nomad_unreachable_is_one_error_line(
    prefix: str, cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NOMAD_ADDR", f"http://127.0.0.1:{closed_port()}")
    for command in (["ps"], ["gc", "--dry-run"], ["logs", "jr-x"], ["stop", "jr-x"]):
        code, out, err = cli(*command)
        assert (code, out) == (1, "")
        assert err.startswith("Error: cannot reach Nomad at http://127.0.0.1:")
        assert err.count("\n") == 1
