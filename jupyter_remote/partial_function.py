"""Modal's ``modal.partial_function`` module path: the class-method decorators.

``enter``, ``exit`` and ``method`` are served; Modal's web and batching
decorators raise ``NotSupportedError`` naming them until they are.
"""

from __future__ import annotations

from typing import Any

from ._unsupported import unsupported_name
from .api import enter, exit, method

__all__ = ["enter", "exit", "method"]

_MODAL_ONLY = frozenset(
    {"asgi_app", "batched", "fastapi_endpoint", "web_endpoint", "web_server", "wsgi_app"}
)


def __getattr__(name: str) -> Any:
    error = None
    if name in _MODAL_ONLY:
        error = unsupported_name("jupyter_remote.partial_function", name)
    if error is not None:
        raise error
    raise AttributeError(f"module 'jupyter_remote.partial_function' has no attribute {name!r}")
