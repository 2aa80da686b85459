"""The Nomad client against a real ``nomad agent -dev`` (skipped without a nomad binary)."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from agent import DevAgent

from jupyter_remote.backends.nomad._client import (
    NomadClient,
    NomadNotFoundError,
    NomadPermissionError,
    NomadUnavailableError,
)
from jupyter_remote.backends.nomad._config import NomadConfig
from jupyter_remote.backends.nomad._events import placement_failures, task_state

pytestmark = pytest.mark.nomad


@pytest.fixture
def nomad(nomad_agent: DevAgent) -> Iterator[NomadClient]:
    with NomadClient(NomadConfig(address=nomad_agent.address)) as client:
        yield client


@pytest.fixture
def job_id(nomad: NomadClient) -> Iterator[str]:
    ident = f"jr-test-{uuid.uuid4().hex[:8]}"
    yield ident
    with contextlib.suppress(NomadNotFoundError):
        nomad.stop_job(ident, purge=True)


def batch_job(job_id: str, script: str, count: int = 1, **resources: Any) -> dict[str, Any]:
    return {
        "ID": job_id,
        "Name": job_id,
        "Type": "batch",
        "Datacenters": ["*"],
        "TaskGroups": [
            {
                "Name": "workers",
                "Count": count,
                "RestartPolicy": {"Attempts": 0, "Mode": "fail"},
                "ReschedulePolicy": {"Attempts": 0, "Unlimited": False},
                "Tasks": [
                    {
                        "Name": "worker",
                        "Driver": "raw_exec",
                        "Config": {"command": "/bin/sh", "args": ["-c", script]},
                        "Resources": {"CPU": 50, "MemoryMB": 32, **resources},
                    }
                ],
            }
        ],
    }


def wait_allocs(
    nomad: NomadClient, job_id: str, ok: Any, timeout: float = 30
) -> list[dict[str, Any]]:
    """Follow the job's allocations with blocking queries until ``ok(allocs)``."""
    deadline = time.monotonic() + timeout
    index = 0
    while time.monotonic() < deadline:
        result = nomad.blocking_get(f"/v1/job/{job_id}/allocations", index=index, wait=5)
        if ok(result.value):
            return list(result.value)
        index = result.index
    raise AssertionError(f"allocations of {job_id} never satisfied the condition")


def test_agent_and_nodes(nomad: NomadClient) -> None:
    assert nomad.version().startswith("1.")
    nodes = nomad.nodes_with_resources()
    assert nodes and nodes[0]["Status"] == "ready"
    assert "NodeResources" in nodes[0]
    assert nomad.node(nodes[0]["ID"])["Drivers"]["raw_exec"]["Healthy"]


def test_register_read_scale_stop(nomad: NomadClient, job_id: str) -> None:
    reg = nomad.register_job(batch_job(job_id, "sleep 300"))
    assert reg["EvalID"]
    assert nomad.job(job_id)["ID"] == job_id
    assert job_id in [j["ID"] for j in nomad.list_jobs(job_id[:12])]
    running = wait_allocs(nomad, job_id, lambda a: [x for x in a if x["ClientStatus"] == "running"])
    assert len(running) == 1
    nomad.scale_job(job_id, "workers", 2, message="test scale up")
    assert nomad.job(job_id)["TaskGroups"][0]["Count"] == 2
    wait_allocs(nomad, job_id, lambda a: sum(x["ClientStatus"] == "running" for x in a) == 2)
    assert nomad.job_summary(job_id)["Summary"]["workers"]["Running"] == 2
    assert nomad.job_evaluations(job_id)
    nomad.stop_job(job_id, purge=True)
    with pytest.raises(NomadNotFoundError, match="job not found"):
        nomad.job(job_id)


def test_events_and_logs_of_a_job_that_fails(nomad: NomadClient, job_id: str) -> None:
    script = (
        'for i in 1 2 3; do echo "line $i: héllo ✓"; sleep 0.3; done; '
        "echo 'Traceback: boom' >&2; exit 3"
    )
    reg = nomad.register_job(batch_job(job_id, script))
    # From the registration's index on: the stream replays what already happened.
    topics = [f"Job:{job_id}", f"Allocation:{job_id}"]
    events = nomad.events(topics, index=reg["JobModifyIndex"], timeout=60)
    alloc_id = ""
    seen = []
    for event in events:
        seen.append((event.topic, event.type))
        if event.topic == "Allocation":
            alloc_id = event.key
            if event.object.get("ClientStatus") in ("complete", "failed"):
                assert event.object["ClientStatus"] == "failed"
                break
    events.close()
    assert ("Job", "JobRegistered") in seen
    start = time.monotonic()
    text = "".join(c.text for c in nomad.follow_logs(alloc_id, "worker", "stdout"))
    assert text == "".join(f"line {i}: héllo ✓\n" for i in (1, 2, 3))
    assert time.monotonic() - start < 10  # ends by itself once the task is dead
    assert nomad.log_tail(alloc_id, "worker") == "Traceback: boom\n"
    state = task_state(nomad.allocation(alloc_id), "worker")
    assert state is not None
    assert (state.failed, state.exit_code) == (True, 3)


