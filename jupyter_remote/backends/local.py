"""The embedded backend: workers are subprocesses of the caller's machine.

Each worker runs in its own process session (so a Ctrl-C in the caller's
terminal reaches the caller only, which then cancels the call) with its
stdout/stderr going to a log file whose tail explains an early exit. The
session's process group is the unit that is stopped, as a Nomad allocation is:
processes the function started go with their worker, whether it was killed or
exited by itself (a graceful retire), and a worker whose caller died kills its
own group on its way out (``runtime._worker``). GPU
functions run only where ``nvidia-smi`` shows a matching GPU; each worker gets
its own ``CUDA_VISIBLE_DEVICES``.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
import sysconfig
from dataclasses import replace

from ..exceptions import ConfigError, GpuUnavailableError
from ._nvidia import LocalGpu, assign_gpus, check_gpu_request, cuda_visible_devices, detect_gpus
from .base import (
    Backend,
    ControllerAddress,
    ExitCallback,
    PlacementCallback,
    WorkerExit,
    WorkerSpec,
)

__all__ = ["LocalBackend", "describe_exit"]

LOG_TAIL_BYTES = 8192
_EXIT_TIMEOUT = 75  # runtime._worker.EXIT_TIMEOUT (not imported: backends do not import runtime)


def describe_exit(code: int | None) -> tuple[str, bool]:
    """A reason for a process exit status, and whether it looks like the OOM killer."""
    if code is None:
        return "was lost", False
    if code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = f"signal {-code}"
        if -code == signal.SIGKILL:
            return f"was killed by {name} (out of memory, or killed from outside)", True
        return f"was killed by {name}", False
    if code == _EXIT_TIMEOUT:
        return "stopped an input that ran past its timeout", False
    return f"exited with status {code}", False


class _Tail:
    """The last ``limit`` bytes of a worker's output, kept in memory (never on disk)."""

    def __init__(self, limit: int = LOG_TAIL_BYTES) -> None:
        self.limit = limit
        self.data = bytearray()

    async def drain(self, stream: asyncio.StreamReader) -> None:
        while chunk := await stream.read(65536):
            self.data += chunk
            if len(self.data) > 2 * self.limit:
                del self.data[: -self.limit]

    def text(self) -> str:
        return bytes(self.data[-self.limit :]).decode("utf-8", "replace")


def _worker_pythonpath() -> str:
    """The caller's import path without its standard library (a worker may run another Python)."""
    paths = sysconfig.get_paths()
    stdlib = {os.path.realpath(paths[k]) for k in ("stdlib", "platstdlib")}
    keep = []
    for p in sys.path:
        if not p or not os.path.isdir(p):
            continue
        real = os.path.realpath(p)
        if real in stdlib or os.path.basename(real) == "lib-dynload" or real.endswith(".zip"):
            continue
        keep.append(p)
    return os.pathsep.join(keep)


def _caller_source_paths() -> list[str]:
    """The caller's own directories on sys.path (scripts, projects), not installed packages."""
    installed = {os.path.realpath(p) for p in sysconfig.get_paths().values()}
    keep = []
    for p in _worker_pythonpath().split(os.pathsep):
        real = os.path.realpath(p)
        if p and real not in installed and "site-packages" not in real:
            keep.append(p)
    return keep


