"""Shared test setup: an isolated config directory and no progress bars in test output."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).parent
# Workers import test helpers by module name; the local backend forwards sys.path to them.
for sub in ("conformance", "notebook"):
    path = str(HERE / sub)
    if path not in sys.path:
        sys.path.insert(0, path)

os.environ["JUPYTER_REMOTE_PROGRESS"] = "0"
os.environ.setdefault("XDG_CONFIG_HOME", str(HERE / ".config-isolated-does-not-exist"))
os.environ.pop("JUPYTER_REMOTE_BACKEND", None)


@pytest.fixture
def repo_root() -> Path:
    return HERE.parent
