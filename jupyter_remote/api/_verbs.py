"""The types of ``Function``'s verbs, for the checker: each verb and its ``.aio`` twin.

At run time every verb but ``.remote`` is a ``Dual`` (``runtime/_refs.py``); these
protocols say what it takes and returns, with the function's ``ParamSpec`` ``P`` and
result type ``R`` (for ``async def f() -> T``, ``R`` is ``T``: a worker awaits it).
"""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator, Callable, Coroutine, Iterable, Iterator
from typing import TYPE_CHECKING, Any, Concatenate, ParamSpec, Protocol, TypeVar, overload

if TYPE_CHECKING:
    from ._call import FunctionCall
    from ._function import Function
    from ._results import MapCall

__all__ = [
    "ForEachVerb",
    "FunctionDecorator",
    "MapVerb",
    "MethodDecorator",
    "MethodFunction",
    "MethodHandle",
    "RemoteGenVerb",
    "SpawnVerb",
    "StarmapVerb",
]

P = ParamSpec("P")
R = TypeVar("R")
R_co = TypeVar("R_co", covariant=True)
Y = TypeVar("Y")
OR = TypeVar("OR")


class _MapAio(Protocol[R_co]):
    def __call__(
        self,
        *iterables: Iterable[Any],
        order_outputs: bool = True,
        return_exceptions: bool = False,
        kwargs: dict[str, Any] | None = None,
    ) -> AsyncIterator[R_co]: ...


class MapVerb(Protocol[R_co]):
    """``f.map(xs, ys)``: one result per input, in input order unless ``order_outputs=False``."""

    @property
    def aio(self) -> _MapAio[R_co]: ...

    def __call__(
        self,
        *iterables: Iterable[Any],
        order_outputs: bool = True,
        return_exceptions: bool = False,
        kwargs: dict[str, Any] | None = None,
    ) -> MapCall[R_co]: ...


class _StarmapAio(Protocol[R_co]):
    def __call__(
        self,
        iterable: Iterable[Iterable[Any]],
        *,
        order_outputs: bool = True,
        return_exceptions: bool = False,
        kwargs: dict[str, Any] | None = None,
    ) -> AsyncIterator[R_co]: ...


class StarmapVerb(Protocol[R_co]):
    """``f.starmap([(1, 2), (3, 4)])``: each input a tuple of positional arguments."""

    @property
    def aio(self) -> _StarmapAio[R_co]: ...

    def __call__(
        self,
        iterable: Iterable[Iterable[Any]],
        *,
        order_outputs: bool = True,
        return_exceptions: bool = False,
        kwargs: dict[str, Any] | None = None,
    ) -> MapCall[R_co]: ...


class _ForEachAio(Protocol):
    async def __call__(
        self, *iterables: Iterable[Any], ignore_exceptions: bool = False
    ) -> None: ...


class ForEachVerb(Protocol):
    """``f.for_each(xs)``: run over every input, discarding results."""

    @property
    def aio(self) -> _ForEachAio: ...

    def __call__(self, *iterables: Iterable[Any], ignore_exceptions: bool = False) -> None: ...


class _SpawnAio(Protocol[P, R]):
    async def __call__(self, *args: P.args, **kwargs: P.kwargs) -> FunctionCall[R]: ...


class SpawnVerb(Protocol[P, R]):
    """``f.spawn(x)``: start a call, return its ``FunctionCall`` at once."""

    @property
    def aio(self) -> _SpawnAio[P, R]: ...

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> FunctionCall[R]: ...


class _RemoteGenAio(Protocol[P, R_co]):
    @overload
    def __call__(
        self: _RemoteGenAio[P, Iterable[Y]], *args: P.args, **kwargs: P.kwargs
    ) -> AsyncIterator[Y]: ...
    @overload
    def __call__(
        self: _RemoteGenAio[P, AsyncIterable[Y]], *args: P.args, **kwargs: P.kwargs
    ) -> AsyncIterator[Y]: ...


class RemoteGenVerb(Protocol[P, R_co]):
    """``f.remote_gen(x)``: what a generator function yields (sync or async), as it yields."""

    @property
    def aio(self) -> _RemoteGenAio[P, R_co]: ...

    @overload
    def __call__(
        self: RemoteGenVerb[P, Iterable[Y]], *args: P.args, **kwargs: P.kwargs
    ) -> Iterator[Y]: ...
    @overload
    def __call__(
        self: RemoteGenVerb[P, AsyncIterable[Y]], *args: P.args, **kwargs: P.kwargs
    ) -> Iterator[Y]: ...


class FunctionDecorator(Protocol):
    """What ``@app.function(...)`` returns: ``async def f() -> T`` gives ``Function[P, T, ...]``."""

    @overload
    def __call__(
        self, fn: Callable[P, Coroutine[Any, Any, R]]
    ) -> Function[P, R, Coroutine[Any, Any, R]]: ...
    @overload
    def __call__(self, fn: Callable[P, R]) -> Function[P, R, R]: ...


if TYPE_CHECKING:

    class MethodHandle(Function[P, R, OR]):
        """``Model().predict`` for the checker: the ``Function`` (``.remote``...) the caller's
        handle gives, callable as the plain method the class keeps (``self.predict(x)``
        inside the class, on the worker)."""

        def __call__(self, *args: P.args, **kwargs: P.kwargs) -> OR: ...


class MethodFunction(Protocol[P, R, OR]):
    """A ``@method()`` for the checker: read on an instance (``Model().predict``), a ``Function``.

    At run time the class keeps the plain function; ``ClsInstance`` makes the ``Function``.
    """

    def __get__(self, obj: Any, owner: Any = None) -> MethodHandle[P, R, OR]: ...


class MethodDecorator(Protocol):
    """What ``@method()`` returns: the method, ``self`` dropped, as a ``MethodFunction``."""

    @overload
    def __call__(
        self, fn: Callable[Concatenate[Any, P], Coroutine[Any, Any, R]]
    ) -> MethodFunction[P, R, Coroutine[Any, Any, R]]: ...
    @overload
    def __call__(self, fn: Callable[Concatenate[Any, P], R]) -> MethodFunction[P, R, R]: ...
