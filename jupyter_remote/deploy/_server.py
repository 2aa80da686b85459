"""The app server: the controller run as its own process, serving deployed apps to clients.

``python -m jupyter_remote.deploy serve`` (started on demand by clients, see
``_launch``) starts this process's controller, loads every deployment in the
store (so an app server killed with ``kill -9`` and started again resumes all
of them), writes its state file (port and client token, mode 0600) and then
serves clients on the controller's one endpoint, in the client role.

A client's ``Invoke`` names a deployed function by its reference key
``deployed:<app>:<name>``; the call starts in that app's pool exactly as a
caller's call would. Pools belong to one version of a deployment: a redeploy
swaps the app's deployment in one step (new calls get the new definitions),
and the old version's pools are closed once their last call has finished, so
calls in flight finish on the definition they started with.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import hashlib
import json
import logging
import os
import signal
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..controller import CallState, Controller, OutputLine, controller
from ..controller._calls import END, ERR, OK, Batch
from ..exceptions import ConfigError, NotFoundError, OutputExpiredError
from ..protocol import (
    Chunk,
    Control,
    ControlReply,
    FunctionRef,
    Invoke,
    Payload,
    dumps,
    failure_from_exception,
    loads,
    new_token,
)
from ..runtime._params import ClassParameters, PickledClass, bind_parameters
from ._model import DeployedFunction, Deployment
from ._paths import remove_state, state_dir, state_file, write_private
from ._scheduler import Scheduler, split_schedule_name
from ._store import DeploymentStore

__all__ = ["REF_PREFIX", "AppServer", "ref_for", "serve"]

log = logging.getLogger("jupyter_remote")
REF_PREFIX = "deployed:"
MAX_SPAWNED = 10_000  # results of spawned calls kept (oldest dropped first)


@dataclass(eq=False)
class _Spawned:
    """A spawned call: its outcome is kept for ``FunctionCall.from_id(id).get()``."""

    call: CallState
    label: str
    outcome: tuple[str, Any, Any] | None = None
    done: asyncio.Event = field(default_factory=asyncio.Event)


def _with_parameters(
    name: str,
    fn: DeployedFunction,
    params: tuple[ClassParameters, Payload],
    ctor: Payload | None,
) -> DeployedFunction:
    """A method of a parametrized class for the client's parameters: its own pool and definition."""
    fields, cls_payload = params
    args, kwargs = loads(ctor) if ctor is not None else ((), {})
    bound = bind_parameters(name, fields, tuple(args), dict(kwargs))
    key = repr(sorted(bound.items()))
    digest = hashlib.sha256(f"{fn.fdef.hash}\0{key}".encode()).hexdigest()
    payload = dumps((PickledClass(cls_payload), (), bound))
    fdef = fn.fdef._replace(payload=payload, hash=digest[:32])
    return dataclasses.replace(fn, tag=f"{name}-{digest[:8]}", fdef=fdef)


def ref_for(
    app: str, name: str, kind: str = "function", methods: tuple[str, ...] = ()
) -> FunctionRef:
    """The reference a client calls deployed function (or class) ``name`` of ``app`` by."""
    return FunctionRef(f"{REF_PREFIX}{app}:{name}", kind, f"{app}.{name}", methods)


