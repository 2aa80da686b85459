"""Options of ``@app.function`` / ``@app.cls``: parsed and validated once, here."""

from __future__ import annotations

import difflib
import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from .._unsupported import unsupported_option
from ..exceptions import ConfigError, NotSupportedError
from ..resources import GpuRequest, parse_cpu, parse_gpu, parse_memory
from ..retries import Retries

__all__ = ["OPTION_NAMES", "FunctionOptions", "check_option_names", "options_digest"]

OPTION_NAMES = (
    "gpu",
    "cpu",
    "memory",
    "timeout",
    "retries",
    "max_containers",
    "min_containers",
    "buffer_containers",
    "scaledown_window",
    "image",
    "secrets",
    "volumes",
    "env",
    "name",
    "ephemeral_disk",
    "single_use_containers",
    "max_inputs",
    "serialized",
    "include_source",
    "schedule",
)


def check_option_names(given: Mapping[str, Any], where: str) -> None:
    """Raise ``TypeError`` naming unknown options, with a suggestion and the valid names."""
    unknown = [k for k in given if k not in OPTION_NAMES]
    if not unknown:
        return
    for key in unknown:
        modal_only = unsupported_option(where, key)
        if modal_only is not None:
            raise modal_only
    hints = []
    for key in unknown:
        close = difflib.get_close_matches(key, OPTION_NAMES, n=1)
        hints.append(f"{key!r}" + (f" (did you mean {close[0]!r}?)" if close else ""))
    raise TypeError(
        f"{where} got unknown option(s) {', '.join(hints)}; "
        f"valid options are: {', '.join(OPTION_NAMES)}"
    )


def options_digest(options: Mapping[str, Any]) -> str:
    """A short digest naming a ``with_options(...)`` variant (its pools are its own).

    Only a digest: the options' reprs (which may name secrets) never show.
    """
    text = repr(sorted(options.items(), key=lambda item: item[0]))
    return hashlib.sha256(text.encode()).hexdigest()[:8]


def _int(name: str, value: Any, low: int, high: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int, not {type(value).__name__}")
    if value < low or (high is not None and value > high):
        upper = f" to {high}" if high is not None else " or more"
        raise ConfigError(f"{name}={value}: accepted values are {low}{upper}")
    return value


def _seconds(name: str, value: Any, low: float, high: float) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"{name} must be a number of seconds, not {type(value).__name__}")
    if not low <= value <= high:
        raise ConfigError(f"{name}={value}: accepted values are {low:g} to {high:g} seconds")
    return float(value)


@dataclass(frozen=True)
class FunctionOptions:
    gpu: GpuRequest | None = None
    cpu: float | None = None
    memory: int | None = None
    timeout: float = 300.0
    retries: Retries = field(default_factory=lambda: Retries(0))
    max_containers: int | None = None
    min_containers: int = 0
    buffer_containers: int = 0
    scaledown_window: float = 60.0
    image: Any = None
    secrets: tuple[Any, ...] = ()
    volumes: Mapping[str, Any] = field(default_factory=dict)
    env: Mapping[str, str] = field(default_factory=dict)
    name: str | None = None
    ephemeral_disk: int | None = None  # MiB of scratch disk per worker (Nomad's ephemeral_disk)
    single_use_containers: bool = False  # each worker runs one input, then exits
    schedule: Any = None  # jr.Cron or jr.Period: fires only when the app is deployed

    @classmethod
    def parse(cls, **options: Any) -> FunctionOptions:
        """Validate user-facing options (``memory="16Gi"``, ``gpu="H100:8"``, ...)."""
        check_option_names(options, "@app.function()")
        return cls().merge(**options)

    def merge(self, **options: Any) -> FunctionOptions:
        check_option_names(options, "with_options()")
        out: dict[str, Any] = {}
        for key, value in options.items():
            if key == "gpu":
                out[key] = parse_gpu(value)
            elif key == "cpu":
                out[key] = parse_cpu(value)
            elif key == "memory":
                out[key] = parse_memory(value)
            elif key == "timeout":
                out[key] = _seconds("timeout", 300 if value is None else value, 0.001, 86400)
            elif key == "retries":
                out[key] = Retries.coerce(value)
            elif key == "max_containers":
                out[key] = None if value is None else _int(key, value, 1, 10_000)
            elif key in ("min_containers", "buffer_containers"):
                out[key] = _int(key, value or 0, 0, 10_000)
            elif key == "scaledown_window":
                out[key] = _seconds(key, value, 0, 86400)
            elif key == "secrets":
                out[key] = _sequence(key, value)
            elif key == "volumes":
                out[key] = _mapping(key, value)
            elif key == "env":
                env = _mapping(key, value)
                bad = [
                    k for k, v in env.items() if not isinstance(k, str) or not isinstance(v, str)
                ]
                if bad:
                    raise TypeError(f"env keys and values must be strings; check {bad!r}")
                out[key] = env
            elif key == "name":
                if value is not None and not isinstance(value, str):
                    raise TypeError(f"name must be a str, not {type(value).__name__}")
                if value is not None and not value.isidentifier():
                    raise ConfigError(f"name={value!r}: use a Python identifier")
                out[key] = value
            elif key == "ephemeral_disk":
                out[key] = None if value is None else _int(key, value, 1, 10_000_000)
            elif key in ("single_use_containers", "serialized", "include_source"):
                if value is not None and not isinstance(value, bool):
                    raise TypeError(f"{key} must be True or False, not {type(value).__name__}")
                if key == "single_use_containers":
                    out[key] = bool(value)
                # serialized, include_source: functions always travel pickled, with their
                # source module by value, so both are accepted as they are.
            elif key == "schedule":
                from ._schedule import Cron, Period

                if value is not None and not isinstance(value, Cron | Period):
                    raise TypeError(
                        f"schedule= takes jr.Cron('0 2 * * *') or jr.Period(days=1), not {value!r}"
                    )
                out[key] = value
            elif key == "max_inputs":
                out["single_use_containers"] = _max_inputs(value)
            else:  # image: checked when the Image support resolves it
                out[key] = value
        merged = replace(self, **out)
        if merged.max_containers is not None and merged.min_containers > merged.max_containers:
            raise ConfigError(
                f"min_containers={merged.min_containers} is above "
                f"max_containers={merged.max_containers}"
            )
        return merged


def _max_inputs(value: Any) -> bool:
    """Modal's older ``max_inputs=1`` is ``single_use_containers=True``; no other count."""
    if value is None:
        return False
    if _int("max_inputs", value, 1) != 1:
        raise NotSupportedError(
            f"max_inputs={value}: jupyter_remote serves only max_inputs=1 (one input per "
            "worker: use single_use_containers=True); leave it out to reuse workers"
        )
    return True


def _sequence(name: str, value: Any) -> tuple[Any, ...]:
    if value is None:
        return ()
    if isinstance(value, str | bytes) or not isinstance(value, Sequence):
        raise TypeError(f"{name} must be a list, not {type(value).__name__}")
    return tuple(value)


def _mapping(name: str, value: Any) -> dict[Any, Any]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise TypeError(f"{name} must be a dict, not {type(value).__name__}")
    return dict(value)
