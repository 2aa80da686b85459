"""``@app.cls`` with ``@enter`` / ``@exit`` / ``@method`` (Modal's class API).

``Model(*args, **kwargs)`` returns a handle whose ``@method`` functions are
:class:`Function` objects: ``Model().predict.remote(x)``. On a worker the
class is constructed once with those arguments, ``@enter`` methods run once,
and the instance (with whatever ``@enter`` loaded) serves every input; each
distinct set of constructor arguments gets its own workers.
"""

from __future__ import annotations

import hashlib
import pickle
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Generic, TypeVar, cast

from ..protocol import ENTER_MARK, EXIT_MARK, METHOD_MARK, FunctionRef
from ..runtime._params import construct
from ..runtime._refs import publish, resolve
from ._concurrent import CONCURRENT_MARK, Concurrency, concurrency_of, parse_concurrency
from ._function import Function
from ._options import FunctionOptions, options_digest
from ._parameter import bind_parameters, class_parameters

if TYPE_CHECKING:  # _verbs is for the checker only: never imported at run time
    from ._app import App
    from ._verbs import MethodDecorator

__all__ = ["Cls", "enter", "exit", "method"]

F = TypeVar("F", bound=Callable[..., Any])
T = TypeVar("T")


def _marker(mark: str, what: str, _bare: Any) -> Callable[[F], F]:
    if _bare is not None:
        raise TypeError(
            f"Did you forget parentheses? Suggestion: `@jupyter_remote.{what}()` "
            f"instead of `@jupyter_remote.{what}`"
        )

    def deco(fn: F) -> F:
        setattr(fn, mark, True)
        return fn

    return deco


def enter(_warn_parentheses_missing: Any = None, *, snap: bool = False) -> Callable[[F], F]:
    """Run this method once per worker, before its first input (load models here).

    ``snap`` is accepted for Modal compatibility; memory snapshots do not exist here.
    """
    return _marker(ENTER_MARK, "enter", _warn_parentheses_missing)


def exit(_warn_parentheses_missing: Any = None) -> Callable[[F], F]:
    """Run this method when the worker shuts down."""
    return _marker(EXIT_MARK, "exit", _warn_parentheses_missing)


def method(_warn_parentheses_missing: Any = None) -> MethodDecorator:
    """Expose this method as a remote function of the class.

    The method stays a plain function on the class; for the checker it reads, on an
    instance, as a ``Function`` with the method's parameters (``self`` dropped).
    """
    return cast("MethodDecorator", _marker(METHOD_MARK, "method", _warn_parentheses_missing))


