"""The controller: one per process, on the loop thread; owns the endpoint, backends and pools.

Everything here runs on the loop thread except :func:`controller`, which
creates it, and :meth:`Controller.shutdown`, which the caller's thread uses at
exit to stop every worker this process started.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import logging
import ssl
import threading
import time
from typing import Any

from ..backends import Backend, ControllerAddress, WorkerExit, WorkerSpec, backend_class
from ..backends._runtime_zip import build_runtime_archive
from ..config import Settings, load_settings
from ..exceptions import ConfigError, VersionMismatchError
from ..protocol import Ping, new_token, python_version
from ._calls import CallState
from ._loop import LoopThread, loop_thread
from ._pool import Pool, Scaling, WorkerState
from ._server import Connection

__all__ = ["Controller", "controller"]

log = logging.getLogger("jupyter_remote")
TICK = 0.5
PING_EVERY = 5.0


class Controller:
    def __init__(self, loop: LoopThread, settings: Settings) -> None:
        self.loop = loop
        self.settings = settings
        self.token = new_token()
        self.address = ControllerAddress("127.0.0.1", 0, self.token)
        self.backends: dict[str, Backend] = {}
        self.pools: dict[tuple[str, str, str], Pool] = {}
        self._pending: dict[str, tuple[WorkerState, Pool]] = {}
        self._server: asyncio.Server | None = None
        self._ticker: asyncio.Task[None] | None = None
        self.closed = False
        self._runtime: tuple[str, bytes] | None = None
        self._ssl: ssl.SSLContext | None = None
        self._external: asyncio.Server | None = None

    # -- lifecycle -----------------------------------------------------------------

    async def start(self) -> None:
        s = self.settings
        if s.tls_certfile or s.tls_keyfile:
            if not (s.tls_certfile and s.tls_keyfile):
                raise ConfigError("TLS needs both tls_certfile and tls_keyfile")
            self._ssl = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            self._ssl.load_cert_chain(s.tls_certfile, s.tls_keyfile)
        self._server = await self._listen("127.0.0.1")
        self.address = self._address("127.0.0.1", self._server)
        self._ticker = asyncio.get_running_loop().create_task(self._tick())

    async def _listen(self, host: str) -> asyncio.Server:
        loop = asyncio.get_running_loop()
        return await loop.create_server(lambda: Connection(self), host=host, port=0, ssl=self._ssl)

    def _address(self, host: str, server: asyncio.Server) -> ControllerAddress:
        port = server.sockets[0].getsockname()[1]
        tls_ca = self.settings.tls_certfile if self._ssl else None
        return ControllerAddress(host, port, self.token, tls_ca)

    async def address_for(self, backend: Backend) -> ControllerAddress:
        """Where ``backend``'s workers connect: loopback, or a listener on every interface."""
        host = backend.advertise_host()
        if host in ("127.0.0.1", "localhost", "::1"):
            return self.address
        if self._external is None:
            self._external = await self._listen("0.0.0.0")
        return self._address(host, self._external)

    async def _tick(self) -> None:
        last_ping = time.monotonic()
        while True:
            await asyncio.sleep(TICK)
            now = time.monotonic()
            for pool in list(self.pools.values()):
                try:
                    pool.tick(now)
                except Exception:  # a bug of ours: the ticker must keep running
                    log.exception("housekeeping of %s failed", pool.label)
            if now - last_ping > PING_EVERY:
                last_ping = now
                for pool in self.pools.values():
                    for ws in pool.workers.values():
                        if ws.conn is not None:
                            ws.conn.send(Ping())

    def backend(self, name: str) -> Backend:
        if name not in self.backends:
            klass = backend_class(name)
            self.backends[name] = klass(self._worker_exited)
        return self.backends[name]

    async def stop_pools(self, app_name: str | None = None) -> None:
        for key in [k for k in self.pools if app_name is None or k[0] == app_name]:
            await self.pools.pop(key).close()

    async def close(self) -> None:
        self.closed = True
        await self.stop_pools()
        for backend in self.backends.values():
            with contextlib.suppress(Exception):
                await backend.close()
        if self._ticker is not None:
            self._ticker.cancel()
        for server in (self._server, self._external):
            if server is not None:
                server.close()

    def shutdown(self) -> None:
        """Stop everything this process started (called at interpreter exit)."""
        if self.closed:
            return
        fut = self.loop.submit(self.close())
        with contextlib.suppress(Exception):
            fut.result(15)

    # -- pools and calls ---------------------------------------------------------------

    async def pool(
        self, app_name: str, label: str, backend_name: str, spec: WorkerSpec, scaling: Scaling
    ) -> Pool:
        key = (app_name, label, backend_name)
        pool = self.pools.get(key)
        if pool is not None and (pool.spec != spec or pool.scaling != scaling):
            # Redefined with other resources (a re-run notebook cell): fresh workers.
            await self.pools.pop(key).close()
            pool = None
        if pool is None:
            backend = self.backend(backend_name)
            await backend.check(spec)
            pool = Pool(self, spec.label, backend, spec, scaling)
            self.pools[key] = pool
        return pool

    async def cancel(self, call: CallState) -> None:
        call.pool.cancel(call)

    def runtime_archive(self) -> tuple[str, bytes]:
        """This package and cloudpickle as a zip, for nodes that have nothing of ours."""
        if self._runtime is None:
            self._runtime = build_runtime_archive()
        return self._runtime

    # -- workers -------------------------------------------------------------------

    def register_worker(self, ws: WorkerState, pool: Pool) -> None:
        self._pending[ws.worker_id] = (ws, pool)

    def image_for(self, worker_id: str) -> tuple[Any, WorkerState, Pool] | None:
        """The Image of a worker that has not connected yet (its node builds it first)."""
        entry = self._pending.get(worker_id)
        if entry is None or entry[1].spec.image is None:
            return None
        ws, pool = entry
        return pool.spec.image, ws, pool

    def accept(self, conn: Connection, info: dict[str, Any]) -> dict[str, Any]:
        """An authenticated worker said hello: attach it to its pool, or say why not."""
        entry = self._pending.pop(str(info.get("worker_id")), None)
        if entry is None:
            return {"ok": False, "error": "unknown worker id (its pool is gone)"}
        ws, pool = entry
        theirs = tuple(info.get("python") or ())
        if theirs[:2] != python_version():
            ours = ".".join(map(str, python_version()))
            got = ".".join(map(str, theirs))
            error = VersionMismatchError(
                f"the worker for {pool.label} runs Python {got} but the caller runs Python "
                f"{ours}; functions and arguments only travel between identical minor versions. "
                f"Point the workers at a Python {ours} (setting python / JUPYTER_REMOTE_PYTHON)."
            )
            pool.start_failed(ws, error)
            return {"ok": False, "error": str(error)}
        conn.worker, conn.pool = ws, pool
        return {"ok": True}

    def _worker_exited(self, info: WorkerExit) -> None:
        entry = self._pending.pop(info.worker_id, None)
        if entry is not None:
            ws, pool = entry
            pool.exited(ws, info)
            return
        for pool in self.pools.values():
            live = pool.workers.get(info.worker_id)
            if live is not None:
                pool.exited(live, info)
                return


_lock = threading.Lock()
_controller: Controller | None = None


def controller() -> Controller:
    """The process's controller, started on first use (and stopped at exit)."""
    global _controller
    with _lock:
        if _controller is None or _controller.closed:
            loop = loop_thread()
            ctl = Controller(loop, load_settings())
            loop.run(ctl.start())
            atexit.register(ctl.shutdown)
            _controller = ctl
        return _controller