class AppServer:
    """Deployed apps, by name; serves clients of ``ctl`` (``ctl.clients`` is this)."""

    def __init__(self, ctl: Controller, store: DeploymentStore, token: str) -> None:
        self.ctl = ctl
        self.store = store
        self.token = token
        self.apps: dict[str, Deployment] = {}
        self.started = time.time()
        self.stopping = threading.Event()
        self.spawned: dict[str, _Spawned] = {}
        self.scheduler = Scheduler(self)
        self._logs = state_dir() / "logs"
        self._logs.mkdir(mode=0o700, exist_ok=True)

    # -- deployments ---------------------------------------------------------------------

    async def load(self, app: str) -> Deployment:
        """(Re)load ``app`` from the store; the old version's pools go once they are idle."""
        new = await asyncio.to_thread(self.store.read, app)
        old = self.apps.get(app)
        self.apps[app] = new
        if old is not None and old.version != new.version:
            asyncio.get_running_loop().create_task(self._retire(old))
        log.info("jupyter_remote: app %s version %d is live", app, new.version)
        return new

    async def _retire(self, old: Deployment) -> None:
        """Close the pools of a replaced version once their calls have finished."""
        key = _pool_app(old)
        while any(p.calls for k, p in self.ctl.pools.items() if k[0] == key):
            await asyncio.sleep(0.5)
        await self.ctl.stop_pools(key)

    async def stop_app(self, app: str) -> None:
        await asyncio.to_thread(self.store.remove, app)
        old = self.apps.pop(app, None)
        if old is not None:
            await self.ctl.stop_pools(_pool_app(old))

    def _describe(self, app: str) -> Deployment:
        deployment = self.apps.get(app)
        if deployment is None:
            names = ", ".join(sorted(self.apps)) or "none"
            raise NotFoundError(
                f"no app {app!r} is deployed (deployed apps: {names}); deploy it with "
                "`jupyter-remote deploy FILE` or app.deploy()"
            )
        return deployment

    # -- calls from clients ----------------------------------------------------------------

    def _target(self, ref: FunctionRef) -> tuple[Deployment, DeployedFunction]:
        if not ref.key.startswith(REF_PREFIX) or ":" not in ref.key[len(REF_PREFIX) :]:
            raise NotFoundError(f"{ref.label}: not a deployed function (use Function.from_name)")
        app, name = ref.key[len(REF_PREFIX) :].split(":", 1)
        deployment = self._describe(app)
        if ref.method is not None:
            methods = deployment.classes.get(name)
            if methods is None or ref.method not in methods:
                raise NotFoundError(_no_such(deployment, f"{name}.{ref.method}"))
            params = deployment.class_parameters(name)
            if params is not None:
                return deployment, _with_parameters(name, methods[ref.method], params, ref.ctor)
            if ref.ctor is None:
                return deployment, methods[ref.method]
        if ref.ctor is not None:
            raise ConfigError(
                f"{ref.label}: this deployed class has no jr.parameter() fields, so it is "
                f"constructed without arguments; call {name}().method.remote(...)"
            )
        fn = deployment.functions.get(name)
        if fn is None:
            raise NotFoundError(_no_such(deployment, name))
        return deployment, fn

    async def start(self, msg: Invoke, pool: Any) -> CallState:
        """A client's call of a deployed function: start it in that app's pool."""
        deployment, fn = self._target(msg.ref)
        if fn.generator != msg.generator:
            verb = "remote_gen" if fn.generator else "remote"
            raise TypeError(
                f"{msg.ref.label} is {'' if fn.generator else 'not '}a generator function: "
                f"call it with .{verb}(...)"
            )
        chunks = list(msg.chunks)
        return await self.start_call(deployment, fn, chunks, msg.n_inputs, msg.kind)

    async def start_call(
        self,
        deployment: Deployment,
        fn: DeployedFunction,
        chunks: list[Chunk],
        n_inputs: int,
        kind: str = "call",
        on_output: Callable[[OutputLine], None] | None = None,
    ) -> CallState:
        """Start a call of ``fn`` in its version's pool; what it prints goes to the app's log."""
        target = await self.ctl.pool(_pool_app(deployment), fn.tag, fn.backend, fn.spec, fn.scaling)
        call = CallState(
            target,
            fn.fdef,
            fn.method,
            n_inputs,
            fn.retries,
            fn.timeout,
            fn.generator,
            self.ctl.settings.max_worker_deaths,
            log_lines=self.ctl.settings.log_lines,
        )
        call.kind = kind
        log_path = self._logs / f"{deployment.app}.log"

        def output(line: OutputLine) -> None:
            _append_log(log_path, fn.tag, line)
            if on_output is not None:
                on_output(line)

        call.on_output = output
        call.on_event = lambda event: None
        batches = [Batch(call, first, payload, size) for first, payload, size in chunks]
        target.add_call(call, batches)
        return call

    # -- spawned calls -----------------------------------------------------------------

    async def _spawn(self, msg: Invoke) -> dict[str, str]:
        call = await self.start(msg, None)
        object_id = f"fc-{uuid.uuid4().hex[:20]}"  # unique across app-server restarts
        spawned = _Spawned(call, msg.ref.label)
        self.spawned[object_id] = spawned
        while len(self.spawned) > MAX_SPAWNED:
            self.spawned.pop(next(iter(self.spawned)))
        asyncio.get_running_loop().create_task(_keep(spawned))
        return {"object_id": object_id}

    def _find(self, object_id: str) -> _Spawned:
        spawned = self.spawned.get(object_id)
        if spawned is None:
            raise NotFoundError(
                f"no spawned call {object_id!r} on the app server: its result was never "
                "there, or the app server was restarted since (results of spawned calls "
                "are kept while it runs)"
            )
        return spawned

    async def _result(self, object_id: str, timeout: float | None) -> tuple[str, Any, Any]:
        spawned = self._find(object_id)
        try:
            await asyncio.wait_for(spawned.done.wait(), timeout)
        except TimeoutError:
            raise OutputExpiredError(
                f"{spawned.label}() ({object_id}) has not finished after {timeout:g}s; call "
                ".get() again to keep waiting"
            ) from None
        if spawned.outcome is None:
            return (END, None, None)  # cancelled
        return spawned.outcome

    # -- management ----------------------------------------------------------------------

    def control(self, conn: Any, msg: Control) -> None:
        async def answer() -> None:
            try:
                result = await self._control(msg.op, msg.args)
            except Exception as exc:
                conn.send(ControlReply(msg.request_id, None, failure_from_exception(exc)))
                return
            conn.send(ControlReply(msg.request_id, result, None))
            if msg.op == "shutdown":
                self.stopping.set()

        asyncio.get_running_loop().create_task(answer())

    async def _control(self, op: str, args: dict[str, Any]) -> Any:
        if op == "status":
            return {"pid": os.getpid(), "started": self.started, "apps": sorted(self.apps)}
        if op == "load":
            return {"version": (await self.load(str(args["app"]))).version}
        if op == "describe":
            return self._describe(str(args["app"])).summary()
        if op == "list":
            return [d.summary() for _, d in sorted(self.apps.items())]
        if op == "stop_app":
            await self.stop_app(str(args["app"]))
            return None
        if op == "spawn":
            return await self._spawn(args["invoke"])
        if op == "result":
            return await self._result(str(args["id"]), args.get("wait"))
        if op == "cancel":
            call = self._find(str(args["id"])).call
            call.pool.cancel(call)
            return None
        if op == "schedules":
            return self.scheduler.schedules()
        if op in ("pause", "resume", "run_now", "runs"):
            app, name = split_schedule_name(str(args["name"]))
            if op == "run_now":
                return {"run_id": await self.scheduler.run_now(app, name)}
            if op == "runs":
                self.scheduler._scheduled(app, name)
                return await asyncio.to_thread(self.scheduler.runs, app, name)
            await self.scheduler.pause(app, name, op == "pause")
            return None
        if op == "run_log":
            return await asyncio.to_thread(self.scheduler.log_of, str(args["id"]))
        if op == "shutdown":
            return None
        raise ConfigError(f"the app server does not know the request {op!r}")


