"""``App``: a named group of functions and classes, and where they run."""

from __future__ import annotations

import contextlib
import functools
import inspect
from collections.abc import Callable, Coroutine, Iterator
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar, overload

from .._unsupported import APP_ATTRIBUTES, unsupported_attribute
from ..config import load_settings
from ..controller import controller
from ..exceptions import NotSupportedError
from ._cls import Cls
from ._function import Function
from ._options import FunctionOptions, check_option_names

if TYPE_CHECKING:  # _verbs is for the checker only: never imported at run time
    from ._verbs import FunctionDecorator

__all__ = ["App", "LocalEntrypoint"]

P = ParamSpec("P")
R = TypeVar("R")
T = TypeVar("T")
_PARENS = "Did you forget parentheses? Suggestion: `@app.{0}()` instead of `@app.{0}`"


def _check_schedulable(fn: Callable[..., Any]) -> None:
    """A scheduled function is called with no arguments: refuse one that needs some."""
    try:
        params = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError):
        return
    needed = [
        p.name
        for p in params
        if p.default is p.empty and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
    ]
    if needed:
        name = getattr(fn, "__name__", "function")
        raise TypeError(
            f"{name} has a schedule but needs arguments ({', '.join(needed)}): a schedule calls "
            "it with none. Give them defaults, or call it from a scheduled function."
        )


class LocalEntrypoint:
    """A function that runs here, inside ``app.run()``; ``jupyter-remote run`` calls it."""

    def __init__(self, app: App, fn: Callable[..., Any], name: str) -> None:
        self.app = app
        self.raw_f = fn
        self.name = name
        functools.update_wrapper(self, fn)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        with self.app.run():
            return self.raw_f(*args, **kwargs)


