"""Worker jobs as Nomad API JSON, built from data; no string templates.

:func:`build_worker_job` returns the body of ``PUT /v1/jobs``. One job holds
the workers of one function: a ``batch`` job with one task group,
``workers``, and one task, ``worker``. The backend registers it
``dispatched`` (a parameterized job): each worker is one dispatch of it, with
meta ``worker=<n>``, so each can be stopped by itself and none is ever
replaced or placed after the pool stopped wanting it (a count scaled down
would stop the allocations Nomad picks, busy or not, and one scaled up
re-creates ended allocations). ``nomad_jobs/worker.nomad.hcl`` is the same
shape as readable HCL.

The mapping, option by option::

    WorkerSpec / argument     Nomad field (API JSON)                 notes
    ------------------------  -------------------------------------  ------------------------------
    job_id                    Job.ID, Job.Name                       no spaces
    namespace                 Job.Namespace
    region                    Job.Region                             omitted when None (agent's)
    datacenters               Job.Datacenters                        ["*"]: every datacenter
    node_pool                 Job.NodePool                           omitted when None ("default")
    priority                  Job.Priority                           1..100
    meta                      Job.Meta                               app, function, owner,
                                                                     session, controller: lets
                                                                     `jupyter-remote gc` find jobs
    (fixed)                   Job.Type = "batch"                     workers exit when idle
    count                     TaskGroups[0].Count                    group "workers"; 0 allowed
    dispatched                Job.ParameterizedJob {Payload          one dispatch per worker, meta
                                "forbidden", MetaRequired            "worker" = its number in the
                                ["worker"]}                          pool (NOMAD_META_worker)
    (fixed)                   RestartPolicy {Attempts 0, "fail"}     the controller retries,
                              ReschedulePolicy {Attempts 0,          Nomad never restarts or
                                Unlimited false}                     reschedules a worker
    driver                    Task.Driver                            raw_exec | exec | docker
    python, command_args      Task.Config (raw_exec, exec):          `python` is the nodes'
                                {command: python, args}              interpreter; WorkerSpec.python
                                                                     (the caller's) is not used
    docker_image,             Task.Config (docker):                  the image must have python3
      command_args              {image, command: "python3", args,    workers dial the controller;
                                network_mode: "host"}                host networking, no ports
    spec.cpu (whole)          Resources.Cores = cpu                  whole cores: exec and docker
                                                                     pin them, raw_exec does not
    spec.cpu (fractional)     Resources.CPU = ceil(cpu * 1000) MHz   1 core = 1000 MHz shares
    spec.cpu None             Resources.CPU = 1000 MHz               Nomad's own 100 is too small
    spec.memory (MiB)         Resources.MemoryMB = memory            Nomad's "MB" is MiB
    spec.memory None          Resources.MemoryMB = 1024              Nomad's own 300 is too small
    spec.ephemeral_disk       TaskGroups[0].EphemeralDisk            omitted when None (Nomad's
                                {SizeMB}                             300 MB); Modal's option
    spec.gpu                  Resources.Devices = [device_block()],  see _gpu.py; the worker maps
                              Env JUPYTER_REMOTE_GPU_FROM_NVIDIA=1   NVIDIA_VISIBLE_DEVICES (below)
    no spec.gpu, raw_exec     Env CUDA_VISIBLE_DEVICES = ""          raw_exec cannot hide GPUs
                                                                     Nomad did not give it
    spec.env, env             Task.Env                               env wins; never a secret
    spec.image (the backend)  Env JUPYTER_REMOTE_IMAGE = image key   a hash; the bootstrap fetches
                                                                     and builds the image on the
                                                                     node (runtime/_fetch.py)
    Image.from_registry(tag)  docker_image = tag                     docker driver only
    token_variable_path       Task.Templates[0]: renders             each worker's own credential,
                                JUPYTER_REMOTE_TOKEN from the        read by the task's workload
                                Nomad Variable's "w<n>" item (n:     identity at start; never in
                                NOMAD_META_worker, or the alloc      the spec; the file is 0600
                                index), and with tls_pinned
                                JUPYTER_REMOTE_TLS_FINGERPRINT       (the agent's user), its values
                                from "fingerprint") into             reach only the task's env
                                secrets/token.env (env=true,
                                perms 0600, change_mode "noop")
    kill_timeout_s            Task.KillTimeout (ns)                  SIGKILL after this
    (fixed)                   Task.KillSignal = "SIGTERM"            Nomad's default SIGINT would
                                                                     only interrupt the input

Credentials: a job spec is readable by anyone with ``read-job``, so no
credential is ever put in it. Each worker has its own, issued by the
controller for its id and accepted once; the backend writes worker ``n``'s
to item ``w<n>`` of the Nomad Variable :func:`job_variable_path` before it
dispatches that worker (with the controller certificate's pin as item
``fingerprint`` when the channel is TLS); in Nomad 1.6 a task's workload
identity may read ``nomad/jobs/<job_id>`` (and ``/<group>``,
``/<group>/<task>``) of its own namespace without any ACL policy, and of
its parent job's for a dispatched job (checked with ACLs on), and the
template renders its own item into a 0600 file in the task's ``secrets/``
and from there into the task's environment, which other users of the node
cannot read.

GPUs: the NVIDIA device plugin puts the assigned GPUs' UUIDs in
``NVIDIA_VISIBLE_DEVICES``; docker's nvidia runtime confines the container to
them, but raw_exec sees every GPU of the node, so the worker runtime copies
the value to ``CUDA_VISIBLE_DEVICES`` when ``JUPYTER_REMOTE_GPU_FROM_NVIDIA``
is set (harmless under docker and exec, where it is set too).

Example::

    >>> from jupyter_remote.backends.base import WorkerSpec
    >>> job = build_worker_job(
    ...     job_id="jr-demo", spec=WorkerSpec("app.f", cpu=0.5, memory=2048), count=2,
    ...     driver="raw_exec", datacenters=["*"], node_pool=None, namespace="default",
    ...     region=None, priority=50, python="python3", docker_image="",
    ...     command_args=["-m", "jupyter_remote.runtime"], env={}, meta={"app": "app"})
    >>> group = job["Job"]["TaskGroups"][0]
    >>> group["Count"], group["Tasks"][0]["Resources"]
    (2, {'CPU': 500, 'MemoryMB': 2048})
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from typing import Any

from jupyter_remote.backends.base import WorkerSpec
from jupyter_remote.backends.nomad._gpu import device_block
from jupyter_remote.exceptions import ConfigError

__all__ = [
    "DEFAULT_CPU_MHZ",
    "DEFAULT_MEMORY_MIB",
    "DOCKER_PYTHON",
    "DRIVERS",
    "FINGERPRINT_ENV",
    "FINGERPRINT_ITEM",
    "GPU_FROM_NVIDIA_ENV",
    "GROUP",
    "MHZ_PER_CORE",
    "TASK",
    "TOKEN_ENV",
    "WORKER_META",
    "build_worker_job",
    "credential_item",
    "job_variable_path",
    "task_resources",
]

DRIVERS = ("raw_exec", "exec", "docker")
GROUP = "workers"
TASK = "worker"
#: Fractional CPU asks are MHz shares; a whole-core ask reserves cores instead.
MHZ_PER_CORE = 1000
DEFAULT_CPU_MHZ = 1000
DEFAULT_MEMORY_MIB = 1024
#: The interpreter inside docker images: python3 exists where python may not (Debian, Ubuntu).
DOCKER_PYTHON = "python3"
TOKEN_ENV = "JUPYTER_REMOTE_TOKEN"
WORKER_META = "worker"  # a dispatch's meta: the worker's number in its pool
FINGERPRINT_ENV = "JUPYTER_REMOTE_TLS_FINGERPRINT"
FINGERPRINT_ITEM = "fingerprint"
GPU_FROM_NVIDIA_ENV = "JUPYTER_REMOTE_GPU_FROM_NVIDIA"
_TOKEN_DEST = "secrets/token.env"
_CREDENTIAL_PREFIX = "w"
# nomad/structs/variables.go: validVariablePath
_VARIABLE_PATH = re.compile(r"[a-zA-Z0-9_~/-]{1,128}")
_NS = 1_000_000_000


def job_variable_path(job_id: str) -> str:
    """The Nomad Variable a job's tasks can read without any ACL policy.

    >>> job_variable_path("jr-abc")
    'nomad/jobs/jr-abc'
    """
    return f"nomad/jobs/{job_id}"


def credential_item(index: int) -> str:
    """The item of the job's variable that holds the credential of allocation ``index``.

    >>> credential_item(3)
    'w3'
    """
    return f"{_CREDENTIAL_PREFIX}{index}"


def task_resources(spec: WorkerSpec) -> dict[str, Any]:
    """The task's ``Resources`` JSON for a worker spec (see the mapping above).

    >>> task_resources(WorkerSpec("f", cpu=2, memory=4096))
    {'Cores': 2, 'MemoryMB': 4096}
    >>> task_resources(WorkerSpec("f", cpu=1.5))
    {'CPU': 1500, 'MemoryMB': 1024}
    """
    resources: dict[str, Any] = {}
    cpu = spec.cpu
    if cpu is None:
        resources["CPU"] = DEFAULT_CPU_MHZ
    elif float(cpu).is_integer():
        # Nomad rejects a task asking for both CPU and Cores.
        resources["Cores"] = int(cpu)
    else:
        resources["CPU"] = max(1, math.ceil(cpu * MHZ_PER_CORE))
    resources["MemoryMB"] = DEFAULT_MEMORY_MIB if spec.memory is None else spec.memory
    if spec.gpu is not None:
        resources["Devices"] = [device_block(spec.gpu)]
    return resources


def _driver_config(driver: str, python: str, docker_image: str, args: list[str]) -> dict[str, Any]:
    if driver == "docker":
        if not docker_image:
            raise ConfigError(
                "The docker driver needs an image with Python: set the Nomad backend's "
                "docker_image option (e.g. 'python:3.11-slim'), or use driver='raw_exec'."
            )
        return {
            "image": docker_image,
            "command": DOCKER_PYTHON,
            "args": args,
            "network_mode": "host",
        }
    if not python:
        raise ConfigError(
            f"The {driver} driver runs the nodes' Python: set the Nomad backend's python "
            "option (e.g. 'python3' or '/opt/python3.11/bin/python')."
        )
    return {"command": python, "args": args}


def _strings(what: str, mapping: Mapping[str, str]) -> dict[str, str]:
    bad = {k: v for k, v in mapping.items() if not isinstance(k, str) or not isinstance(v, str)}
    if bad:
        raise ConfigError(f"Nomad {what} keys and values must be strings; got {sorted(bad)}.")
    return dict(mapping)


def _credential_template(path: str, tls_pinned: bool, dispatched: bool) -> dict[str, Any]:
    if not _VARIABLE_PATH.fullmatch(path):
        raise ConfigError(
            f"Bad Nomad Variable path {path!r}: use 1 to 128 letters, digits, '-', '_', '~' "
            f"or '/', e.g. {job_variable_path('jr-1234')!r} (so the job ID must be one too)."
        )
    number = f"NOMAD_META_{WORKER_META}" if dispatched else "NOMAD_ALLOC_INDEX"
    own = f'index . (printf "{_CREDENTIAL_PREFIX}%s" (env "{number}"))'
    pin = f"\n{FINGERPRINT_ENV}={{{{ .{FINGERPRINT_ITEM} }}}}" if tls_pinned else ""
    body = f"{TOKEN_ENV}={{{{ {own} }}}}{pin}"
    return {
        "EmbeddedTmpl": f'{{{{ with nomadVar "{path}" }}}}{body}{{{{ end }}}}\n',
        "DestPath": _TOKEN_DEST,
        "Perms": "0600",
        "Envvars": True,
        "ChangeMode": "noop",
    }


def build_worker_job(
    *,
    job_id: str,
    spec: WorkerSpec,
    count: int,
    driver: str,
    datacenters: Sequence[str],
    node_pool: str | None,
    namespace: str,
    region: str | None,
    priority: int,
    python: str,
    docker_image: str,
    command_args: Sequence[str],
    env: Mapping[str, str],
    meta: Mapping[str, str],
    kill_timeout_s: float = 10,
    token_variable_path: str | None = None,
    tls_pinned: bool = False,
    dispatched: bool = False,
) -> dict[str, Any]:
    """The ``PUT /v1/jobs`` body for ``count`` workers of ``spec`` (mapping in the module doc).

    ``command_args`` follow the interpreter (``["-m", "jupyter_remote.runtime",
    ...]``); Nomad interpolates ``${NOMAD_ALLOC_ID}`` and the like in them.
    Raises :class:`ConfigError` for an unknown driver, docker without an
    image, a token in ``env`` or an out-of-range value.
    """
    if not job_id or any(c.isspace() or c == "\0" for c in job_id):
        raise ConfigError(f"Bad Nomad job ID {job_id!r}: it must be non-empty, without spaces.")
    if driver not in DRIVERS:
        raise ConfigError(
            f"Unknown Nomad task driver {driver!r}: set the Nomad backend's driver option "
            f"to one of {', '.join(DRIVERS)}."
        )
    if isinstance(count, bool) or not isinstance(count, int) or count < 0:
        raise ConfigError(f"Worker count must be an int >= 0, got {count!r}.")
    if isinstance(priority, bool) or not isinstance(priority, int) or not 1 <= priority <= 100:
        raise ConfigError(
            f"Nomad job priority must be an int from 1 to 100, got {priority!r}; "
            "fix the Nomad backend's priority option."
        )
    if not datacenters or not all(isinstance(dc, str) and dc for dc in datacenters):
        raise ConfigError(
            f"Nomad datacenters must be a non-empty list of names, got {datacenters!r}; "
            "use ['*'] for every datacenter."
        )
    if not math.isfinite(kill_timeout_s) or kill_timeout_s < 0:
        raise ConfigError(f"kill_timeout_s must be >= 0 seconds, got {kill_timeout_s!r}.")
    task_env = _strings("env", {**spec.env, **env})
    if TOKEN_ENV in task_env:
        raise ConfigError(
            f"{TOKEN_ENV} must not be in a Nomad job's env, where anyone who can read the "
            "job sees it; write it to a Nomad Variable and pass token_variable_path."
        )
    if FINGERPRINT_ENV in task_env:
        raise ConfigError(
            f"{FINGERPRINT_ENV} travels with the credentials in the job's Nomad Variable; "
            "pass tls_pinned instead of putting it in env."
        )
    if spec.gpu is not None:
        task_env[GPU_FROM_NVIDIA_ENV] = "1"
    elif driver == "raw_exec":
        task_env = {"CUDA_VISIBLE_DEVICES": "", **task_env}

    task: dict[str, Any] = {
        "Name": TASK,
        "Driver": driver,
        "Config": _driver_config(driver, python, docker_image, list(command_args)),
        "Env": task_env,
        "Resources": task_resources(spec),
        "KillSignal": "SIGTERM",
        "KillTimeout": round(kill_timeout_s * _NS),
    }
    if token_variable_path is not None:
        task["Templates"] = [_credential_template(token_variable_path, tls_pinned, dispatched)]

    group: dict[str, Any] = {
        "Name": GROUP,
        "Count": count,
        "RestartPolicy": {"Attempts": 0, "Mode": "fail"},
        "ReschedulePolicy": {"Attempts": 0, "Unlimited": False},
        "Tasks": [task],
    }
    if spec.ephemeral_disk is not None:
        group["EphemeralDisk"] = {"SizeMB": spec.ephemeral_disk}
    job: dict[str, Any] = {
        "ID": job_id,
        "Name": job_id,
        "Type": "batch",
        "Namespace": namespace,
        "Datacenters": list(datacenters),
        "Priority": priority,
        "Meta": _strings("meta", meta),
        "TaskGroups": [group],
    }
    if dispatched:
        job["ParameterizedJob"] = {"Payload": "forbidden", "MetaRequired": [WORKER_META]}
    if region is not None:
        job["Region"] = region
    if node_pool is not None:
        job["NodePool"] = node_pool
    return {"Job": job}
