from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from helpers import Env


@pytest.fixture
def env(tmp_path: Path) -> Iterator[Env]:
    e = Env(tmp_path)
    try:
        yield e
    finally:
        e.stop()
