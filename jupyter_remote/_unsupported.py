"""Modal names and options that jupyter_remote does not serve, and what to use instead.

A Modal script that uses one gets :class:`~jupyter_remote.exceptions.NotSupportedError`
naming the feature (never an ``AttributeError`` or an unknown-option ``TypeError``).
``planned`` entries are features being built; their message says "not yet".
Names that the package (or an App decorator) serves are looked up first, so an
entry here never hides a feature once it exists.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from .exceptions import NotSupportedError

__all__ = [
    "APP_ATTRIBUTES",
    "IMAGE_METHODS",
    "NAMES",
    "OPTIONS",
    "Unsupported",
    "unsupported_attribute",
    "unsupported_name",
    "unsupported_option",
]


Status = Literal["not supported", "planned", "renamed"]


@dataclass(frozen=True)
class Unsupported:
    """One feature: whether it is planned or not served, and what to use instead."""

    status: Status
    instead: str = ""

    def error(self, what: str) -> NotSupportedError:
        if self.status == "renamed":
            return NotSupportedError(f"{what} was renamed: {self.instead}")
        if self.status == "planned":
            text = f"{what} is not yet supported by jupyter_remote (it is planned)"
        else:
            text = f"{what} is a Modal feature that jupyter_remote does not support"
        return NotSupportedError(text + (f"; {self.instead}" if self.instead else ""))


_NO: Status = "not supported"
_PLANNED: Status = "planned"

# Top-level ``modal.X`` names (modal/__init__.py) that ``jupyter_remote.X`` does not serve.
NAMES: dict[str, Unsupported] = {
    "Sandbox": Unsupported(
        _NO, "run the code in an @app.function() instead (or `jupyter-remote run`)"
    ),
    "Probe": Unsupported(_NO, "Sandbox probes need Sandboxes, which are not served"),
    "SandboxSnapshot": Unsupported(_NO, "Sandbox snapshots need Sandboxes, which are not served"),
    "NetworkFileSystem": Unsupported(
        _NO, "use a jr.Volume: `volumes={'/data': jr.Volume.from_name('data')}`"
    ),
    "CloudBucketMount": Unsupported(
        _NO,
        "set `volumes_url` to the bucket (e.g. s3://bucket/volumes) and mount a jr.Volume",
    ),
    "Tunnel": Unsupported(_NO, "expose ports with your cluster's networking (Nomad services)"),
    "forward": Unsupported(_NO, "expose ports with your cluster's networking (Nomad services)"),
    "Proxy": Unsupported(_NO, "workers use the network of the node they run on"),
    "Client": Unsupported(_NO, "there is no Modal server: configure the backend instead"),
    "Environment": Unsupported(_NO, "use one config file (or NOMAD_NAMESPACE) per environment"),
    "Workspace": Unsupported(_NO, "there are no Modal workspaces here"),
    "SchedulerPlacement": Unsupported(
        _NO, "choose nodes with the [nomad] node_pool/datacenters settings"
    ),
    "FilePatternMatcher": Unsupported(_NO, "copy only what you need with add_local_dir"),
    "Server": Unsupported(_NO, "run the server in an @app.function()"),
    "interact": Unsupported(_NO, "use `jupyter-remote run` output or a %%remote session"),
    "billing": Unsupported(_NO, "there is no billing: you run the workers"),
    "types": Unsupported(_NO),
    "Mount": Unsupported(_NO, "use Image.add_local_dir / add_local_python_source"),
    "Stub": Unsupported("renamed", "use jr.App instead (Modal renamed Stub to App)"),
    # Being built in other parts of jupyter_remote.
    "Dict": Unsupported(_PLANNED),
    "Queue": Unsupported(_PLANNED),
    "asgi_app": Unsupported(_PLANNED),
    "wsgi_app": Unsupported(_PLANNED),
    "web_server": Unsupported(_PLANNED),
    "fastapi_endpoint": Unsupported(_PLANNED),
    "web_endpoint": Unsupported(_PLANNED),
    "batched": Unsupported(_PLANNED),
}

_PLACEMENT = "placement is the cluster's: use the [nomad] datacenters/node_pool settings"

# Options of Modal's ``@app.function()`` / ``@app.cls()`` that ours do not take.
OPTIONS: dict[str, Unsupported] = {
    "network_file_systems": Unsupported(_NO, "use volumes= with a jr.Volume"),
    "proxy": Unsupported(_NO, "workers use the network of the node they run on"),
    "cloud": Unsupported(_NO, _PLACEMENT),
    "region": Unsupported(_NO, _PLACEMENT),
    "routing_region": Unsupported(_NO, _PLACEMENT),
    "nonpreemptible": Unsupported(_NO, "set the Nomad job `priority` setting instead"),
    "enable_memory_snapshot": Unsupported(
        _NO, "load once per worker in an @enter() method instead"
    ),
    "experimental_options": Unsupported(_NO),
    "block_network": Unsupported(_NO, "restrict the network on the nodes (Nomad network mode)"),
    "restrict_modal_access": Unsupported(_NO),
    "i6pn": Unsupported(_NO, "workers reach each other over the cluster network"),
    "startup_timeout": Unsupported(_NO, "set the `worker_start_timeout` setting instead"),
    "keep_warm": Unsupported("renamed", "use min_containers= (Modal renamed it too)"),
    "concurrency_limit": Unsupported("renamed", "use max_containers= (Modal renamed it too)"),
    "container_idle_timeout": Unsupported(
        "renamed", "use scaledown_window= (Modal renamed it too)"
    ),
    "allow_concurrent_inputs": Unsupported(
        "renamed",
        "stack @jr.concurrent(max_inputs=N) under @app.function() (or @app.cls()), as in Modal",
    ),
}


_CONTAINER = "build it as a container image and use Image.from_registry on Nomad's docker driver"

# Methods of Modal's ``Image`` (class and instance) that ours does not have.
IMAGE_METHODS: dict[str, Unsupported] = {
    "from_dockerfile": Unsupported(_NO, _CONTAINER),
    "dockerfile_commands": Unsupported(_NO, _CONTAINER),
    "from_aws_ecr": Unsupported(_NO, _CONTAINER),
    "from_gcp_artifact_registry": Unsupported(_NO, _CONTAINER),
    "from_scratch": Unsupported(_NO, _CONTAINER),
    "from_id": Unsupported(_NO, "build the Image from its methods each time (it is cached)"),
    "from_name": Unsupported(_NO, "build the Image from its methods each time (it is cached)"),
    "micromamba": Unsupported(_NO, "use Image.debian_slim().pip_install(...)"),
    "micromamba_install": Unsupported(_NO, "use pip_install or apt_install"),
    "pip_install_from_pyproject": Unsupported(_NO, "list the dependencies in pip_install(...)"),
    "pip_install_private_repos": Unsupported(_NO, "use pip_install with index_url="),
    "poetry_install_from_file": Unsupported(_NO, "use pip_install_from_requirements"),
    "uv_sync": Unsupported(_NO, "use uv_pip_install or pip_install_from_requirements"),
    "run_function": Unsupported(_NO, "use run_commands, or do the work in an @enter() method"),
    "entrypoint": Unsupported(_NO, "workers run the jupyter_remote runtime, not an entrypoint"),
    "cmd": Unsupported(_NO, "workers run the jupyter_remote runtime, not a command"),
    "shell": Unsupported(_NO, "build steps run with /bin/sh"),
}

# Attributes of Modal's ``App`` that ours does not have.
APP_ATTRIBUTES: dict[str, Unsupported] = {
    "registered_web_endpoints": Unsupported(_PLANNED),
    "server": Unsupported(_NO, "run the server in an @app.function()"),
    "app_id": Unsupported(_NO, "an app here is its name: app.name"),
    "set_description": Unsupported(_NO, "an app here is its name: app.name"),
}


def unsupported_name(module: str, name: str) -> NotSupportedError | None:
    """The error for ``module.name`` if Modal has that name and we do not serve it."""
    entry = NAMES.get(name)
    return None if entry is None else entry.error(f"{module}.{name}")


def unsupported_option(where: str, name: str) -> NotSupportedError | None:
    """The error for a Modal option ``name`` of ``where`` (``@app.function()``) we do not take."""
    entry = OPTIONS.get(name)
    return None if entry is None else entry.error(f"{where} option {name}=")


def unsupported_attribute(
    table: dict[str, Unsupported], owner: str, name: str
) -> NotSupportedError | AttributeError:
    """What ``owner.name`` raises: our error for a Modal name in ``table``, else the usual."""
    entry = table.get(name)
    if entry is None:
        return AttributeError(f"{owner!r} has no attribute {name!r}")
    return entry.error(f"{owner}.{name}")
