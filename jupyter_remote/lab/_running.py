"""``/jupyter-remote/api/backend`` and ``/jupyter-remote/api/running``: where work runs, and what.

::

    GET  backend                       {"backend", "address", "reachable", "message", "gpus":
                                       [{device, gpu, count, per_node}]}
    GET  running?all=                  {"backend", "listable", "message", "jobs": [...]}
    GET  running/JOB/logs?type=&bytes= {"job", "type", "allocations": [{id, index, status,
                                       text}]}: the tail of each allocation's log
    POST running/JOB/stop?purge=       {"job", "stopped": true}

The backend is the configured one (``backend`` setting). On Nomad, ``running``
lists the jobs ``jupyter-remote ps`` lists (``state._nomad_jobs``), each with
the GPU models its running allocations hold. On the local backend workers are
child processes of the kernel that started them, known only to it: the server
cannot list them (``listable`` is false, ``message`` says so) until the app
server of the deployments makes running work visible across processes.
"""

from __future__ import annotations

import socket
import time
from typing import TYPE_CHECKING, Any, Literal

from tornado import web

from ..backends._nvidia import detect_gpus
from ..config import load_settings
from ..resources import model_for_device
from ._base import ApiError, Handler, blocking

if TYPE_CHECKING:  # the Nomad client is imported only when the backend is Nomad
    from ..backends.nomad._client import NomadClient
    from ..state._nomad_jobs import WorkerJob

__all__ = ["routes"]

LOCAL_NOT_LISTABLE = (
    "Local workers are child processes of the kernel (or script) that started them, and only "
    "it can see them: their output and progress show in that notebook's cells. To list and "
    'stop running work here, run it on Nomad (backend = "nomad").'
)
_LOG_BYTES = 16384


def _local_status() -> dict[str, Any]:
    groups: dict[str, list[int]] = {}
    for gpu in detect_gpus():
        groups.setdefault(gpu.name, []).append(gpu.memory_mib)
    gpus = []
    for device, memory in groups.items():
        model = model_for_device(device, min(memory))
        gpus.append({"device": device, "gpu": model.name if model else None,
                     "count": len(memory), "per_node": len(memory)})  # fmt: skip
    found = f"{len(gpus)} GPU model(s)" if gpus else "no NVIDIA GPU (nvidia-smi)"
    return {
        "backend": "local",
        "address": f"this machine ({socket.gethostname()})",
        "reachable": True,
        "message": f"Work runs in local processes; this machine has {found}.",
        "gpus": gpus,
    }


def _nomad_status() -> dict[str, Any]:
    from ..backends.nomad._client import NomadClient, NomadError
    from ..backends.nomad._config import NomadConfig
    from ..backends.nomad._gpu import describe_cluster_gpus

    config = NomadConfig.load()
    status: dict[str, Any] = {"backend": "nomad", "address": config.address, "gpus": []}
    try:
        with NomadClient(config, timeout=10.0) as nomad:
            nodes = nomad.nodes_with_resources()
    except NomadError as exc:
        return {**status, "reachable": False, "message": str(exc)}
    gpus = describe_cluster_gpus(nodes)
    status["gpus"] = [{"device": g.device, "gpu": g.gpu_name, "count": g.count,
                       "per_node": g.per_node} for g in gpus]  # fmt: skip
    ready = sum(1 for node in nodes if node.get("Status") == "ready")
    status["reachable"] = True
    status["message"] = (
        f"Nomad at {config.address}: {ready} ready node(s), {len(gpus)} GPU model(s)."
    )
    return status


def backend_status() -> dict[str, Any]:
    """Where work runs: the configured backend, its address, reachable, its GPUs."""
    return _nomad_status() if load_settings().backend == "nomad" else _local_status()


def _job(nomad: NomadClient, job: WorkerJob) -> dict[str, Any]:
    from ..state import _nomad_jobs as jobs

    running, pending = jobs.counts(job)
    gpus: list[str] = []
    if running:
        for alloc in jobs.allocations(nomad, job.id):
            if alloc.get("ClientStatus") == "running":
                gpus += jobs.allocated_gpus(nomad.allocation(str(alloc["ID"])))
    return {
        "id": job.id,
        "app": job.meta.get("app", ""),
        "function": job.meta.get("function", ""),
        "owner": job.meta.get("owner", ""),
        "status": job.status,
        "running": running,
        "pending": pending,
        "resources": jobs.resources(job.spec),
        "gpus": gpus,
        "age_s": max(0, int(time.time() - jobs.created(job))),
    }


