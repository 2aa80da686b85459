"""Backends that launch workers, looked up by name in a registry of lazy class paths."""

from __future__ import annotations

import importlib

from ..exceptions import ConfigError
from .base import (
    Backend,
    ControllerAddress,
    ExitCallback,
    PlacementCallback,
    WorkerExit,
    WorkerPlacement,
    WorkerSpec,
)

__all__ = [
    "REGISTRY",
    "Backend",
    "ControllerAddress",
    "ExitCallback",
    "PlacementCallback",
    "WorkerExit",
    "WorkerPlacement",
    "WorkerSpec",
    "backend_class",
]

# name -> (module, class, what to install if the import fails)
REGISTRY: dict[str, tuple[str, str, str]] = {
    "local": ("jupyter_remote.backends.local", "LocalBackend", ""),
    "nomad": ("jupyter_remote.backends.nomad", "NomadBackend", ""),
}


def backend_class(name: str) -> type[Backend]:
    """The backend class registered as ``name``."""
    try:
        module, cls, hint = REGISTRY[name]
    except KeyError:
        raise ConfigError(
            f"unknown backend {name!r}; choose one of {', '.join(sorted(REGISTRY))} "
            "(set App(backend=...) or JUPYTER_REMOTE_BACKEND)"
        ) from None
    try:
        mod = importlib.import_module(module)
    except ImportError as exc:
        raise ConfigError(f"backend {name!r} cannot be imported ({exc}). {hint}".strip()) from exc
    klass: type[Backend] = getattr(mod, cls)
    return klass
