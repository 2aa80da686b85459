"""NomadConfig: Nomad's own variables, the [nomad] table, JUPYTER_REMOTE_NOMAD_*, validation."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from jupyter_remote.backends.nomad._config import NomadConfig
from jupyter_remote.exceptions import ConfigError

_ENV = (
    "NOMAD_ADDR",
    "NOMAD_TOKEN",
    "NOMAD_NAMESPACE",
    "NOMAD_REGION",
    "NOMAD_CACERT",
    "NOMAD_CLIENT_CERT",
    "NOMAD_CLIENT_KEY",
)


@pytest.fixture
def config_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for name in _ENV:
        monkeypatch.delenv(name, raising=False)
    for name in list(os.environ):
        if name.startswith("JUPYTER_REMOTE_NOMAD_"):
            monkeypatch.delenv(name)
    path = tmp_path / "config.toml"
    monkeypatch.setenv("JUPYTER_REMOTE_CONFIG", str(path))
    path.write_text("")
    return path


def test_defaults(config_file: Path) -> None:
    cfg = NomadConfig.load()
    assert cfg.address == "http://127.0.0.1:4646"
    assert (cfg.token, cfg.namespace, cfg.region) == (None, "default", None)
    assert cfg.datacenters == ("*",)
    assert (cfg.driver, cfg.python, cfg.job_prefix, cfg.priority) == (
        "raw_exec",
        "python3",
        "jr",
        50,
    )
    assert cfg.capacity_wait == 300.0
    v = sys.version_info
    assert cfg.docker_image == f"python:{v.major}.{v.minor}-slim"
    assert cfg.node_pool is None


def test_environment_beats_file_beats_default(
    config_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config_file.write_text(
        '[nomad]\naddress = "https://file:4646/"\ndatacenters = ["a", "b"]\n'
        'driver = "docker"\npriority = 70\nnode_pool = "gpu"\ncapacity_wait = 12\n'
    )
    cfg = NomadConfig.load()
    assert cfg.address == "https://file:4646"  # trailing slash dropped
    assert cfg.datacenters == ("a", "b")
    assert (cfg.driver, cfg.priority, cfg.node_pool, cfg.capacity_wait) == (
        "docker",
        70,
        "gpu",
        12.0,
    )
    monkeypatch.setenv("NOMAD_ADDR", "http://env:4646")
    monkeypatch.setenv("NOMAD_NAMESPACE", "ml")
    monkeypatch.setenv("JUPYTER_REMOTE_NOMAD_DATACENTERS", "dc1, dc2")
    monkeypatch.setenv("JUPYTER_REMOTE_NOMAD_PRIORITY", "90")
    cfg = NomadConfig.load()
    assert (cfg.address, cfg.namespace, cfg.datacenters, cfg.priority) == (
        "http://env:4646",
        "ml",
        ("dc1", "dc2"),
        90,
    )
    assert NomadConfig.load(priority=10).priority == 10  # explicit arguments win


def test_token_comes_from_the_environment_only_and_never_shows(
    config_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NOMAD_TOKEN", "s3cret-value")
    cfg = NomadConfig.load()
    assert cfg.token == "s3cret-value"
    assert "s3cret-value" not in repr(cfg) and "token=***" in repr(cfg)
    assert "token=None" in repr(NomadConfig())
    config_file.write_text('[nomad]\ntoken = "x"\n')
    with pytest.raises(ConfigError, match="NOMAD_TOKEN"):
        NomadConfig.load()


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("driver", '"podman"', "driver must be one of raw_exec, docker, exec"),
        ("priority", "0", "priority must be an integer from 1 to 100"),
        ("priority", "101", "priority must be an integer from 1 to 100"),
        ("priority", '"high"', "not a valid int"),
        ("capacity_wait", "-1", "capacity_wait must be seconds >= 0"),
        ("datacenters", "[]", "datacenters must be a non-empty list"),
        ("datacenters", "[1]", "datacenters must be a non-empty list"),
        ("job_prefix", '"has space"', "job_prefix must be 1-32 letters"),
        ("address", '"127.0.0.1:4646"', "must start with http:// or https://"),
        ("python", '""', "python must be a non-empty string"),
        ("colour", '"red"', "unknown setting \\[nomad\\] 'colour'; known settings: address"),
    ],
)
def test_file_errors_name_the_setting_and_what_is_accepted(
    config_file: Path, key: str, value: str, message: str
) -> None:
    config_file.write_text(f"[nomad]\n{key} = {value}\n")
    with pytest.raises(ConfigError, match=message) as info:
        NomadConfig.load()
    assert str(config_file) in str(info.value)


def test_environment_errors_name_the_variable(
    config_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("JUPYTER_REMOTE_NOMAD_DRIVER", "lxc")
    with pytest.raises(ConfigError, match="JUPYTER_REMOTE_NOMAD_DRIVER = 'lxc': driver must be"):
        NomadConfig.load()
    monkeypatch.delenv("JUPYTER_REMOTE_NOMAD_DRIVER")
    monkeypatch.setenv("NOMAD_ADDR", "nomad:4646")
    with pytest.raises(ConfigError, match="NOMAD_ADDR = 'nomad:4646'"):
        NomadConfig.load()


def test_client_cert_and_key_go_together(config_file: Path) -> None:
    with pytest.raises(ConfigError, match="NOMAD_CLIENT_CERT and NOMAD_CLIENT_KEY"):
        NomadConfig(client_cert="/c.pem")
    with pytest.raises(ConfigError, match="unknown Nomad setting"):
        NomadConfig.load(tokn="x")


def test_config_is_frozen_and_validated_when_built_in_code() -> None:
    cfg = NomadConfig(datacenters=["x"])  # type: ignore[arg-type]
    assert cfg.datacenters == ("x",)
    with pytest.raises(AttributeError):
        cfg.priority = 3  # type: ignore[misc]
    with pytest.raises(ConfigError, match="priority"):
        NomadConfig(priority=500)
