"""Async functions and ``@concurrent`` on a real Nomad dev agent (raw_exec allocations).

The same suite as on the local backend; the functions travel by value (the nodes
cannot import the test's modules), with their ``@concurrent`` marks.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from agent import DevAgent
from concurrency_suite import ConcurrencyConformance

pytestmark = pytest.mark.nomad


@pytest.fixture(autouse=True)
def _nomad_env(nomad_agent: DevAgent) -> Iterator[None]:
    os.environ["NOMAD_ADDR"] = nomad_agent.address
    yield


class TestNomadConcurrency(ConcurrencyConformance):
    backend = "nomad"
