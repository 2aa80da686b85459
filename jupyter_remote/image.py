"""Modal's ``modal.image`` module path: ``Image``."""

from __future__ import annotations

from .api import Image

__all__ = ["Image"]
