"""``jupyter-remote ps|logs|stop|gc``: the worker jobs on the Nomad cluster.

Our jobs are the ones whose ID starts with ``[nomad] job_prefix`` and whose
``Meta.jupyter_remote`` is ``"worker"``; their meta says which function and
owner they serve and where their controller listens (``controller``,
``controller_host``, ``controller_pid``), which is how ``gc`` tells an orphan
from a job in use::

    job's controller                          gc
    ----------------------------------------  ----------------------------------------
    on this host, its pid gone                collect
    refuses TCP connections                   collect
    accepts them (and its pid is alive)       keep, even if the job is idle (dead): the
                                              controller scales it up again
    does not answer in time (unreachable)     collect only if every allocation ended

Collecting stops and purges the job and deletes its Variable
``nomad/jobs/<job id>`` (the credentials of its workers). Variables of jobs that no longer
exist are deleted too once they are ten minutes old (a younger one may belong
to a job being registered).
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import os
import queue
import re
import socket
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from ..backends.nomad._client import NomadClient, NomadError, NomadNotFoundError
from ..backends.nomad._config import NomadConfig
from ..backends.nomad._jobspec import TASK, job_variable_path
from ..exceptions import ConfigError
from ._common import EXIT_RUNTIME, CliError, Subparsers, confirm

__all__ = ["add_parser", "gc_jobs", "job_logs", "list_jobs", "stop_job"]

Handler = Callable[[argparse.Namespace], int]

_TERMINAL = ("complete", "failed", "lost")
_PROBE_TIMEOUT = 1.0
_VARIABLE_GRACE_S = 600.0
_ALLOC_INDEX = re.compile(r"\[(\d+)\]$")

_PS_EPILOG = """\
examples:
  jupyter-remote ps                 running and pending worker jobs
  jupyter-remote ps --all           stopped and finished ones too
"""
_LOGS_EPILOG = """\
examples:
  jupyter-remote logs jr-1a2b3c-app-f               stdout of every allocation
  jupyter-remote logs jr-1a2b3c-app-f --stderr -f   follow stderr until Ctrl-C
  jupyter-remote logs jr-1a2b3c-app-f --alloc 5f3e  one allocation (an ID prefix)
"""
_GC_EPILOG = """\
A job is an orphan when its controller (the notebook kernel or script that
started it) is gone: its process on this host has exited, its address
refuses connections, or it cannot be reached and the job has finished.

examples:
  jupyter-remote gc --dry-run       list what would be collected
  jupyter-remote gc --yes           collect without asking
