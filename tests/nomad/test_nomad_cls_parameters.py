"""``@app.cls`` parameters and ``with_options`` on a real Nomad dev agent.

The same suite as on the local backend; the classes travel by value, with their
``jr.parameter()`` fields.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from agent import DevAgent
from cls_params_suite import ClsParametersConformance

pytestmark = pytest.mark.nomad


@pytest.fixture(autouse=True)
def _nomad_env(nomad_agent: DevAgent) -> Iterator[None]:
    os.environ["NOMAD_ADDR"] = nomad_agent.address
    yield


class TestNomadClsParameters(ClsParametersConformance):
    backend = "nomad"
