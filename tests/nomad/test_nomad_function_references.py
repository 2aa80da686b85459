"""Functions calling Functions from Nomad workers (a real dev agent, raw_exec).

The workers reach the controller as workers on other machines do: at
``advertise_host`` over TLS with the controller's certificate pinned, and the
calls their user code makes travel over that same connection.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import ref_funcs
from agent import DevAgent

import jupyter_remote as jr

pytestmark = pytest.mark.nomad


@pytest.fixture
def app(nomad_agent: DevAgent, monkeypatch: pytest.MonkeyPatch) -> Iterator[jr.App]:
    os.environ["NOMAD_ADDR"] = nomad_agent.address
    monkeypatch.setenv("JUPYTER_REMOTE_ADVERTISE_HOST", "127.0.0.2")  # as if on another machine
    app = jr.App("refs-nomad", backend="nomad")
    with app.run():
        yield app


def test_nested_calls_over_the_workers_tls_connection(app: jr.App) -> None:
    fns = ref_funcs.build(app)
    assert fns.b.remote(1) == 20
    for fn in (fns.b, fns.a):  # the caller's and the callee's workers: both over TLS
        ws = next(iter(fn._pool.workers.values()))
        assert ws.conn is not None
        assert str(ws.conn.transport.get_extra_info("cipher")[1]).startswith("TLS")
    got = fns.mapper.remote(5)
    assert got["map"] == [1, 2, 3, 4, 5] and got["starmap"] == [0, 2, 4, 6, 8]
    assert fns.spawner.remote(3) == [1, 2, 3]
    with pytest.raises(ref_funcs.Boom, match="from a node"):
        fns.relay.remote("from a node")


def test_cancelling_the_outer_call_interrupts_the_nested_one(app: jr.App, tmp_path: Path) -> None:
    fns = ref_funcs.build(app)
    marker = str(tmp_path / "slow")
    call = fns.waits_on_slow.spawn(marker)
    deadline = time.monotonic() + 120
    while not Path(marker + ".started").exists():
        assert time.monotonic() < deadline, "the nested call never started"
        time.sleep(0.1)
    call.cancel()
    deadline = time.monotonic() + 30
    while not Path(marker + ".interrupted").exists():
        assert time.monotonic() < deadline, "the nested call was not interrupted"
        time.sleep(0.1)
    with pytest.raises(jr.CallCancelledError):
        call.get(timeout=10)
