"""jupyter_remote's worker jobs on a Nomad cluster: find, describe, stop them.

What ``jupyter-remote ps|logs|stop|gc`` and the Jupyter server extension share.
Our jobs are the ones whose ID starts with ``[nomad] job_prefix`` and whose
``Meta.jupyter_remote`` is ``"worker"``. A pool's job is a parameterized job;
its workers are dispatches of it (``<job id>/dispatch-...``), shown as part of
it. A job that is not there is a ``NotFoundError``, one not ours a ``ConfigError``,
each saying where to look.

>>> with NomadClient(NomadConfig.load()) as nomad:  # doctest: +SKIP
...     [(job.id, job.status, counts(job)) for job in our_jobs(nomad)]
[('jr-1a2b3c-app-f', 'running', (2, 0))]
"""

from __future__ import annotations

import contextlib
import re
from dataclasses import dataclass
from typing import Any

from ..backends.nomad._client import NomadClient, NomadNotFoundError
from ..backends.nomad._jobspec import TASK
from ..exceptions import ConfigError, NotFoundError

__all__ = [
    "TERMINAL",
    "WorkerJob",
    "alloc_index",
    "allocated_gpus",
    "allocations",
    "counts",
    "created",
    "dispatched",
    "is_ours",
    "our_jobs",
    "pick_allocations",
    "read_our_job",
    "resources",
    "stop_job_and_workers",
    "task_name",
]

TERMINAL = ("complete", "failed", "lost")
_ALLOC_INDEX = re.compile(r"\[(\d+)\]$")


@dataclass(frozen=True)
class WorkerJob:
    stub: dict[str, Any]  # from the job list: Status, JobSummary, SubmitTime
    spec: dict[str, Any]  # the job itself: Meta, TaskGroups

    @property
    def id(self) -> str:
        return str(self.spec.get("ID", ""))

    @property
    def meta(self) -> dict[str, str]:
        meta = self.spec.get("Meta")
        return meta if isinstance(meta, dict) else {}

    @property
    def status(self) -> str:
        status = str(self.stub.get("Status") or self.spec.get("Status") or "")
        if self.spec.get("Stop"):
            return "stopped" if status == "dead" else "stopping"
        return status


def is_ours(spec: dict[str, Any]) -> bool:
    meta = spec.get("Meta")
    return isinstance(meta, dict) and meta.get("jupyter_remote") == "worker"


def our_jobs(nomad: NomadClient, stubs: list[dict[str, Any]] | None = None) -> list[WorkerJob]:
    """Every job with our prefix and meta, oldest first (dead ones included)."""
    jobs = []
    if stubs is None:
        stubs = nomad.list_jobs(f"{nomad.config.job_prefix}-")
    for stub in stubs:
        if stub.get("ParentID"):
            continue  # a worker: a dispatch of a pool's job, shown as part of it
        try:
            spec = nomad.job(str(stub.get("ID")))
        except NomadNotFoundError:
            continue  # purged since the listing
        if is_ours(spec):
            jobs.append(WorkerJob(stub, spec))
    return sorted(jobs, key=lambda job: (created(job), job.id))


def read_our_job(nomad: NomadClient, job_id: str) -> dict[str, Any]:
    """The spec of job ``job_id``; ``NotFoundError`` when it is not there, ``ConfigError`` when
    it is not ours."""
    try:
        spec = nomad.job(job_id)
    except NomadNotFoundError:
        raise NotFoundError(
            f"no job {job_id!r} in namespace {nomad.config.namespace!r} at "
            f"{nomad.config.address}; `jupyter-remote ps --all` lists the worker jobs"
        ) from None
    if not is_ours(spec):
        raise ConfigError(
            f"job {job_id!r} was not started by jupyter_remote (its meta has no "
            f'jupyter_remote = "worker"); use `nomad job` commands for it'
        )
    return spec


def created(job: WorkerJob) -> float:
    """When the job was created (its meta), else submitted; seconds since the epoch."""
    with contextlib.suppress(ValueError):
        return float(job.meta.get("created", ""))
    submitted = job.stub.get("SubmitTime") or job.spec.get("SubmitTime")
    return submitted / 1e9 if isinstance(submitted, int | float) else 0.0


def dispatched(nomad: NomadClient, job_id: str) -> list[str]:
    """The ids of the workers of a pool's job: its dispatched jobs."""
    return [str(stub.get("ID")) for stub in nomad.list_jobs(f"{job_id}/dispatch-")]


