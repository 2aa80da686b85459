"""Fixtures for the Nomad tests: a real dev agent when ``nomad`` is on PATH.

``nomad_gpu_agent`` is a dev agent whose node shows fake NVIDIA GPUs through
the ``nomad-device-fakegpu`` device plugin (``../shared/nomad/README.md``).
The plugin is looked for in ``$JUPYTER_REMOTE_TEST_NOMAD_PLUGINS`` (what
``.ci/run`` sets); without that variable it is installed into a temporary
folder by ``../shared/nomad/install --plugins`` when that script is beside the
repository. Either missing, the GPU tests skip with one line.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

HERE = Path(__file__).parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

from agent import (  # noqa: E402
    A100_40GB,
    FAKEGPU_PLUGIN,
    H100_80GB,
    DevAgent,
    nomad_backend_for,
    start_dev_agent,
)

NO_NOMAD = "needs a `nomad` binary on PATH (https://developer.hashicorp.com/nomad/install)"
PLUGINS_ENV = "JUPYTER_REMOTE_TEST_NOMAD_PLUGINS"
SHARED_INSTALL = HERE.parent.parent.parent / "shared" / "nomad" / "install"


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


def _plugin_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The folder holding the fake GPU plugin; skips (or fails, if CI named one) without it."""
    named = os.environ.get(PLUGINS_ENV)
    if named:
        # Named on purpose (CI does): a missing plugin is a broken setup, not a reason to skip.
        if not (Path(named) / FAKEGPU_PLUGIN).is_file():
            pytest.fail(f"{PLUGINS_ENV}={named} holds no {FAKEGPU_PLUGIN}", pytrace=False)
        return Path(named)
    if not SHARED_INSTALL.is_file():
        pytest.skip(
            f"needs the fake GPU device plugin: set {PLUGINS_ENV} to a folder written by "
            "shared/nomad/install --plugins DIR"
        )
    folder = tmp_path_factory.mktemp("nomad-plugins")
    proc = subprocess.run(
        ["bash", str(SHARED_INSTALL), "--plugins", str(folder)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if proc.returncode != 0:
        reason = (proc.stderr.strip().splitlines() or ["failed"])[-1]
        pytest.skip(f"cannot install the fake GPU device plugin: {reason}")
    return folder


@pytest.fixture(scope="session")
def nomad_gpu_agent(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevAgent]:
    """A dev agent whose node has 2 x H100 80GB and 1 x A100 40GB (fake, via the plugin)."""
    if shutil.which("nomad") is None:
        pytest.skip(NO_NOMAD)
    plugins = _plugin_dir(tmp_path_factory)
    agent = start_dev_agent(
        tmp_path_factory.mktemp("nomad-gpu-agent"), plugin_dir=plugins, gpus=[H100_80GB, A100_40GB]
    )
    yield agent
    agent.stop()


@pytest.fixture(scope="module")
def gpu_cluster(nomad_gpu_agent: DevAgent) -> Iterator[None]:
    """Point the Nomad backend of this process at the GPU agent for a module."""
    with nomad_backend_for(nomad_gpu_agent):
        yield