"""


def add_parser(subparsers: Subparsers) -> None:
    """Add ``ps``, ``logs``, ``stop`` and ``gc`` as top-level commands."""
    raw = argparse.RawDescriptionHelpFormatter
    ps = subparsers.add_parser(
        "ps",
        help="list the worker jobs on the Nomad cluster",
        description="List jupyter_remote's worker jobs on the Nomad cluster (NOMAD_ADDR).",
        epilog=_PS_EPILOG,
        formatter_class=raw,
    )
    ps.add_argument("--all", "-a", action="store_true", help="include stopped and finished jobs")
    ps.set_defaults(handler=list_jobs)

    logs = subparsers.add_parser(
        "logs",
        help="print the task logs of a worker job",
        description="Print the stdout (default) or stderr of a worker job's allocations,\n"
        "each line prefixed by its allocation (index and ID) when there are several.",
        epilog=_LOGS_EPILOG,
        formatter_class=raw,
    )
    logs.add_argument("job", metavar="JOB", help="the job ID (see `jupyter-remote ps`)")
    which = logs.add_mutually_exclusive_group()
    which.add_argument(
        "--stdout", dest="log_type", action="store_const", const="stdout", help="(default)"
    )
    which.add_argument(
        "--stderr", dest="log_type", action="store_const", const="stderr", help="stderr instead"
    )
    logs.add_argument("--follow", "-f", action="store_true", help="keep printing until Ctrl-C")
    logs.add_argument("--alloc", metavar="ID", help="one allocation: its ID or an ID prefix")
    logs.set_defaults(handler=job_logs, log_type="stdout")

    stop = subparsers.add_parser(
        "stop",
        help="stop a worker job",
        description="Stop every allocation of a worker job.",
    )
    stop.add_argument("job", metavar="JOB", help="the job ID (see `jupyter-remote ps`)")
    stop.add_argument(
        "--purge", action="store_true", help="also remove the job and its variable from Nomad"
    )
    stop.set_defaults(handler=stop_job)

    gc = subparsers.add_parser(
        "gc",
        help="stop and purge worker jobs whose controller is gone",
        description="Stop and purge worker jobs whose controller is gone, and delete their\n"
        "Nomad Variables (nomad/jobs/JOB: the credentials of its workers).",
        epilog=_GC_EPILOG,
        formatter_class=raw,
    )
    gc.add_argument("--dry-run", "-n", action="store_true", help="only list what would go")
    gc.add_argument("--yes", "-y", action="store_true", help="do not ask for confirmation")
    gc.set_defaults(handler=gc_jobs)


def _nomad_errors(handler: Handler) -> Handler:
    """Nomad and configuration errors become one ``Error: ...`` line, exit status 1."""

    @functools.wraps(handler)
    def wrapper(args: argparse.Namespace) -> int:
        try:
            return handler(args)
        except (NomadError, ConfigError) as exc:
            raise CliError(str(exc), EXIT_RUNTIME) from None

    return wrapper


# -- our jobs ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Job:
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


def _is_ours(spec: dict[str, Any]) -> bool:
    meta = spec.get("Meta")
    return isinstance(meta, dict) and meta.get("jupyter_remote") == "worker"


def _our_jobs(nomad: NomadClient, stubs: list[dict[str, Any]] | None = None) -> list[_Job]:
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
        if _is_ours(spec):
            jobs.append(_Job(stub, spec))
    return sorted(jobs, key=lambda job: (_created(job), job.id))


def _read_our_job(nomad: NomadClient, job_id: str) -> dict[str, Any]:
    try:
        spec = nomad.job(job_id)
    except NomadNotFoundError:
        raise CliError(
            f"no job {job_id!r} in namespace {nomad.config.namespace!r} at "
            f"{nomad.config.address}; `jupyter-remote ps --all` lists the worker jobs",
            EXIT_RUNTIME,
        ) from None
    if not _is_ours(spec):
        raise CliError(
            f"job {job_id!r} was not started by jupyter_remote (its meta has no "
            f'jupyter_remote = "worker"); use `nomad job` commands for it',
            EXIT_RUNTIME,
        )
    return spec


@contextlib.contextmanager
def _client() -> Iterator[NomadClient]:
    with NomadClient(NomadConfig.load()) as nomad:
        yield nomad


def _created(job: _Job) -> float:
    with contextlib.suppress(ValueError):
        return float(job.meta.get("created", ""))
    submitted = job.stub.get("SubmitTime") or job.spec.get("SubmitTime")
    return submitted / 1e9 if isinstance(submitted, int | float) else 0.0


def _age(seconds: float) -> str:
    seconds = max(0, int(seconds))
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def _dispatched(nomad: NomadClient, job_id: str) -> list[str]:
    """The ids of the workers of a pool's job: its dispatched jobs."""
    return [str(stub.get("ID")) for stub in nomad.list_jobs(f"{job_id}/dispatch-")]


def _allocations(nomad: NomadClient, job_id: str) -> list[dict[str, Any]]:
    """The allocations of a job and of the workers dispatched from it."""
    allocs = nomad.job_allocations(job_id)
    for child in _dispatched(nomad, job_id):
        with contextlib.suppress(NomadNotFoundError):
            allocs.extend(nomad.job_allocations(child))
    return allocs


def _stop(nomad: NomadClient, job_id: str, *, purge: bool) -> None:
    """Stop a job and every worker dispatched from it (they outlive a stopped parent)."""
    for child in _dispatched(nomad, job_id):
        with contextlib.suppress(NomadNotFoundError):
            nomad.stop_job(child, purge=purge)
    nomad.stop_job(job_id, purge=purge)


def _counts(job: _Job) -> tuple[int, int]:
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


def _resources(spec: dict[str, Any]) -> str:
    """'cpu=2 mem=4096MiB gpu=1' from the first task's Resources (one task per job)."""
    try:
        resources = spec["TaskGroups"][0]["Tasks"][0].get("Resources") or {}
    except (KeyError, IndexError, TypeError, AttributeError):
        return "-"
    parts = []
    if resources.get("Cores"):
        parts.append(f"cpu={resources['Cores']}")
    elif resources.get("CPU"):
        parts.append(f"cpu={_number(resources['CPU'] / 1000)}")
    if resources.get("MemoryMB"):
        parts.append(f"mem={resources['MemoryMB']}MiB")
    for device in resources.get("Devices") or []:
        name = str(device.get("Name", ""))
        label = "gpu" if name in ("nvidia/gpu", "gpu") else name
        parts.append(f"{label}={device.get('Count', 1)}")
    return " ".join(parts) or "-"


