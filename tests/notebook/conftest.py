"""Fixtures for notebook tests: one real kernel per test module."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from kernel_harness import Kernel, start_kernel


@pytest.fixture(scope="module")
def kernel() -> Iterator[Kernel]:
    k = start_kernel()
    yield k
    k.close()
