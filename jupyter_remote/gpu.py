"""Modal's ``modal.gpu`` classes, as the ``gpu=`` strings they stand for.

Modal deprecated ``gpu=modal.gpu.H100(count=2)`` for ``gpu="H100:2"``; older
scripts still use it. Each class here makes that string (a ``str``), so it
goes wherever a ``gpu=`` value does:

>>> from jupyter_remote import gpu
>>> gpu.H100(count=2)
'H100:2'
>>> gpu.A100(size="80GB")
'A100-80GB'
"""

from __future__ import annotations

from typing import Union

from .exceptions import ConfigError

__all__ = ["A10G", "A100", "B200", "GPU_T", "H100", "H200", "L4", "L40S", "T4", "Any"]

GPU_T = Union[None, str]  # noqa: UP007 (Modal's alias, used in annotations at runtime)


class _GPU(str):
    """A ``gpu=`` string: the model, then ``:count`` when more than one."""

    model = ""

    def __new__(cls, *, count: int = 1) -> _GPU:
        return super().__new__(cls, _value(cls.model, count))


def _value(model: str, count: object) -> str:
    if isinstance(count, bool) or not isinstance(count, int) or count < 1:
        raise ConfigError(f"gpu {model}: count={count!r} must be an int of 1 or more")
    return model if count == 1 else f"{model}:{count}"


class T4(_GPU):
    """NVIDIA T4 (16 GB)."""

    model = "T4"


class L4(_GPU):
    """NVIDIA L4 (24 GB)."""

    model = "L4"


class A10G(_GPU):
    """NVIDIA A10G (24 GB)."""

    model = "A10G"


class L40S(_GPU):
    """NVIDIA L40S (48 GB)."""

    model = "L40S"


class H100(_GPU):
    """NVIDIA H100 (80 GB)."""

    model = "H100"


class H200(_GPU):
    """NVIDIA H200 (141 GB)."""

    model = "H200"


class B200(_GPU):
    """NVIDIA B200 (180 GB)."""

    model = "B200"


class A100(_GPU):
    """NVIDIA A100: ``size="40GB"`` (Modal's default) or ``"80GB"``."""

    def __new__(cls, *, count: int = 1, size: str | None = None) -> A100:
        if size not in (None, "40GB", "80GB"):
            raise ConfigError(f"gpu A100: size={size!r}; A100s have size='40GB' or size='80GB'")
        return str.__new__(cls, _value(f"A100-{size or '40GB'}", count))


class Any(_GPU):
    """Any GPU the backend has."""

    model = "any"