def _table(rows: Sequence[Sequence[str]]) -> None:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]) - 1)]
    for row in rows:
        cells = [f"{cell:<{width}}" for cell, width in zip(row, widths, strict=False)]
        print("  ".join([*cells, row[-1]]).rstrip())


@_nomad_errors
def list_jobs(args: argparse.Namespace) -> int:
    """``ps [--all]``: a table of worker jobs."""
    with _client() as nomad:
        jobs = [
            job for job in _our_jobs(nomad) if args.all or job.status not in ("dead", "stopped")
        ]
    if not jobs:
        more = "" if args.all else " (`jupyter-remote ps --all` includes stopped ones)"
        print(f"No jupyter_remote jobs on {nomad.config.address}{more}.")
        return 0
    now = time.time()
    rows = [("JOB", "FUNCTION", "OWNER", "STATUS", "RUNNING", "PENDING", "RESOURCES", "AGE")]
    for job in jobs:
        running, pending = _counts(job)
        rows.append((
            job.id,
            job.meta.get("function", "-"),
            job.meta.get("owner", "-"),
            job.status,
            str(running),
            str(pending),
            _resources(job.spec),
            _age(now - _created(job)),
        ))  # fmt: skip
    _table(rows)
    return 0


# -- logs -------------------------------------------------------------------------------------


def _alloc_index(alloc: dict[str, Any]) -> int:
    found = _ALLOC_INDEX.search(str(alloc.get("Name", "")))
    return int(found.group(1)) if found else -1


def _prefix(alloc: dict[str, Any]) -> str:
    if "/dispatch-" in str(alloc.get("JobID", "")):  # one allocation per worker
        return f"[{str(alloc.get('ID', ''))[:8]}] "
    return f"[{_alloc_index(alloc)} {str(alloc.get('ID', ''))[:8]}] "


def _task_name(spec: dict[str, Any]) -> str:
    try:
        return str(spec["TaskGroups"][0]["Tasks"][0]["Name"])
    except (KeyError, IndexError, TypeError):
        return TASK


def _pick_allocations(nomad: NomadClient, job_id: str, alloc: str | None) -> list[dict[str, Any]]:
    allocs = sorted(
        _allocations(nomad, job_id),
        key=lambda a: (_alloc_index(a), int(a.get("CreateIndex", 0))),
    )
    if alloc is not None:
        chosen = [a for a in allocs if str(a.get("ID", "")).startswith(alloc)]
        if not chosen:
            have = ", ".join(str(a.get("ID", ""))[:8] for a in allocs) or "none"
            raise CliError(
                f"job {job_id!r} has no allocation {alloc!r}; its allocations: {have}",
                EXIT_RUNTIME,
            )
        if len(chosen) > 1:
            raise CliError(
                f"{alloc!r} matches {len(chosen)} allocations of job {job_id!r}; give more "
                "of the ID",
                EXIT_RUNTIME,
            )
        return chosen
    if not allocs:
        raise CliError(
            f"job {job_id!r} has no allocations yet (`jupyter-remote ps` shows pending ones)",
            EXIT_RUNTIME,
        )
    return allocs


class _Lines:
    """Cuts a stream of text into whole lines, each with the allocation's prefix."""

    def __init__(self, prefix: str, emit: Callable[[str], None]) -> None:
        self._prefix = prefix
        self._emit = emit
        self._partial = ""

    def feed(self, text: str) -> None:
        if not self._prefix:
            self._emit(text)  # one allocation: pass progress bars ('\r') through as they come
            return
        *lines, self._partial = (self._partial + text).split("\n")
        for line in lines:
            self._emit(f"{self._prefix}{line}\n")

    def close(self) -> None:
        if self._partial:
            self._emit(f"{self._prefix}{self._partial}\n")
            self._partial = ""


def _write(text: str) -> None:
    sys.stdout.write(text)
    sys.stdout.flush()


