"""Modal's ``modal.volume`` module path: ``Volume``."""

from __future__ import annotations

from .api import Volume

__all__ = ["Volume"]
