"""A Nomad agent that goes away: the map waits for it, and leaving the app never raises.

These tests stop their own dev agent (which kills its tasks, as a lost node
would) and start it again on the same address.
"""

from __future__ import annotations

import logging
import shutil
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import conformance_funcs as funcs
import pytest
from agent import DevAgent, nomad_backend_for, start_dev_agent

import jupyter_remote as jr

pytestmark = pytest.mark.nomad


@pytest.fixture
def agent(tmp_path: Path) -> Iterator[DevAgent]:
    if shutil.which("nomad") is None:
        pytest.skip("needs a `nomad` binary on PATH")
    agent = start_dev_agent(tmp_path / "agent")
    try:
        with nomad_backend_for(agent):
            yield agent
    finally:
        agent.stop()


def test_a_map_waits_for_the_agent_and_its_inputs_run_when_it_is_back(
    agent: DevAgent, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="jupyter_remote")
    app = jr.App("outage-map", backend="nomad")
    f = app.function(max_containers=1, retries=0)(funcs.sleep_return)
    with app.run():
        results = f.map([0.5] * 6)
        assert next(results) == 0.5
        agent.stop()  # its tasks die with it: the running worker is lost
        down = time.monotonic()
        back = threading.Timer(4.0, agent.restart)
        back.start()
        try:
            rest = list(results)
        finally:
            back.join()
        assert rest == [0.5] * 5  # nothing lost, nothing failed: re-run on a new worker
    said = [r.getMessage() for r in caplog.records if "unreachable" in r.getMessage()]
    assert said, "the outage was never reported"
    assert agent.address in said[0]  # names the agent
    assert time.monotonic() - down > 4


def test_leaving_the_app_with_the_agent_down_is_one_warning(
    agent: DevAgent, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="jupyter_remote")
    app = jr.App("outage-exit", backend="nomad")
    f = app.function()(funcs.square)
    with app.run():
        assert f.remote(4) == 16
        agent.stop()
    cleanup = [r for r in caplog.records if "could not clean up" in r.getMessage()]
    assert len(cleanup) == 1, [r.getMessage() for r in caplog.records]
    assert "jupyter-remote gc" in cleanup[0].getMessage()
    agent.restart()  # the fixture's backend purges what is left
