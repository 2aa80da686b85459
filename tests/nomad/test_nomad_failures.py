"""Allocations that fail before their worker connects are explained (real dev agent).

Each case runs a caller in a fresh interpreter: the Nomad settings are read once
per process, when the backend is created.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from agent import DevAgent

pytestmark = pytest.mark.nomad

CONFORMANCE = str(Path(__file__).parent.parent / "conformance")
CALLER = f"""
import sys
sys.path.insert(0, {CONFORMANCE!r})
import jupyter_remote as jr, conformance_funcs as funcs
app = jr.App("failing", backend="nomad")
try:
    app.function()(funcs.identity).remote(1)
except jr.JupyterRemoteError as exc:
    print(type(exc).__name__ + ":", exc)
app.stop()
"""


def run_caller(agent: DevAgent, **env: str) -> str:
    proc = subprocess.run(
        [sys.executable, "-c", CALLER],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "NOMAD_ADDR": agent.address, **env},
    )
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def test_node_python_that_fails_shows_its_stderr_and_exit_code(
    nomad_agent: DevAgent, tmp_path: Path
) -> None:
    broken = tmp_path / "python3"
    broken.write_text("#!/bin/sh\necho 'boom-from-the-node: no module named torch' >&2\nexit 3\n")
    broken.chmod(0o755)
    out = run_caller(nomad_agent, JUPYTER_REMOTE_NOMAD_PYTHON=str(broken))
    assert out.startswith("WorkerStartError:"), out
    assert "before it connected" in out
    assert "boom-from-the-node: no module named torch" in out  # the task's stderr
    assert "3" in out and "Nomad allocation" in out  # its exit code, which allocation


def test_missing_node_python_names_the_driver_error(nomad_agent: DevAgent) -> None:
    out = run_caller(nomad_agent, JUPYTER_REMOTE_NOMAD_PYTHON="/nonexistent/python3")
    assert out.startswith("WorkerStartError:"), out
    assert "/nonexistent/python3" in out or "no such file" in out.lower()


def test_resources_no_node_has_fail_fast(nomad_agent: DevAgent) -> None:
    code = CALLER.replace("app.function()", "app.function(memory='900Gi')")
    proc = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "NOMAD_ADDR": nomad_agent.address},
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("WorkerStartError:"), proc.stdout
    assert "memory" in proc.stdout.lower()
