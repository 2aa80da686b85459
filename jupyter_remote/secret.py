"""Modal's ``modal.secret`` module path: ``Secret``."""

from __future__ import annotations

from .api import Secret

__all__ = ["Secret"]
