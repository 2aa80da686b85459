"""``Function``: what ``@app.function()`` returns, with Modal's verbs.

``.remote`` / ``.local`` / ``.map`` / ``.starmap`` / ``.for_each`` / ``.spawn``
/ ``.remote_gen`` / ``.with_options``; each verb that talks to workers has an
``.aio`` twin sharing its code path (``await f.remote.aio(x)``).
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import inspect
from collections.abc import AsyncIterator, Callable, Coroutine, Iterable, Iterator
from typing import TYPE_CHECKING, Any, Generic, ParamSpec, TypeVar, cast

from ..backends import WorkerSpec
from ..controller import CallState, Pool, Scaling, controller
from ..controller._calls import Batch
from ..controller._nested import set_starter
from ..exceptions import ConfigError, NotFoundError
from ..protocol import FunctionDef, FunctionRef, Invoke, Payload
from ..runtime._mounts import MOUNTS_ENV, encode_mounts
from ..runtime._refs import Dual, publish, resolve
from ..state import secret_store
from ._call import FunctionCall
from ._concurrent import Concurrency, concurrency_of
from ._image import Image
from ._options import FunctionOptions, options_digest
from ._pickling import Inputs, chunk_size_for, function_def, pickle_chunks, pickle_inputs
from ._progress import make_progress
from ._results import MapCall, MapReader, aiter_generator, await_result, iter_generator, wait_result
from ._secret import Secret
from ._shipping import ship_caller_modules
from ._volume import Volume

if TYPE_CHECKING:  # _verbs is for the checker only: never imported at run time
    from ._app import App
    from ._verbs import ForEachVerb, MapVerb, RemoteGenVerb, SpawnVerb, StarmapVerb

__all__ = ["CallHook", "Function", "set_call_hook"]

P = ParamSpec("P")
R = TypeVar("R")  # what a call returns: for ``async def f() -> T``, ``T``
OR = TypeVar("OR")  # what the function itself returns: there, ``Coroutine[Any, Any, T]``


CallHook = Callable[[CallState], None]
_call_hook: CallHook | None = None


def set_call_hook(hook: CallHook | None) -> None:
    """Install a function that sees every new call in the caller's thread before it starts.

    The notebook extension uses it to route a call's output into the cell that made it.
    """
    global _call_hook
    _call_hook = hook


class _Remote(Generic[P, R]):
    def __init__(self, fn: Function[P, R, Any]) -> None:
        self._fn = fn

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> R:
        result: R = wait_result(self._fn._start_one(args, kwargs))
        return result

    async def aio(self, *args: P.args, **kwargs: P.kwargs) -> R:
        call = await self._fn._astart(lambda: self._fn._chunks_one(args, kwargs), 1)
        result: R = await await_result(call)
        return result


class Function(Generic[P, R, OR]):
    """A function that runs on workers. Made by ``@app.function()``.

    ``P`` is its parameters, ``R`` what ``.remote`` returns and ``OR`` what the
    function returns (``.local``): for ``async def f(x: int) -> str``,
    ``Function[[int], str, Coroutine[Any, Any, str]]`` (as Modal's client types it).

    >>> app = App("doc")                                   # doctest: +SKIP
    >>> @app.function(cpu=1)                               # doctest: +SKIP
    ... def square(x): return x * x
    >>> square.remote(7), list(square.map([1, 2]))         # doctest: +SKIP
    (49, [1, 4])
    """

    def __init__(
        self,
        app: App,
        raw_f: Callable[P, OR],
        options: FunctionOptions,
        *,
        tag: str | None = None,
        cls_target: tuple[type, tuple[Any, ...], dict[str, Any]] | None = None,
        method: str | None = None,
        concurrency: Concurrency | None = None,
    ) -> None:
        self.app = app
        self.raw_f = raw_f
        self.options = options
        self.tag: str = tag or options.name or str(getattr(raw_f, "__name__", "function"))
        self._cls_target = cls_target
        self._method = method
        self._fdef: FunctionDef | None = None
        self._pool: Pool | None = None
        self.is_generator = inspect.isgeneratorfunction(raw_f) or inspect.isasyncgenfunction(raw_f)
        self.concurrency = concurrency or concurrency_of(
            cls_target[0] if cls_target is not None else raw_f
        )
        self.remote: _Remote[P, R] = _Remote(self)
        # One Dual each at run time; the protocols (api/_verbs.py) type them for the checker.
        self.map = cast("MapVerb[R]", Dual(self._map, self._map_aio))
        self.starmap = cast("StarmapVerb[R]", Dual(self._starmap, self._starmap_aio))
        self.for_each = cast("ForEachVerb", Dual(self._for_each, self._for_each_aio))
        self.spawn = cast("SpawnVerb[P, R]", Dual(self._spawn, self._spawn_aio))
        self.remote_gen = cast("RemoteGenVerb[P, R]", Dual(self._remote_gen, self._remote_gen_aio))
        self.__doc__ = getattr(raw_f, "__doc__", None)
        self.__name__ = self.tag

    def __repr__(self) -> str:
        return f"<Function {self.app.name}.{self.tag}>"

    def __reduce__(self) -> tuple[Any, ...]:
        # A reference, whatever state this object holds: this Function again in this
        # process, a proxy calling it through the controller on a worker (runtime._refs).
        return (resolve, (FunctionRef(publish(self), "function", self.label),))

    @staticmethod
    def from_name(app_name: str, name: str, *, environment_name: str | None = None) -> Any:
        """A deployed function, from any process: ``.remote``, ``.map``, ``.spawn``...

        The calls run in the deployed app's pools on the app server (started if it is
        not running). ``NotFoundError`` lists the app's functions for a wrong name.

        >>> square = Function.from_name("shop", "square")   # doctest: +SKIP
        >>> square.remote(7)                                # doctest: +SKIP
        49
        """
        from ._deploy import lookup_function

        return lookup_function(app_name, name)

    def get_raw_f(self) -> Callable[P, OR]:
        return self.raw_f

    def local(self, *args: P.args, **kwargs: P.kwargs) -> OR:
        """Run right here, in this process."""
        return self.raw_f(*args, **kwargs)

    def with_options(self, **options: Any) -> Function[P, R, OR]:
        """A copy with some options changed: ``f.with_options(gpu="H100").remote(x)``.

        The copy runs in a pool of its own, so ``f`` keeps its workers.
        """
        return Function(
            self.app,
            self.raw_f,
            self.options.merge(**options),
            tag=f"{self.tag}-{options_digest(options)}",
            cls_target=self._cls_target,
            method=self._method,
            concurrency=self.concurrency,
        )

    # -- plumbing shared by every verb ------------------------------------------------

    @property
    def label(self) -> str:
        return f"{self.app.name}.{self.tag}"

    def _definition(self) -> FunctionDef:
        if self._fdef is None:
            settings = controller().settings
            target = self._cls_target if self._cls_target is not None else self.raw_f
            kind = "class" if self._cls_target is not None else "function"
            if self.app.backend_name != "local":
                ship_caller_modules(self._cls_target[0] if self._cls_target else self.raw_f)
            fdef = function_def(target, kind, self.tag, settings)
            env = self._secret_env()
            if env:
                # The values travel inside the definition (authenticated channel only); the
                # hash covers them so a worker never keeps a definition with stale secrets.
                digest = hashlib.sha256(fdef.hash.encode())
                for key, value in env:
                    digest.update(f"\0{key}\0{value}".encode())
                fdef = fdef._replace(hash=digest.hexdigest()[:32], env=env)
            most = self.concurrency.max_inputs
            if most != 1:  # a worker must not keep a definition with another limit
                digest = hashlib.sha256(f"{fdef.hash}\0max_inputs={most}".encode())
                fdef = fdef._replace(hash=digest.hexdigest()[:32], max_inputs=most)
            self._fdef = fdef
        return self._fdef

    def _secret_env(self) -> tuple[tuple[str, str], ...]:
        """Resolve the function's secrets (later ones win) from the backend's store."""
        if not self.options.secrets:
            return ()  # no store to open (on Nomad that is an HTTP client)
        env: dict[str, str] = {}
        store = secret_store(self.app.backend_name)
        for secret in self.options.secrets:
            if not isinstance(secret, Secret):
                raise TypeError(
                    f"secrets= takes jupyter_remote.Secret objects, not {type(secret).__name__}; "
                    "use Secret.from_name(...) or Secret.from_dict(...)"
                )
            env.update(secret.resolve(store))
        return tuple(sorted(env.items()))

    def _spec(self) -> tuple[WorkerSpec, Scaling]:
        o = self.options
        env = dict(o.env)
        if o.volumes:
            mounts = []
            for path, volume in o.volumes.items():
                if not isinstance(volume, Volume):
                    raise TypeError(
                        f"volumes={{{path!r}: ...}} takes jupyter_remote.Volume objects, not "
                        f"{type(volume).__name__}; use Volume.from_name(name)"
                    )
                mounts.append(volume._mount_spec(path))
            env[MOUNTS_ENV] = encode_mounts(mounts)  # names and paths only, never contents
        if o.image is not None and not isinstance(o.image, Image):
            raise TypeError(
                f"image= takes a jupyter_remote.Image, not {type(o.image).__name__}; "
                "e.g. jr.Image.debian_slim().pip_install('pandas')"
            )
        spec = WorkerSpec(
            self.label,
            o.cpu,
            o.memory,
            o.gpu,
            env,
            controller().settings.python,
            image=o.image,
            ephemeral_disk=o.ephemeral_disk,
        )
        scaling = Scaling(
            o.min_containers,
            o.max_containers,
            o.buffer_containers,
            o.scaledown_window,
            max_inputs=self.concurrency.max_inputs,
            target_inputs=self.concurrency.target_inputs,
        )
        scaling = dataclasses.replace(scaling, single_use=o.single_use_containers)
        return spec, scaling

    def _live_pool(self) -> Pool | None:
        """The pool of an earlier call, while it is still open."""
        pool = self._pool
        if pool is not None and not pool.closed and pool.controller is controller():
            return pool
        return None

    def _open_pool(self) -> Coroutine[Any, Any, Pool]:
        """The coroutine (for the loop thread) that finds or creates this function's pool."""
        self.app._ensure_running()
        ctl = controller()
        spec, scaling = self._spec()
        return ctl.pool(self.app.name, self.tag, self.app.backend_name, spec, scaling)

    def _get_pool(self) -> Pool:
        pool = self._live_pool() or controller().loop.run(self._open_pool())
        self._pool = pool
        return pool

    async def _aget_pool(self) -> Pool:
        pool = self._live_pool()
        if pool is None:
            pool = await controller().loop.run_async(self._open_pool())
        self._pool = pool
        return pool

    def _new_call(
        self,
        pool: Pool,
        chunks: list[tuple[int, Payload, int]],
        n: int,
        generator: bool,
        kind: str = "call",
        parent: CallState | None = None,
    ) -> CallState:
        ctl = controller()
        o = self.options
        call = CallState(
            pool,
            self._definition(),
            self._method,
            n,
            o.retries,
            o.timeout,
            generator,
            ctl.settings.max_worker_deaths,
            log_lines=ctl.settings.log_lines,
        )
        call.source_file = getattr(getattr(self.raw_f, "__code__", None), "co_filename", None)
        call.kind = kind
        if parent is not None:  # made by a worker's input: its output goes where that call's goes
            call.on_output, call.on_event = parent.on_output, parent.on_event
        elif _call_hook is not None:
            _call_hook(call)
        batches = [Batch(call, first, payload, size) for first, payload, size in chunks]
        ctl.loop.call_soon(pool.add_call, call, batches)
        return call

    async def _start_from_worker(self, msg: Invoke, caller: Pool) -> CallState:
        """(Loop thread.) Start the call a worker of ``caller`` asked for, as a caller would."""
        if not self.app.running:
            raise NotFoundError(
                f"{self.label} cannot be called from a worker: its app {self.app.name!r} is not "
                f"running. Start it in the caller first (`with {self.app.name}.run():`, or "
                "call one of its functions there)."
            )
        if self.is_generator != msg.generator:
            verb = "remote_gen" if self.is_generator else "remote"
            raise TypeError(
                f"{self.tag} is {'' if self.is_generator else 'not '}a generator "
                f"function: call {self.tag}.{verb}(...)"
            )
        await asyncio.to_thread(self._definition)  # pickles; may read a secret store
        pool = self._live_pool() or await self._open_pool()
        self._pool = pool
        if pool is caller and pool.max_workers == 1:
            raise ConfigError(
                f"{self.label} calls itself from its only worker (max_containers=1): that "
                "worker is busy running the caller, so the call would wait forever. Raise "
                "max_containers, or call a function that runs on other workers."
            )
        parent = caller.calls.get(msg.parent_call_id)
        chunks = list(msg.chunks)
        return self._new_call(pool, chunks, msg.n_inputs, msg.generator, msg.kind, parent)

    def _chunks_one(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> list[Any]:
        return [(0, pickle_inputs(self.tag, args, kwargs), 1)]

    def _start_one(
        self, args: tuple[Any, ...], kwargs: dict[str, Any], generator: bool = False
    ) -> CallState:
        if self.is_generator and not generator:
            raise TypeError(
                f"{self.tag} is a generator function: iterate over {self.tag}.remote_gen(...) "
                "instead of calling .remote()"
            )
        self._definition()
        chunks = self._chunks_one(args, kwargs)
        return self._new_call(self._get_pool(), chunks, 1, generator)

    async def _astart(
        self, make_chunks: Callable[[], list[Any]], n: int, gen: bool = False, kind: str = "call"
    ) -> CallState:
        self._definition()
        chunks = make_chunks()
        return self._new_call(await self._aget_pool(), chunks, n, gen, kind)

    def _inputs(
        self, iterables: tuple[Iterable[Any], ...], kwargs: dict[str, Any] | None, star: bool
    ) -> Inputs:
        if star:
            (iterable,) = iterables
            return Inputs.from_rows(iterable, kwargs)
        if not iterables:
            raise TypeError(f"{self.tag}.map() needs at least one iterable of inputs")
        return Inputs.from_columns(iterables, kwargs)

    def _start_map(self, inputs: Inputs) -> tuple[CallState, int]:
        if self.is_generator:
            raise TypeError(f"{self.tag} is a generator function; .map() needs a plain function")
        self._definition()
        pool = self._get_pool()
        size = chunk_size_for(inputs.n, pool.max_workers)
        size = 1 if self.options.single_use_containers else size  # one input per worker
        chunks = pickle_chunks(self.tag, inputs, size)
        return self._new_call(pool, chunks, inputs.n, False, "map"), size

    def _reader(self, call: CallState, order: bool, return_exceptions: bool) -> MapReader:
        progress = make_progress(f"{self.tag}.map", call.n_inputs, controller().settings.progress)
        return MapReader(call, order, return_exceptions, progress)

    # -- verbs -----------------------------------------------------------------------

    def _map(
        self,
        *iterables: Iterable[Any],
        order_outputs: bool = True,
        return_exceptions: bool = False,
        kwargs: dict[str, Any] | None = None,
    ) -> MapCall[Any]:
        """Run over every input in parallel; yields results (in input order by default)."""
        inputs = self._inputs(iterables, kwargs, star=False)
        call, _ = self._start_map(inputs)
        return MapCall(self._reader(call, order_outputs, return_exceptions))

    def _starmap(
        self,
        iterable: Iterable[Iterable[Any]],
        *,
        order_outputs: bool = True,
        return_exceptions: bool = False,
        kwargs: dict[str, Any] | None = None,
    ) -> MapCall[Any]:
        """Like ``map``, each input being a tuple of positional arguments."""
        call, _ = self._start_map(self._inputs((iterable,), kwargs, star=True))
        return MapCall(self._reader(call, order_outputs, return_exceptions))

    def _for_each(self, *iterables: Iterable[Any], ignore_exceptions: bool = False) -> None:
        """Run over every input, discarding results."""
        for _ in self._map(*iterables, order_outputs=False, return_exceptions=ignore_exceptions):
            pass

    def _spawn(self, *args: Any, **kwargs: Any) -> FunctionCall[Any]:
        """Start a call and return at once; ``.get()`` the result later."""
        return FunctionCall(self._start_one(args, kwargs))

    def _remote_gen(self, *args: Any, **kwargs: Any) -> Iterator[Any]:
        """Iterate over what a remote generator function yields, as it yields."""
        if not self.is_generator:
            raise TypeError(f"{self.tag} is not a generator function; use .remote()")
        return iter_generator(self._start_one(args, kwargs, generator=True))

    # -- async twins -------------------------------------------------------------------

    async def _map_aio(
        self,
        *iterables: Iterable[Any],
        order_outputs: bool = True,
        return_exceptions: bool = False,
        kwargs: dict[str, Any] | None = None,
    ) -> AsyncIterator[Any]:
        inputs = self._inputs(iterables, kwargs, star=False)
        call = await self._amap_call(inputs)
        async for value in self._reader(call, order_outputs, return_exceptions):
            yield value

    async def _starmap_aio(
        self,
        iterable: Iterable[Iterable[Any]],
        *,
        order_outputs: bool = True,
        return_exceptions: bool = False,
        kwargs: dict[str, Any] | None = None,
    ) -> AsyncIterator[Any]:
        call = await self._amap_call(self._inputs((iterable,), kwargs, star=True))
        async for value in self._reader(call, order_outputs, return_exceptions):
            yield value

    async def _amap_call(self, inputs: Inputs) -> CallState:
        pool = await self._aget_pool()
        size = chunk_size_for(inputs.n, pool.max_workers)
        size = 1 if self.options.single_use_containers else size  # one input per worker
        return await self._astart(
            lambda: pickle_chunks(self.tag, inputs, size), inputs.n, kind="map"
        )

    async def _for_each_aio(
        self, *iterables: Iterable[Any], ignore_exceptions: bool = False
    ) -> None:
        async for _ in self._map_aio(
            *iterables, order_outputs=False, return_exceptions=ignore_exceptions
        ):
            pass

    async def _spawn_aio(self, *args: Any, **kwargs: Any) -> FunctionCall[Any]:
        return FunctionCall(await self._astart(lambda: self._chunks_one(args, kwargs), 1))

    async def _remote_gen_aio(self, *args: Any, **kwargs: Any) -> AsyncIterator[Any]:
        if not self.is_generator:
            raise TypeError(f"{self.tag} is not a generator function; use .remote.aio()")
        call = await self._astart(lambda: self._chunks_one(args, kwargs), 1, gen=True)
        async for value in aiter_generator(call):
            yield value


async def _start_from_worker(msg: Invoke, caller: Pool | None) -> CallState:
    """A worker's call of a Function (Cls method) this process published: start it."""
    if caller is None:
        raise NotFoundError(f"{msg.ref.label}: this process serves calls from its workers only")
    target = resolve(msg.ref)  # in this process: the published object itself
    if not isinstance(target, Function):
        raise NotFoundError(
            f"{msg.ref.label} is not a function this caller knows (a reference made by another "
            "process?): pass the Function from the caller that runs its app"
        )
    return await target._start_from_worker(msg, caller)


set_starter(_start_from_worker)
