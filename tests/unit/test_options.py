"""``FunctionOptions``: unknown names, bad values and normalisation, with actionable messages."""

from __future__ import annotations

import re
from typing import Any

import pytest

from jupyter_remote import ConfigError, Retries
from jupyter_remote.api._options import OPTION_NAMES, FunctionOptions
from jupyter_remote.resources import GpuRequest

VALID_LIST = ", ".join(OPTION_NAMES)


def test_defaults() -> None:
    opts = FunctionOptions.parse()
    assert opts == FunctionOptions()
    assert opts.timeout == 300.0
    assert opts.retries == Retries(0)
    assert (opts.gpu, opts.cpu, opts.memory, opts.max_containers) == (None, None, None, None)
    assert (opts.min_containers, opts.buffer_containers, opts.scaledown_window) == (0, 0, 60.0)
    assert (opts.secrets, dict(opts.volumes), dict(opts.env), opts.name) == ((), {}, {}, None)


@pytest.mark.parametrize(
    ("typo", "suggestion"),
    [
        ("gpus", "gpu"),
        ("timout", "timeout"),
        ("max_container", "max_containers"),
        ("memroy", "memory"),
    ],
)
def test_unknown_option_suggests_and_lists_valid_ones(typo: str, suggestion: str) -> None:
    with pytest.raises(TypeError) as info:
        FunctionOptions.parse(**{typo: 1})
    message = str(info.value)
    assert message.startswith("@app.function() got unknown option(s)")
    assert f"{typo!r} (did you mean {suggestion!r}?)" in message
    assert message.endswith(f"valid options are: {VALID_LIST}")


def test_unknown_option_without_close_match() -> None:
    with pytest.raises(TypeError) as info:
        FunctionOptions.parse(zzzzzz=1)
    assert "'zzzzzz';" in str(info.value)
    assert "did you mean" not in str(info.value)
    assert VALID_LIST in str(info.value)


def test_several_unknown_options_are_all_named() -> None:
    with pytest.raises(TypeError, match=r"'gpus' \(did you mean 'gpu'\?\), 'cpus'"):
        FunctionOptions.parse(gpus="H100", cpus=2)


def test_merge_names_with_options() -> None:
    with pytest.raises(TypeError, match=r"with_options\(\) got unknown option\(s\) 'timout'"):
        FunctionOptions.parse().merge(timout=3)


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"timeout": 0}, ConfigError, "timeout=0: accepted values are 0.001 to 86400 seconds"),
        ({"timeout": 86401}, ConfigError, "timeout=86401: accepted values are 0.001 to 86400"),
        ({"timeout": "x"}, TypeError, "timeout must be a number of seconds, not str"),
        ({"timeout": True}, TypeError, "timeout must be a number of seconds, not bool"),
        ({"scaledown_window": -1}, ConfigError, "scaledown_window=-1: accepted values are 0 to"),
        ({"max_containers": 0}, ConfigError, "max_containers=0: accepted values are 1 to 10000"),
        ({"max_containers": 2.0}, TypeError, "max_containers must be an int, not float"),
        ({"min_containers": -1}, ConfigError, "min_containers=-1: accepted values are 0 to 10000"),
        (
            {"buffer_containers": 10_001},
            ConfigError,
            "buffer_containers=10001: accepted values are 0 to 10000",
        ),
        (
            {"min_containers": 3, "max_containers": 2},
            ConfigError,
            "min_containers=3 is above max_containers=2",
        ),
        ({"env": {"A": 1}}, TypeError, "env keys and values must be strings; check ['A']"),
        ({"env": {1: "a"}}, TypeError, "env keys and values must be strings; check [1]"),
        ({"env": ["A=1"]}, TypeError, "env must be a dict, not list"),
        ({"volumes": "/data"}, TypeError, "volumes must be a dict, not str"),
        ({"secrets": "token"}, TypeError, "secrets must be a list, not str"),
        (
            {"name": "not an identifier"},
            ConfigError,
            "name='not an identifier': use a Python identifier",
        ),
        ({"name": 3}, TypeError, "name must be a str, not int"),
        ({"memory": "lots"}, ConfigError, "Bad memory value 'lots': use an int number of MiB"),
        ({"memory": 1.5}, TypeError, "memory= must be an int or str"),
        ({"cpu": "many"}, ConfigError, "Bad cpu value 'many'"),
        ({"retries": 11}, ConfigError, "max_retries=11: accepted values are 0 to 10"),
        ({"retries": True}, TypeError, "retries must be an int or jupyter_remote.Retries"),
    ],
)
def test_bad_values(kwargs: dict[str, Any], error: type[Exception], message: str) -> None:
    with pytest.raises(error) as info:
        FunctionOptions.parse(**kwargs)
    assert type(info.value) is error
    assert message in str(info.value)


def test_unknown_gpu_names_the_known_models() -> None:
    with pytest.raises(ConfigError) as info:
        FunctionOptions.parse(gpu="Z100")
    message = str(info.value)
    assert "Unknown GPU model 'Z100'" in message
    assert "Did you mean 'H100'?" in message
    assert re.search(r"Known models: .*\bT4\b.*\bH100\b.*\bB200\b", message)


def test_config_error_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="timeout=0"):
        FunctionOptions.parse(timeout=0)


def test_good_values_are_normalised() -> None:
    opts = FunctionOptions.parse(
        memory="16Gi",
        gpu="h100:2",
        cpu="500m",
        retries=3,
        timeout=10,
        max_containers=4,
        min_containers=1,
        env={"A": "1"},
        secrets=["s"],
        volumes={"/data": "vol"},
        name="train_step",
    )
    assert opts.memory == 16384
    assert isinstance(opts.gpu, GpuRequest)
    assert str(opts.gpu) == "H100:2" and opts.gpu.count == 2
    assert opts.cpu == 0.5
    assert opts.retries == Retries(3, backoff_coefficient=1.0)
    assert opts.retries.backoff_coefficient == 1.0
    assert opts.timeout == 10.0 and isinstance(opts.timeout, float)
    assert (opts.max_containers, opts.min_containers) == (4, 1)
    assert dict(opts.env) == {"A": "1"}
    assert opts.secrets == ("s",)
    assert dict(opts.volumes) == {"/data": "vol"}
    assert opts.name == "train_step"


def test_none_resets_to_defaults() -> None:
    opts = FunctionOptions.parse(
        timeout=None,
        retries=None,
        max_containers=None,
        min_containers=None,
        secrets=None,
        env=None,
        gpu=None,
        memory=None,
    )
    assert opts == FunctionOptions()


def test_merge_overrides_and_rechecks_container_bounds() -> None:
    base = FunctionOptions.parse(gpu="A100", min_containers=2, timeout=5)
    merged = base.merge(timeout=60)
    assert merged.timeout == 60.0 and merged.gpu == base.gpu and merged.min_containers == 2
    assert base.timeout == 5.0  # frozen: merge returns a new object
    with pytest.raises(ConfigError, match="min_containers=2 is above max_containers=1"):
        base.merge(max_containers=1)


def test_env_mapping_is_copied() -> None:
    env = {"A": "1"}
    opts = FunctionOptions.parse(env=env)
    env["B"] = "2"
    assert dict(opts.env) == {"A": "1"}
