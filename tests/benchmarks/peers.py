"""One adapter per system under test, each running the same workloads on 2 warm workers.

The contract is small: ``start()`` brings up two worker processes and waits
until both are warm; ``bind(fn)`` returns a :class:`Bound` whose ``call(x)`` is
one round trip and whose ``map(xs)`` runs every input and returns the results
in order; ``stop()`` tears everything down. ``cold_first_result()`` runs in a
fresh interpreter (see ``cold.py``) and times everything from nothing running
to the first result.

Each adapter is written the way that system's documentation tells a user to
do it, not tuned beyond that: ``ProcessPoolExecutor.map`` gets a chunksize
(without one it sends one message per input), Dask gets ``client.map`` (one
task per input, as documented), ipyparallel a load-balanced view.
"""

from __future__ import annotations

import contextlib
import importlib.util
import logging
import math
import os
import time
import warnings
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from typing import Any, ClassVar

import workloads

__all__ = ["PEERS", "Bound", "Peer", "PeerUnavailable"]

N_WORKERS = 2
START_TIMEOUT = 60.0


class PeerUnavailable(Exception):
    """The peer cannot run here (not installed, or did not start in time): skip it."""


@dataclass
class Bound:
    """A workload function made callable through one peer."""

    call: Callable[[Any], Any]
    map: Callable[[list[Any]], list[Any]]
    close: Callable[[], None] = lambda: None


def _chunksize(n: int) -> int:
    """~16 chunks per worker: what the PPE documentation suggests for many small inputs."""
    return max(1, math.ceil(n / (N_WORKERS * 16)))


class Peer:
    name: ClassVar[str]
    #: One scheduled task per input: the trivial ``.map`` gets fewer inputs (``task_map_inputs``).
    task_per_input: ClassVar[bool] = False

    @classmethod
    def check(cls) -> None:
        """Raise :class:`PeerUnavailable` if this peer cannot run in this environment."""

    def start(self) -> None:
        raise NotImplementedError

    def stop(self) -> None:
        raise NotImplementedError

    def bind(self, fn: Callable[[Any], Any]) -> Bound:
        raise NotImplementedError

    @classmethod
    def cold_first_result(cls) -> float:
        """Seconds from nothing running to the first result of ``identity(1)``."""
        raise NotImplementedError

    @classmethod
    def version(cls) -> str:
        return ""


def _wait_for_pids(run: Callable[[list[Any]], list[Any]], timeout: float = START_TIMEOUT) -> None:
    """Run short sleeps until two distinct worker processes have answered."""
    deadline = time.monotonic() + timeout
    seen: set[int] = set()
    while len(seen) < N_WORKERS:
        if time.monotonic() > deadline:
            raise PeerUnavailable(f"{len(seen)} of {N_WORKERS} workers answered in {timeout:g}s")
        seen.update(run(list(range(8))))


# -- concurrent.futures.ProcessPoolExecutor: the baseline ---------------------------------------


class ProcessPool(Peer):
    name = "PPE"

    def __init__(self) -> None:
        self.ex: ProcessPoolExecutor | None = None

    @classmethod
    def version(cls) -> str:
        import platform

        return f"stdlib (Python {platform.python_version()})"

    def start(self) -> None:
        # The platform's default start method (fork on Linux), which is what users get.
        self.ex = ProcessPoolExecutor(max_workers=N_WORKERS)
        ex = self.ex
        _wait_for_pids(lambda xs: list(ex.map(workloads.sleep_pid, xs)))

    def stop(self) -> None:
        if self.ex is not None:
            self.ex.shutdown(wait=True, cancel_futures=True)
            self.ex = None

    def bind(self, fn: Callable[[Any], Any]) -> Bound:
        ex = self.ex
        assert ex is not None
        return Bound(
            call=lambda x: ex.submit(fn, x).result(),
            map=lambda xs: list(ex.map(fn, xs, chunksize=_chunksize(len(xs)))),
        )

    @classmethod
    def cold_first_result(cls) -> float:
        import multiprocessing

        t0 = time.perf_counter()
        with ProcessPoolExecutor(N_WORKERS, mp_context=multiprocessing.get_context("spawn")) as ex:
            ex.submit(workloads.identity, 1).result()
            elapsed = time.perf_counter() - t0
        return elapsed


# -- jupyter_remote ----------------------------------------------------------------------------


