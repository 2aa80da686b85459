"""What a deployment is: an app's functions and classes, as the app server runs them.

Everything the caller's ``Function`` would put into a call is decided at
deploy time and kept here: the pickled definition (secret values resolved
into it, as for any call), the worker spec (resources, image, volumes), the
scaling and the per-call options. The app server needs no API object to run
them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..backends import WorkerSpec
from ..controller import Scaling
from ..protocol import FunctionDef, Payload
from ..retries import Retries
from ..runtime._params import ClassParameters
from ._schedule import ScheduleSpec

__all__ = ["DeployedFunction", "Deployment"]


@dataclass(frozen=True)
class DeployedFunction:
    """One function (or one method of a class) of a deployed app."""

    tag: str  # the function's name in the app (a class's name for its methods)
    fdef: FunctionDef
    method: str | None
    backend: str
    spec: WorkerSpec
    scaling: Scaling
    retries: Retries
    timeout: float | None
    generator: bool
    schedule: ScheduleSpec | None = None  # fires only here, on the app server


@dataclass(frozen=True)
class Deployment:
    """An app as deployed: ``functions`` by name, ``classes`` by name then method."""

    app: str
    version: int
    deployed_at: float
    functions: dict[str, DeployedFunction] = field(default_factory=dict)
    classes: dict[str, dict[str, DeployedFunction]] = field(default_factory=dict)
    # A class with jr.parameter() fields: its parameters and the class pickled alone.
    parameters: dict[str, tuple[ClassParameters, Payload]] = field(default_factory=dict)

    def class_parameters(self, name: str) -> tuple[ClassParameters, Payload] | None:
        # A deployment stored before parameters existed has no such attribute.
        known: dict[str, tuple[ClassParameters, Payload]] = self.__dict__.get("parameters", {})
        return known.get(name)

    def summary(self) -> dict[str, Any]:
        return {
            "name": self.app,
            "version": self.version,
            "deployed_at": self.deployed_at,
            "functions": sorted(self.functions),
            "classes": {name: sorted(methods) for name, methods in sorted(self.classes.items())},
            "schedules": {
                name: f.schedule.describe()
                for name, f in sorted(self.functions.items())
                if f.schedule is not None
            },
        }
