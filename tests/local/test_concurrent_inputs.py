"""Async functions and ``@concurrent`` on the local backend: real worker processes."""

from __future__ import annotations

from concurrency_suite import ConcurrencyConformance


class TestLocalConcurrency(ConcurrencyConformance):
    backend = "local"
