"""Modal's ``modal.cls`` module path: ``Cls``, ``ClsInstance`` and ``parameter``."""

from __future__ import annotations

from .api import Cls, ClsInstance, parameter

__all__ = ["Cls", "ClsInstance", "parameter"]
