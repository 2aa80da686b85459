"""Shared test setup: an isolated config directory and no progress bars in test output."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

HERE = Path(__file__).parent
# Workers import test helpers by module name; the local backend forwards sys.path to them.
for sub in ("conformance", "notebook", "deploy"):
    path = str(HERE / sub)
    if path not in sys.path:
        sys.path.insert(0, path)

os.environ["JUPYTER_REMOTE_PROGRESS"] = "0"
os.environ.setdefault("XDG_CONFIG_HOME", str(HERE / ".config-isolated-does-not-exist"))
os.environ.pop("JUPYTER_REMOTE_BACKEND", None)
# An app server a test starts (app.deploy(), Function.from_name) keeps its state and
# deployments here, never in the user's own; it is stopped when the session ends.
_APP_SERVER = Path(tempfile.mkdtemp(prefix="jr-tests-app-server-"))
os.environ.setdefault("JUPYTER_REMOTE_STATE_DIR", str(_APP_SERVER / "state"))
os.environ.setdefault("JUPYTER_REMOTE_DEPLOYMENTS_URL", str(_APP_SERVER / "deployments"))


@pytest.fixture(scope="session", autouse=True)
def _stop_app_server() -> Iterator[None]:
    yield
    state = os.environ["JUPYTER_REMOTE_STATE_DIR"]
    if os.path.exists(os.path.join(state, "server.json")):
        subprocess.run(
            [sys.executable, "-c", "import jupyter_remote.cli as c; c.main(['server', 'stop'])"],
            env={**os.environ, "JUPYTER_REMOTE_STATE_DIR": state},
            capture_output=True,
            timeout=60,
        )


@pytest.fixture
def repo_root() -> Path:
    return HERE.parent
