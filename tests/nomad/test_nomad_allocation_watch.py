"""Where the event stream is refused, allocations are followed with blocking queries."""

from __future__ import annotations

import asyncio
import time

import pytest
from agent import DevAgent

from jupyter_remote.backends.base import WorkerExit, WorkerSpec
from jupyter_remote.backends.nomad import NomadBackend, NomadConfig
from jupyter_remote.backends.nomad._backend import _Job
from jupyter_remote.backends.nomad._jobspec import build_worker_job

pytestmark = pytest.mark.nomad


def test_blocking_queries_report_a_failed_worker(nomad_agent: DevAgent) -> None:
    exits: list[WorkerExit] = []
    backend = NomadBackend(exits.append, NomadConfig(address=nomad_agent.address))
    loop = asyncio.new_event_loop()
    backend._loop = loop  # exits are delivered on the controller's loop
    spec = WorkerSpec("watch.f", cpu=0.1, memory=64)
    job_id = f"jr-watch-{int(time.time())}"
    body = build_worker_job(
        job_id=job_id, spec=spec, count=1, driver="raw_exec", datacenters=["*"],
        node_pool=None, namespace="default", region=None, priority=50, python="/bin/sh",
        docker_image="", command_args=["-c", "echo dying-on-purpose >&2; exit 3"], env={},
        meta={"jupyter_remote": "worker"}, dispatched=True,
    )  # fmt: skip
    job = _Job(job_id, spec, registered=True)
    backend._jobs[spec.label] = job
    worker_id = backend.new_worker_id(spec)
    try:
        backend.client.register_job(body["Job"])
        child = backend.client.dispatch_job(job_id, {"worker": "0"})["DispatchedJobID"]
        backend._children[child] = (job, job.workers[0])
        index, deadline = 0, time.monotonic() + 30
        while not exits and time.monotonic() < deadline:
            index = backend.poll_allocations_once(index, wait=2)
            loop.run_until_complete(asyncio.sleep(0.01))  # run the delivered callbacks
        assert exits, "the failed allocation was never reported"
        (info,) = exits
        assert info.worker_id == worker_id == f"{job_id}-0" and info.exit_code == 3
        assert "dying-on-purpose" in info.log_tail
    finally:
        backend._purge(job)
        backend.client.close()
        loop.close()
