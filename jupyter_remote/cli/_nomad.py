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
import socket
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from ..backends.nomad._client import NomadClient, NomadError, NomadNotFoundError
from ..backends.nomad._config import NomadConfig
from ..backends.nomad._jobspec import job_variable_path
from ..exceptions import ConfigError
from ..state._nomad_jobs import (
    TERMINAL,
    WorkerJob,
    alloc_index,
    allocations,
    counts,
    created,
    our_jobs,
    pick_allocations,
    read_our_job,
    resources,
    stop_job_and_workers,
    task_name,
)
from ._common import EXIT_RUNTIME, CliError, Subparsers, confirm

__all__ = ["add_parser", "gc_jobs", "job_logs", "list_jobs", "stop_job"]

Handler = Callable[[argparse.Namespace], int]

_PROBE_TIMEOUT = 1.0
_VARIABLE_GRACE_S = 600.0

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


@contextlib.contextmanager
def _client() -> Iterator[NomadClient]:
    with NomadClient(NomadConfig.load()) as nomad:
        yield nomad


def _age(seconds: float) -> str:
    seconds = max(0, int(seconds))
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def _table(rows: Sequence[Sequence[str]]) -> None:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]) - 1)]
    for row in rows:
        cells = [f"{cell:<{width}}" for cell, width in zip(row, widths, strict=False)]
        print("  ".join([*cells, row[-1]]).rstrip())


@_nomad_errors
def list_jobs(args: argparse.Namespace) -> int:
    """``ps [--all]``: a table of worker jobs."""
    with _client() as nomad:
        jobs = [job for job in our_jobs(nomad) if args.all or job.status not in ("dead", "stopped")]
    if not jobs:
        more = "" if args.all else " (`jupyter-remote ps --all` includes stopped ones)"
        print(f"No jupyter_remote jobs on {nomad.config.address}{more}.")
        return 0
    now = time.time()
    rows = [("JOB", "FUNCTION", "OWNER", "STATUS", "RUNNING", "PENDING", "RESOURCES", "AGE")]
    for job in jobs:
        running, pending = counts(job)
        rows.append((
            job.id,
            job.meta.get("function", "-"),
            job.meta.get("owner", "-"),
            job.status,
            str(running),
            str(pending),
            resources(job.spec),
            _age(now - created(job)),
        ))  # fmt: skip
    _table(rows)
    return 0


# -- logs -------------------------------------------------------------------------------------


def _prefix(alloc: dict[str, Any]) -> str:
    if "/dispatch-" in str(alloc.get("JobID", "")):  # one allocation per worker
        return f"[{str(alloc.get('ID', ''))[:8]}] "
    return f"[{alloc_index(alloc)} {str(alloc.get('ID', ''))[:8]}] "


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
                if status in TERMINAL:
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
        spec = read_our_job(nomad, args.job)
        allocs = pick_allocations(nomad, args.job, args.alloc)
        task = task_name(spec)
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
        read_our_job(nomad, args.job)
        stop_job_and_workers(nomad, args.job, purge=args.purge)
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


def _finished(nomad: NomadClient, job: WorkerJob) -> bool:
    """Dead, or every allocation ended: the job does nothing any more."""
    if job.status in ("dead", "stopped"):
        return True
    allocs = allocations(nomad, job.id)
    return bool(allocs) and all(a.get("ClientStatus") in TERMINAL for a in allocs)


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
    for job in our_jobs(nomad, stubs):
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
                stop_job_and_workers(nomad, orphan.job_id, purge=True)
            nomad.delete_variable(job_variable_path(orphan.job_id))
            print(f"Purged {orphan.job_id} (owner {orphan.owner}): {orphan.reason}")
        for path in stray:
            nomad.delete_variable(path)
            print(f"Deleted variable {path}: its job no longer exists")
    return 0
