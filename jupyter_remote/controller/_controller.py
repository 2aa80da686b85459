"""The controller: one per process, on the loop thread; owns the endpoint, backends and pools.

Everything here runs on the loop thread except :func:`controller`, which
creates it, and :meth:`Controller.shutdown`, which the caller's thread uses at
exit to stop every worker this process started.

Who may connect: each worker is issued its own credential when the pool
registers it (:meth:`Controller.register_worker`); it is good for that worker
id only, for its bootstrap's fetches while the worker starts, and for one
worker connection, then it is gone. Local workers reach a loopback listener;
workers of a backend on other machines reach a listener on the interface of
``advertise_host``, always over TLS (the configured certificate, else one made
for this session), the certificate pinned by its fingerprint. At most
``MAX_UNAUTHENTICATED`` connections wait to authenticate at once: the oldest
is dropped for a new one, so a flood of idle connections never starves workers.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import errno
import ipaddress
import logging
import socket
import threading
import time
from typing import Any, NamedTuple

from ..backends import (
    Backend,
    ControllerAddress,
    WorkerExit,
    WorkerPlacement,
    WorkerSpec,
    backend_class,
)
from ..backends._runtime_zip import build_runtime_archive
from ..config import Settings, load_settings
from ..exceptions import ConfigError, VersionMismatchError, WorkerStartError
from ..protocol import Ping, new_token, python_version
from ._calls import CallState
from ._loop import LoopThread, loop_thread
from ._nested import ClientService
from ._pool import Pool, Scaling, WorkerState
from ._server import HANDSHAKE_TIMEOUT, Connection
from ._tls import TlsIdentity, configured_identity, session_identity

__all__ = ["Controller", "controller"]

log = logging.getLogger("jupyter_remote")
TICK = 0.5
PING_EVERY = 5.0
MAX_UNAUTHENTICATED = 128
_LOOPBACK = ("127.0.0.1", "localhost", "::1")
_FLOOD_LOG_EVERY = 60.0


class Listener(NamedTuple):
    """A listening endpoint: where workers dial, and the pin of its certificate if TLS."""

    server: asyncio.Server
    host: str  # the address workers are told
    port: int
    fingerprint: str | None


class _Pending(NamedTuple):
    """A worker the controller expects: its state, its pool, the credential issued to it."""

    ws: WorkerState
    pool: Pool
    token: str


def _raise_open_file_limit() -> None:
    """Use the hard limit on open files: each worker and each connection holds one."""
    with contextlib.suppress(ImportError, ValueError, OSError):
        import resource

        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        want = hard if hard != resource.RLIM_INFINITY else 1 << 16
        if soft != resource.RLIM_INFINITY and soft < want:
            resource.setrlimit(resource.RLIMIT_NOFILE, (min(want, 1 << 20), hard))


class Controller:
    def __init__(self, loop: LoopThread, settings: Settings) -> None:
        self.loop = loop
        self.settings = settings
        self.backends: dict[str, Backend] = {}
        self.pools: dict[tuple[str, str, str], Pool] = {}
        self._pending: dict[str, _Pending] = {}
        self._loopback: Listener | None = None
        self._external: dict[str, asyncio.Future[Listener]] = {}  # by advertised host
        self._ticker: asyncio.Task[None] | None = None
        self.closed = False
        self._runtime: tuple[str, bytes] | None = None
        self._configured_tls: TlsIdentity | None = None
        self._session_tls: TlsIdentity | None = None
        self._unauthenticated: dict[Connection, None] = {}  # oldest first
        self._dropped = 0
        self._flood_logged = 0.0
        self.clients: ClientService | None = None  # an app server's: who serves clients

    # -- lifecycle -----------------------------------------------------------------

    async def start(self) -> None:
        s = self.settings
        if s.tls_certfile or s.tls_keyfile:
            if not (s.tls_certfile and s.tls_keyfile):
                raise ConfigError("TLS needs both tls_certfile and tls_keyfile")
            self._configured_tls = configured_identity(s.tls_certfile, s.tls_keyfile)
        _raise_open_file_limit()
        self._loopback = await self._listen("127.0.0.1", "127.0.0.1", self._configured_tls)
        self._ticker = asyncio.get_running_loop().create_task(self._tick())

    @property
    def loopback(self) -> tuple[str, int]:
        """The loopback endpoint local workers dial."""
        assert self._loopback is not None, "the controller has not started"
        return self._loopback.host, self._loopback.port

    async def _listen(self, bind: str, host: str, tls: TlsIdentity | None) -> Listener:
        loop = asyncio.get_running_loop()
        server = await loop.create_server(
            lambda: Connection(self),
            host=bind,
            port=0,
            ssl=tls.context if tls else None,
            ssl_handshake_timeout=HANDSHAKE_TIMEOUT if tls else None,
        )
        port = server.sockets[0].getsockname()[1]
        return Listener(server, host, port, tls.fingerprint if tls else None)

    async def _listen_external(self, host: str) -> Listener:
        """A TLS listener on the interface ``host`` belongs to (all of them if none here)."""
        tls = self._configured_tls
        if tls is None:
            if self._session_tls is None:
                self._session_tls = await asyncio.to_thread(session_identity, host)
            tls = self._session_tls
        try:
            return await self._listen(await _bind_address(host), host, tls)
        except OSError as exc:  # the name does not resolve, or the address is not ours
            if not isinstance(exc, socket.gaierror) and exc.errno != errno.EADDRNOTAVAIL:
                raise
        log.warning(
            "jupyter_remote: advertise_host %s is not an address of this machine (a NAT or a "
            "forwarded port?): listening on every interface, TLS with a pinned certificate",
            host,
        )
        return await self._listen("0.0.0.0", host, tls)

    async def address_for(self, backend: Backend, worker_id: str) -> ControllerAddress:
        """Where worker ``worker_id`` of ``backend`` connects, with the credential issued to it."""
        entry = self._pending.get(worker_id)
        if entry is None:
            raise WorkerStartError(f"worker {worker_id} is not expected (its pool is gone)")
        host = backend.advertise_host()
        if host in _LOOPBACK:
            listener = self._loopback
        else:
            future = self._external.get(host)
            if future is None:  # one listener per host, however many workers ask at once
                future = asyncio.ensure_future(self._listen_external(host))
                self._external[host] = future
            try:
                listener = await asyncio.shield(future)
            except BaseException:
                if future.done():
                    self._external.pop(host, None)  # let a later worker try again
                raise
        assert listener is not None
        return ControllerAddress(listener.host, listener.port, entry.token, listener.fingerprint)

    # -- connections waiting to authenticate --------------------------------------------

    def opened(self, conn: Connection) -> None:
        """A connection is waiting to authenticate; past the cap the oldest one is dropped."""
        self._unauthenticated[conn] = None
        if len(self._unauthenticated) <= MAX_UNAUTHENTICATED:
            return
        oldest = next(iter(self._unauthenticated))
        self._unauthenticated.pop(oldest)
        oldest.close()
        self._dropped += 1
        now = time.monotonic()
        if now - self._flood_logged > _FLOOD_LOG_EVERY:
            self._flood_logged = now
            log.warning(
                "jupyter_remote: more than %d connections to the controller are waiting to "
                "authenticate (%d dropped so far; latest from %s): dropping the oldest, workers "
                "are still served. Something on the network is flooding the controller's port.",
                MAX_UNAUTHENTICATED, self._dropped, conn.peer,
            )  # fmt: skip

    def settled(self, conn: Connection) -> None:
        """The connection authenticated, or closed."""
        self._unauthenticated.pop(conn, None)

    async def _tick(self) -> None:
        last_ping = time.monotonic()
        while True:
            await asyncio.sleep(TICK)
            now = time.monotonic()
            for pool in list(self.pools.values()):
                try:
                    pool.tick(now)
                    if pool.waiting_for_capacity():  # workers of others may have gone idle since
                        self.give_back_idle(pool)
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
            self.backends[name] = klass(self._worker_exited, on_placement=self._worker_placement)
        return self.backends[name]

    async def stop_pools(self, app_name: str | None = None) -> None:
        """Stop the pools (of one app); what cannot be cleaned up is one warning, never raised.

        A user's results are in by now: a cluster that cannot be reached to stop and purge
        jobs must not turn them into an error (its workers exit by themselves, and
        ``jupyter-remote gc`` collects the jobs once it is back).
        """
        failed: list[tuple[str, Exception]] = []
        for key in [k for k in self.pools if app_name is None or k[0] == app_name]:
            pool = self.pools.pop(key)
            try:
                await pool.close()
            except Exception as exc:
                failed.append((pool.label, exc))
        if failed:
            labels = ", ".join(label for label, _ in failed)
            log.warning(
                "jupyter_remote: could not clean up after %s: %s. Its workers stop by "
                "themselves; run `jupyter-remote gc` once the cluster is reachable to purge "
                "what is left.",
                labels, failed[0][1],
            )  # fmt: skip

    async def close(self) -> None:
        self.closed = True
        await self.stop_pools()
        for backend in self.backends.values():
            with contextlib.suppress(Exception):
                await backend.close()
        if self._ticker is not None:
            self._ticker.cancel()
        listeners = [self._loopback] + [
            f.result() for f in self._external.values() if f.done() and not f.exception()
        ]
        for listener in listeners:
            if listener is not None:
                listener.server.close()

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
        """Expect ``ws`` and issue its credential (handed to the backend by :meth:`address_for`)."""
        self._pending[ws.worker_id] = _Pending(ws, pool, new_token())

    def forget(self, worker_id: str) -> None:
        """A worker the pool gave up on before it connected: its credential is void."""
        self._pending.pop(worker_id, None)

    def credential(self, worker_id: str) -> str | None:
        """The credential of a worker that has not connected yet; None for any other id."""
        entry = self._pending.get(worker_id)
        return entry.token if entry is not None else None

    def image_for(self, worker_id: str) -> tuple[Any, WorkerState, Pool] | None:
        """The Image of a worker that has not connected yet (its node builds it first)."""
        entry = self._pending.get(worker_id)
        if entry is None or entry.pool.spec.image is None:
            return None
        return entry.pool.spec.image, entry.ws, entry.pool

    def accept(self, conn: Connection, worker_id: str, info: dict[str, Any]) -> dict[str, Any]:
        """Worker ``worker_id`` authenticated: attach it to its pool (its credential is spent)."""
        entry = self._pending.pop(worker_id, None)
        if entry is None:
            return {"ok": False, "error": "unknown worker id (its pool is gone)"}
        ws, pool, _ = entry
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

    def _worker_placement(self, placement: WorkerPlacement) -> None:
        """A scheduler placed a worker (its connect timeout starts), or it waits for room."""
        entry = self._pending.get(placement.worker_id)
        if entry is None:
            return
        ws = entry.ws
        if placement.placed:
            ws.placed = True
            ws.started_at = time.monotonic()
            return
        ws.waiting_for = placement.waiting_for
        self.give_back_idle(entry.pool)

    def give_back_idle(self, waiting: Pool) -> int:
        """Retire the idle warm workers of this process's other pools on ``waiting``'s backend.

        A pool waiting for capacity comes first: warm workers with nothing to do hold
        nodes (GPUs) it could use. Returns how many were retired.
        """
        retired = 0
        for pool in self.pools.values():
            if pool is waiting or pool.backend is not waiting.backend:
                continue
            retired += pool.retire_idle()
        if retired:
            log.info(
                "jupyter_remote: %s waits for capacity: gave back %d idle worker(s) of other "
                "functions", waiting.label, retired,
            )  # fmt: skip
        return retired

    def _worker_exited(self, info: WorkerExit) -> None:
        entry = self._pending.pop(info.worker_id, None)
        if entry is not None:
            entry.pool.exited(entry.ws, info)
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


async def _bind_address(host: str) -> str:
    """The IP address to listen on for ``host`` (a name is resolved; IPv4 first)."""
    with contextlib.suppress(ValueError):
        return str(ipaddress.ip_address(host))
    infos = await asyncio.get_running_loop().getaddrinfo(host, None, type=socket.SOCK_STREAM)
    infos.sort(key=lambda i: i[0] != socket.AF_INET)
    if not infos:
        raise OSError(errno.EADDRNOTAVAIL, f"{host} has no address")
    return str(infos[0][4][0])
