"""References to Functions: what a ``Function``, ``Cls`` or ``Cls`` instance pickles as.

A shipped function may capture another (``b`` calls ``a.remote``), take one
as an argument or return one. None of them pickles its state (pools, futures,
locks) or its definition (which may hold secret values): each pickles as a
:class:`~jupyter_remote.protocol.FunctionRef`, a key under which the caller's
process :func:`publish`-ed the object, rebuilt by :func:`resolve`:

- in the process that published it, as the object itself (a Function a worker
  returned is the caller's Function again);
- on a worker, as a proxy with the same verbs (``.remote``, ``.map``,
  ``.spawn``, ``.remote_gen``, their ``.aio`` twins; ``Model(...).method``),
  each of which is a request to the worker's controller (``runtime._client``):
  the controller starts the call on the target's pool as its caller would;
- anywhere else, as a proxy whose verbs say where it can be called.

This module imports the protocol only: it is what unpickling a reference
imports on a worker.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterable, Iterator
from typing import Any

from ..protocol import (
    OUTCOME_END,
    OUTCOME_ERR,
    OUTCOME_OK,
    OUTCOME_YIELD,
    Failure,
    FunctionRef,
    chunk_columns,
    chunk_size,
    dumps,
    loads,
)
from ._client import REFUSED, Client, Request

__all__ = [
    "ClsProxy",
    "FunctionProxy",
    "InstanceProxy",
    "ProxyCall",
    "publish",
    "published",
    "resolve",
]

_SESSION = os.urandom(6).hex()  # keys of one process never match another's
_ids = itertools.count(1)
_lock = threading.Lock()
_published: dict[str, Any] = {}
_KEY_ATTR = "_jr_ref_key"


def publish(obj: Any) -> str:
    """The key under which ``obj`` is known from now on (the same key every time)."""
    key = obj.__dict__.get(_KEY_ATTR)
    if key is None:
        with _lock:
            key = obj.__dict__.get(_KEY_ATTR)
            if key is None:
                key = f"{_SESSION}-{next(_ids)}"
                obj.__dict__[_KEY_ATTR] = key
                _published[key] = obj
    return str(key)


def published(key: str) -> Any | None:
    """The object published under ``key`` in this process, if any."""
    return _published.get(key)


def resolve(ref: FunctionRef) -> Any:
    """Unpickling a reference: the object itself where it was published, else a proxy."""
    obj = _published.get(ref.key)
    if obj is not None:
        return _materialize(obj, ref)
    if ref.method is not None:
        return FunctionProxy(ref)
    if ref.kind == "cls" and ref.ctor is None:
        return ClsProxy(ref)
    if ref.kind in ("cls", "instance"):
        return InstanceProxy(ref)
    return FunctionProxy(ref)


_instances: dict[tuple[str, bytes], Any] = {}


def _materialize(obj: Any, ref: FunctionRef) -> Any:
    """The published object, constructed (a class built on a worker) and its method taken."""
    if ref.ctor is not None:
        cache = (ref.key, bytes(ref.ctor.data)) if not ref.ctor.buffers else None
        made = _instances.get(cache) if cache is not None else None
        if made is None:
            args, kwargs = loads(ref.ctor)
            made = obj(*args, **kwargs)
            if cache is not None:
                _instances[cache] = made  # one instance (one pool) per constructor arguments
        obj = made
    if ref.method is not None:
        obj = getattr(obj, ref.method)
    return obj


# -- outcomes to values -------------------------------------------------------------


def _rebuild(failure: Failure) -> BaseException:
    """The remote exception as its own type (remote traceback as its cause), as the caller does."""
    from ..exceptions import RemoteError, RemoteTraceback

    exc: Any = None
    if failure.exc is not None:
        try:
            exc = loads(failure.exc)
        except KeyboardInterrupt:
            raise
        except BaseException:
            exc = None
    if not isinstance(exc, BaseException):
        return RemoteError(f"{failure.type_name}: {failure.message}", failure.traceback)
    exc.__cause__ = RemoteTraceback(failure.traceback)
    return exc


def _values(payload: Any, label: str) -> list[Any]:
    """A chunk of results, unpickled on this worker; an error naming the call if it cannot be."""
    try:
        values: list[Any] = loads(payload)
    except KeyboardInterrupt:
        raise
    except BaseException as exc:
        from ..exceptions import SerializationError

        raise SerializationError(
            f"the results of {label}() cannot be unpickled on this worker ({type(exc).__name__}: "
            f"{exc}); is the module that defines them installed here (an Image)?"
        ) from exc
    return values


def _cancelled(label: str) -> BaseException:
    from ..exceptions import CallCancelledError

    return CallCancelledError(f"the call of {label}() was cancelled")


class _Single:
    """The one result of a request (``.remote``, ``.spawn``); kept across waits."""

    def __init__(self, request: Request) -> None:
        self.request = request
        self.done = False
        self.value: Any = None
        self.error: BaseException | None = None

    def feed(self, outcomes: list[tuple[str, Any, Any]]) -> None:
        for kind, a, b in outcomes:
            if self.done:
                return
            if kind == OUTCOME_OK:
                pos = 0 if type(a) is range else a[0][0]
                try:
                    self.value = _values(b, self.request.ref.label)[pos]
                except Exception as exc:  # kept: a later .get() raises it again
                    self.error = exc
            elif kind in (OUTCOME_ERR, REFUSED):
                self.error = _rebuild(b)
            elif kind == OUTCOME_END:
                self.error = _cancelled(self.request.ref.label)
            else:
                continue
            self.done = True

    def wait(self, timeout: float | None = None) -> Any:
        deadline = None if timeout is None else time.monotonic() + timeout
        try:
            while not self.done:
                left = None if deadline is None else max(0.0, deadline - time.monotonic())
                self.feed(self.request.take(left))
                if left == 0 and not self.done and timeout is not None:
                    from ..exceptions import OutputExpiredError

                    raise OutputExpiredError(
                        f"{self.request.ref.label}() has not finished after {timeout:g}s; call "
                        ".get() again to keep waiting, or .cancel() it"
                    )
        except KeyboardInterrupt:
            self.request.cancel()
            raise
        return self.result()

    async def await_(self, timeout: float | None = None) -> Any:
        try:
            async with asyncio.timeout(timeout):
                while not self.done:
                    self.feed(await self.request.atake())
        except TimeoutError:
            if timeout is None or self.done:
                raise
            from ..exceptions import OutputExpiredError

            raise OutputExpiredError(
                f"{self.request.ref.label}() has not finished after {timeout:g}s"
            ) from None
        except BaseException:
            if not self.done:
                self.request.cancel()
            raise
        return self.result()

    def result(self) -> Any:
        if self.error is not None:
            raise self.error
        return self.value


class _MapValues:
    """A map request's outcomes as values, in input order or as completed."""

    def __init__(self, request: Request, order: bool, return_exceptions: bool) -> None:
        self.request = request
        self.order = order
        self.return_exceptions = return_exceptions
        self.next_index = 0
        self.pending: dict[int, Any] = {}
        self.ended = False

    def feed(self, outcomes: list[tuple[str, Any, Any]]) -> list[Any]:
        ready: list[tuple[int, Any]] = []
        for kind, a, b in outcomes:
            if kind == OUTCOME_OK:
                values = _values(b, self.request.ref.label)
                pairs = enumerate(a) if type(a) is range else a
                ready += [(index, values[pos]) for pos, index in pairs]
            elif kind in (OUTCOME_ERR, REFUSED):
                exc = _rebuild(b)
                if not self.return_exceptions or kind == REFUSED:
                    self.request.cancel()
                    raise exc
                ready.append((int(a), exc))
            elif kind == OUTCOME_END:
                self.ended = True
        if not self.order:
            return [value for _, value in ready]
        self.pending.update(ready)
        out = []
        while self.next_index in self.pending:
            out.append(self.pending.pop(self.next_index))
            self.next_index += 1
        return out

    def check_complete(self, n: int) -> None:
        if self.order and self.next_index < n:
            raise _cancelled(self.request.ref.label)

    def __iter__(self) -> Iterator[Any]:
        try:
            while not self.ended:
                yield from self.feed(self.request.take())
        finally:
            if not self.request.ended:
                self.request.cancel()

    async def __aiter__(self) -> AsyncIterator[Any]:
        try:
            while not self.ended:
                for value in self.feed(await self.request.atake()):
                    yield value
        finally:
            if not self.request.ended:
                self.request.cancel()


