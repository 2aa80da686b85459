"""Modal's ``modal.cls`` module path: ``Cls`` (``parameter`` is not served yet)."""

from __future__ import annotations

from typing import Any

from ._unsupported import unsupported_name
from .api import Cls, ClsInstance

__all__ = ["Cls", "ClsInstance"]


def __getattr__(name: str) -> Any:
    error = unsupported_name("jupyter_remote.cls", name) if name == "parameter" else None
    if error is not None:
        raise error
    raise AttributeError(f"module 'jupyter_remote.cls' has no attribute {name!r}")
