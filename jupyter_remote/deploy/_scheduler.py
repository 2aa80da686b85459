"""The app server's scheduler: fires deployed schedules, records every run.

Each scheduled function has a state in the store (``schedules/<fn>.json``:
the next fire, paused, the run going) and one record per run
(``runs/<id>.json``: schedule, start, end, status, duration, error with its
traceback, output tail; ``runs/<id>.log``: the whole output).

Firing is committed before anything runs: the state, with its next fire
moved on and the new run named as the one going, is written (atomically)
first, then the run's record, then the call starts. An app server killed at
any point therefore never fires that time again, and a restarted one finds
the run it had named: if its record says it was going (or there is none),
the record is completed as failed ("the app server stopped during this
run"). Nothing is lost and nothing fires twice.

- **No overlap**: a fire while the previous run still goes is recorded as
  ``skipped``.
- **Catch-up**: after downtime the missed fires make one run, not one each;
  the next fire is then the first one after now.
- Pausing stops fires (none are recorded); resuming counts from now.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections import deque
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..controller import OutputLine
from ..controller._calls import END, ERR, OK
from ..exceptions import ConfigError, NotFoundError
from ..protocol import chunk_columns
from ._model import DeployedFunction, Deployment

if TYPE_CHECKING:
    from ._server import AppServer

__all__ = ["Scheduler", "parse_run_id", "split_schedule_name"]

log = logging.getLogger("jupyter_remote")
TICK = 0.25
TAIL_LINES = 20
INTERRUPTED = "the app server stopped during this run (it was killed or restarted)"


def split_schedule_name(name: str) -> tuple[str, str]:
    """``"app.function"`` -> ``("app", "function")`` (app names may hold dots)."""
    app, sep, fn = name.rpartition(".")
    if not sep or not app or not fn:
        raise ConfigError(f"{name!r}: name a schedule as APP.FUNCTION, e.g. shop.nightly")
    return app, fn


def parse_run_id(run_id: str) -> tuple[str, str]:
    """The app and function a run id (``app:function:stamp``) belongs to."""
    parts = run_id.split(":")
    if len(parts) != 3 or not all(parts):
        raise ConfigError(f"{run_id!r} is not a run id; `jupyter-remote schedule runs` lists them")
    return parts[0], parts[1]


@dataclass
class _Run:
    record: dict[str, Any]
    tail: deque[str]
    lines: list[str]


class Scheduler:
    """Fires the schedules of ``server``'s deployments (on the loop thread)."""

    def __init__(self, server: AppServer) -> None:
        self.server = server
        self.store = server.store
        self._states: dict[tuple[str, str], dict[str, Any]] = {}
        self._runs: dict[str, _Run] = {}
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._loop())

    # -- state -------------------------------------------------------------------------

    async def _state(self, app: str, name: str, fn: DeployedFunction, now: float) -> dict[str, Any]:
        key = (app, name)
        state = self._states.get(key)
        assert fn.schedule is not None
        spec = fn.schedule.describe()
        if state is None:
            state = await asyncio.to_thread(self.store.get_json, app, f"schedules/{name}.json")
            if state is not None and state.get("current"):
                await self._interrupted(app, str(state["current"]))
                state["current"] = None
                await self._save(app, name, state)
        if state is None or state.get("spec") != spec:  # new, or its schedule changed
            state = {"spec": spec, "next": fn.schedule.next_after(now), "paused": False}
            state["current"] = None
            await self._save(app, name, state)
        self._states[key] = state
        return state

    async def _save(self, app: str, name: str, state: dict[str, Any]) -> None:
        await asyncio.to_thread(self.store.put_json, app, f"schedules/{name}.json", state)

    async def _interrupted(self, app: str, run_id: str) -> None:
        """Complete the record of a run a killed app server had started."""
        record = await asyncio.to_thread(self.store.get_json, app, f"runs/{run_id}.json")
        if record is not None and record.get("status") != "running":
            return
        record = record or {"id": run_id, "app": app, "function": parse_run_id(run_id)[1]}
        now = time.time()
        start = float(record.get("start") or now)
        record.update(status="failed", end=now, duration=now - start, error=INTERRUPTED)
        await asyncio.to_thread(self.store.put_json, app, f"runs/{run_id}.json", record)

    # -- the loop ------------------------------------------------------------------------

    async def _loop(self) -> None:
        while True:
            try:
                await self._tick(time.time())
            except Exception:  # a bug of ours, or the store failing: try again next tick
                log.exception("jupyter_remote: the scheduler failed")
            await asyncio.sleep(TICK)

    async def _tick(self, now: float) -> None:
        for app, deployment in list(self.server.apps.items()):
            for name, fn in deployment.functions.items():
                if fn.schedule is None:
                    continue
                state = await self._state(app, name, fn, now)
                if state["paused"] or now < float(state["next"]):
                    continue
                nxt = fn.schedule.next_after(float(state["next"]))
                if nxt <= now:  # the app server was down: one catch-up run, then from now
                    nxt = fn.schedule.next_after(now)
                await self.fire(deployment, name, fn, float(state["next"]), nxt)

    async def fire(
        self,
        deployment: Deployment,
        name: str,
        fn: DeployedFunction,
        scheduled_for: float | None,
        nxt: float | None,
    ) -> str:
        """Start a run (``nxt`` None: run now, the next fire stays); return its id."""
        app = deployment.app
        state = self._states[(app, name)]
        stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime())
        run_id = f"{app}:{name}:{stamp}-{os.urandom(3).hex()}"
        now = time.time()
        record: dict[str, Any] = {
            "id": run_id,
            "app": app,
            "function": name,
            "schedule": state["spec"],
            "scheduled_for": scheduled_for,
            "start": now,
            "version": deployment.version,
        }
        busy = state.get("current")
        if nxt is not None:
            state["next"] = nxt
        if busy:
            record.update(
                status="skipped", end=now, duration=0.0, error=f"the run {busy} was still going"
            )
            await self._save(app, name, state)
            await asyncio.to_thread(self.store.put_json, app, f"runs/{run_id}.json", record)
            return run_id
        state["current"] = run_id
        await self._save(app, name, state)  # committed: this fire never happens again
        record["status"] = "running"
        await asyncio.to_thread(self.store.put_json, app, f"runs/{run_id}.json", record)
        run = _Run(record, deque(maxlen=TAIL_LINES), [])
        self._runs[run_id] = run
        asyncio.get_running_loop().create_task(self._run(deployment, name, fn, run))
        return run_id

    async def _run(
        self, deployment: Deployment, name: str, fn: DeployedFunction, run: _Run
    ) -> None:
        record = run.record

        def output(line: OutputLine) -> None:
            run.lines.append(line.text)
            run.tail.extend(line.text.splitlines())

        status, error = "failed", None
        try:
            chunks = chunk_columns([()], {}, 1)
            call = await self.server.start_call(deployment, fn, chunks, 1, on_output=output)
            status, error = "cancelled", "the run was cancelled"
            while True:
                items = await call.channel.atake()
                for kind, _, b in items:
                    if kind == OK:
                        status, error = "succeeded", None
                    elif kind == ERR:
                        status = "failed"
                        error = f"{b.type_name}: {b.message}\n{b.traceback}".rstrip()
                if any(kind == END for kind, _, _ in items):
                    break
        except Exception as exc:  # the call could not start (its pool, its image...)
            status, error = "failed", f"{type(exc).__name__}: {exc}"
        end = time.time()
        record.update(status=status, end=end, duration=end - float(record["start"]))
        record.update(error=error, output_tail="\n".join(run.tail))
        app = deployment.app
        await asyncio.to_thread(
            self.store.put, app, f"runs/{record['id']}.log", "".join(run.lines).encode()
        )
        await asyncio.to_thread(self.store.put_json, app, f"runs/{record['id']}.json", record)
        state = self._states.get((app, name))
        if state is not None and state.get("current") == record["id"]:
            state["current"] = None
            await self._save(app, name, state)
        self._runs.pop(record["id"], None)

    # -- requests -------------------------------------------------------------------------

    def _scheduled(self, app: str, name: str) -> tuple[Deployment, DeployedFunction]:
        deployment = self.server.apps.get(app)
        fn = deployment.functions.get(name) if deployment is not None else None
        if deployment is None or fn is None or fn.schedule is None:
            names = ", ".join(s["name"] for s in self.schedules()) or "none"
            raise NotFoundError(f"no schedule {app}.{name} is deployed; schedules: {names}")
        return deployment, fn

    def schedules(self) -> list[dict[str, Any]]:
        out = []
        for app, deployment in sorted(self.server.apps.items()):
            for name, fn in sorted(deployment.functions.items()):
                if fn.schedule is None:
                    continue
                state = self._states.get((app, name), {})
                out.append(
                    {
                        "name": f"{app}.{name}",
                        "schedule": fn.schedule.describe(),
                        "next": state.get("next"),
                        "paused": bool(state.get("paused")),
                        "running": state.get("current"),
                    }
                )
        return out

    async def pause(self, app: str, name: str, paused: bool) -> None:
        _, fn = self._scheduled(app, name)
        state = await self._state(app, name, fn, time.time())
        if not paused and state["paused"]:
            assert fn.schedule is not None
            state["next"] = fn.schedule.next_after(time.time())  # no catch-up for the pause
        state["paused"] = paused
        await self._save(app, name, state)

    async def run_now(self, app: str, name: str) -> str:
        deployment, fn = self._scheduled(app, name)
        await self._state(app, name, fn, time.time())
        return await self.fire(deployment, name, fn, None, None)

    def runs(self, app: str, name: str) -> list[dict[str, Any]]:
        """(A thread.) The run records of ``app.name``, oldest first."""
        records = []
        for run_id in self.store.names(app, "runs", ".json"):
            record = self.store.get_json(app, f"runs/{run_id}.json")
            if record is not None and record.get("function") == name:
                records.append(record)
        return sorted(records, key=lambda r: float(r.get("start") or 0))

    def log_of(self, run_id: str) -> str:
        """(A thread.) A run's whole output (so far, while it goes)."""
        going = self._runs.get(run_id)
        if going is not None:
            return "".join(going.lines)
        app, _ = parse_run_id(run_id)
        try:
            return self.store.get(app, f"runs/{run_id}.log").decode(errors="replace")
        except FileNotFoundError:
            if self.store.get_json(app, f"runs/{run_id}.json") is None:
                raise NotFoundError(
                    f"no run {run_id!r}; `jupyter-remote schedule runs APP.FUNCTION` lists them"
                ) from None
            return ""
