"""Settings: defaults, config file, environment (env wins), and errors that name the key."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import pytest

from jupyter_remote import ConfigError
from jupyter_remote.config import Settings, config_path, load_settings

FIELDS = [f.name for f in dataclasses.fields(Settings)]


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in FIELDS:
        monkeypatch.delenv(f"JUPYTER_REMOTE_{name.upper()}", raising=False)
    monkeypatch.delenv("JUPYTER_REMOTE_CONFIG", raising=False)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))


def write_config(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(text)
    monkeypatch.setenv("JUPYTER_REMOTE_CONFIG", str(path))
    return path


def test_defaults_without_file_or_env() -> None:
    assert load_settings() == Settings()
    s = Settings()
    assert (s.backend, s.progress, s.function_warn_bytes, s.function_max_bytes) == (
        "local",
        True,
        50 << 20,
        500 << 20,
    )


def test_config_path(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    assert config_path() == tmp_path / "xdg" / "jupyter_remote" / "config.toml"
    monkeypatch.setenv("JUPYTER_REMOTE_CONFIG", str(tmp_path / "explicit.toml"))
    assert config_path() == tmp_path / "explicit.toml"


def test_xdg_config_file_is_read(tmp_path: Path) -> None:
    path = tmp_path / "xdg" / "jupyter_remote" / "config.toml"
    path.parent.mkdir(parents=True)
    path.write_text('advertise_host = "10.0.0.5"\n')
    assert load_settings().advertise_host == "10.0.0.5"


def test_file_values_are_read_and_typed(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    write_config(
        monkeypatch,
        tmp_path,
        'backend = "nomad"\n'
        'advertise_host = "10.0.0.5"\n'
        'python = "/usr/bin/python3"\n'
        "progress = false\n"
        "function_warn_bytes = 1000\n"
        "function_max_bytes = 2000\n"
        "worker_start_timeout = 30\n"
        "max_worker_deaths = 5\n",
    )
    s = load_settings()
    assert s == Settings(
        backend="nomad",
        advertise_host="10.0.0.5",
        python="/usr/bin/python3",
        progress=False,
        function_warn_bytes=1000,
        function_max_bytes=2000,
        worker_start_timeout=30.0,
        max_worker_deaths=5,
    )
    assert isinstance(s.worker_start_timeout, float)


def test_env_overrides_file(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    write_config(monkeypatch, tmp_path, 'backend = "nomad"\nfunction_max_bytes = 2000\n')
    monkeypatch.setenv("JUPYTER_REMOTE_BACKEND", "local")
    monkeypatch.setenv("JUPYTER_REMOTE_FUNCTION_MAX_BYTES", "4096")
    s = load_settings()
    assert s.backend == "local"
    assert s.function_max_bytes == 4096


def test_empty_env_value_is_ignored(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    write_config(monkeypatch, tmp_path, 'backend = "nomad"\n')
    monkeypatch.setenv("JUPYTER_REMOTE_BACKEND", "")
    assert load_settings().backend == "nomad"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1", True),
        ("true", True),
        ("YES", True),
        ("on", True),
        ("0", False),
        ("False", False),
        ("no", False),
        ("off", False),
    ],
)
def test_env_bool_spellings(monkeypatch: pytest.MonkeyPatch, text: str, expected: bool) -> None:
    monkeypatch.setenv("JUPYTER_REMOTE_PROGRESS", text)
    assert load_settings().progress is expected


def test_env_bad_bool(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("JUPYTER_REMOTE_PROGRESS", "maybe")
    with pytest.raises(ConfigError) as info:
        load_settings()
    assert str(info.value) == "JUPYTER_REMOTE_PROGRESS: progress = 'maybe' is not a valid bool"


def test_env_bad_int(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("JUPYTER_REMOTE_FUNCTION_MAX_BYTES", "500MB")
    with pytest.raises(ConfigError) as info:
        load_settings()
    assert str(info.value) == (
        "JUPYTER_REMOTE_FUNCTION_MAX_BYTES: function_max_bytes = '500MB' is not a valid int"
    )


def test_env_bad_float(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("JUPYTER_REMOTE_WORKER_START_TIMEOUT", "soon")
    with pytest.raises(ConfigError, match="worker_start_timeout = 'soon' is not a valid float"):
        load_settings()


def test_file_bad_value_names_the_file(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    path = write_config(monkeypatch, tmp_path, 'progress = "sometimes"\n')
    with pytest.raises(ConfigError) as info:
        load_settings()
    assert str(info.value) == f"{path}: progress = 'sometimes' is not a valid bool"


def test_unknown_key_lists_known_ones(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    path = write_config(monkeypatch, tmp_path, 'backnd = "nomad"\n')
    with pytest.raises(ConfigError) as info:
        load_settings()
    assert str(info.value) == (
        f"{path}: unknown setting 'backnd'; known settings: {', '.join(sorted(FIELDS))}"
    )
    assert isinstance(info.value, ValueError)


def test_backend_sections_are_allowed(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    write_config(monkeypatch, tmp_path, 'backend = "nomad"\n[nomad]\naddress = "http://x:4646"\n')
    assert load_settings().backend == "nomad"


def test_invalid_toml(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    path = write_config(monkeypatch, tmp_path, "backend = \n")
    with pytest.raises(ConfigError, match=re.escape(f"cannot read the config file {path}")):
        load_settings()


def test_missing_explicit_config_file_is_an_error(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("JUPYTER_REMOTE_CONFIG", str(tmp_path / "nope.toml"))
    with pytest.raises(ConfigError, match=r"nope\.toml, which is not a file"):
        load_settings()


def test_fractional_int_and_non_string_text_are_refused(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    cfg = tmp_path / "c.toml"
    monkeypatch.setenv("JUPYTER_REMOTE_CONFIG", str(cfg))
    cfg.write_text("function_max_bytes = 1.9\n")
    with pytest.raises(ConfigError, match=r"function_max_bytes = 1\.9 is not a valid int"):
        load_settings()
    cfg.write_text("backend = 3\n")
    with pytest.raises(ConfigError, match="backend = 3 must be a string"):
        load_settings()