def _generated(request: Request) -> Iterator[Any]:
    try:
        while True:
            for kind, _, b in request.take():
                if kind == OUTCOME_YIELD:
                    yield loads(b)
                elif kind in (OUTCOME_ERR, REFUSED):
                    raise _rebuild(b)
                elif kind == OUTCOME_END:
                    return
    finally:
        if not request.ended:
            request.cancel()


async def _agenerated(request: Request) -> AsyncIterator[Any]:
    try:
        while True:
            for kind, _, b in await request.atake():
                if kind == OUTCOME_YIELD:
                    yield loads(b)
                elif kind in (OUTCOME_ERR, REFUSED):
                    raise _rebuild(b)
                elif kind == OUTCOME_END:
                    return
    finally:
        if not request.ended:
            request.cancel()


# -- proxies ---------------------------------------------------------------------------


class Dual:
    """``obj.verb(...)`` runs ``sync``; ``obj.verb.aio(...)`` runs ``aio``.

    The verbs of worker-side proxies and of the caller's ``Function`` alike.
    """

    def __init__(self, sync: Callable[..., Any], aio: Callable[..., Any]) -> None:
        self._sync = sync
        self.aio = aio
        self.__doc__ = sync.__doc__

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self._sync(*args, **kwargs)


class ProxyCall:
    """What ``.spawn`` returns on a worker: ``.get(timeout=)``, ``.get.aio()``, ``.cancel()``."""

    def __init__(self, request: Request) -> None:
        self._single = _Single(request)
        self.get = Dual(self._single.wait, self._single.await_)

    @property
    def object_id(self) -> str:
        return f"fc-nested-{self._single.request.request_id}"

    def __repr__(self) -> str:
        state = "done" if self._single.done else "running"
        return f"<FunctionCall {self._single.request.ref.label} {state}>"

    def cancel(self) -> None:
        self._single.request.cancel()