async def _keep(spawned: _Spawned) -> None:
    """Drain a spawned call's channel into its kept outcome."""
    while True:
        for kind, a, b in await spawned.call.channel.atake():
            if kind in (OK, ERR) and spawned.outcome is None:
                spawned.outcome = (kind, a, b)
            elif kind == END:
                spawned.done.set()
                return


def _pool_app(deployment: Deployment) -> str:
    return f"{deployment.app}#{deployment.version}"


def _no_such(deployment: Deployment, name: str) -> str:
    functions = ", ".join(sorted(deployment.functions)) or "none"
    classes = ", ".join(
        f"{c}.{m}" for c, methods in sorted(deployment.classes.items()) for m in sorted(methods)
    )
    return f"app {deployment.app!r} has no function {name!r}; its functions: {functions}" + (
        f"; its class methods: {classes}" if classes else ""
    )


def _append_log(path: Path, tag: str, line: OutputLine) -> None:
    text = line.text if line.text.endswith("\n") else line.text + "\n"
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        with os.fdopen(fd, "a") as f:
            f.write("".join(f"[{tag}] {part}\n" for part in text.splitlines()))


def serve() -> int:
    """Run the app server in this process until ``server stop`` (or SIGTERM); return 0."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    ctl = controller()
    server = AppServer(ctl, DeploymentStore(), new_token())
    ctl.clients = server
    for app in server.store.apps():
        try:
            ctl.loop.run(server.load(app))
        except Exception as exc:  # one broken deployment must not keep the others down
            log.error("jupyter_remote: cannot resume app %s: %s", app, exc)
    ctl.loop.call_soon(server.scheduler.start)
    host, port = ctl.loopback
    state = {"pid": os.getpid(), "host": host, "port": port, "token": server.token}
    state["started"] = server.started
    write_private(state_file(), json.dumps(state).encode())
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: server.stopping.set())
    try:
        while not server.stopping.wait(1.0):
            pass
    finally:
        remove_state(os.getpid())
        ctl.shutdown()
    return 0
