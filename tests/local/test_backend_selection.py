"""Where code runs: App(backend=...), app.run(backend=...), the environment, the config file."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

import jupyter_remote as jr


def test_unknown_backend_names_the_known_ones() -> None:
    app = jr.App("nowhere", backend="kubernetes")
    f = app.function()(len)
    known = "unknown backend 'kubernetes'; choose one of local, nomad"
    with pytest.raises(jr.ConfigError, match=known):
        f.remote([1])
    with pytest.raises(jr.ConfigError, match="unknown backend 'slurm'"), app.run(backend="slurm"):
        pass


def _backend_seen(env: dict[str, str]) -> str:
    code = "import jupyter_remote as jr; print(jr.App('x').backend_name)"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True
    )
    return out.stdout.strip()


def test_environment_wins_over_config_file(tmp_path: Path) -> None:
    cfg = tmp_path / "config.toml"
    cfg.write_text('backend = "from-file"\n')
    env = {k: v for k, v in os.environ.items() if k != "JUPYTER_REMOTE_BACKEND"}
    env["JUPYTER_REMOTE_CONFIG"] = str(cfg)
    assert _backend_seen(env) == "from-file"
    assert _backend_seen({**env, "JUPYTER_REMOTE_BACKEND": "from-env"}) == "from-env"
    del env["JUPYTER_REMOTE_CONFIG"]
    env["XDG_CONFIG_HOME"] = str(tmp_path / "empty")
    assert _backend_seen(env) == "local"