class FunctionProxy:
    """A Function as seen from a worker: each verb is a call through the worker's controller.

    >>> ref = FunctionRef("k", "function", "app.a")
    >>> FunctionProxy(ref)
    <Function app.a (reference)>
    """

    def __init__(self, ref: FunctionRef, client: Callable[[], Client] | None = None) -> None:
        self._ref = ref
        self._client = client  # where calls go when not on a worker (an app server's client)
        self.__name__ = ref.label.rsplit(".", 1)[-1]
        self.remote = Dual(self._remote, self._remote_aio)
        self.map = Dual(self._map, self._map_aio)
        self.starmap = Dual(self._starmap, self._starmap_aio)
        self.for_each = Dual(self._for_each, self._for_each_aio)
        self.spawn = Dual(self._spawn, self._spawn_aio)
        self.remote_gen = Dual(self._remote_gen, self._remote_gen_aio)

    def __repr__(self) -> str:
        return f"<Function {self._ref.label} (reference)>"

    def __reduce__(self) -> tuple[Any, ...]:
        return (resolve, (self._ref,))

    def local(self, *args: Any, **kwargs: Any) -> Any:
        raise TypeError(
            f"{self._ref.label} is a reference to a function of the caller: call "
            f"{self.__name__}.remote(...) here (its code runs on its own workers)"
        )

    # -- requests ------------------------------------------------------------------------

    def _request(
        self, chunks: list[Any], n: int, kind: str = "call", generator: bool = False
    ) -> Request:
        if self._client is not None:
            return self._client().invoke(self._ref, chunks, n, kind, generator, -1)
        from . import _worker

        worker = _worker._current
        if worker is None:
            raise RuntimeError(
                f"{self._ref.label} is a reference made by another process: call it in the "
                "process that defined it, or from a function running on a worker"
            )
        parent = worker.current_tag()[0]  # the input running here, concurrent ones included
        return worker.client.invoke(self._ref, chunks, n, kind, generator, parent)

    def _one(self, args: tuple[Any, ...], kwargs: dict[str, Any], generator: bool = False) -> Any:
        return self._request(self._pickled([args], kwargs, 1), 1, generator=generator)

    def _pickled(self, data: Any, kwargs: dict[str, Any], size: int) -> list[Any]:
        try:
            return chunk_columns(data, kwargs, size)
        except Exception as exc:
            from ..exceptions import SerializationError

            raise SerializationError(
                f"the arguments of {self._ref.label}() cannot be pickled on the worker "
                f"({type(exc).__name__}: {exc}). Pass plain data, or create that object "
                "inside the function."
            ) from exc

    def _map_request(
        self, iterables: tuple[Iterable[Any], ...], kwargs: dict[str, Any] | None, star: bool
    ) -> tuple[Request, int]:
        data: Any
        if star:
            (iterable,) = iterables
            data = [tuple(row) for row in iterable]
            n = len(data)
        else:
            if not iterables:
                raise TypeError(f"{self._ref.label}.map() needs at least one iterable of inputs")
            columns = [list(it) for it in iterables]
            n = min(len(c) for c in columns)  # as zip: the shortest iterable
            data = tuple(c[:n] for c in columns)
        chunks = self._pickled(data, dict(kwargs or {}), chunk_size(n))
        return self._request(chunks, n, "map"), n

    # -- verbs ----------------------------------------------------------------------------

    def _remote(self, *args: Any, **kwargs: Any) -> Any:
        return _Single(self._one(args, kwargs)).wait()

    async def _remote_aio(self, *args: Any, **kwargs: Any) -> Any:
        return await _Single(self._one(args, kwargs)).await_()

    def _spawn(self, *args: Any, **kwargs: Any) -> ProxyCall:
        return ProxyCall(self._one(args, kwargs))

    async def _spawn_aio(self, *args: Any, **kwargs: Any) -> ProxyCall:
        return ProxyCall(self._one(args, kwargs))

    def _map(
        self,
        *iterables: Iterable[Any],
        order_outputs: bool = True,
        return_exceptions: bool = False,
        kwargs: dict[str, Any] | None = None,
    ) -> Iterator[Any]:
        request, n = self._map_request(iterables, kwargs, star=False)
        return self._values(_MapValues(request, order_outputs, return_exceptions), n)

    def _starmap(
        self,
        iterable: Iterable[Iterable[Any]],
        *,
        order_outputs: bool = True,
        return_exceptions: bool = False,
        kwargs: dict[str, Any] | None = None,
    ) -> Iterator[Any]:
        request, n = self._map_request((iterable,), kwargs, star=True)
        return self._values(_MapValues(request, order_outputs, return_exceptions), n)

    @staticmethod
    def _values(reader: _MapValues, n: int) -> Iterator[Any]:
        yield from reader
        reader.check_complete(n)

    def _for_each(self, *iterables: Iterable[Any], ignore_exceptions: bool = False) -> None:
        for _ in self._map(*iterables, order_outputs=False, return_exceptions=ignore_exceptions):
            pass

    async def _map_aio(
        self,
        *iterables: Iterable[Any],
        order_outputs: bool = True,
        return_exceptions: bool = False,
        kwargs: dict[str, Any] | None = None,
    ) -> AsyncIterator[Any]:
        request, n = self._map_request(iterables, kwargs, star=False)
        reader = _MapValues(request, order_outputs, return_exceptions)
        async for value in reader:
            yield value
        reader.check_complete(n)

    async def _starmap_aio(
        self,
        iterable: Iterable[Iterable[Any]],
        *,
        order_outputs: bool = True,
        return_exceptions: bool = False,
        kwargs: dict[str, Any] | None = None,
    ) -> AsyncIterator[Any]:
        request, n = self._map_request((iterable,), kwargs, star=True)
        reader = _MapValues(request, order_outputs, return_exceptions)
        async for value in reader:
            yield value
        reader.check_complete(n)

    async def _for_each_aio(
        self, *iterables: Iterable[Any], ignore_exceptions: bool = False
    ) -> None:
        async for _ in self._map_aio(
            *iterables, order_outputs=False, return_exceptions=ignore_exceptions
        ):
            pass

    def _remote_gen(self, *args: Any, **kwargs: Any) -> Iterator[Any]:
        return _generated(self._one(args, kwargs, generator=True))

    def _remote_gen_aio(self, *args: Any, **kwargs: Any) -> AsyncIterator[Any]:
        return _agenerated(self._one(args, kwargs, generator=True))