def _print_log(
    nomad: NomadClient, alloc: dict[str, Any], task: str, log_type: Literal["stdout", "stderr"],
    prefix: str,
) -> None:  # fmt: skip
    lines = _Lines(prefix, _write)
    with contextlib.suppress(NomadNotFoundError):  # not started yet: no log
        for chunk in nomad.follow_logs(str(alloc["ID"]), task, log_type, follow=False):
            lines.feed(chunk.text)
    lines.close()


def _follow_log(
    config: NomadConfig,
    alloc_id: str,
    task: str,
    log_type: Literal["stdout", "stderr"],
    lines: _Lines,
    stop: threading.Event,
) -> None:
    """Follow one allocation's log until its task ends or ``stop``; waits for it to start."""
    with NomadClient(config) as nomad:  # one per thread: requests' sessions are not thread-safe
        while not stop.is_set():
            try:
                for chunk in nomad.follow_logs(alloc_id, task, log_type, stop=stop):
                    lines.feed(chunk.text)
                break
            except NomadNotFoundError:
                # The task has not started (no log yet), unless the allocation is gone.
                try:
                    status = nomad.allocation(alloc_id).get("ClientStatus")
                except NomadNotFoundError:
                    break
                if status in _TERMINAL:
                    break
                stop.wait(1.0)
    lines.close()


def _follow_all(
    nomad: NomadClient,
    allocs: list[dict[str, Any]],
    task: str,
    log_type: Literal["stdout", "stderr"],
) -> None:
    """Follow every allocation's log at once, printing from this thread until all end."""
    out: queue.Queue[str | BaseException | None] = queue.Queue()
    stop = threading.Event()
    several = len(allocs) > 1
    threads = []

    def run(alloc: dict[str, Any]) -> None:
        try:
            lines = _Lines(_prefix(alloc) if several else "", out.put)
            _follow_log(nomad.config, str(alloc["ID"]), task, log_type, lines, stop)
        except BaseException as exc:  # handed to the main thread, which raises it
            out.put(exc)
        finally:
            out.put(None)

    for alloc in allocs:
        thread = threading.Thread(target=run, args=(alloc,), daemon=True, name="jr-logs")
        thread.start()
        threads.append(thread)
    running = len(threads)
    try:
        while running:
            try:
                item = out.get(timeout=0.2)  # a timeout, so that Ctrl-C is seen at once
            except queue.Empty:
                continue
            if item is None:
                running -= 1
            elif isinstance(item, BaseException):
                raise item
            else:
                _write(item)
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=2.0)


@_nomad_errors
def job_logs(args: argparse.Namespace) -> int:
    """``logs JOB [--stdout|--stderr] [--follow] [--alloc ID]``."""
    log_type: Literal["stdout", "stderr"] = args.log_type
    with _client() as nomad:
        spec = _read_our_job(nomad, args.job)
        allocs = _pick_allocations(nomad, args.job, args.alloc)
        task = _task_name(spec)
        if args.follow:
            with contextlib.suppress(KeyboardInterrupt):  # Ctrl-C is how -f ends
                _follow_all(nomad, allocs, task, log_type)
            return 0
        for alloc in allocs:
            _print_log(nomad, alloc, task, log_type, _prefix(alloc) if len(allocs) > 1 else "")
    return 0


# -- stop -------------------------------------------------------------------------------------


@_nomad_errors
def stop_job(args: argparse.Namespace) -> int:
    """``stop JOB [--purge]``."""
    with _client() as nomad:
        _read_our_job(nomad, args.job)
        _stop(nomad, args.job, purge=args.purge)
        if args.purge:
            nomad.delete_variable(job_variable_path(args.job))
    print(f"{'Stopped and purged' if args.purge else 'Stopped'} job {args.job}")
    return 0


# -- gc ---------------------------------------------------------------------------------------

Liveness = Literal["alive", "gone", "unknown"]


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process
    return True


def _split_address(address: str) -> tuple[str, int] | None:
    host, _, port = address.rpartition(":")
    host = host.strip("[]")
    if not host or not port.isdigit():
        return None
    return host, int(port)


def _probe(host: str, port: int) -> Literal["open", "refused", "silent"]:
    try:
        with socket.create_connection((host, port), timeout=_PROBE_TIMEOUT):
            return "open"
    except ConnectionRefusedError:
        return "refused"
    except OSError:  # timeout, no route, name not found
        return "silent"


