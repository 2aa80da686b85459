"""Local GPU discovery (nvidia-smi) and assignment of GPUs to workers."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from jupyter_remote.backends._nvidia import (
    LocalGpu,
    assign_gpus,
    check_gpu_request,
    cuda_visible_devices,
    detect_gpus,
    parse_nvidia_smi,
)
from jupyter_remote.exceptions import ConfigError, GpuUnavailableError
from jupyter_remote.resources import GPU_TABLE_ENV, GpuRequest, parse_gpu

# Recorded from `nvidia-smi --query-gpu=index,uuid,name,memory.total --format=csv,noheader,nounits`.
SMI_8X_H100 = """\
0, GPU-3f2a9c41-7d0e-8b5a-1c6f-92e4b7d0a513, NVIDIA H100 80GB HBM3, 81559
1, GPU-a81c5e07-4b9d-2f3e-6a10-d7c8e5b4f291, NVIDIA H100 80GB HBM3, 81559
2, GPU-5d7e0b92-c3a1-49f8-b2e6-0f1a8c3d7e45, NVIDIA H100 80GB HBM3, 81559
3, GPU-e04b6f13-9a2c-7d5e-8f31-4b6c0a9e2d87, NVIDIA H100 80GB HBM3, 81559
4, GPU-7c9d2a85-1e4f-b06a-3d92-e8f5c1b7a064, NVIDIA H100 80GB HBM3, 81559
5, GPU-b2f8e4c0-6d3a-15b7-9e40-a3c7d2f8b916, NVIDIA H100 80GB HBM3, 81559
6, GPU-19a4d7f6-8b2e-c35d-04f1-6e9b3a5c8d72, NVIDIA H100 80GB HBM3, 81559
7, GPU-c6e1b3a8-0f5d-7e29-a4b8-1d3f6e0c9b58, NVIDIA H100 80GB HBM3, 81559
"""
SMI_1X_T4 = "0, GPU-6c9f0a3e-2b1d-4e85-97a6-3f8c1d0e5b24, Tesla T4, 15360\n"
SMI_2X_A100_40GB = """\
0, GPU-4e1a7b2c-93d0-5f68-a1e4-c7b09d3f2e81, NVIDIA A100-SXM4-40GB, 40960
1, GPU-8b3d9f05-e6a2-1c47-d8b3-5a2e0f9c4d16, NVIDIA A100-SXM4-40GB, 40960
"""
SMI_2X_A10G = """\
0, GPU-d2c4a6e8-1f3b-5d7a-9c0e-2b4d6f8a0c1e, NVIDIA A10G, 23028
1, GPU-0a2c4e6f-8b1d-3f5a-7c9e-1d3f5b7a9c2e, NVIDIA A10G, 23028
"""
SMI_L4_AND_T4 = """\
0, GPU-91b3d5f7-2a4c-6e8b-0d1f-3a5c7e9b1d4f, NVIDIA L4, 23034
1, GPU-6c9f0a3e-2b1d-4e85-97a6-3f8c1d0e5b24, Tesla T4, 15360
"""

NOMAD_HINT = "set JUPYTER_REMOTE_BACKEND=nomad and NOMAD_ADDR=http://your-nomad:4646"


@pytest.fixture(autouse=True)
def _no_operator_table(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(GPU_TABLE_ENV, raising=False)


def _req(spec: str | list[str]) -> GpuRequest:
    request = parse_gpu(spec)
    assert request is not None
    return request


def _fake_nvidia_smi(bin_dir: Path, body: str) -> None:
    """A real executable named nvidia-smi; it answers only the documented query."""
    script = bin_dir / "nvidia-smi"
    script.write_text(
        "#!/bin/sh\n"
        'if [ "$*" != "--query-gpu=index,uuid,name,memory.total '
        '--format=csv,noheader,nounits" ]; then echo "bad args: $*" >&2; exit 2; fi\n' + body,
        encoding="utf-8",
    )
    script.chmod(0o755)


# --- parsing -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("csv_text", "count", "name", "memory_mib"),
    [
        (SMI_8X_H100, 8, "NVIDIA H100 80GB HBM3", 81559),
        (SMI_1X_T4, 1, "Tesla T4", 15360),
        (SMI_2X_A100_40GB, 2, "NVIDIA A100-SXM4-40GB", 40960),
        (SMI_2X_A10G, 2, "NVIDIA A10G", 23028),
    ],
)
def test_parse_nvidia_smi(csv_text: str, count: int, name: str, memory_mib: int) -> None:
    gpus = parse_nvidia_smi(csv_text)
    assert [g.index for g in gpus] == list(range(count))
    assert {(g.name, g.memory_mib) for g in gpus} == {(name, memory_mib)}
    assert all(g.uuid.startswith("GPU-") for g in gpus)
    assert len({g.uuid for g in gpus}) == count


def test_parse_nvidia_smi_first_row_exactly() -> None:
    assert parse_nvidia_smi(SMI_8X_H100)[0] == LocalGpu(
        0, "GPU-3f2a9c41-7d0e-8b5a-1c6f-92e4b7d0a513", "NVIDIA H100 80GB HBM3", 81559
    )


@pytest.mark.parametrize(
    "csv_text",
    [
        "",
        "\n\n",
        "No devices were found\n",
        "0, GPU-1, NVIDIA H100 80GB HBM3, [N/A]\n",
        "x, GPU-1, NVIDIA L4, 23034\n",
        "0, , NVIDIA L4, 23034\n",
        "0, GPU-1, 23034\n",
    ],
)
def test_parse_nvidia_smi_skips_lines_that_are_not_gpus(csv_text: str) -> None:
    assert parse_nvidia_smi(csv_text) == []


def test_parse_nvidia_smi_keeps_good_lines_and_commas_in_names() -> None:
    text = "Some warning\r\n0, GPU-1, NVIDIA Foo, Rev 2, 1024\r\n1, GPU-2, Tesla T4, 15360\r\n"
    assert parse_nvidia_smi(text) == [
        LocalGpu(0, "GPU-1", "NVIDIA Foo, Rev 2", 1024),
        LocalGpu(1, "GPU-2", "Tesla T4", 15360),
    ]


# --- detection (real subprocesses) -------------------------------------------


def test_detect_gpus_without_nvidia_smi(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    assert detect_gpus() == []


def test_detect_gpus_runs_the_query(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _fake_nvidia_smi(tmp_path, f"printf '%s' '{SMI_2X_A100_40GB}'\n")  # a shell builtin
    monkeypatch.setenv("PATH", str(tmp_path))
    assert detect_gpus() == parse_nvidia_smi(SMI_2X_A100_40GB)


@pytest.mark.parametrize(
    "body",
    [
        # What nvidia-smi does when the driver is not loaded.
        'echo "NVIDIA-SMI has failed because it couldn\'t communicate with the driver."\nexit 9\n',
        "echo 'No devices were found'\nexit 6\n",
    ],
)
def test_detect_gpus_when_nvidia_smi_fails(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, body: str
) -> None:
    _fake_nvidia_smi(tmp_path, body)
    monkeypatch.setenv("PATH", str(tmp_path))
    assert detect_gpus() == []


def test_detect_gpus_when_nvidia_smi_hangs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    sleep = shutil.which("sleep")
    assert sleep is not None
    _fake_nvidia_smi(tmp_path, f"exec {sleep} 30\n")
    monkeypatch.setenv("PATH", str(tmp_path))
    assert detect_gpus(timeout=0.3) == []


def test_cuda_visible_devices() -> None:
    gpus = parse_nvidia_smi(SMI_8X_H100)
    assert cuda_visible_devices([]) == ""
    assert cuda_visible_devices(gpus[:1]) == "0"
    assert cuda_visible_devices([gpus[0], gpus[3], gpus[7]]) == "0,3,7"


# --- can this machine ever run it? -------------------------------------------


@pytest.mark.parametrize(
    ("csv_text", "spec", "chosen"),
    [
        (SMI_8X_H100, "H100:8", "H100:8"),
        (SMI_8X_H100, "any:8", "any:8"),
        (SMI_8X_H100, ["B200:8", "H200:8", "H100:4"], "H100:4"),
        (SMI_1X_T4, "T4", "T4"),
        (SMI_1X_T4, ["L4", "T4"], "T4"),
        (SMI_2X_A100_40GB, "A100:2", "A100:2"),
        (SMI_2X_A100_40GB, ["A100-80GB:2", "A100-40GB:2"], "A100-40GB:2"),
        (SMI_2X_A10G, "A10", "A10"),
        (SMI_L4_AND_T4, "any:2", "any:2"),
    ],
)
def test_check_gpu_request_returns_the_first_possible_choice(
    csv_text: str, spec: str | list[str], chosen: str
) -> None:
    assert str(check_gpu_request(_req(spec), parse_nvidia_smi(csv_text))) == chosen


@pytest.mark.parametrize(
    ("csv_text", "spec", "machine"),
    [
        (SMI_8X_H100, "H100:16", "this machine has: 8 x NVIDIA H100 80GB HBM3"),
        (SMI_8X_H100, ["B200", "H200"], "this machine has: 8 x NVIDIA H100 80GB HBM3"),
        (SMI_1X_T4, "A100-80GB", "this machine has: 1 x Tesla T4"),
        (SMI_2X_A100_40GB, "A100-80GB", "this machine has: 2 x NVIDIA A100-SXM4-40GB"),
        (SMI_2X_A10G, "H100", "this machine has: 2 x NVIDIA A10G"),
        (SMI_2X_A10G, "any:4", "this machine has: 2 x NVIDIA A10G"),
        (SMI_L4_AND_T4, "L4:2", "this machine has: 1 x NVIDIA L4, 1 x Tesla T4"),
    ],
)
def test_check_gpu_request_names_what_the_machine_has(
    csv_text: str, spec: str | list[str], machine: str
) -> None:
    request = _req(spec)
    with pytest.raises(GpuUnavailableError) as info:
        check_gpu_request(request, parse_nvidia_smi(csv_text))
    message = str(info.value)
    assert f"No local GPU matches gpu={str(request)!r}: {machine}." in message
    assert NOMAD_HINT in message
    assert isinstance(info.value, ConfigError)


def test_check_gpu_request_without_nvidia_smi(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(GpuUnavailableError) as info:
        check_gpu_request(_req("H100"), detect_gpus())
    message = str(info.value)
    assert "gpu='H100'" in message
    assert "this machine has no NVIDIA GPU (nvidia-smi not found)" in message
    assert NOMAD_HINT in message


def test_check_gpu_request_when_nvidia_smi_lists_none(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _fake_nvidia_smi(tmp_path, "echo 'No devices were found'\nexit 6\n")
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(GpuUnavailableError, match=r"no NVIDIA GPU \(nvidia-smi lists none\)"):
        check_gpu_request(_req("any"), detect_gpus())


def test_device_with_too_little_memory_does_not_match() -> None:
    odd = [LocalGpu(0, "GPU-1", "NVIDIA H100 80GB HBM3", 40960)]
    with pytest.raises(GpuUnavailableError, match="1 x NVIDIA H100 80GB HBM3"):
        check_gpu_request(_req("H100"), odd)


# --- which GPUs a worker gets now --------------------------------------------


@pytest.mark.parametrize(
    ("csv_text", "spec", "busy", "expected"),
    [
        (SMI_8X_H100, "H100", set(), [0]),
        (SMI_8X_H100, "H100:2", set(), [0, 1]),
        (SMI_8X_H100, "H100:2", {0, 1, 2}, [3, 4]),
        (SMI_8X_H100, "H100:2", {1, 4}, [0, 2]),
        (SMI_8X_H100, "H100:8", set(), list(range(8))),
        (SMI_8X_H100, "H100:2", {0, 1, 2, 3, 4, 5, 6}, []),
        (SMI_8X_H100, "H100:8", {5}, []),
        (SMI_8X_H100, ["H100:8", "H100:4"], {5}, [0, 1, 2, 3]),
        (SMI_1X_T4, "T4", set(), [0]),
        (SMI_1X_T4, "T4", {0}, []),
        (SMI_2X_A100_40GB, "A100-40GB", {0}, [1]),
        (SMI_L4_AND_T4, ["L4", "T4"], set(), [0]),
        (SMI_L4_AND_T4, ["L4", "T4"], {0}, [1]),
        (SMI_L4_AND_T4, ["L4", "T4"], {0, 1}, []),
        (SMI_L4_AND_T4, ["T4", "L4"], set(), [1]),
        (SMI_L4_AND_T4, "any:2", set(), [0, 1]),
        (SMI_L4_AND_T4, "any", {0}, [1]),
    ],
)
def test_assign_gpus(
    csv_text: str, spec: str | list[str], busy: set[int], expected: list[int]
) -> None:
    gpus = parse_nvidia_smi(csv_text)
    assigned = assign_gpus(_req(spec), gpus, busy)
    assert [g.index for g in assigned] == expected
    assert all(g in gpus for g in assigned)


def test_assign_gpus_prefers_low_indices_whatever_the_input_order() -> None:
    gpus = list(reversed(parse_nvidia_smi(SMI_8X_H100)))
    assert cuda_visible_devices(assign_gpus(_req("H100:3"), gpus, busy={0})) == "1,2,3"


@pytest.mark.parametrize(
    ("csv_text", "spec", "busy"),
    [
        (SMI_8X_H100, "H100:16", set()),
        (SMI_1X_T4, "L4", set()),
        (SMI_1X_T4, "L4", {0}),
        ("", "any", set()),
    ],
)
def test_assign_gpus_raises_when_never_possible(csv_text: str, spec: str, busy: set[int]) -> None:
    with pytest.raises(GpuUnavailableError, match=f"gpu='{spec}'.*{NOMAD_HINT}"):
        assign_gpus(_req(spec), parse_nvidia_smi(csv_text), busy)