class App:
    """A named application: decorate functions with it, run them anywhere.

    >>> import jupyter_remote as jr
    >>> app = jr.App("example")
    >>> @app.function(cpu=1, memory="512Mi")
    ... def square(x: int) -> int:
    ...     return x * x
    >>> square.local(3)
    9
    """

    def __init__(
        self,
        name: str | None = None,
        *,
        image: Any = None,
        secrets: Any = (),
        volumes: Any = None,
        backend: str | None = None,
        tags: dict[str, str] | None = None,
        include_source: bool | None = None,
    ) -> None:
        if tags is not None and not (
            isinstance(tags, dict)
            and all(isinstance(k, str) and isinstance(v, str) for k, v in tags.items())
        ):
            raise TypeError(f"App(tags=...) takes a dict of str to str, not {tags!r}")
        if include_source is not None and not isinstance(include_source, bool):
            raise TypeError("App(include_source=...) takes True or False")
        self.name = name or "app"
        # Modal's tags label an app for its dashboard; here they are kept for the caller.
        self.tags: dict[str, str] = dict(tags or {})
        self._image = image
        self._defaults: dict[str, Any] = {}
        if image is not None:
            self._defaults["image"] = image
        if secrets:
            self._defaults["secrets"] = secrets
        if volumes:
            self._defaults["volumes"] = volumes
        self._backend = backend
        self.registered_functions: dict[str, Function[..., Any, Any]] = {}
        self.registered_classes: dict[str, Cls[Any]] = {}
        self.registered_entrypoints: dict[str, LocalEntrypoint] = {}
        self._running_backend: str | None = None
        self._depth = 0
        self._started = False  # from the first call or run() until stop()

    def __repr__(self) -> str:
        return f"<App {self.name!r} backend={self.backend_name!r}>"

    def __getattr__(self, name: str) -> Any:
        # Only reached for names App does not have: Modal's get our error naming them.
        raise unsupported_attribute(APP_ATTRIBUTES, "App", name)

    @property
    def image(self) -> Any:
        """The ``image=`` given to ``App(...)``: the default image of its functions (or None)."""
        return self._image

    @property
    def backend_name(self) -> str:
        return self._running_backend or self._backend or load_settings().backend

    # -- decorators --------------------------------------------------------------------

    def _options(self, options: dict[str, Any], where: str) -> FunctionOptions:
        check_option_names(options, where)
        merged = {**self._defaults, **{k: v for k, v in options.items() if v is not None}}
        return FunctionOptions.parse(**merged)

    @overload
    def function(
        self, _warn_parentheses_missing: Callable[P, Coroutine[Any, Any, R]]
    ) -> Function[P, R, Coroutine[Any, Any, R]]: ...
    @overload
    def function(self, _warn_parentheses_missing: Callable[P, R]) -> Function[P, R, R]: ...
    @overload
    def function(
        self, _warn_parentheses_missing: None = None, **options: Any
    ) -> FunctionDecorator: ...

    def function(self, _warn_parentheses_missing: Any = None, **options: Any) -> Any:
        """Decorate a function to run on workers.

        Options: ``gpu``, ``cpu`` (cores), ``memory`` (MiB or "16Gi"), ``timeout`` (s, per
        input attempt), ``retries`` (int or ``Retries``), ``max_containers``,
        ``min_containers``, ``buffer_containers``, ``scaledown_window`` (s), ``env``,
        ``name``, ``image``, ``secrets``, ``volumes`` (defaults from ``App(...)``),
        ``ephemeral_disk`` (MiB), ``single_use_containers``. Modal options that are not
        served here raise ``NotSupportedError`` naming them.
        """
        if _warn_parentheses_missing is not None:
            raise TypeError(_PARENS.format("function"))
        opts = self._options(options, "@app.function()")

        def deco(fn: Callable[..., Any]) -> Function[..., Any, Any]:
            if isinstance(fn, Function):
                fn = fn.raw_f
            if not callable(fn) or isinstance(fn, type):
                raise TypeError(
                    f"@app.function() decorates functions; for classes use @app.cls() (got {fn!r})"
                )
            if opts.schedule is not None:
                _check_schedulable(fn)
            f: Function[..., Any, Any] = Function(self, fn, opts)
            # A redefinition (re-run notebook cell) replaces the old one.
            self.registered_functions[f.tag] = f
            functools.update_wrapper(f, fn)  # type: ignore[arg-type]
            return f

        return deco

    def cls(
        self, _warn_parentheses_missing: Any = None, **options: Any
    ) -> Callable[[type[T]], Cls[T]]:
        """Decorate a class whose ``@method`` functions run on workers (same options)."""
        if _warn_parentheses_missing is not None:
            raise TypeError(_PARENS.format("cls"))
        opts = self._options(options, "@app.cls()")

        def deco(user_cls: type[T]) -> Cls[T]:
            if not isinstance(user_cls, type):
                raise TypeError(f"@app.cls() decorates classes (got {user_cls!r})")
            c: Cls[T] = Cls(self, user_cls, opts)
            self.registered_classes[c.name] = c
            return c

        return deco

    def local_entrypoint(
        self, _warn_parentheses_missing: Any = None, *, name: str | None = None
    ) -> Callable[[Callable[..., Any]], LocalEntrypoint]:
        """Mark the function ``jupyter-remote run script.py`` calls (inside ``app.run()``)."""
        if _warn_parentheses_missing is not None:
            raise TypeError(_PARENS.format("local_entrypoint"))

        def deco(fn: Callable[..., Any]) -> LocalEntrypoint:
            ep = LocalEntrypoint(self, fn, name or fn.__name__)
            self.registered_entrypoints[ep.name] = ep
            return ep

        return deco

    # -- lifecycle ------------------------------------------------------------------------

    def include(self, other: App) -> App:
        """Add ``other``'s functions, classes and entrypoints to this app's (Modal's ``include``).

        They keep running under ``other`` (its name, its workers); this makes
        them visible to ``jupyter-remote run`` and ``registered_functions`` here.
        """
        if not isinstance(other, App):
            raise TypeError(f"App.include takes an App, not {type(other).__name__}")
        self.registered_functions.update(other.registered_functions)
        self.registered_classes.update(other.registered_classes)
        self.registered_entrypoints.update(other.registered_entrypoints)
        return self

    def deploy(self, *, name: str | None = None) -> App:
        """Deploy the app: its functions keep running on the app server after this process.

        Returns once the deployment is live; a redeploy replaces it atomically (calls
        in flight finish on the old definitions). Call it from another process with
        ``jr.Function.from_name(app_name, function_name)``.

        >>> app.deploy()                                     # doctest: +SKIP
        <App 'shop' backend='local'>
        """
        from ._deploy import deploy_app

        deploy_app(self, name)
        return self

    @staticmethod
    def lookup(name: str, *, create_if_missing: bool = False) -> App:
        """The deployed app ``name`` (``NotFoundError`` unless ``create_if_missing``)."""
        from ._deploy import lookup_app

        return lookup_app(name, create_if_missing)

    @contextlib.contextmanager
    def run(self, *, backend: str | None = None, detach: bool = False) -> Iterator[App]:
        """Run the app for the ``with`` block, then stop its workers.

        Without it, the first call starts the app, which lives until ``app.stop()``
        or the end of the process. ``detach=True`` (an app that outlives the
        caller) is refused: deploy the app instead (``app.deploy()``).
        """
        if detach:
            raise NotSupportedError(
                "app.run(detach=True) is not yet supported; to keep an app running after this "
                "process, deploy it with app.deploy() or `jupyter-remote deploy FILE`"
            )
        if backend is not None:
            self._running_backend = backend
        self._depth += 1
        try:
            self._ensure_running()
            yield self
        finally:
            self._depth -= 1
            if self._depth == 0:
                self.stop()
                self._running_backend = None

    @property
    def running(self) -> bool:
        """Whether the app runs: from ``run()`` or its first call until ``stop()``."""
        return self._started

    def _ensure_running(self) -> None:
        ctl = controller()
        ctl.backend(self.backend_name)  # validates the name early
        self._started = True

    def stop(self) -> None:
        """Stop every worker of this app (they start again on the next call)."""
        self._started = False
        ctl = controller()
        ctl.loop.run(ctl.stop_pools(self.name))
