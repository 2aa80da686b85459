"""Modal's ``modal.functions`` module path: ``Function``, ``FunctionCall``, ``gather``."""

from __future__ import annotations

from .api import Function, FunctionCall

__all__ = ["Function", "FunctionCall", "gather"]

gather = FunctionCall.gather