class InstanceProxy:
    """An instance of a ``Cls`` as seen from a worker: ``inst.method.remote(x)``."""

    def __init__(self, ref: FunctionRef, client: Callable[[], Client] | None = None) -> None:
        self._ref = ref
        self._client = client

    def __repr__(self) -> str:
        return f"<{self._ref.label} instance (reference)>"

    def __reduce__(self) -> tuple[Any, ...]:
        return (resolve, (self._ref,))

    def __getattr__(self, name: str) -> FunctionProxy:
        ref = self.__dict__.get("_ref")
        if ref is None or name not in ref.methods:
            raise AttributeError(
                f"{type(self).__name__} has no remote method {name!r}; remote methods: "
                f"{', '.join(ref.methods) if ref else '-'}"
            )
        return FunctionProxy(ref._replace(method=name), self.__dict__.get("_client"))


class ClsProxy:
    """A ``Cls`` as seen from a worker: ``Model(*args).method.remote(x)``."""

    def __init__(self, ref: FunctionRef, client: Callable[[], Client] | None = None) -> None:
        self._ref = ref
        self._client = client

    def __repr__(self) -> str:
        return f"<Cls {self._ref.label} (reference)>"

    def __reduce__(self) -> tuple[Any, ...]:
        return (resolve, (self._ref,))

    def __call__(self, *args: Any, **kwargs: Any) -> InstanceProxy:
        try:
            ctor = dumps((args, kwargs))
        except Exception as exc:
            from ..exceptions import SerializationError

            raise SerializationError(
                f"the constructor arguments of {self._ref.label} cannot be pickled on the "
                f"worker ({type(exc).__name__}: {exc}); pass plain data"
            ) from exc
        if self._client is not None and not (args or kwargs):
            return InstanceProxy(self._ref, self._client)  # a deployed class, as deployed
        return InstanceProxy(self._ref._replace(ctor=ctor), self._client)