class JupyterRemote(Peer):
    """One ``App``; each workload gets its own pool (Modal semantics), two warm workers each.

    Pools are per function, so ``bind`` starts a pool and the ``Bound``'s ``close``
    stops it: only two workers exist at any time, as for the other peers.
    """

    name = "jupyter_remote"
    OPTIONS: ClassVar[dict[str, int]] = {"max_containers": N_WORKERS, "min_containers": N_WORKERS}

    def __init__(self) -> None:
        self.app: Any = None

    @classmethod
    def version(cls) -> str:
        import jupyter_remote

        return jupyter_remote.__version__

    def start(self) -> None:
        import jupyter_remote as jr

        self.app = jr.App("bench")

    def stop(self) -> None:
        if self.app is not None:
            self.app.stop()
            self.app = None

    def bind(self, fn: Callable[[Any], Any]) -> Bound:
        app = self.app
        f = app.function(**self.OPTIONS)(fn)
        f.remote(0)
        _wait_until_warm(f)

        def close() -> None:
            app.stop()
            time.sleep(1.0)  # let the stopped workers exit before the next measurement

        return Bound(call=f.remote, map=lambda xs: list(f.map(xs)), close=close)

    @classmethod
    def cold_first_result(cls) -> float:
        import jupyter_remote as jr

        jr.App  # noqa: B018 - the package imports lazily: load the API before the clock, like peers
        t0 = time.perf_counter()
        app = jr.App("cold")
        f = app.function(**cls.OPTIONS)(workloads.identity)
        f.remote(1)
        elapsed = time.perf_counter() - t0
        app.stop()
        return elapsed


def _wait_until_warm(f: Any, timeout: float = START_TIMEOUT) -> None:
    """Wait until ``min_containers`` workers are connected.

    The pool is internal API; if its shape changed, fall back to a fixed wait so
    the benchmark still runs (a worker starts in well under a second here).
    """
    pool = getattr(f, "_pool", None)
    workers = getattr(pool, "workers", None)
    if not isinstance(workers, dict):
        time.sleep(2.0)
        return
    deadline = time.monotonic() + timeout
    while sum(getattr(w, "state", None) == "ready" for w in list(workers.values())) < N_WORKERS:
        if time.monotonic() > deadline:
            raise RuntimeError(f"{N_WORKERS} workers were not ready after {timeout:g}s")
        time.sleep(0.01)


# -- Dask distributed --------------------------------------------------------------------------


class Dask(Peer):
    name = "dask"
    task_per_input = True  # client.map: 100,000 tasks would take minutes

    def __init__(self) -> None:
        self.cluster: Any = None
        self.client: Any = None

    @classmethod
    def check(cls) -> None:
        if importlib.util.find_spec("distributed") is None:
            raise PeerUnavailable("not installed (pip install 'dask[distributed]')")

    @classmethod
    def version(cls) -> str:
        import distributed

        return distributed.__version__

    @staticmethod
    def _make() -> tuple[Any, Any]:
        from distributed import Client, LocalCluster

        cluster = LocalCluster(
            n_workers=N_WORKERS,
            threads_per_worker=1,
            processes=True,
            dashboard_address=None,
            silence_logs=logging.ERROR,
        )
        client = Client(cluster)
        client.wait_for_workers(N_WORKERS, timeout=START_TIMEOUT)
        return cluster, client

    def start(self) -> None:
        self.cluster, self.client = self._make()
        client = self.client
        _wait_for_pids(lambda xs: client.gather(client.map(workloads.sleep_pid, xs, pure=False)))

    def stop(self) -> None:
        with contextlib.suppress(Exception):
            self.client.close()
        with contextlib.suppress(Exception):
            self.cluster.close()

    def bind(self, fn: Callable[[Any], Any]) -> Bound:
        client = self.client

        def call(x: Any) -> Any:
            with warnings.catch_warnings():
                # "Sending large graph": expected for the 100 MB argument.
                warnings.simplefilter("ignore", UserWarning)
                return client.submit(fn, x, pure=False).result()

        return Bound(call=call, map=lambda xs: client.gather(client.map(fn, xs, pure=False)))

    @classmethod
    def cold_first_result(cls) -> float:
        from distributed import Client, LocalCluster

        t0 = time.perf_counter()
        with (
            LocalCluster(
                n_workers=N_WORKERS,
                threads_per_worker=1,
                processes=True,
                dashboard_address=None,
                silence_logs=logging.ERROR,
            ) as cluster,
            Client(cluster) as client,
        ):
            client.submit(workloads.identity, 1, pure=False).result()
            elapsed = time.perf_counter() - t0
        return elapsed


# -- ipyparallel -------------------------------------------------------------------------------


