"""The Nomad backend: a pool is one parameterized Nomad batch job; a worker is one dispatch.

Lifecycle of a pool's job:

1. The first worker registers the pool's job, a parameterized batch job
   (never run by itself), after writing its credential to the job's Nomad
   Variable (never into the spec). Each worker is one dispatch of it, with
   meta ``worker=<n>``: its id is ``<job id>-<n>`` and its template renders
   item ``w<n>`` of the variable, its own credential, into a 0600 file.
   Credentials of workers that have started are dropped from the variable.
   A worker is stopped by stopping its dispatched job, so a worker the pool
   no longer wants is never placed later, and nothing that was stopped is
   ever replaced: the allocations on the cluster follow the pool both ways.
2. The task runs the node's Python on the bootstrap text
   (``runtime._fetch.bootstrap_source``): it fetches the runtime from the
   controller over the authenticated channel, caches it, and serves. A
   function with an Image puts its key in the task's environment
   (``JUPYTER_REMOTE_IMAGE``): the bootstrap then fetches the image from the
   controller, builds it with uv into the node's cache unless it is there,
   and runs the worker in it. With the docker driver an
   ``Image.from_registry(tag)`` is the task's container image, and the
   image's other layers are built in the container when it starts.
   The task runs Python with ``-P``: the task directory, which Nomad leaves
   writable by every user of the node under raw_exec, is not on ``sys.path``.
3. Each dispatch's evaluation is read: a worker that no node could ever run
   (missing GPU model, driver, too big) fails at once with a message naming
   what was asked and what the cluster has; one waiting on capacity is
   reported as such (:class:`WorkerPlacement`, so the controller can give
   back idle workers of other pools and does not start the connect timeout)
   and waited for up to ``capacity_wait`` seconds.
4. Allocation updates (the event stream, else polling) report each worker's
   start (the connect timeout starts then) and its end with the task's exit
   code, signal, OOM flag, and last stderr lines.
5. When the pool closes, its dispatched jobs and the job are stopped and
   purged and its variable deleted. Workers whose caller died exit by
   themselves (dead-man switch); ``jupyter-remote gc`` purges jobs whose
   controller is gone (job meta).
"""

from __future__ import annotations

import asyncio
import contextlib
import getpass
import logging
import os
import re
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlparse

from ...exceptions import ConfigError, GpuUnavailableError, JupyterRemoteError, WorkerStartError
from ...runtime._fetch import IMAGE_ENV, bootstrap_source
from .._images import AptInstall, DebianSlim, FromRegistry
from ..base import (
    Backend,
    ControllerAddress,
    ExitCallback,
    PlacementCallback,
    WorkerExit,
    WorkerPlacement,
    WorkerSpec,
)
from ._client import NomadClient, NomadError, NomadNotFoundError, NomadUnavailableError
from ._config import NomadConfig
from ._events import placement_failures, task_state
from ._gpu import (
    describe_cluster_gpus,
    explain_placement_failure,
    gpu_shortfall,
    is_unplaceable,
    node_capacity_shortfall,
)
from ._jobspec import (
    FINGERPRINT_ITEM,
    GROUP,
    TASK,
    WORKER_META,
    build_worker_job,
    credential_item,
    job_variable_path,
    task_resources,
)

__all__ = ["NomadBackend", "job_id_for"]

log = logging.getLogger("jupyter_remote")
DEFAULT_MAX_WORKERS = 32
#: After an outage of the agent, a placement that fails for want of nodes is waited on
#: (nodes re-register) for this long before it is taken as "this can never run".
RECOVERY_GRACE = 60.0
_TERMINAL = ("complete", "failed", "lost")


def job_id_for(prefix: str, session: str, label: str, generation: int) -> str:
    """A Nomad job id that is readable, unique per controller session, and valid."""
    clean = re.sub(r"[^a-z0-9_-]+", "-", label.lower()).strip("-")[:60] or "fn"
    suffix = f"-{generation}" if generation else ""
    return f"{prefix}-{session}-{clean}{suffix}"


@dataclass(eq=False)
class _Worker:
    """One dispatch of a pool's job."""

    number: int
    child: str | None = None  # the dispatched job's id, once dispatched
    alloc: str | None = None  # its allocation, once Nomad made one
    started: bool = False  # its task is past its template (the credential can go)
    killed: bool = False  # stopped by the controller
    reported: bool = False  # its end (or its failure to be placed) was reported


