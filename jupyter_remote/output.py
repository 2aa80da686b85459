"""Modal's ``modal.output`` module path: ``enable_output``."""

from __future__ import annotations

from .api._output import enable_output

__all__ = ["enable_output"]