def test_follow_logs_while_the_task_runs(nomad: NomadClient, job_id: str) -> None:
    nomad.register_job(batch_job(job_id, "for i in $(seq 1 20); do echo tick $i; sleep 0.1; done"))
    [alloc] = wait_allocs(nomad, job_id, lambda a: [x for x in a if x["ClientStatus"] != "pending"])
    deadline = time.monotonic() + 30
    while True:  # the log file appears once the task has started
        try:
            nomad.log_tail(alloc["ID"], "worker", "stdout")
            chunks = list(nomad.follow_logs(alloc["ID"], "worker", "stdout", timeout=30))
            break
        except NomadNotFoundError:
            assert time.monotonic() < deadline
            time.sleep(0.2)
    lines = "".join(c.text for c in chunks).splitlines()
    assert lines == [f"tick {i}" for i in range(1, 21)]
    offsets = [c.offset for c in chunks if c.data]
    assert offsets == sorted(offsets)


def test_streams_end_on_timeout_and_stop(nomad: NomadClient, job_id: str) -> None:
    start = time.monotonic()
    assert list(nomad.events([f"Job:{job_id}"], timeout=1.5)) == []
    assert 1.4 < time.monotonic() - start < 4  # a read timeout past the deadline ends it
    nomad.register_job(batch_job(job_id, "while true; do echo tick; sleep 0.2; done"))
    [alloc] = wait_allocs(nomad, job_id, lambda a: [x for x in a if x["ClientStatus"] == "running"])
    stop = threading.Event()
    chunks = []
    start = time.monotonic()
    for chunk in nomad.follow_logs(alloc["ID"], "worker", "stdout", stop=stop):
        chunks.append(chunk)
        stop.set()
    assert len(chunks) == 1 and chunks[0].text.startswith("tick")
    start = time.monotonic()
    later = list(nomad.follow_logs(alloc["ID"], "worker", "stdout", timeout=1.0))
    assert time.monotonic() - start < 3
    assert "".join(c.text for c in later).count("tick") >= 3


def test_signal_kills_the_task(nomad: NomadClient, job_id: str) -> None:
    nomad.register_job(batch_job(job_id, "exec sleep 300"))
    [alloc] = wait_allocs(nomad, job_id, lambda a: [x for x in a if x["ClientStatus"] == "running"])
    nomad.signal_allocation(alloc["ID"], "SIGKILL", task="worker")
    wait_allocs(nomad, job_id, lambda a: a[0]["ClientStatus"] == "failed")
    state = task_state(nomad.allocation(alloc["ID"]), "worker")
    assert state is not None
    assert state.signal == 9
    assert state.describe() == "killed by signal 9 (SIGKILL)"


def test_a_gpu_job_cannot_be_placed_on_the_dev_agent(nomad: NomadClient, job_id: str) -> None:
    gpu = [{"Name": "nvidia/gpu", "Count": 1}]
    reg = nomad.register_job(batch_job(job_id, "true", Devices=gpu))
    deadline = time.monotonic() + 20
    while (ev := nomad.evaluation(reg["EvalID"]))["Status"] != "complete":
        assert time.monotonic() < deadline
        time.sleep(0.2)
    [failure] = placement_failures(ev)
    assert failure.filtered == {"missing devices": 1}
    assert nomad.job_summary(job_id)["Summary"]["workers"]["Queued"] == 1


def test_variables_round_trip(nomad: NomadClient) -> None:
    path = f"jr/test/{uuid.uuid4().hex[:8]}"
    assert nomad.get_variable(path) is None
    put = nomad.put_variable(path, {"TOKEN": "v1", "OTHER": "ü"})
    assert nomad.get_variable(path)["Items"] == {"TOKEN": "v1", "OTHER": "ü"}  # type: ignore[index]
    nomad.put_variable(path, {"TOKEN": "v2"}, cas=put["ModifyIndex"])
    assert [v["Path"] for v in nomad.list_variables("jr/test/")] == [path]
    nomad.delete_variable(path)
    assert nomad.get_variable(path) is None


def test_errors_are_translated(nomad: NomadClient) -> None:
    with pytest.raises(NomadNotFoundError) as info:
        nomad.job("jr-no-such-job")
    assert info.value.status == 404
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    start = time.monotonic()
    bad = NomadClient(NomadConfig(address=f"http://127.0.0.1:{port}"))
    with bad, pytest.raises(NomadUnavailableError, match="NOMAD_ADDR"):
        bad.list_jobs()
    assert time.monotonic() - start < 2


def test_acl_token(nomad_acl_agent: DevAgent) -> None:
    cfg = NomadConfig(address=nomad_acl_agent.address)
    anonymous = NomadClient(cfg)
    with anonymous, pytest.raises(NomadPermissionError, match="NOMAD_TOKEN is not set"):
        anonymous.list_jobs()
    cfg = NomadConfig(address=nomad_acl_agent.address, token=nomad_acl_agent.token)
    with NomadClient(cfg) as nomad:
        assert nomad.list_jobs() == []