class IPyParallel(Peer):
    name = "ipyparallel"

    def __init__(self) -> None:
        self.cluster: Any = None
        self.rc: Any = None
        self.view: Any = None

    @classmethod
    def check(cls) -> None:
        if importlib.util.find_spec("ipyparallel") is None:
            raise PeerUnavailable("not installed (pip install ipyparallel)")

    @classmethod
    def version(cls) -> str:
        import ipyparallel

        return ipyparallel.__version__

    @staticmethod
    def _start_cluster(created: Callable[[Any], None] = lambda c: None) -> tuple[Any, Any]:
        import ipyparallel as ipp

        cluster = ipp.Cluster(n=N_WORKERS, log_level=logging.ERROR)
        created(cluster)  # so that stop() can stop a start that is still under way
        try:
            cluster.start_cluster_sync()
            rc = cluster.connect_client_sync()
            rc.wait_for_engines(N_WORKERS, timeout=START_TIMEOUT)
            # Engines are plain `ipengine` processes: let them import the workloads too.
            here = os.path.dirname(os.path.abspath(workloads.__file__))
            rc[:].execute(f"import sys; sys.path.insert(0, {here!r})", block=True)
        except Exception as exc:
            with contextlib.suppress(Exception):
                cluster.stop_cluster_sync()
            raise PeerUnavailable(f"ipp.Cluster(n={N_WORKERS}) did not start: {exc!r}") from exc
        return cluster, rc

    def start(self) -> None:
        self.cluster, self.rc = self._start_cluster(lambda c: setattr(self, "cluster", c))
        self.view = self.rc.load_balanced_view()
        view = self.view
        _wait_for_pids(lambda xs: list(view.map_sync(workloads.sleep_pid, xs)))

    def stop(self) -> None:
        with contextlib.suppress(Exception):
            self.rc.close()
        with contextlib.suppress(Exception):
            self.cluster.stop_cluster_sync()

    def bind(self, fn: Callable[[Any], Any]) -> Bound:
        view = self.view
        return Bound(
            call=lambda x: view.apply_sync(fn, x),
            map=lambda xs: list(view.map_sync(fn, xs, chunksize=_chunksize(len(xs)))),
        )

    @classmethod
    def cold_first_result(cls) -> float:
        import ipyparallel  # noqa: F401  (imports are not part of the cold start)

        t0 = time.perf_counter()
        cluster, rc = cls._start_cluster()
        try:
            rc.load_balanced_view().apply_sync(workloads.identity, 1)
            elapsed = time.perf_counter() - t0
        finally:
            with contextlib.suppress(Exception):
                rc.close()
            with contextlib.suppress(Exception):
                cluster.stop_cluster_sync()
        return elapsed


# -- Ray (only when installed) -----------------------------------------------------------------


class Ray(Peer):
    name = "ray"
    task_per_input = True

    @classmethod
    def check(cls) -> None:
        if importlib.util.find_spec("ray") is None:
            raise PeerUnavailable("not installed (pip install ray)")

    @classmethod
    def version(cls) -> str:
        import ray

        return ray.__version__

    @staticmethod
    def _init() -> Any:
        import ray

        here = os.path.dirname(os.path.abspath(workloads.__file__))
        ray.init(
            num_cpus=N_WORKERS,
            include_dashboard=False,
            log_to_driver=False,
            runtime_env={"env_vars": {"PYTHONPATH": here}},
        )
        return ray

    def start(self) -> None:
        ray = self._init()
        remote_pid = ray.remote(workloads.sleep_pid)
        _wait_for_pids(lambda xs: ray.get([remote_pid.remote(x) for x in xs]))

    def stop(self) -> None:
        import ray

        ray.shutdown()

    def bind(self, fn: Callable[[Any], Any]) -> Bound:
        import ray

        task = ray.remote(fn)
        return Bound(
            call=lambda x: ray.get(task.remote(x)),
            map=lambda xs: ray.get([task.remote(x) for x in xs]),
        )

    @classmethod
    def cold_first_result(cls) -> float:
        import ray  # imported before the clock starts, as for the other peers

        t0 = time.perf_counter()
        cls._init()
        ray.get(ray.remote(workloads.identity).remote(1))
        elapsed = time.perf_counter() - t0
        ray.shutdown()
        return elapsed


#: In the order they are measured: the baseline first (forked before any other threads exist).
PEERS: dict[str, type[Peer]] = {
    p.name: p for p in (ProcessPool, JupyterRemote, Dask, IPyParallel, Ray)
}


@contextlib.contextmanager
def running(peer: Peer) -> Iterator[Peer]:
    peer.start()
    try:
        yield peer
    finally:
        peer.stop()