def allocations(nomad: NomadClient, job_id: str) -> list[dict[str, Any]]:
    """The allocations of a job and of the workers dispatched from it."""
    allocs = nomad.job_allocations(job_id)
    for child in dispatched(nomad, job_id):
        with contextlib.suppress(NomadNotFoundError):
            allocs.extend(nomad.job_allocations(child))
    return allocs


def stop_job_and_workers(nomad: NomadClient, job_id: str, *, purge: bool) -> None:
    """Stop a job and every worker dispatched from it (they outlive a stopped parent)."""
    for child in dispatched(nomad, job_id):
        with contextlib.suppress(NomadNotFoundError):
            nomad.stop_job(child, purge=purge)
    nomad.stop_job(job_id, purge=purge)


def counts(job: WorkerJob) -> tuple[int, int]:
    """Running and pending (queued or starting) workers, from the job summary."""
    children = (job.stub.get("JobSummary") or {}).get("Children")
    if job.spec.get("ParameterizedJob") and isinstance(children, dict):
        return int(children.get("Running", 0)), int(children.get("Pending", 0))
    summary = (job.stub.get("JobSummary") or {}).get("Summary") or {}
    running = sum(int(group.get("Running", 0)) for group in summary.values())
    pending = sum(int(group.get("Queued", 0)) + int(group.get("Starting", 0))
                  for group in summary.values())  # fmt: skip
    return running, pending


def _number(value: float) -> str:
    return f"{value:g}"


def resources(spec: dict[str, Any]) -> str:
    """'cpu=2 mem=4096MiB gpu=1' from the first task's Resources (one task per job)."""
    try:
        asked = spec["TaskGroups"][0]["Tasks"][0].get("Resources") or {}
    except (KeyError, IndexError, TypeError, AttributeError):
        return "-"
    parts = []
    if asked.get("Cores"):
        parts.append(f"cpu={asked['Cores']}")
    elif asked.get("CPU"):
        parts.append(f"cpu={_number(asked['CPU'] / 1000)}")
    if asked.get("MemoryMB"):
        parts.append(f"mem={asked['MemoryMB']}MiB")
    for device in asked.get("Devices") or []:
        name = str(device.get("Name", ""))
        label = "gpu" if name in ("nvidia/gpu", "gpu") else name
        parts.append(f"{label}={device.get('Count', 1)}")
    return " ".join(parts) or "-"


def allocated_gpus(alloc: dict[str, Any]) -> list[str]:
    """The GPU models Nomad gave an allocation (one entry per GPU), from ``AllocatedResources``.

    >>> allocated_gpus({"AllocatedResources": {"Tasks": {"worker": {"Devices": [
    ...     {"Type": "gpu", "Name": "NVIDIA H100", "DeviceIDs": ["a", "b"]}]}}}})
    ['NVIDIA H100', 'NVIDIA H100']
    """
    tasks = (alloc.get("AllocatedResources") or {}).get("Tasks") or {}
    gpus: list[str] = []
    for task in tasks.values():
        for device in (task or {}).get("Devices") or []:
            if device.get("Type") == "gpu":
                gpus += [str(device.get("Name", "gpu"))] * len(device.get("DeviceIDs") or [])
    return gpus


def alloc_index(alloc: dict[str, Any]) -> int:
    found = _ALLOC_INDEX.search(str(alloc.get("Name", "")))
    return int(found.group(1)) if found else -1


def task_name(spec: dict[str, Any]) -> str:
    try:
        return str(spec["TaskGroups"][0]["Tasks"][0]["Name"])
    except (KeyError, IndexError, TypeError):
        return TASK


def pick_allocations(nomad: NomadClient, job_id: str, alloc: str | None) -> list[dict[str, Any]]:
    """The allocations of a job, by index; with ``alloc`` the one whose ID starts with it."""
    allocs = sorted(
        allocations(nomad, job_id),
        key=lambda a: (alloc_index(a), int(a.get("CreateIndex", 0))),
    )
    if alloc is not None:
        chosen = [a for a in allocs if str(a.get("ID", "")).startswith(alloc)]
        if not chosen:
            have = ", ".join(str(a.get("ID", ""))[:8] for a in allocs) or "none"
            raise ConfigError(
                f"job {job_id!r} has no allocation {alloc!r}; its allocations: {have}"
            )
        if len(chosen) > 1:
            raise ConfigError(
                f"{alloc!r} matches {len(chosen)} allocations of job {job_id!r}; give more "
                "of the ID"
            )
        return chosen
    if not allocs:
        raise ConfigError(
            f"job {job_id!r} has no allocations yet (`jupyter-remote ps` shows pending ones)"
        )
    return allocs
