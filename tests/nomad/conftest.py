"""Fixtures for the Nomad tests: a real dev agent when ``nomad`` is on PATH."""

from __future__ import annotations

import shutil
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

HERE = Path(__file__).parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

from agent import DevAgent, start_dev_agent  # noqa: E402

NO_NOMAD = "needs a `nomad` binary on PATH (https://developer.hashicorp.com/nomad/install)"


@pytest.fixture(scope="session")
def nomad_agent(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevAgent]:
    """A dev agent (raw_exec on, random ports on 127.0.0.1) shared by the session."""
    if shutil.which("nomad") is None:
        pytest.skip(NO_NOMAD)
    agent = start_dev_agent(tmp_path_factory.mktemp("nomad-agent"))
    yield agent
    agent.stop()


@pytest.fixture(scope="session")
def nomad_acl_agent(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevAgent]:
    """A dev agent that enforces ACLs; ``.token`` is its management token."""
    if shutil.which("nomad") is None:
        pytest.skip(NO_NOMAD)
    agent = start_dev_agent(tmp_path_factory.mktemp("nomad-acl-agent"), acl=True)
    yield agent
    agent.stop()