def list_running(include_stopped: bool) -> dict[str, Any]:
    """The running work the server can see (see the module docstring)."""
    if load_settings().backend != "nomad":
        return {"backend": "local", "listable": False, "message": LOCAL_NOT_LISTABLE, "jobs": []}
    from ..backends.nomad._client import NomadClient
    from ..state import _nomad_jobs as jobs

    with NomadClient() as nomad:
        found = [j for j in jobs.our_jobs(nomad)
                 if include_stopped or j.status not in ("dead", "stopped")]  # fmt: skip
        listed = [_job(nomad, job) for job in found]
        address = nomad.config.address
    message = f"{len(listed)} job(s) on {address}" if listed else f"No jobs on {address}."
    return {"backend": "nomad", "listable": True, "message": message, "jobs": listed}


def _require_nomad(what: str) -> None:
    if load_settings().backend != "nomad":
        raise ApiError(f"{what} needs the Nomad backend; {LOCAL_NOT_LISTABLE}")


def job_logs(job_id: str, log_type: Literal["stdout", "stderr"], max_bytes: int) -> dict[str, Any]:
    """The last ``max_bytes`` of each allocation's log (``jupyter-remote logs JOB``)."""
    _require_nomad("reading a job's logs")
    from ..backends.nomad._client import NomadClient
    from ..state import _nomad_jobs as jobs

    with NomadClient() as nomad:
        task = jobs.task_name(jobs.read_our_job(nomad, job_id))
        allocs = jobs.pick_allocations(nomad, job_id, None)
        tails = [{"id": str(a["ID"]), "index": jobs.alloc_index(a),
                  "status": str(a.get("ClientStatus", "")),
                  "text": nomad.log_tail(str(a["ID"]), task, log_type, max_bytes=max_bytes)}
                 for a in allocs]  # fmt: skip
    return {"job": job_id, "type": log_type, "allocations": tails}


def stop_job(job_id: str, purge: bool) -> None:
    """``jupyter-remote stop JOB [--purge]``."""
    _require_nomad("stopping a job")
    from ..backends.nomad._client import NomadClient
    from ..backends.nomad._jobspec import job_variable_path
    from ..state import _nomad_jobs as jobs

    with NomadClient() as nomad:
        jobs.read_our_job(nomad, job_id)
        jobs.stop_job_and_workers(nomad, job_id, purge=purge)
        if purge:
            nomad.delete_variable(job_variable_path(job_id))


class BackendHandler(Handler):
    @web.authenticated
    async def get(self) -> None:
        self.write_json(await blocking(backend_status))


class RunningHandler(Handler):
    @web.authenticated
    async def get(self) -> None:
        self.write_json(await blocking(list_running, self.flag("all")))


class LogsHandler(Handler):
    @web.authenticated
    async def get(self, job_id: str) -> None:
        log_type = self.get_query_argument("type", "stderr")
        if log_type not in ("stdout", "stderr"):
            raise ApiError(f"type must be stdout or stderr, not {log_type!r}")
        try:
            max_bytes = int(self.get_query_argument("bytes", str(_LOG_BYTES)))
        except ValueError:
            raise ApiError("bytes must be a whole number of bytes, like bytes=16384") from None
        max_bytes = max(1, min(max_bytes, 1 << 20))
        self.write_json(await blocking(job_logs, job_id, log_type, max_bytes))


class StopHandler(Handler):
    @web.authenticated
    async def post(self, job_id: str) -> None:
        await blocking(stop_job, job_id, self.flag("purge"))
        self.write_json({"job": job_id, "stopped": True})


def routes(api: str) -> list[tuple[str, type[Handler]]]:
    return [
        (f"{api}/backend", BackendHandler),
        (f"{api}/running", RunningHandler),
        (f"{api}/running/([^/]+)/logs", LogsHandler),
        (f"{api}/running/([^/]+)/stop", StopHandler),
    ]