class Cls(Generic[T]):
    """What ``@app.cls()`` returns; call it like the class to get an instance handle.

    The handle types as an instance of the class (``T``), so that ``Model().predict``
    reads as the ``Function`` its ``@method()`` declares; at run time it is a
    ``ClsInstance``.
    """

    def __init__(
        self,
        app: App,
        user_cls: type[T],
        options: FunctionOptions,
        concurrency: Concurrency | None = None,
        tag: str | None = None,
    ) -> None:
        self.app = app
        self.user_cls = user_cls
        self.options = options
        self.concurrency = concurrency or concurrency_of(user_cls)
        self.name = options.name or user_cls.__name__
        self.tag = tag or self.name  # a variant (with_options) has its own pools
        self.parameters = class_parameters(user_cls)
        self.methods = [
            name
            for name, attr in vars(user_cls).items()
            if callable(attr) and getattr(attr, METHOD_MARK, False)
        ]
        marked = [name for name, attr in vars(user_cls).items() if hasattr(attr, CONCURRENT_MARK)]
        if marked:
            raise TypeError(
                f"@concurrent(...) is on method {marked[0]!r} of {user_cls.__name__}; put it on "
                "the class instead, under @app.cls(): all its methods share the worker's limit"
            )
        if not self.methods:
            raise TypeError(
                f"{user_cls.__name__} has no @jupyter_remote.method(); decorate the methods "
                "callers should run remotely"
            )
        self.__doc__ = user_cls.__doc__

    def __repr__(self) -> str:
        return f"<Cls {self.app.name}.{self.name}>"

    def __reduce__(self) -> tuple[Any, ...]:
        # A reference (see runtime._refs): ``Model(...).method.remote()`` works on a worker.
        ref = FunctionRef(publish(self), "cls", f"{self.app.name}.{self.name}", tuple(self.methods))
        return (resolve, (ref,))

    @staticmethod
    def from_name(app_name: str, name: str, *, environment_name: str | None = None) -> Any:
        """A deployed class, from any process (constructed without arguments, as deployed).

        >>> Cls.from_name("shop", "Model")().predict.remote(3)   # doctest: +SKIP
        """
        from ._deploy import lookup_cls

        return lookup_cls(app_name, name)

    def __call__(self, *args: Any, **kwargs: Any) -> T:
        if self.parameters:
            kwargs = bind_parameters(self.name, self.parameters, args, kwargs)
            args = ()
        return cast(T, ClsInstance(self, args, kwargs))

    def with_options(self, **options: Any) -> Cls[T]:
        """A copy whose instances run in their own pools, with these options changed.

        >>> Model.with_options(gpu="H100", timeout=600)(size="large")   # doctest: +SKIP
        """
        merged = self.options.merge(**options)
        tag = f"{self.tag}-{options_digest(options)}"
        return Cls(self.app, self.user_cls, merged, self.concurrency, tag)

    def with_concurrency(self, *, max_inputs: int, target_inputs: int | None = None) -> Cls[T]:
        """A copy whose workers run up to ``max_inputs`` inputs at once (as ``@concurrent``)."""
        concurrency = parse_concurrency(max_inputs, target_inputs)
        tag = f"{self.tag}-c{max_inputs}-{concurrency.target_inputs}"
        return Cls(self.app, self.user_cls, self.options, concurrency, tag)


class ClsInstance:
    """A parametrized instance: its ``@method`` functions run on this instance's workers."""

    def __init__(self, cls: Cls[Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        self._cls = cls
        self._args = args
        self._kwargs = kwargs
        self._local: Any = None
        tag = cls.tag
        if args or kwargs:
            try:
                key = pickle.dumps((args, sorted(kwargs.items())))
            except Exception:
                key = repr((args, kwargs)).encode()
            tag = f"{cls.tag}-{hashlib.sha256(key).hexdigest()[:8]}"
        self._tag = tag
        self._functions: dict[str, Function[..., Any, Any]] = {}

    def __reduce__(self) -> tuple[Any, ...]:
        cls = self._cls
        label = f"{cls.app.name}.{self._tag}"
        return (resolve, (FunctionRef(publish(self), "instance", label, tuple(cls.methods)),))

    def __getattr__(self, name: str) -> Function[..., Any, Any]:
        cls = self.__dict__.get("_cls")
        if cls is None or name not in cls.methods:
            raise AttributeError(
                f"{type(self).__name__} has no remote method {name!r}; remote methods: "
                f"{', '.join(cls.methods) if cls else '-'}"
            )
        fn = self._functions.get(name)
        if fn is None:
            raw = getattr(cls.user_cls, name)
            fn = Function(
                cls.app,
                raw,
                cls.options,
                tag=self._tag,
                cls_target=(cls.user_cls, self._args, self._kwargs),
                method=name,
                concurrency=cls.concurrency,
            )
            fn.local = self._local_method(name)  # type: ignore[method-assign]
            self._functions[name] = fn
        return fn

    def _local_method(self, name: str) -> Callable[..., Any]:
        def run_here(*args: Any, **kwargs: Any) -> Any:
            if self._local is None:
                obj = construct(self._cls.user_cls, self._args, self._kwargs)
                for attr_name, attr in vars(self._cls.user_cls).items():
                    if callable(attr) and getattr(attr, ENTER_MARK, False):
                        getattr(obj, attr_name)()
                self._local = obj
            return getattr(self._local, name)(*args, **kwargs)

        return run_here
