"""Settings of the Nomad backend: how to reach the cluster and how to shape its jobs.

Connection settings use Nomad's own environment variables, so a shell set up
for the ``nomad`` CLI works unchanged; the ``[nomad]`` table of the config file
may hold them too (the environment wins). The token is read from
``NOMAD_TOKEN`` only, never from a file::

    NOMAD_ADDR          address      http://127.0.0.1:4646
    NOMAD_TOKEN         token        (none)
    NOMAD_NAMESPACE     namespace    default
    NOMAD_REGION        region       (the agent's)
    NOMAD_CACERT        cacert       (system CAs; TLS is always verified)
    NOMAD_CLIENT_CERT   client_cert  (none; set with client_key)
    NOMAD_CLIENT_KEY    client_key   (none)

Project settings come from ``[nomad]`` in the config file and
``JUPYTER_REMOTE_NOMAD_<NAME>`` (the environment wins)::

    [nomad]
    datacenters = ["dc1", "dc2"]  # JUPYTER_REMOTE_NOMAD_DATACENTERS="dc1,dc2"; default ["*"]
    node_pool = "gpu"             # default: Nomad's default pool
    driver = "raw_exec"           # raw_exec | docker | exec
    python = "python3"            # the nodes' interpreter for raw_exec and exec
    docker_image = "python:3.11-slim"  # default: python:<caller's major.minor>-slim
    job_prefix = "jr"             # Nomad job IDs start with this
    priority = 50                 # 1..100
    capacity_wait = 300           # seconds a job may wait for free capacity

Example::

    >>> cfg = NomadConfig.load()
    >>> cfg.namespace
    'default'
"""

from __future__ import annotations

import os
import re
import ssl
import sys
import tomllib
from dataclasses import dataclass, field, fields, replace
from typing import Any, Literal, cast

from ...config import config_path
from ...exceptions import ConfigError

__all__ = ["DRIVERS", "Driver", "NomadConfig", "tls_settings"]

Driver = Literal["raw_exec", "docker", "exec"]
DRIVERS: tuple[Driver, ...] = ("raw_exec", "docker", "exec")

# setting -> Nomad's own environment variable
_NOMAD_ENV = {
    "address": "NOMAD_ADDR",
    "token": "NOMAD_TOKEN",
    "namespace": "NOMAD_NAMESPACE",
    "region": "NOMAD_REGION",
    "cacert": "NOMAD_CACERT",
    "client_cert": "NOMAD_CLIENT_CERT",
    "client_key": "NOMAD_CLIENT_KEY",
}
_JOB_PREFIX = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,31}")


def _default_image() -> str:
    return f"python:{sys.version_info.major}.{sys.version_info.minor}-slim"


@dataclass(frozen=True)
class NomadConfig:
    """Everything the Nomad client and the job builder need; build it with :meth:`load`."""

    address: str = "http://127.0.0.1:4646"
    token: str | None = field(default=None, repr=False)
    namespace: str = "default"
    region: str | None = None
    cacert: str | None = None
    client_cert: str | None = None
    client_key: str | None = None
    datacenters: tuple[str, ...] = ("*",)
    node_pool: str | None = None
    driver: Driver = "raw_exec"
    python: str = "python3"
    docker_image: str = field(default_factory=_default_image)
    job_prefix: str = "jr"
    priority: int = 50
    capacity_wait: float = 300.0

    def __post_init__(self) -> None:
        # Normalise here so that NomadConfig(...) built in code is validated like load().
        for f in fields(self):
            value = getattr(self, f.name)
            checked = _check(f.name, value, _where_default(f.name))
            if checked is not value:
                object.__setattr__(self, f.name, checked)
        if (self.client_cert is None) != (self.client_key is None):
            raise ConfigError(
                "NOMAD_CLIENT_CERT and NOMAD_CLIENT_KEY go together: set both "
                "(client certificate and its key) or neither"
            )

    def __repr__(self) -> str:
        parts = []
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name == "token":
                parts.append(f"token={'***' if value else None}")
            else:
                parts.append(f"{f.name}={value!r}")
        return f"NomadConfig({', '.join(parts)})"

    @classmethod
    def load(cls, **overrides: Any) -> NomadConfig:
        """Explicit ``overrides``, else the environment, else ``[nomad]`` in the config file."""
        known = {f.name for f in fields(cls)}
        unknown = set(overrides) - known
        if unknown:
            raise ConfigError(
                f"unknown Nomad setting(s) {', '.join(sorted(unknown))}; "
                f"known settings: {', '.join(sorted(known))}"
            )
        values: dict[str, Any] = {}
        for name, (value, where) in _from_file().items():
            values[name] = _check(name, value, where)
        for name in known:
            env_name = _NOMAD_ENV.get(name, f"JUPYTER_REMOTE_NOMAD_{name.upper()}")
            raw = os.environ.get(env_name)
            if raw is not None and raw != "":
                values[name] = _check(name, raw, env_name)
        for name, value in overrides.items():
            values[name] = _check(name, value, f"argument {name}")
        return replace(cls(), **values)


