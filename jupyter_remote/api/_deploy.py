"""``app.deploy()`` and the look-ups: ``Function.from_name``, ``Cls.from_name``, ``App.lookup``.

A deployment is built here, where the API objects are: each function's
definition is pickled as for a call (secret values resolved into it), with
its worker spec, scaling and options. Everything is built before anything is
written, so a definition that cannot be pickled deploys nothing; then the
store gets the deployment in one write and the app server loads it.
"""

from __future__ import annotations

import dataclasses
import time
from typing import TYPE_CHECKING, Any

from ..controller import controller
from ..deploy import (
    DeployedFunction,
    Deployment,
    DeploymentStore,
    connection,
    ref_for,
    validate_app_name,
)
from ..exceptions import CallCancelledError, NotFoundError
from ..protocol import OUTCOME_ERR, OUTCOME_OK, Invoke, Payload
from ..runtime._params import NO_DEFAULT, ClassParameters
from ..runtime._refs import ClsProxy, Dual, FunctionProxy, _rebuild, _values
from ._cls import ClsInstance
from ._pickling import function_def

if TYPE_CHECKING:
    from ..runtime._client import Client
    from ._app import App
    from ._cls import Cls
    from ._function import Function

__all__ = [
    "DeployedCall",
    "DeployedFunctionProxy",
    "build_deployment",
    "deploy_app",
    "lookup_app",
    "lookup_cls",
    "lookup_function",
]


def _deployed(app_name: str, fn: Function[..., Any, Any]) -> DeployedFunction:
    fdef = fn._definition()  # raises SerializationError naming what cannot be pickled
    spec, scaling = fn._spec()
    spec = dataclasses.replace(spec, label=f"{app_name}.{fn.tag}")
    o = fn.options
    return DeployedFunction(
        fn.tag,
        fdef,
        fn._method,
        fn.app.backend_name,
        spec,
        scaling,
        o.retries,
        o.timeout,
        fn.is_generator,
        o.schedule.spec if o.schedule is not None and fn._method is None else None,
    )


def build_deployment(app: App, name: str, version: int) -> Deployment:
    """Every function and class of ``app``, ready to run on the app server."""
    functions = {tag: _deployed(name, f) for tag, f in app.registered_functions.items()}
    classes: dict[str, dict[str, DeployedFunction]] = {}
    parameters: dict[str, tuple[ClassParameters, Payload]] = {}
    for cname, cls in app.registered_classes.items():
        settable = {k: v for k, v in cls.parameters.items() if v[1].init}
        # The definitions of a parametrized class are templates: the app server makes
        # one per set of parameters a client passes (a required one has no default).
        defaults = {k: p.default for k, (_, p) in settable.items() if p.default is not NO_DEFAULT}
        instance = ClsInstance(cls, (), defaults) if cls.parameters else cls()
        classes[cname] = {m: _deployed(name, getattr(instance, m)) for m in cls.methods}
        if settable:
            parameters[cname] = (settable, _pickled_class(cls))
    return Deployment(name, version, time.time(), functions, classes, parameters)


def _pickled_class(cls: Cls[Any]) -> Payload:
    fdef = function_def(cls.user_cls, "class", cls.name, controller().settings)
    return fdef.payload  # pickled as for a call (SerializationError naming the culprit)


def deploy_app(app: App, name: str | None = None) -> Deployment:
    """Register ``app`` with the app server (started if need be); return once it is live."""
    name = validate_app_name(app.name if name is None else name)
    store = DeploymentStore()
    conn = connection()  # fail early (and start it) before pickling anything
    deployment = build_deployment(app, name, store.next_version(name))
    store.write(deployment)
    conn.control("load", app=name)
    return deployment


def _client() -> Client:
    return connection().calls


def _describe(app_name: str) -> dict[str, Any]:
    summary: dict[str, Any] = connection().control("describe", app=app_name)
    return summary


def lookup_function(app_name: str, name: str) -> FunctionProxy:
    summary = _describe(app_name)
    if name not in summary["functions"]:
        functions = ", ".join(summary["functions"]) or "none"
        hint = (
            f"; {name} is a class: use Cls.from_name({app_name!r}, {name!r})"
            if name in summary["classes"]
            else ""
        )
        raise NotFoundError(
            f"app {app_name!r} has no function {name!r}; its functions: {functions}{hint}"
        )
    return DeployedFunctionProxy(ref_for(app_name, name), _client)


def lookup_cls(app_name: str, name: str) -> ClsProxy:
    summary = _describe(app_name)
    methods = summary["classes"].get(name)
    if methods is None:
        classes = ", ".join(summary["classes"]) or "none"
        raise NotFoundError(f"app {app_name!r} has no class {name!r}; its classes: {classes}")
    return ClsProxy(ref_for(app_name, name, "cls", tuple(methods)), _client)


def lookup_app(name: str, create_if_missing: bool) -> App:
    from ._app import App

    try:
        _describe(name)
    except NotFoundError:
        if not create_if_missing:
            raise
    return App(name)


class DeployedCall:
    """A spawned call of a deployed function, from any process: ``FunctionCall.from_id(id)``.

    Its result is kept by the app server, so ``.get()`` works in another
    process than the one that spawned it.
    """

    def __init__(self, object_id: str, label: str = "") -> None:
        self.object_id = object_id
        self._label = label or object_id
        self.get = Dual(self._get, self._get_aio)

    def __repr__(self) -> str:
        return f"<FunctionCall {self.object_id} {self._label}>"

    def _get(self, timeout: float | None = None) -> Any:
        """Wait for the result (``OutputExpiredError`` after ``timeout`` seconds)."""
        patience = None if timeout is None else timeout + 30.0  # the server says it expired
        outcome = connection().control("result", timeout=patience, id=self.object_id, wait=timeout)
        return _value(outcome, self._label)

    async def _get_aio(self, timeout: float | None = None) -> Any:
        import asyncio

        return await asyncio.to_thread(self._get, timeout)

    def cancel(self) -> None:
        connection().control("cancel", id=self.object_id)


def _value(outcome: tuple[str, Any, Any], label: str) -> Any:
    kind, a, b = outcome
    if kind == OUTCOME_OK:
        pos = 0 if type(a) is range else a[0][0]
        return _values(b, label)[pos]
    if kind == OUTCOME_ERR:
        raise _rebuild(b)
    raise CallCancelledError(f"the call of {label}() was cancelled")


class DeployedFunctionProxy(FunctionProxy):
    """A deployed function, seen from a client: ``.spawn`` returns a :class:`DeployedCall`."""

    def _spawn(self, *args: Any, **kwargs: Any) -> DeployedCall:  # type: ignore[override]
        chunks = self._pickled([args], kwargs, 1)
        msg = Invoke(0, self._ref, tuple(chunks), 1, "call", False, -1)
        reply = connection().control("spawn", invoke=msg)
        return DeployedCall(str(reply["object_id"]), self._ref.label)

    async def _spawn_aio(self, *args: Any, **kwargs: Any) -> DeployedCall:  # type: ignore[override]
        import asyncio

        return await asyncio.to_thread(self._spawn, *args, **kwargs)
