"""Settings: explicit argument, else environment variable, else config file, else default.

The config file is TOML at ``$JUPYTER_REMOTE_CONFIG`` or
``$XDG_CONFIG_HOME/jupyter_remote/config.toml`` (``~/.config/...``)::

    backend = "local"              # JUPYTER_REMOTE_BACKEND
    advertise_host = "10.0.0.5"    # JUPYTER_REMOTE_ADVERTISE_HOST
    python = "/usr/bin/python3"    # JUPYTER_REMOTE_PYTHON: the workers' interpreter
    progress = true                # JUPYTER_REMOTE_PROGRESS
    function_warn_bytes = 52428800 # JUPYTER_REMOTE_FUNCTION_WARN_BYTES
    function_max_bytes = 524288000 # JUPYTER_REMOTE_FUNCTION_MAX_BYTES
    tls_certfile = "/path/cert.pem" # JUPYTER_REMOTE_TLS_CERTFILE (with tls_keyfile: TLS on)
    tls_keyfile = "/path/key.pem"   # JUPYTER_REMOTE_TLS_KEYFILE
    volumes_url = "s3://bucket/vols" # JUPYTER_REMOTE_VOLUMES_URL (default: a local directory)
    log_lines = 10000              # JUPYTER_REMOTE_LOG_LINES: output lines call.logs() keeps
    deployments_url = "s3://b/dep"  # JUPYTER_REMOTE_DEPLOYMENTS_URL (default: beside the volumes)
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from .exceptions import ConfigError

__all__ = ["Settings", "config_path", "load_settings"]


@dataclass(frozen=True)
class Settings:
    backend: str = "local"
    advertise_host: str | None = None
    python: str | None = None
    progress: bool = True
    function_warn_bytes: int = 50 * (1 << 20)
    function_max_bytes: int = 500 * (1 << 20)
    tls_certfile: str | None = None
    tls_keyfile: str | None = None
    worker_start_timeout: float = 120.0
    max_worker_deaths: int = 3
    volumes_url: str | None = None  # fsspec URL under which volumes live
    log_lines: int = 10_000  # output lines a call keeps for call.logs(); older ones are dropped
    deployments_url: str | None = None  # fsspec URL of the deployment store (app server)


def config_path() -> Path:
    explicit = os.environ.get("JUPYTER_REMOTE_CONFIG")
    if explicit:
        return Path(explicit)
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "jupyter_remote" / "config.toml"


def _coerce(name: str, kind: Any, value: Any, where: str) -> Any:
    if isinstance(value, float) and "int" in str(kind) and not value.is_integer():
        raise ConfigError(f"{where}: {name} = {value!r} is not a valid int")
    if "str" in str(kind) and "bool" not in str(kind) and not isinstance(value, str):
        raise ConfigError(f"{where}: {name} = {value!r} must be a string")
    text = str(value)
    try:
        if "bool" in str(kind):
            if isinstance(value, bool):
                return value
            if text.lower() in ("1", "true", "yes", "on"):
                return True
            if text.lower() in ("0", "false", "no", "off"):
                return False
            raise ValueError(text)
        if "int" in str(kind):
            return int(value)
        if "float" in str(kind):
            return float(value)
    except ValueError:
        raise ConfigError(f"{where}: {name} = {value!r} is not a valid {kind}") from None
    return text


def load_settings() -> Settings:
    """Read the config file and the environment (env wins)."""
    values: dict[str, Any] = {}
    path = config_path()
    known = {f.name: f.type for f in fields(Settings)}
    if os.environ.get("JUPYTER_REMOTE_CONFIG") and not path.is_file():
        raise ConfigError(f"JUPYTER_REMOTE_CONFIG names {path}, which is not a file")
    if path.is_file():
        try:
            data = tomllib.loads(path.read_text())
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise ConfigError(f"cannot read the config file {path}: {exc}") from exc
        for key, value in data.items():
            if key not in known:
                if isinstance(value, dict):
                    continue  # sections belong to backends (e.g. [nomad])
                raise ConfigError(
                    f"{path}: unknown setting {key!r}; known settings: {', '.join(sorted(known))}"
                )
            values[key] = _coerce(key, known[key], value, str(path))
    for key, kind in known.items():
        env = os.environ.get(f"JUPYTER_REMOTE_{key.upper()}")
        if env is not None and env != "":
            values[key] = _coerce(key, kind, env, f"JUPYTER_REMOTE_{key.upper()}")
    return Settings(**values)
