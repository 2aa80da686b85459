"""A local backend whose workers start like Nomad tasks on a bare node.

Each worker is the *base* interpreter in isolated mode without site-packages
(``python -I -S``), running the bootstrap text: it has nothing of ours, fetches
the runtime from the controller, caches it, and serves. Registered as backend
``bare-local`` by the tests that use it.
"""

from __future__ import annotations

import os
import sys
import tempfile
from dataclasses import replace

import cloudpickle
import conformance_funcs

from jupyter_remote.backends import REGISTRY
from jupyter_remote.backends.base import ControllerAddress, WorkerSpec
from jupyter_remote.backends.local import LocalBackend
from jupyter_remote.runtime._fetch import bootstrap_source

BASE_PYTHON = os.path.join(
    sys.base_prefix, "bin", f"python{sys.version_info[0]}.{sys.version_info[1]}"
)
CACHE = tempfile.mkdtemp(prefix="jr-bare-cache-")


class BareNodeBackend(LocalBackend):
    name = "bare-local"

    async def launch(self, spec: WorkerSpec, worker_id: str, address: ControllerAddress) -> None:
        spec = replace(spec, env={**spec.env, "JUPYTER_REMOTE_CACHE": CACHE})  # read at launch
        await super().launch(spec, worker_id, address)

    def command(self, spec: WorkerSpec, worker_id: str, address: ControllerAddress) -> list[str]:
        return [
            BASE_PYTHON, "-I", "-S", "-c", bootstrap_source(),
            "--connect", f"{address.host}:{address.port}", "--worker-id", worker_id,
        ]  # fmt: skip


def register() -> None:
    REGISTRY["bare-local"] = (__name__, "BareNodeBackend", "")
    # A bare node cannot import the test's modules: their functions travel by value.
    cloudpickle.register_pickle_by_value(conformance_funcs)


def unregister() -> None:
    REGISTRY.pop("bare-local", None)
    cloudpickle.unregister_pickle_by_value(conformance_funcs)