class LocalBackend(Backend):
    """Runs workers as ``python -m jupyter_remote.runtime`` subprocesses."""

    name = "local"

    def __init__(
        self, on_exit: ExitCallback, on_placement: PlacementCallback | None = None
    ) -> None:
        super().__init__(on_exit, on_placement)
        self._procs: dict[str, asyncio.subprocess.Process] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._gpus_of: dict[str, list[int]] = {}
        self._gpus: list[LocalGpu] | None = None

    def advertise_host(self) -> str:
        return "127.0.0.1"

    def default_max_workers(self, spec: WorkerSpec) -> int:
        if spec.gpu is not None and self._gpus:
            return max(1, len(self._gpus) // max(1, spec.gpu.count))
        return os.cpu_count() or 1

    async def _detect(self) -> list[LocalGpu]:
        if self._gpus is None:
            self._gpus = await asyncio.to_thread(detect_gpus)
        return self._gpus

    async def check(self, spec: WorkerSpec) -> None:
        if spec.gpu is not None:
            check_gpu_request(spec.gpu, await self._detect())
        cores = os.cpu_count() or 1
        if spec.cpu is not None and spec.cpu > cores:
            raise ConfigError(
                f"{spec.label} asks for cpu={spec.cpu:g} but this machine has {cores} cores; "
                "lower cpu=, or run on a Nomad cluster (JUPYTER_REMOTE_BACKEND=nomad)"
            )
        total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // (1 << 20)
        if spec.memory is not None and spec.memory > total:
            raise ConfigError(
                f"{spec.label} asks for memory={spec.memory} MiB but this machine has {total} MiB; "
                "lower memory=, or run on a Nomad cluster (JUPYTER_REMOTE_BACKEND=nomad)"
            )
        if spec.image is not None:
            from ._images import check_local_image

            check_local_image(spec.image)
        if spec.python is not None and not os.access(spec.python, os.X_OK):
            raise ConfigError(
                f"the worker interpreter {spec.python!r} does not exist or is not executable; "
                "fix the python setting (env JUPYTER_REMOTE_PYTHON)"
            )

    async def _image_env(self, spec: WorkerSpec) -> tuple[str, dict[str, str], str | None]:
        """Build (or find cached) the image: its python, its environment, its workdir.

        The worker gets only the runtime zip and the caller's own source directories on
        its path, so the image's packages, not the caller's, are what it imports.
        """
        from ._images import ImageBuilder
        from ._runtime_zip import runtime_zip_path

        builder = ImageBuilder(python=spec.python)
        log = lambda line: print(f"[image] {line}", file=sys.stderr, flush=True)  # noqa: E731
        built = await asyncio.to_thread(builder.ensure, spec.image, log)
        paths = [str(runtime_zip_path()), *_caller_source_paths()]
        workdir = str(built.workdir) if built.workdir else None
        return str(built.python), built.environ(os.environ, pythonpath=paths), workdir

    async def launch(self, spec: WorkerSpec, worker_id: str, address: ControllerAddress) -> None:
        cwd = None
        if spec.image is not None:
            python, env, cwd = await self._image_env(spec)
            spec = replace(spec, python=python)
        else:
            env = dict(os.environ)
            env["PYTHONPATH"] = _worker_pythonpath()
        env.update(spec.env)
        env.update(address.worker_env())
        env["PYTHONUNBUFFERED"] = "1"
        if spec.gpu is not None:
            busy = {i for ids in self._gpus_of.values() for i in ids}
            gpus = assign_gpus(spec.gpu, await self._detect(), busy)
            if not gpus:
                raise GpuUnavailableError(
                    f"all GPUs matching {spec.gpu} on this machine are in use by other workers"
                )
            self._gpus_of[worker_id] = [g.index for g in gpus]
            env["CUDA_DEVICE_ORDER"] = "PCI_BUS_ID"  # nvidia-smi's numbering
            env["CUDA_VISIBLE_DEVICES"] = cuda_visible_devices(gpus)
        proc = await asyncio.create_subprocess_exec(
            *self.command(spec, worker_id, address),
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            env=env,
            cwd=cwd,
            start_new_session=True,
        )
        self._procs[worker_id] = proc
        tail = _Tail()
        assert proc.stdout is not None
        loop = asyncio.get_running_loop()
        reader = loop.create_task(tail.drain(proc.stdout))
        waiter = loop.create_task(self._wait(worker_id, proc, tail, reader))
        self._tasks.update((reader, waiter))  # the loop keeps only weak references to tasks
        for task in (reader, waiter):
            task.add_done_callback(self._tasks.discard)

    def command(self, spec: WorkerSpec, worker_id: str, address: ControllerAddress) -> list[str]:
        """The worker's command line (the token travels in its environment)."""
        return [spec.python or sys.executable, *address.worker_argv(worker_id)]

    async def _wait(
        self,
        worker_id: str,
        proc: asyncio.subprocess.Process,
        tail: _Tail,
        reader: asyncio.Task[None],
    ) -> None:
        code = await proc.wait()
        # A worker that exited by itself (retired, or its caller is gone) leaves its group
        # behind: whatever the function started (a `sleep`, a server) goes with it.
        _kill_group(proc.pid)
        self._procs.pop(worker_id, None)
        self._gpus_of.pop(worker_id, None)
        reason, oom = describe_exit(code)
        # A child the worker started may hold the pipe open: wait briefly for its last bytes.
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(asyncio.shield(reader), 2.0)
        self._on_exit(WorkerExit(worker_id, reason, code, tail.text(), oom))

    async def stop(self, worker_id: str) -> None:
        # Even a worker that has exited: until _wait ran, its group may still hold children.
        proc = self._procs.get(worker_id)
        if proc is not None:
            _kill_group(proc.pid)

    async def close(self) -> None:
        procs = list(self._procs.values())
        for proc in procs:
            _kill_group(proc.pid)
        for proc in procs:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(proc.wait(), 5)


def _kill_group(pid: int) -> None:
    """SIGKILL the process group a worker leads (``start_new_session``), children and all.

    The group outlives its leader while a member lives, and Linux does not reuse the
    id of a live group, so the id is safe to signal after the worker was reaped.
    """
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)
