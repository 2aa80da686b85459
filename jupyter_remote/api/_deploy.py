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

from ..deploy import (
    DeployedFunction,
    Deployment,
    DeploymentStore,
    connection,
    ref_for,
    validate_app_name,
)
from ..exceptions import NotFoundError
from ..runtime._refs import ClsProxy, FunctionProxy

if TYPE_CHECKING:
    from ..runtime._client import Client
    from ._app import App
    from ._function import Function

__all__ = ["build_deployment", "deploy_app", "lookup_app", "lookup_cls", "lookup_function"]


def _deployed(app_name: str, fn: Function[..., Any]) -> DeployedFunction:
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
    )


def build_deployment(app: App, name: str, version: int) -> Deployment:
    """Every function and class of ``app``, ready to run on the app server."""
    functions = {tag: _deployed(name, f) for tag, f in app.registered_functions.items()}
    classes: dict[str, dict[str, DeployedFunction]] = {}
    for cname, cls in app.registered_classes.items():
        instance = cls()
        classes[cname] = {m: _deployed(name, getattr(instance, m)) for m in cls.methods}
    return Deployment(name, version, time.time(), functions, classes)


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
    return FunctionProxy(ref_for(app_name, name), _client)


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
