"""The backend contract: a backend is a launcher of worker processes, nothing more.

A backend starts workers for a :class:`WorkerSpec`, stops them, and reports
each worker's exit with a reason and its last log lines. It never sees inputs
or results: every worker connects back to the controller, whose address and
the worker's own credential the backend passes on (``ControllerAddress``). The same runtime runs
on every backend, so one conformance suite covers them all.

To add a backend, subclass :class:`Backend` in one module and add its class
path to ``jupyter_remote.backends.REGISTRY``.
"""

from __future__ import annotations

import abc
import itertools
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

from ..resources import GpuRequest

__all__ = [
    "Backend",
    "ControllerAddress",
    "ExitCallback",
    "PlacementCallback",
    "WorkerExit",
    "WorkerPlacement",
    "WorkerSpec",
]


@dataclass(frozen=True)
class WorkerSpec:
    """What a pool's workers need: resources, environment, interpreter."""

    label: str  # "app.function", shown in logs, process titles and job names
    cpu: float | None = None
    memory: int | None = None  # MiB
    gpu: GpuRequest | None = None
    env: Mapping[str, str] = field(default_factory=dict)
    python: str | None = None  # interpreter for the worker; default: the caller's
    image: Any = None  # api Image: an environment built (and cached) before workers start
    ephemeral_disk: int | None = None  # MiB of scratch disk; Nomad's group ephemeral_disk


@dataclass(frozen=True)
class ControllerAddress:
    """Where one worker connects, and the credential the controller issued for it alone.

    ``token`` is accepted for one worker connection with this worker's id (and
    for its bootstrap's fetches before that), then never again.
    ``tls_fingerprint`` pins the controller's certificate (SHA-256 of its DER)
    when the channel is TLS.
    """

    host: str
    port: int
    token: str = field(repr=False)
    tls_fingerprint: str | None = None

    def worker_env(self) -> dict[str, str]:
        """Environment that carries the credential to a worker (never its argv)."""
        env = {"JUPYTER_REMOTE_TOKEN": self.token}
        if self.tls_fingerprint:
            env["JUPYTER_REMOTE_TLS_FINGERPRINT"] = self.tls_fingerprint
        return env

    def worker_argv(self, worker_id: str) -> list[str]:
        return [
            "-m",
            "jupyter_remote.runtime",
            "--connect",
            f"{self.host}:{self.port}",
            "--worker-id",
            worker_id,
        ]


@dataclass(frozen=True)
class WorkerExit:
    """Why a worker is gone."""

    worker_id: str
    reason: str  # human readable: "exited with status 1", "killed by SIGKILL (out of memory?)"
    exit_code: int | None = None
    log_tail: str = ""  # the worker's last stderr/stdout lines from the backend
    oom: bool = False
    error: Exception | None = None  # for a worker that never started: what to tell the user


@dataclass(frozen=True)
class WorkerPlacement:
    """Where a worker a cluster scheduler places stands (backends with ``reports_placement``)."""

    worker_id: str
    placed: bool  # True: its task is starting on a node (the connect timeout starts now)
    waiting_for: str = ""  # not placed: what it waits for, in words ("no node has 2 GPUs free")


ExitCallback = Callable[[WorkerExit], None]
PlacementCallback = Callable[[WorkerPlacement], None]


class Backend(abc.ABC):
    """Starts and stops workers. Methods run on the controller's event loop."""

    name: ClassVar[str]
    #: A backend whose workers wait for a scheduler reports their placement
    #: (``on_placement``); the controller then starts a worker's connect timeout
    #: when it is placed, and gives back idle workers of other pools while one waits.
    #: Others' workers are placed when launched.
    reports_placement: ClassVar[bool] = False

    def __init__(
        self, on_exit: ExitCallback, on_placement: PlacementCallback | None = None
    ) -> None:
        self._on_exit = on_exit
        self._on_placement = on_placement

    _ids = itertools.count(1)

    def new_worker_id(self, spec: WorkerSpec) -> str:
        """The id the next worker of ``spec`` will present when it connects."""
        return f"{spec.label.replace('.', '-')}-{next(Backend._ids)}"

    @abc.abstractmethod
    def advertise_host(self) -> str:
        """The address of this machine that this backend's workers can reach."""

    @abc.abstractmethod
    def default_max_workers(self, spec: WorkerSpec) -> int:
        """How many workers a pool may have when the user sets no ``max_containers``."""

    @abc.abstractmethod
    async def check(self, spec: WorkerSpec) -> None:
        """Fail fast (``ConfigError`` / ``GpuUnavailableError``) if ``spec`` can never run here."""

    @abc.abstractmethod
    async def launch(self, spec: WorkerSpec, worker_id: str, address: ControllerAddress) -> None:
        """Start one worker; it connects to ``address`` with ``--worker-id worker_id``."""

    @abc.abstractmethod
    async def stop(self, worker_id: str) -> None:
        """Kill a worker now (it may be busy: the controller has given up on it)."""

    async def release(self, spec: WorkerSpec) -> None:
        """The pool of ``spec`` closed and its workers were stopped: free what it held."""
        return None

    @abc.abstractmethod
    async def close(self) -> None:
        """Stop every worker this backend started."""