def _controller(meta: dict[str, str], hostname: str) -> tuple[Liveness, str]:
    """Whether the job's controller still runs, and why we think so."""
    address = meta.get("controller", "")
    host = meta.get("controller_host", "")
    pid = meta.get("controller_pid", "")
    if host == hostname and pid.isdigit() and not _pid_alive(int(pid)):
        return "gone", f"its controller (pid {pid} on {host}) has exited"
    where = _split_address(address)
    if where is None:
        return "unknown", "its meta names no controller address"
    state = _probe(*where)
    if state == "refused":
        return "gone", f"its controller at {address} refuses connections"
    if state == "open":
        return "alive", f"its controller at {address} is running"
    return "unknown", f"its controller at {address} did not answer within {_PROBE_TIMEOUT:g} s"


def _finished(nomad: NomadClient, job: _Job) -> bool:
    """Dead, or every allocation ended: the job does nothing any more."""
    if job.status in ("dead", "stopped"):
        return True
    allocs = _allocations(nomad, job.id)
    return bool(allocs) and all(a.get("ClientStatus") in _TERMINAL for a in allocs)


@dataclass(frozen=True)
class _Orphan:
    job_id: str
    owner: str
    reason: str


def _find_orphans(nomad: NomadClient) -> tuple[list[_Orphan], list[str], list[str]]:
    """(jobs to collect, stray variables to delete, notes on jobs left alone)."""
    hostname = socket.gethostname()
    orphans: list[_Orphan] = []
    notes: list[str] = []
    stubs = nomad.list_jobs(f"{nomad.config.job_prefix}-")
    for job in _our_jobs(nomad, stubs):
        owner = job.meta.get("owner", "?")
        liveness, why = _controller(job.meta, hostname)
        if liveness == "gone":
            orphans.append(_Orphan(job.id, owner, why))
        elif liveness == "unknown":
            if _finished(nomad, job):
                orphans.append(_Orphan(job.id, owner, f"it has finished and {why}"))
            else:
                notes.append(
                    f"Left {job.id} (owner {owner}) alone: {why} and it still runs; stop it "
                    "with `jupyter-remote stop --purge` if it is an orphan."
                )
    existing = {str(stub.get("ID")) for stub in stubs}
    collected = {orphan.job_id for orphan in orphans}
    stray = []
    now_ns = time.time() * 1e9
    prefix = job_variable_path(f"{nomad.config.job_prefix}-")
    for meta in nomad.list_variables(prefix):
        path = str(meta.get("Path", ""))
        job_id = path.removeprefix(job_variable_path(""))
        if "/" in job_id or job_id in existing or job_id in collected:
            continue
        modified = meta.get("ModifyTime")
        if isinstance(modified, int) and now_ns - modified < _VARIABLE_GRACE_S * 1e9:
            continue  # written just before its job is registered, maybe
        stray.append(path)
    return orphans, stray, notes


@_nomad_errors
def gc_jobs(args: argparse.Namespace) -> int:
    """``gc [--dry-run] [--yes]``: collect the jobs whose controller is gone."""
    with _client() as nomad:
        orphans, stray, notes = _find_orphans(nomad)
        for note in notes:
            print(note)
        if not orphans and not stray:
            print("No orphaned jupyter_remote jobs.")
            return 0
        if args.dry_run:
            for orphan in orphans:
                print(f"Would purge {orphan.job_id} (owner {orphan.owner}): {orphan.reason}")
            for path in stray:
                print(f"Would delete variable {path}: its job no longer exists")
            return 0
        if orphans and not args.yes:
            for orphan in orphans:
                print(f"{orphan.job_id} (owner {orphan.owner}): {orphan.reason}")
            if sys.stdin is None or not sys.stdin.isatty():
                raise CliError(
                    "not collecting: stdin is not a terminal to confirm on; pass --yes to "
                    "collect without asking, or --dry-run to only list"
                )
            if not confirm(f"Stop and purge {len(orphans)} job(s)?"):
                print("Nothing collected.", file=sys.stderr)
                return EXIT_RUNTIME
        for orphan in orphans:
            with contextlib.suppress(NomadNotFoundError):
                _stop(nomad, orphan.job_id, purge=True)
            nomad.delete_variable(job_variable_path(orphan.job_id))
            print(f"Purged {orphan.job_id} (owner {orphan.owner}): {orphan.reason}")
        for path in stray:
            nomad.delete_variable(path)
            print(f"Deleted variable {path}: its job no longer exists")
    return 0