def tls_settings(
    config: NomadConfig,
) -> tuple[bool | str, ssl.SSLContext | None, tuple[str, str] | tuple[()]]:
    """requests' ``verify``, an SSL context for httpx and the client cert pair, from one config.

    Verification is always on; the files are loaded here so that a wrong path
    fails at once, naming its variable.
    """
    cert: tuple[str, str] | tuple[()] = ()
    if config.client_cert and config.client_key:
        cert = (config.client_cert, config.client_key)
    if not config.cacert and not cert:
        return True, None, ()
    try:
        context = ssl.create_default_context(cafile=config.cacert)
    except (OSError, ssl.SSLError) as exc:
        raise ConfigError(
            f"NOMAD_CACERT = {config.cacert!r} is not a readable PEM CA certificate: {exc}"
        ) from exc
    if cert:
        try:
            context.load_cert_chain(cert[0], cert[1])
        except (OSError, ssl.SSLError) as exc:
            raise ConfigError(
                f"NOMAD_CLIENT_CERT = {cert[0]!r} / NOMAD_CLIENT_KEY = {cert[1]!r} are not a "
                f"readable PEM certificate and matching key: {exc}"
            ) from exc
    return (config.cacert or True), context, cert


def _where_default(name: str) -> str:
    return f"NomadConfig({name}=...)"


def _from_file() -> dict[str, tuple[Any, str]]:
    path = config_path()
    if not path.is_file():
        return {}
    try:
        data = tomllib.loads(path.read_text())
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"cannot read the config file {path}: {exc}") from exc
    table = data.get("nomad", {})
    if not isinstance(table, dict):
        raise ConfigError(f"{path}: 'nomad' must be a table ([nomad])")
    known = {f.name for f in fields(NomadConfig)} - {"token"}
    out: dict[str, tuple[Any, str]] = {}
    for key, value in table.items():
        if key == "token":
            raise ConfigError(
                f"{path}: [nomad] token is not read from files; set NOMAD_TOKEN in the environment"
            )
        if key not in known:
            raise ConfigError(
                f"{path}: unknown setting [nomad] {key!r}; known settings: "
                f"{', '.join(sorted(known))}"
            )
        out[key] = (value, f"{path} [nomad] {key}")
    return out


def _check(name: str, value: Any, where: str) -> Any:
    """Validate and normalise one setting; ``where`` names its source in errors."""
    if name == "datacenters":
        return _datacenters(value, where)
    if name == "priority":
        number = _number(value, where, int)
        if not 1 <= number <= 100:
            raise ConfigError(f"{where} = {value!r}: priority must be an integer from 1 to 100")
        return int(number)
    if name == "capacity_wait":
        seconds = _number(value, where, float)
        if seconds < 0:
            raise ConfigError(f"{where} = {value!r}: capacity_wait must be seconds >= 0")
        return float(seconds)
    optional = name in ("token", "region", "cacert", "client_cert", "client_key", "node_pool")
    if value is None and optional:
        return None
    if not isinstance(value, str) or (not value and not optional):
        raise ConfigError(f"{where} = {value!r}: {name} must be a non-empty string")
    if not value:
        return None
    if name == "address":
        return _address(value, where)
    if name == "driver" and value not in DRIVERS:
        raise ConfigError(f"{where} = {value!r}: driver must be one of {', '.join(DRIVERS)}")
    if name == "job_prefix" and not _JOB_PREFIX.fullmatch(value):
        raise ConfigError(
            f"{where} = {value!r}: job_prefix must be 1-32 letters, digits, '-' or '_', "
            "starting with a letter or digit"
        )
    return value


def _address(value: str, where: str) -> str:
    if not value.startswith(("http://", "https://")):
        raise ConfigError(
            f"{where} = {value!r}: the Nomad address must start with http:// or https:// "
            "(e.g. http://127.0.0.1:4646)"
        )
    return value.rstrip("/")


def _datacenters(value: Any, where: str) -> tuple[str, ...]:
    items: list[Any]
    if isinstance(value, str):
        items = [part.strip() for part in value.split(",")]
    elif isinstance(value, list | tuple):
        items = list(value)
    else:
        items = [value]
    if not items or not all(isinstance(dc, str) and dc for dc in items):
        raise ConfigError(
            f"{where} = {value!r}: datacenters must be a non-empty list of datacenter names "
            '(e.g. ["dc1", "dc2"], "dc1,dc2" in the environment, or ["*"] for all)'
        )
    return tuple(cast(list[str], items))


def _number(value: Any, where: str, kind: type[int] | type[float]) -> float:
    if isinstance(value, bool):
        raise ConfigError(f"{where} = {value!r} is not a number")
    try:
        number = kind(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{where} = {value!r} is not a valid {kind.__name__}") from None
    if kind is int and isinstance(value, float) and not value.is_integer():
        raise ConfigError(f"{where} = {value!r} is not a valid int")
    return number