@dataclass(eq=False)
class _Job:
    job_id: str
    spec: WorkerSpec
    next_number: int = 0  # worker ids handed out so far
    registered: bool = False
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    workers: dict[int, _Worker] = field(default_factory=dict)
    image_key: str | None = None  # the job's Image, hashed when the job is registered
    credentials: dict[int, str] = field(default_factory=dict, repr=False)  # not yet rendered
    fingerprint: str | None = None  # the controller certificate's pin, when TLS
    address: ControllerAddress | None = field(default=None, repr=False)  # what workers dial
    warned: bool = False  # "waiting for capacity" was logged

    def variable_items(self) -> dict[str, str]:
        """The job's variable: the credentials of workers not started yet, and the pin."""
        for number, worker in list(self.workers.items()):
            if worker.started or worker.killed:
                self.credentials.pop(number, None)
        items = {credential_item(n): token for n, token in self.credentials.items()}
        if self.fingerprint:
            items[FINGERPRINT_ITEM] = self.fingerprint
        return items


class NomadBackend(Backend):
    """Launches each worker as a dispatch of its pool's parameterized Nomad batch job."""

    name = "nomad"
    reports_placement = True

    def __init__(
        self,
        on_exit: ExitCallback,
        config: NomadConfig | None = None,
        on_placement: PlacementCallback | None = None,
    ) -> None:
        super().__init__(on_exit, on_placement)
        self.config = config or NomadConfig.load()
        self.client = NomadClient(self.config)
        self.session = os.urandom(3).hex()
        self.owner = _owner()
        self._jobs: dict[str, _Job] = {}  # by pool label
        self._generation: dict[str, int] = {}
        self._children: dict[str, tuple[_Job, _Worker]] = {}  # by dispatched job id
        self._early: dict[str, dict[str, Any]] = {}  # allocations seen before their dispatch
        self._agent_down = False  # an outage of the agent was reported (until it is back)
        self._back_at = -RECOVERY_GRACE  # when the agent came back from an outage
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop = threading.Event()
        self._watcher: threading.Thread | None = None

    # -- the contract ------------------------------------------------------------------

    def advertise_host(self) -> str:
        from ...config import load_settings

        explicit = load_settings().advertise_host
        if explicit:
            return explicit
        url = urlparse(self.config.address)
        host = url.hostname or "127.0.0.1"
        if host in ("127.0.0.1", "localhost", "::1"):
            return "127.0.0.1"
        with contextlib.suppress(OSError), socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.connect((host, url.port or 4646))  # no packet is sent: this picks the route
            return str(s.getsockname()[0])
        return socket.gethostbyname(socket.gethostname())

    def default_max_workers(self, spec: WorkerSpec) -> int:
        return DEFAULT_MAX_WORKERS

    def new_worker_id(self, spec: WorkerSpec) -> str:
        job = self._jobs.get(spec.label)
        if job is None or job.spec != spec:
            generation = self._generation.get(spec.label, 0)
            self._generation[spec.label] = generation + 1
            job_id = job_id_for(self.config.job_prefix, self.session, spec.label, generation)
            job = _Job(job_id, spec)
            self._jobs[spec.label] = job
        number = job.next_number
        job.next_number += 1
        job.workers[number] = _Worker(number)
        return f"{job.job_id}-{number}"

    async def check(self, spec: WorkerSpec) -> None:
        """Fail fast for an image the driver cannot run, or a GPU model no node has."""
        if spec.image is not None:
            self._check_image(spec.image)
        if spec.gpu is None:
            return
        nodes = await asyncio.to_thread(self.client.nodes_with_resources)
        problem = gpu_shortfall(spec.gpu, describe_cluster_gpus(nodes))
        if problem:
            raise GpuUnavailableError(
                f"{spec.label}: on the Nomad cluster at {self.config.address}, {problem}."
            )

    def _check_image(self, image: Any) -> None:
        base = image.layers[0] if image.layers else None
        driver = self.config.driver
        if isinstance(base, FromRegistry):
            if driver != "docker":
                raise ConfigError(
                    f"Image.{base.describe()} needs Nomad's docker driver, but the Nomad backend "
                    f"uses {driver!r}: set its driver option to 'docker' "
                    "(JUPYTER_REMOTE_NOMAD_DRIVER=docker), or start from Image.debian_slim()"
                )
            if base.add_python:
                raise ConfigError(
                    f"Image.{base.describe()}: add_python is not supported on Nomad; use a tag "
                    f"whose image has Python {base.add_python} as python3"
                )
        elif not isinstance(base, DebianSlim):
            raise ConfigError("an Image starts with Image.debian_slim() or Image.from_registry()")
        apt = next((layer for layer in image.layers if isinstance(layer, AptInstall)), None)
        if apt is not None and driver != "docker":
            raise ConfigError(
                f"Image.{apt.describe()} on Nomad needs the docker driver: under {driver!r} it "
                "would install into the nodes' own system. Install those packages on the nodes, "
                "use pip_install, or set the Nomad backend's driver option to 'docker'"
            )

    async def launch(self, spec: WorkerSpec, worker_id: str, address: ControllerAddress) -> None:
        self._loop = asyncio.get_running_loop()
        self._ensure_watcher()
        job, worker = self._find(worker_id)
        if job is None or worker is None or job is not self._jobs.get(spec.label):
            raise WorkerStartError(f"{worker_id}: its Nomad job is gone (the pool was released)")
        job.credentials[worker.number] = address.token
        job.fingerprint = address.tls_fingerprint
        job.address = address
        await self._start(job, worker)

    async def _start(self, job: _Job, worker: _Worker) -> None:
        """Dispatch a worker and watch its placement."""
        assert job.address is not None
        reply = await self._dispatch(job, worker, job.address)
        if reply is None:
            return  # stopped before it was dispatched
        worker.child = str(reply["DispatchedJobID"])
        self._children[worker.child] = (job, worker)
        if worker.killed:  # stopped while it was being dispatched
            await self._stop_child(worker)
            return
        early = self._early.pop(worker.child, None)
        if early is not None:
            self._allocation_update(early)
        eval_id = reply.get("EvalID")
        if eval_id:
            task = self._watch_placement(job, worker, str(eval_id))
            asyncio.get_running_loop().create_task(task)

    async def _dispatch(
        self, job: _Job, worker: _Worker, address: ControllerAddress
    ) -> dict[str, Any] | None:
        """Write the worker's credential, register the job if Nomad lacks it, dispatch.

        While the agent cannot be reached, wait for it (up to ``capacity_wait``, said at
        once, naming it); an agent that came back without the job (its state was lost)
        gets the job registered again.
        """
        worker_id = f"{job.job_id}-{worker.number}"
        deadline = time.monotonic() + self.config.capacity_wait
        waiting = False
        what = f"the Nomad agent at {self.config.address} is unreachable"
        while not worker.killed:
            try:
                async with job.lock:  # the variable is written whole: one writer at a time
                    path = job_variable_path(job.job_id)
                    await asyncio.to_thread(self.client.put_variable, path, job.variable_items())
                    if not job.registered:
                        if job.spec.image is not None:  # hashes its local files: not on the loop
                            job.image_key = await asyncio.to_thread(lambda: str(job.spec.image.key))
                        body = self._job_body(job, address)
                        await asyncio.to_thread(self.client.register_job, body["Job"])
                        job.registered = True
                if worker.killed:
                    return None
                meta = {WORKER_META: str(worker.number)}
                reply = await asyncio.to_thread(self.client.dispatch_job, job.job_id, meta)
                self._agent_reachable()
                return reply
            except NomadUnavailableError as exc:
                if time.monotonic() > deadline:
                    raise NomadUnavailableError(
                        f"{exc}; waited {self.config.capacity_wait:.0f}s for it (capacity_wait)"
                    ) from exc
                if not waiting:
                    waiting = True
                    self._placement(WorkerPlacement(worker_id, False, what))
                self._agent_unreachable(exc)
                await asyncio.sleep(1.0)
            except NomadError as exc:
                # Nomad 1.6 answers a dispatch of a job it lacks with a 500, not a 404.
                missing = isinstance(exc, NomadNotFoundError) or "not found" in str(exc)
                if not (missing and job.registered):
                    raise
                job.registered = False  # the agent forgot the job: register it again
        return None

    async def stop(self, worker_id: str) -> None:
        job, worker = self._find(worker_id)
        if job is None or worker is None or worker.killed:
            return
        worker.killed = True
        if worker.alloc is not None and worker.started and not worker.reported:
            with contextlib.suppress(NomadError):  # at once: the controller gave up on it
                await asyncio.to_thread(
                    self.client.signal_allocation, worker.alloc, "SIGKILL", TASK
                )
        await self._stop_child(worker)

    async def _stop_child(self, worker: _Worker) -> None:
        """Stop a worker's dispatched job: an unplaced one is never placed, nothing replaces it."""
        if worker.child is None or worker.reported:
            return
        with contextlib.suppress(NomadError):
            await asyncio.to_thread(self.client.stop_job, worker.child)

    async def release(self, spec: WorkerSpec) -> None:
        job = self._jobs.pop(spec.label, None)
        if job is not None:
            await asyncio.to_thread(self._purge, job)

    async def close(self) -> None:
        jobs = list(self._jobs.values())
        self._jobs.clear()
        for job in jobs:
            await asyncio.to_thread(self._purge, job)
        self._stop.set()
        if self._watcher is None:
            self.client.close()  # else the watcher closes it once it sees the stop (mid-read)

    # -- job specs ------------------------------------------------------------------------

    def _job_body(self, job: _Job, address: ControllerAddress) -> dict[str, Any]:
        c = self.config
        args = [
            "-P", "-c", bootstrap_source(),
            "--connect", f"{address.host}:{address.port}",
            "--worker-id", f"{job.job_id}-${{NOMAD_META_{WORKER_META}}}",
        ]  # fmt: skip
        meta = {
            "jupyter_remote": "worker",
            "app": job.spec.label.partition(".")[0],
            "function": job.spec.label,
            "owner": self.owner,
            "session": self.session,
            "controller": f"{address.host}:{address.port}",
            "controller_host": socket.gethostname(),
            "controller_pid": str(os.getpid()),
            "created": str(int(time.time())),
        }
        env = {"PYTHONUNBUFFERED": "1"}
        docker_image = c.docker_image
        image = job.spec.image
        if image is not None:
            # a hash, no secret: the bootstrap fetches the image itself (runtime/_fetch.py)
            env[IMAGE_ENV] = job.image_key or str(image.key)
            if isinstance(image.layers[0], FromRegistry):
                docker_image = image.layers[0].tag
        return build_worker_job(
            job_id=job.job_id,
            spec=job.spec,
            count=1,
            driver=c.driver,
            datacenters=list(c.datacenters),
            node_pool=c.node_pool,
            namespace=c.namespace,
            region=c.region,
            priority=c.priority,
            python=c.python,
            docker_image=docker_image,
            command_args=args,
            env=env,
            meta=meta,
            token_variable_path=job_variable_path(job.job_id),
            tls_pinned=address.tls_fingerprint is not None,
            dispatched=True,
        )

    def _purge(self, job: _Job) -> None:
        for worker in list(job.workers.values()):
            worker.killed = True
            if worker.child is not None:
                self._children.pop(worker.child, None)
                with contextlib.suppress(NomadNotFoundError):
                    self.client.stop_job(worker.child, purge=True)
        with contextlib.suppress(NomadNotFoundError):
            self.client.stop_job(job.job_id, purge=True)
        with contextlib.suppress(NomadNotFoundError):
            self.client.delete_variable(job_variable_path(job.job_id))

    # -- placement ---------------------------------------------------------------------

    async def _watch_placement(self, job: _Job, worker: _Worker, eval_id: str) -> None:
        """Read the evaluation: fail at once what can never run, wait a while for capacity."""
        started = time.monotonic()
        waiting = False
        worker_id = f"{job.job_id}-{worker.number}"
        while not (worker.killed or worker.started or worker.reported):
            if worker.alloc is not None:  # placed: wait for its task to start
                await self._until_started(job, worker)
                return
            try:
                done, evaluation = await self._query(
                    job, worker, started, self.client.evaluation, eval_id
                )
            except NomadError as exc:
                if not self._stop.is_set() and job in self._jobs.values():  # not shutting down
                    log.warning("jupyter_remote: cannot read evaluation %s: %s", eval_id, exc)
                return
            if done:
                return
            if evaluation is None:  # the agent is unreachable: ask again
                await asyncio.sleep(1.0)
                continue
            if evaluation.get("Status") in ("pending",):
                await asyncio.sleep(0.2)
                continue
            failures = placement_failures(evaluation)
            if not failures:
                # Placed: wait for its task to start (an agent may still lose the dispatch).
                await self._until_started(job, worker)
                return
            metrics = (evaluation.get("FailedTGAllocs") or {}).get(GROUP) or {}
            nodes = await asyncio.to_thread(self.client.nodes_with_resources)
            shortfall = node_capacity_shortfall(task_resources(job.spec), nodes)
            recovering = time.monotonic() - self._back_at < RECOVERY_GRACE
            if (is_unplaceable(metrics) or shortfall) and not recovering:
                gpus = describe_cluster_gpus(nodes)
                message = explain_placement_failure(job.spec, metrics, gpus, shortfall=shortfall)
                kind = GpuUnavailableError if job.spec.gpu is not None else WorkerStartError
                self._fail_unplaced(job, worker, kind(message))
                return
            waited = time.monotonic() - started
            what = failures[0].describe()
            if waited > self.config.capacity_wait:
                self._fail_unplaced(
                    job,
                    worker,
                    WorkerStartError(
                        f"{job.spec.label}: no capacity on the Nomad cluster after "
                        f"{waited:.0f}s ({what}); raise capacity_wait "
                        "(JUPYTER_REMOTE_NOMAD_CAPACITY_WAIT) or ask for fewer resources"
                    ),
                )
                return
            if not waiting:
                waiting = True
                self._placement(WorkerPlacement(worker_id, False, what))
                if not job.warned:
                    job.warned = True
                    log.warning(
                        "jupyter_remote: %s is waiting for capacity on Nomad (%s); waiting up "
                        "to %.0fs (capacity_wait)",
                        job.spec.label, what, self.config.capacity_wait,
                    )  # fmt: skip
            blocked = evaluation.get("BlockedEval")
            if blocked:
                eval_id = str(blocked)
            await asyncio.sleep(2.0)

    async def _until_started(self, job: _Job, worker: _Worker) -> None:
        """Until a placed worker's task starts: dispatch it again if Nomad lost it."""
        started = time.monotonic()
        while not (worker.started or worker.killed or worker.reported):
            await asyncio.sleep(1.0)
            if worker.started or worker.killed or worker.child is None:
                return
            try:
                done, _ = await self._query(job, worker, started, self.client.job, worker.child)
            except NomadError as exc:  # another answer: ask again, for a while
                if time.monotonic() - started > self.config.capacity_wait:
                    self._fail_unplaced(job, worker, WorkerStartError(f"{job.spec.label}: {exc}"))
                    return
                continue
            if done:
                return

    async def _query(
        self, job: _Job, worker: _Worker, started: float, ask: Callable[..., Any], *args: Any
    ) -> tuple[bool, Any]:
        """Ask Nomad about a starting worker: ``(True, _)`` when watching it is over.

        A dispatch Nomad no longer knows (an agent back without its state) is sent
        again; an unreachable agent is waited for up to ``capacity_wait`` (``(False,
        None)``: ask again), then the worker fails naming it.
        """
        try:
            return False, await asyncio.to_thread(ask, *args)
        except NomadNotFoundError:
            if not worker.killed and job in self._jobs.values():
                await self._redispatch(job, worker)
            return True, None
        except NomadUnavailableError as exc:
            self._agent_unreachable(exc)
            if time.monotonic() - started > self.config.capacity_wait:
                self._fail_unplaced(job, worker, self._unreachable(job))
                return True, None
            return False, None

    def _agent_unreachable(self, exc: Exception) -> None:
        """Say once an outage (however many workers wait) that the agent cannot be reached."""
        if not self._agent_down:
            self._agent_down = True
            log.warning(
                "jupyter_remote: the Nomad agent at %s is unreachable (%s): waiting up to %.0fs "
                "(capacity_wait) for it to come back",
                self.config.address, exc, self.config.capacity_wait,
            )  # fmt: skip

    def _agent_reachable(self) -> None:
        if self._agent_down:
            self._agent_down = False
            self._back_at = time.monotonic()  # its nodes may take a while to be ready again
            log.warning("jupyter_remote: the Nomad agent at %s is back", self.config.address)

    async def _redispatch(self, job: _Job, worker: _Worker) -> None:
        """Nomad lost a worker's dispatch (an agent back without its state): send it again."""
        if worker.child is not None:
            self._children.pop(worker.child, None)
        worker.child = worker.alloc = None
        try:
            await self._start(job, worker)
        except JupyterRemoteError as exc:
            self._fail_unplaced(job, worker, exc)

    def _unreachable(self, job: _Job) -> NomadUnavailableError:
        return NomadUnavailableError(
            f"the Nomad agent at {self.config.address} stayed unreachable for "
            f"{self.config.capacity_wait:.0f}s (capacity_wait) while {job.spec.label} waited "
            "for a worker"
        )

    def _fail_unplaced(self, job: _Job, worker: _Worker, error: JupyterRemoteError) -> None:
        if worker.alloc is None and not worker.reported:
            worker.reported = True
            worker_id = f"{job.job_id}-{worker.number}"
            self._on_exit(WorkerExit(worker_id, "could not be placed", error=error))
            if worker.child is not None:  # never placed later
                task = asyncio.to_thread(self.client.stop_job, worker.child)
                asyncio.get_running_loop().create_task(_quietly(task))

    def _placement(self, placement: WorkerPlacement) -> None:
        if self._on_placement is not None:
            self._on_placement(placement)

    # -- allocations -------------------------------------------------------------------

    def _ensure_watcher(self) -> None:
        if self._watcher is None:
            self._watcher = threading.Thread(
                target=self._watch_allocations, name="jupyter-remote-nomad-events", daemon=True
            )
            self._watcher.start()

    def _watch_allocations(self) -> None:
        """Follow allocation updates (event stream; polling where the stream is refused)."""
        index = 0
        try:
            while not self._stop.is_set():
                try:
                    for event in self.client.events(("Allocation",), index=index, stop=self._stop):
                        index = event.index + 1
                        self._allocation_update(event.object)
                except NomadError as exc:
                    log.debug("event stream unavailable (%s); polling allocations", exc)
                    self._poll_allocations()
                if not self._stop.is_set():
                    time.sleep(1.0)
        finally:
            self.client.close()  # the backend is closed: its connections go with this thread

    def _poll_allocations(self) -> None:
        """Blocking queries on the namespace's allocations: one answer as soon as any changes."""
        index = 0
        while not self._stop.is_set():
            try:
                index = self.poll_allocations_once(index)
            except NomadError as exc:
                log.debug("allocation query failed (%s); retrying", exc)
                self._stop.wait(2.0)

    def poll_allocations_once(self, index: int, wait: float = 10.0) -> int:
        """Wait (up to ``wait`` s) for allocations past ``index``; record them; the new index."""
        result = self.client.blocking_get("/v1/allocations", index=index, wait=wait)
        for alloc in result.value:
            self._allocation_update(alloc)
        # Never index 0 (it does not block: a busy loop on an empty cluster); an index that
        # went back (an agent that lost its state) starts over.
        return max(1, result.index) if result.index >= index else 1

    def _job_of(self, job_id: str) -> _Job | None:
        return next((j for j in list(self._jobs.values()) if j.job_id == job_id), None)

    def _allocation_update(self, alloc: dict[str, Any]) -> None:
        """Runs on the watcher thread (and the loop): record an allocation, report its worker."""
        child = str(alloc.get("JobID", ""))
        entry = self._children.get(child)
        if entry is None:
            job_id = child.partition("/dispatch-")[0]
            if child != job_id and self._job_of(job_id) is not None:
                self._early[child] = alloc  # ours, seen before its dispatch returned
            return
        job, worker = entry
        alloc_id = str(alloc["ID"])
        if worker.alloc is None:
            worker.alloc = alloc_id
        status = alloc.get("ClientStatus")
        if status != "pending" and not worker.started:
            worker.started = True  # its template has rendered: the credential can go
            worker_id = f"{job.job_id}-{worker.number}"
            if self._loop is not None and not worker.killed:
                self._loop.call_soon_threadsafe(self._placement, WorkerPlacement(worker_id, True))
        if worker.killed and status == "running":
            with contextlib.suppress(NomadError):
                self.client.signal_allocation(alloc_id, "SIGKILL", TASK)
        if status not in _TERMINAL or worker.reported or worker.alloc != alloc_id:
            return
        worker.reported = True
        state = task_state(alloc, TASK)
        reason = state.describe() if state else str(alloc.get("ClientDescription") or "ended")
        tail = ""
        with contextlib.suppress(NomadError):
            tail = self.client.log_tail(alloc_id, TASK, "stderr")
        info = WorkerExit(
            f"{job.job_id}-{worker.number}",
            f"{reason} (Nomad allocation {alloc_id[:8]} on node {alloc.get('NodeName')!s})",
            state.exit_code if state else None,
            tail,
            bool(state and state.oom_killed),
        )
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._on_exit, info)

    def _find(self, worker_id: str) -> tuple[_Job | None, _Worker | None]:
        job_id, _, number = worker_id.rpartition("-")
        job = self._job_of(job_id)
        if job is None or not number.isdigit():
            return job, None
        return job, job.workers.get(int(number))


async def _quietly(task: Any) -> None:
    with contextlib.suppress(NomadError):
        await task


def _owner() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return str(os.getuid())
