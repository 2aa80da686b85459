"""A local backend whose launches the tests can hold back and whose credentials they can read.

``HeldBackend.given`` keeps the :class:`ControllerAddress` (with the worker's
own credential) each worker was launched with. With ``hold`` set, workers
are registered and given credentials but not started, so a test can act as
a worker, or as a stranger holding a stolen credential. ``advertise`` makes
the backend look like one whose workers are on other machines (the
controller then listens on that address, over TLS), and ``pin`` replaces
the fingerprint the workers are told (a controller impersonated).
Registered as ``held-local`` by :func:`register`.
"""

from __future__ import annotations

from dataclasses import replace
from typing import ClassVar

from jupyter_remote.backends import REGISTRY
from jupyter_remote.backends.base import ControllerAddress, WorkerSpec
from jupyter_remote.backends.local import LocalBackend

__all__ = ["HeldBackend", "register", "unregister"]


class HeldBackend(LocalBackend):
    name = "held-local"
    given: ClassVar[dict[str, ControllerAddress]] = {}
    hold: ClassVar[bool] = False
    advertise: ClassVar[str] = "127.0.0.1"
    pin: ClassVar[str | None] = None

    def advertise_host(self) -> str:
        return HeldBackend.advertise

    async def launch(self, spec: WorkerSpec, worker_id: str, address: ControllerAddress) -> None:
        HeldBackend.given[worker_id] = address
        if HeldBackend.pin is not None:
            address = replace(address, tls_fingerprint=HeldBackend.pin)
        if not HeldBackend.hold:
            await super().launch(spec, worker_id, address)


def register() -> None:
    REGISTRY["held-local"] = (__name__, "HeldBackend", "")


def unregister() -> None:
    REGISTRY.pop("held-local", None)
    HeldBackend.given.clear()
    HeldBackend.hold = False
    HeldBackend.advertise = "127.0.0.1"
    HeldBackend.pin = None
