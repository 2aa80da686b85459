"""GPU table, ``gpu=`` grammar, memory and cpu values."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

import pytest

from jupyter_remote.exceptions import ConfigError
from jupyter_remote.resources import (
    GPU_MODELS,
    GPU_TABLE_ENV,
    GpuChoice,
    GpuModel,
    GpuRequest,
    find_gpu_model,
    gpu_table,
    load_gpu_table,
    parse_cpu,
    parse_gpu,
    parse_memory,
)

BUILTIN_NAMES = [
    "T4",
    "L4",
    "A10",
    "A10G",
    "L40S",
    "A100",
    "A100-40GB",
    "A100-80GB",
    "H100",
    "H200",
    "B200",
]


@pytest.fixture(autouse=True)
def _no_operator_table(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(GPU_TABLE_ENV, raising=False)


def _write_table(path: Path, entries: Any) -> str:
    path.write_text(json.dumps(entries), encoding="utf-8")
    return str(path)


# --- the table ---------------------------------------------------------------


def test_builtin_table_covers_the_documented_models() -> None:
    assert [m.name for m in GPU_MODELS] == BUILTIN_NAMES
    assert load_gpu_table() == GPU_MODELS
    assert gpu_table() == GPU_MODELS


@pytest.mark.parametrize("model", GPU_MODELS, ids=lambda m: m.name)
def test_builtin_regexes_are_anchored_and_re2_compatible(model: GpuModel) -> None:
    assert model.model_regex.startswith("^") and model.model_regex.endswith("$")
    # Nomad evaluates these with Go's RE2: no lookaround, no backreferences.
    assert not re.search(r"\(\?[=!<]|\\[1-9]", model.model_regex)


@pytest.mark.parametrize(
    ("name", "device_model", "expected"),
    [
        ("T4", "Tesla T4", True),
        ("T4", "NVIDIA T4", True),
        ("T4", "NVIDIA L4", False),
        ("L4", "NVIDIA L4", True),
        ("L4", "NVIDIA L4\n", True),
        ("L4", "NVIDIA L40S", False),
        ("L4", "NVIDIA L40", False),
        ("A10", "NVIDIA A10", True),
        ("A10", "NVIDIA A10G", True),
        ("A10", "NVIDIA A100-SXM4-40GB", False),
        ("A10G", "NVIDIA A10G", True),
        ("A10G", "NVIDIA A10", False),
        ("L40S", "NVIDIA L40S", True),
        ("L40S", "NVIDIA L40", False),
        ("A100", "NVIDIA A100-SXM4-40GB", True),
        ("A100", "NVIDIA A100-SXM4-80GB", True),
        ("A100", "NVIDIA A100-PCIE-40GB", True),
        ("A100", "NVIDIA A100 80GB PCIe", True),
        ("A100", "NVIDIA A10G", False),
        ("A100-40GB", "NVIDIA A100-SXM4-40GB", True),
        ("A100-40GB", "NVIDIA A100-PCIE-40GB", True),
        ("A100-40GB", "NVIDIA A100-SXM4-80GB", False),
        ("A100-80GB", "NVIDIA A100-SXM4-80GB", True),
        ("A100-80GB", "NVIDIA A100 80GB PCIe", True),
        ("A100-80GB", "NVIDIA A100-PCIE-40GB", False),
        ("H100", "NVIDIA H100 80GB HBM3", True),
        ("H100", "NVIDIA H100 PCIe", True),
        ("H100", "NVIDIA H100 NVL", True),
        ("H100", "NVIDIA H200", False),
        ("H100", "NVIDIA GH100", False),
        ("H200", "NVIDIA H200", True),
        ("H200", "NVIDIA H200 NVL", True),
        ("H200", "NVIDIA H100 80GB HBM3", False),
        ("B200", "NVIDIA B200", True),
        ("B200", "NVIDIA GB200", False),
    ],
)
def test_model_matches_nvidia_device_names(name: str, device_model: str, expected: bool) -> None:
    assert find_gpu_model(name).matches(device_model) is expected


@pytest.mark.parametrize(
    ("name", "device_model", "memory_mib"),
    [
        ("T4", "Tesla T4", 15360),
        ("L4", "NVIDIA L4", 23034),
        ("A10", "NVIDIA A10", 23028),
        ("A10G", "NVIDIA A10G", 23028),
        ("L40S", "NVIDIA L40S", 46068),
        ("A100", "NVIDIA A100-SXM4-40GB", 40960),
        ("A100-40GB", "NVIDIA A100-PCIE-40GB", 40536),
        ("A100-80GB", "NVIDIA A100-SXM4-80GB", 81920),
        ("H100", "NVIDIA H100 80GB HBM3", 81559),
        ("H200", "NVIDIA H200", 143771),
        ("B200", "NVIDIA B200", 183359),
    ],
)
def test_choice_accepts_memory_that_real_devices_report(
    name: str, device_model: str, memory_mib: int
) -> None:
    choice = GpuChoice(find_gpu_model(name))
    assert choice.matches(device_model, memory_mib)
    assert choice.matches(device_model, None)
    assert not choice.matches(device_model, memory_mib // 2)


def test_any_choice_matches_every_device() -> None:
    assert GpuChoice(None, 2).matches("NVIDIA GeForce RTX 3090", 24576)
    assert GpuChoice(None).matches("Tesla T4")


@pytest.mark.parametrize(
    ("alias", "name"),
    [
        ("h100", "H100"),
        ("H100-80GB", "H100"),
        ("h100_80gb", "H100"),
        ("a100-80g", "A100-80GB"),
        ("A100-40G", "A100-40GB"),
        ("tesla-t4", "T4"),
        ("H200-141GB", "H200"),
    ],
)
def test_find_gpu_model_by_alias(alias: str, name: str) -> None:
    assert find_gpu_model(alias).name == name


# --- operator table ----------------------------------------------------------

RTX4090 = {
    "name": "RTX4090",
    "aliases": ["4090"],
    "memory_gb": 24,
    "model_regex": "^NVIDIA GeForce RTX 4090$",
}


def test_load_gpu_table_extends(tmp_path: Path) -> None:
    table = load_gpu_table(_write_table(tmp_path / "gpus.json", [RTX4090]))
    assert [m.name for m in table] == [*BUILTIN_NAMES, "RTX4090"]
    request = parse_gpu("4090:2", table=table)
    assert request is not None and str(request) == "RTX4090:2"
    assert request.choices[0].matches("NVIDIA GeForce RTX 4090", 24564)


def test_load_gpu_table_overrides_by_name_and_aliases_are_optional(tmp_path: Path) -> None:
    h100_nvl = {"name": "h100", "memory_gb": 94, "model_regex": "^NVIDIA H100 NVL$"}
    table = load_gpu_table(_write_table(tmp_path / "gpus.json", [h100_nvl]))
    assert len(table) == len(GPU_MODELS)
    h100 = find_gpu_model("H100", table)
    assert (h100.name, h100.aliases, h100.memory_gb) == ("h100", (), 94)
    assert not h100.matches("NVIDIA H100 80GB HBM3")
    with pytest.raises(ConfigError, match="'H100-80GB'"):
        find_gpu_model("H100-80GB", table)


def test_env_var_names_the_operator_table(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = _write_table(tmp_path / "gpus.json", [RTX4090])
    monkeypatch.setenv(GPU_TABLE_ENV, path)
    assert str(parse_gpu("rtx4090")) == "RTX4090"
    # Edited while the kernel runs: the next lookup sees the change.
    _write_table(tmp_path / "gpus.json", [{**RTX4090, "name": "RTX5090", "aliases": []}])
    stat = os.stat(path)
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    assert gpu_table()[-1].name == "RTX5090"


def test_env_var_naming_a_missing_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(GPU_TABLE_ENV, str(tmp_path / "nope.json"))
    with pytest.raises(ConfigError, match=r"nope\.json.*unset JUPYTER_REMOTE_GPU_TABLE"):
        parse_gpu("H100")


@pytest.mark.parametrize(
    ("entries", "message"),
    [
        ({"name": "X"}, "must hold a JSON list"),
        (["RTX4090"], "must be an object with name, memory_gb, model_regex"),
        ([{"name": "X", "memory_gb": 8}], "must be an object with name, memory_gb, model_regex"),
        ([{**RTX4090, "vram": 24}], r"unknown field\(s\) \['vram'\]"),
        ([{**RTX4090, "aliases": "4090"}], "aliases must be a list of strings"),
        ([{**RTX4090, "name": 4090}], "Bad GPU model name 4090"),
        ([{**RTX4090, "model_regex": 4090}], "model_regex 4090 must be a string anchored"),
        ([{**RTX4090, "name": "any"}], "'any' is reserved"),
        ([{**RTX4090, "name": "RTX:4090"}], "Bad GPU model name 'RTX:4090'"),
        ([{**RTX4090, "aliases": ["40,90"]}], "Bad GPU model name '40,90'"),
        ([{**RTX4090, "model_regex": "NVIDIA GeForce RTX 4090"}], "must be a string anchored"),
        ([{**RTX4090, "model_regex": "^NVIDIA (RTX$"}], "bad model_regex"),
        ([{**RTX4090, "memory_gb": "24"}], "memory_gb must be a positive int, got '24'"),
        ([{**RTX4090, "memory_gb": True}], "memory_gb must be a positive int, got True"),
        ([{**RTX4090, "memory_gb": 0}], "memory_gb must be a positive int, got 0"),
        ([{**RTX4090, "aliases": ["H100"]}], "'H100' is used by both H100 and RTX4090"),
    ],
)
def test_load_gpu_table_rejects_bad_files(tmp_path: Path, entries: Any, message: str) -> None:
    path = _write_table(tmp_path / "gpus.json", entries)
    with pytest.raises(ConfigError, match=message) as info:
        load_gpu_table(path)
    assert "gpus.json" in str(info.value)


def test_load_gpu_table_rejects_invalid_json(tmp_path: Path) -> None:
    path = tmp_path / "gpus.json"
    path.write_text("[{name: 'X'}]", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"gpus\.json' is not valid JSON"):
        load_gpu_table(str(path))


# --- gpu= --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("spec", "normalized", "count"),
    [
        ("H100", "H100", 1),
        ("h100", "H100", 1),
        ("H100:8", "H100:8", 8),
        (" H100 : 4 ", "H100:4", 4),
        ("H100:16", "H100:16", 16),
        ("H100:1", "H100", 1),
        ("H100-80GB", "H100", 1),
        ("A100-80GB", "A100-80GB", 1),
        ("A100-80GB:2", "A100-80GB:2", 2),
        ("a100_80gb:2", "A100-80GB:2", 2),
        ("any", "any", 1),
        ("ANY:2", "any:2", 2),
        ("A10G", "A10G", 1),
        ("A100-80GB, H100", "A100-80GB, H100", 1),
        (["A100-80GB", "H100"], "A100-80GB, H100", 1),
        (("H100:8", "a100-80gb:8", "any:8"), "H100:8, A100-80GB:8, any:8", 8),
        (["L4:2", "T4"], "L4:2, T4", 2),
    ],
)
def test_parse_gpu(spec: str | list[str] | tuple[str, ...], normalized: str, count: int) -> None:
    request = parse_gpu(spec)
    assert request is not None
    assert str(request) == normalized
    assert request.count == count
    assert parse_gpu(str(request)) == request
    assert parse_gpu(request) is request


def test_parse_gpu_none_and_structure() -> None:
    assert parse_gpu(None) is None
    request = parse_gpu(["any:2", "H100"])
    assert request == GpuRequest((GpuChoice(None, 2), GpuChoice(find_gpu_model("H100"), 1)))


@pytest.mark.parametrize(
    ("spec", "bad"),
    [
        ("H1000", "H1000"),
        ("h1oo", "h1oo"),
        (["H100", "H1000"], "H1000"),
        ("A100-160GB:2", "A100-160GB"),
    ],
)
def test_parse_gpu_unknown_model(spec: str | list[str], bad: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_gpu(spec)
    message = str(info.value)
    assert f"Unknown GPU model {bad!r}" in message
    assert f"gpu={spec!r}" in message
    assert "Known models: T4, L4, A10, A10G, L40S, A100, A100-40GB, A100-80GB, H100" in message
    assert "(or 'any')" in message
    assert "JUPYTER_REMOTE_GPU_TABLE" in message


def test_parse_gpu_suggests_a_close_name() -> None:
    with pytest.raises(ConfigError, match="Did you mean 'H100'"):
        parse_gpu("H1000")


@pytest.mark.parametrize(
    ("spec", "bad"),
    [
        ("H100:0", "0"),
        ("H100:x", "x"),
        ("H100:-1", "-1"),
        ("H100:17", "17"),
        ("H100:", ""),
        ("H100:1.5", "1.5"),
        ("H100:8:2", "8:2"),
        ("any:0", "0"),
        (["H100", "A100:99"], "99"),
    ],
)
def test_parse_gpu_bad_count(spec: str | list[str], bad: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_gpu(spec)
    message = str(info.value)
    assert f"Bad GPU count {bad!r} in gpu={spec!r}" in message
    assert "whole number from 1 to 16" in message


@pytest.mark.parametrize("spec", ["", "   ", [], (), ","])
def test_parse_gpu_empty(spec: str | list[str] | tuple[str, ...]) -> None:
    with pytest.raises(ConfigError, match=r"names no GPU.*leave gpu unset for a CPU-only worker"):
        parse_gpu(spec)


def test_parse_gpu_empty_item() -> None:
    with pytest.raises(ConfigError, match=r"Empty GPU model in gpu='H100,,A100'; e\.g\."):
        parse_gpu("H100,,A100")


@pytest.mark.parametrize("spec", [1, 8.0, True, {"H100"}, ["H100", 8], (None,)])
def test_parse_gpu_wrong_type(spec: Any) -> None:
    with pytest.raises(TypeError, match=r"must be str.*e\.g\. gpu='H100'|must be a str"):
        parse_gpu(spec)


def test_request_and_choice_validate_themselves() -> None:
    with pytest.raises(ConfigError, match="at least one choice"):
        GpuRequest(())
    with pytest.raises(ConfigError, match="from 1 to 16, got 0"):
        GpuChoice(None, 0)


def test_config_errors_are_value_errors() -> None:
    with pytest.raises(ValueError):
        parse_gpu("H1000")


# --- memory and cpu ----------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "mib"),
    [
        (None, None),
        (1, 1),
        (1024, 1024),
        ("1024", 1024),
        (" 2048 ", 2048),
        ("1.5", 2),
        ("512Mi", 512),
        ("16Gi", 16384),
        ("16gi", 16384),
        ("16GiB", 16384),
        ("1.5Gi", 1536),
        ("1Ti", 1048576),
        ("512Ki", 1),
        ("512M", 489),
        ("2G", 1908),
        ("2GB", 1908),
        ("1T", 953675),
        ("1000K", 1),
    ],
)
def test_parse_memory(value: int | str | None, mib: int | None) -> None:
    assert parse_memory(value) == mib


@pytest.mark.parametrize(
    "value",
    [True, False, 0, -1, "0", "0Mi", "", "abc", "-1Gi", "16Xi", "1024B", "Gi", "1e3", "16 Gi!"],
)
def test_parse_memory_rejects(value: int | str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_memory(value)
    message = str(info.value)
    assert f"Bad memory value {value!r}" in message
    assert "int number of MiB" in message
    assert "'512Mi', '16Gi', '1Ti'" in message
    assert "'512M', '2G'" in message


@pytest.mark.parametrize("value", [1.5, [1024], b"1G"])
def test_parse_memory_wrong_type(value: Any) -> None:
    with pytest.raises(TypeError, match="memory= must be an int or str"):
        parse_memory(value)


@pytest.mark.parametrize(
    ("value", "cores"),
    [
        (None, None),
        (0.5, 0.5),
        (2, 2.0),
        ("4", 4.0),
        (" 1 ", 1.0),
        ("0.25", 0.25),
        (".5", 0.5),
        ("500m", 0.5),
        ("2500m", 2.5),
        ("1m", 0.001),
    ],
)
def test_parse_cpu(value: float | int | str | None, cores: float | None) -> None:
    result = parse_cpu(value)
    assert result == cores
    assert result is None or type(result) is float


@pytest.mark.parametrize(
    "value",
    [0, 0.0, -1, -0.5, True, False, float("nan"), float("inf"), "0", "0m", "-1", "abc", "", "m"],
)
def test_parse_cpu_rejects(value: float | int | str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_cpu(value)
    message = str(info.value)
    assert f"Bad cpu value {value!r}" in message
    assert "positive number of cores" in message
    assert "'500m'" in message


@pytest.mark.parametrize("value", [[1], b"1"])
def test_parse_cpu_wrong_type(value: Any) -> None:
    with pytest.raises(TypeError, match="cpu= must be a number or str"):
        parse_cpu(value)
