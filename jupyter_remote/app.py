"""Modal's ``modal.app`` module path: ``App``, ``LocalEntrypoint``."""

from __future__ import annotations

from .api import App, LocalEntrypoint

__all__ = ["App", "LocalEntrypoint"]
