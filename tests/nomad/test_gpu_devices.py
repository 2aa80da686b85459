"""GPU requests as Nomad device blocks, and placement failures explained.

The evaluation fixtures (``fixtures/placement_*.json``) were recorded from a
real Nomad v1.6.5 dev agent; each file says how in its ``source`` field. The
busy-GPU evaluation and the GPU node list are synthesized, because the
recording machine has no GPU. Their ``source`` field says what they were
built from.
"""

from __future__ import annotations

import doctest
import json
import re
from pathlib import Path
from typing import Any

import pytest

from jupyter_remote.backends.base import WorkerSpec
from jupyter_remote.backends.nomad import _gpu
from jupyter_remote.backends.nomad._gpu import (
    ClusterGpus,
    describe_cluster_gpus,
    device_block,
    explain_placement_failure,
    gpu_shortfall,
    is_unplaceable,
    node_capacity_shortfall,
    preference_weights,
)
from jupyter_remote.exceptions import ConfigError
from jupyter_remote.resources import GPU_MODELS, GpuRequest, parse_gpu

FIXTURES = Path(__file__).parent / "fixtures"

MODEL = "${device.model}"
MEMORY = "${device.attr.memory}"


def regexp(value: str) -> dict[str, str]:
    return {"LTarget": MODEL, "RTarget": value, "Operand": "regexp"}


def memory_at_least(mib: int) -> dict[str, str]:
    return {"LTarget": MEMORY, "RTarget": f"{mib} MiB", "Operand": ">="}


def prefer(value: str, weight: int) -> dict[str, Any]:
    return {"LTarget": MODEL, "RTarget": value, "Operand": "regexp", "Weight": weight}


def block(count: int, constraints: list[Any], affinities: list[Any] | None = None) -> Any:
    return {
        "Name": "nvidia/gpu",
        "Count": count,
        "Constraints": constraints,
        "Affinities": affinities or [],
    }


T4 = r"^(Tesla|NVIDIA) T4$"
A10 = r"^NVIDIA A10G?$"
A10G = r"^NVIDIA A10G$"
A100 = r"^NVIDIA A100([- ].*)?$"
A100_80 = r"^NVIDIA A100[- ].*80GB.*$"
H100 = r"^NVIDIA H100( .*)?$"

# Memory floors: 90 % of the table's GB, in MiB (drivers keep some memory back).
SINGLE = {
    "T4": block(1, [regexp(T4), memory_at_least(14745)]),
    "tesla-t4": block(1, [regexp(T4), memory_at_least(14745)]),
    "L4": block(1, [regexp(r"^NVIDIA L4$"), memory_at_least(22118)]),
    "A10": block(1, [regexp(A10), memory_at_least(22118)]),
    "A10G": block(1, [regexp(A10G), memory_at_least(22118)]),
    "L40S": block(1, [regexp(r"^NVIDIA L40S$"), memory_at_least(44236)]),
    "A100": block(1, [regexp(A100), memory_at_least(36864)]),
    "A100-40GB": block(1, [regexp(r"^NVIDIA A100[- ].*40GB.*$"), memory_at_least(36864)]),
    "a100-80g": block(1, [regexp(A100_80), memory_at_least(73728)]),
    "A100-80GB": block(1, [regexp(A100_80), memory_at_least(73728)]),
    "H100": block(1, [regexp(H100), memory_at_least(73728)]),
    "H100-80GB": block(1, [regexp(H100), memory_at_least(73728)]),
    "H200": block(1, [regexp(r"^NVIDIA H200( .*)?$"), memory_at_least(129945)]),
    "B200": block(1, [regexp(r"^NVIDIA B200( .*)?$"), memory_at_least(165888)]),
    "any": block(1, []),
    "H100:8": block(8, [regexp(H100), memory_at_least(73728)]),
    "A100-80GB:2": block(2, [regexp(A100_80), memory_at_least(73728)]),
    "T4:4": block(4, [regexp(T4), memory_at_least(14745)]),
    "any:2": block(2, []),
    "ANY:16": block(16, []),
}

PREFERENCES: dict[str, tuple[str | list[str], Any]] = {
    "two models": (
        ["H100", "A100-80GB"],
        block(
            1,
            [regexp(f"(?:{H100})|(?:{A100_80})"), memory_at_least(73728)],
            [prefer(H100, 100), prefer(A100_80, 50)],
        ),
    ),
    "two models, 2 each": (
        ["A100-80GB:2", "H100:2"],
        block(
            2,
            [regexp(f"(?:{A100_80})|(?:{H100})"), memory_at_least(73728)],
            [prefer(A100_80, 100), prefer(H100, 50)],
        ),
    ),
    "smallest floor wins": (
        ["H100", "A10G", "T4"],
        block(
            1,
            [regexp(f"(?:{H100})|(?:{A10G})|(?:{T4})"), memory_at_least(14745)],
            [prefer(H100, 100), prefer(A10G, 50), prefer(T4, 25)],
        ),
    ),
    "any as fallback": (
        ["H100", "any"],
        block(1, [], [prefer(H100, 100)]),
    ),
    "any first": (
        ["any", "H100"],
        block(1, [], [prefer(H100, 50)]),
    ),
    "comma string": (
        "L4:2, A10G:2",
        block(
            2,
            [regexp(r"(?:^NVIDIA L4$)|(?:^NVIDIA A10G$)"), memory_at_least(22118)],
            [prefer(r"^NVIDIA L4$", 100), prefer(A10G, 50)],
        ),
    ),
    "alias of the same model": (
        ["H100", "H100-80GB"],
        block(1, [regexp(H100), memory_at_least(73728)], [prefer(H100, 100), prefer(H100, 50)]),
    ),
}

# NVML device names as nvidia-smi prints them (and Nomad's ${device.model}),
# with the memory the driver reports.
REAL_DEVICES = {
    "Tesla T4": 15360,
    "NVIDIA L4": 23034,
    "NVIDIA A10G": 23028,
    "NVIDIA A10": 23028,
    "NVIDIA L40S": 46068,
    "NVIDIA A100-SXM4-40GB": 40960,
    "NVIDIA A100-PCIE-40GB": 40960,
    "NVIDIA A100-SXM4-80GB": 81920,
    "NVIDIA A100 80GB PCIe": 81920,
    "NVIDIA H100 80GB HBM3": 81559,
    "NVIDIA H100 PCIe": 81559,
    "NVIDIA H200": 143771,
    "NVIDIA B200": 183359,
}


def request(gpu: str | list[str]) -> GpuRequest:
    parsed = parse_gpu(gpu)
    assert parsed is not None
    return parsed


def _mib(value: str) -> int:
    number, unit = value.split()
    assert unit == "MiB"  # Nomad needs the unit to compare with the plugin's MiB attribute
    return int(number)


def nomad_accepts(device: dict[str, Any], name: str, memory_mib: int) -> bool:
    """Nomad's nodeDeviceMatches for the constraint kinds device_block emits."""
    for c in device["Constraints"]:
        if c["Operand"] == "regexp":
            assert c["LTarget"] == MODEL
            if re.search(c["RTarget"], name) is None:  # Go's MatchString: unanchored search
                return False
        else:
            assert (c["LTarget"], c["Operand"]) == (MEMORY, ">=")
            if memory_mib < _mib(c["RTarget"]):
                return False
    return True


@pytest.mark.parametrize("gpu", sorted(SINGLE))
def test_single_choice_device_block(gpu: str) -> None:
    assert device_block(request(gpu)) == SINGLE[gpu]


def test_every_table_model_is_covered() -> None:
    covered = {request(g).choices[0].model for g in SINGLE}
    assert covered >= set(GPU_MODELS)


@pytest.mark.parametrize("case", sorted(PREFERENCES))
def test_preference_list_device_block(case: str) -> None:
    spec, expected = PREFERENCES[case]
    assert device_block(request(spec)) == expected


def test_long_preference_list_keeps_weights_valid() -> None:
    names = [m.name for m in GPU_MODELS][:9]
    device = device_block(request(names))
    weights = [a["Weight"] for a in device["Affinities"]]
    assert weights == [100, 50, 25, 12, 6, 3, 1, 1, 1]  # Nomad: non-zero, at most 100
    assert preference_weights(0) == []


def test_different_counts_in_a_preference_list_are_refused() -> None:
    with pytest.raises(ConfigError) as info:
        device_block(request(["H100:8", "A100:4"]))
    message = str(info.value)
    assert "gpu='H100:8, A100:4'" in message
    assert "different GPU counts (4, 8)" in message
    assert "gpu=['H100:8', 'A100:8']" in message  # what to write instead


@pytest.mark.parametrize(
    ("gpu", "accepted"),
    [
        ("T4", {"Tesla T4"}),
        ("L4", {"NVIDIA L4"}),
        ("A10", {"NVIDIA A10", "NVIDIA A10G"}),
        ("A10G", {"NVIDIA A10G"}),
        ("L40S", {"NVIDIA L40S"}),
        (
            "A100",
            {
                "NVIDIA A100-SXM4-40GB",
                "NVIDIA A100-PCIE-40GB",
                "NVIDIA A100-SXM4-80GB",
                "NVIDIA A100 80GB PCIe",
            },
        ),
        ("A100-40GB", {"NVIDIA A100-SXM4-40GB", "NVIDIA A100-PCIE-40GB"}),
        ("A100-80GB", {"NVIDIA A100-SXM4-80GB", "NVIDIA A100 80GB PCIe"}),
        ("H100", {"NVIDIA H100 80GB HBM3", "NVIDIA H100 PCIe"}),
        ("H200", {"NVIDIA H200"}),
        ("B200", {"NVIDIA B200"}),
        ("any", set(REAL_DEVICES)),
        (
            ["A100-80GB", "H100"],
            {"NVIDIA A100-SXM4-80GB", "NVIDIA A100 80GB PCIe"}
            | {
                "NVIDIA H100 80GB HBM3",
                "NVIDIA H100 PCIe",
            },
        ),
        (["H200", "L4"], {"NVIDIA H200", "NVIDIA L4"}),
    ],
)
def test_device_blocks_select_the_right_real_devices(
    gpu: str | list[str], accepted: set[str]
) -> None:
    device = device_block(request(gpu))
    chosen = {name for name, mib in REAL_DEVICES.items() if nomad_accepts(device, name, mib)}
    assert chosen == accepted


def test_memory_floor_rejects_a_smaller_variant_of_the_same_name() -> None:
    device = device_block(request("H100"))
    assert nomad_accepts(device, "NVIDIA H100 80GB HBM3", 81559)
    assert not nomad_accepts(device, "NVIDIA H100 80GB HBM3", 40000)  # e.g. a MIG slice


def test_affinities_rank_choices_in_order() -> None:
    device = device_block(request(["H100", "A100-80GB", "A100"]))

    def score(name: str) -> int:
        return sum(a["Weight"] for a in device["Affinities"] if re.search(a["RTarget"], name))

    assert score("NVIDIA H100 80GB HBM3") > score("NVIDIA A100-SXM4-80GB")
    assert score("NVIDIA A100-SXM4-80GB") > score("NVIDIA A100-SXM4-40GB") > 0


# -- the cluster's GPUs -----------------------------------------------------------------------


def _fixture(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text())


def _metrics(name: str) -> Any:
    return _fixture(name)["evaluation"]["FailedTGAllocs"]["workers"]


def _nodes(name: str) -> Any:
    return _fixture(name)["nodes"]


def test_describe_cluster_gpus_counts_healthy_gpus_on_schedulable_nodes() -> None:
    # The down A100 node, the draining L4 node, the unhealthy A10G and the FPGA do not count.
    gpus = describe_cluster_gpus(_nodes("placement_nodes_gpu.json"))
    assert gpus == [  # most first; per_node is the most on one node (8 on each H100 node)
        ClusterGpus("NVIDIA H100 80GB HBM3", count=16, per_node=8, memory_mib=81559),
        ClusterGpus("NVIDIA A10G", count=3, per_node=3, memory_mib=23028),
    ]
    assert [g.describe() for g in gpus] == [
        "16 x gpu='H100' (NVIDIA H100 80GB HBM3, at most 8 on one node)",
        "3 x gpu='A10G' (NVIDIA A10G)",
    ]


def test_describe_cluster_gpus_without_gpus() -> None:
    assert describe_cluster_gpus(_nodes("placement_nodes_dev.json")) == []
    assert describe_cluster_gpus([]) == []
    assert describe_cluster_gpus([{"ID": "no-resources"}]) == []


@pytest.mark.parametrize(
    ("device", "mib", "name"),
    [
        ("NVIDIA A100-SXM4-40GB", 40960, "A100-40GB"),  # not the broader "A100"
        ("NVIDIA A100-SXM4-80GB", 81920, "A100-80GB"),
        ("NVIDIA A10G", 23028, "A10G"),  # not "A10", which takes A10G too
        ("Tesla T4", 15360, "T4"),
        ("NVIDIA H100 80GB HBM3", 81559, "H100"),
        ("NVIDIA H100 80GB HBM3", 40000, None),  # a slice below every H100 row's floor
        ("NVIDIA RTX A6000", 49140, None),
    ],
)
def test_cluster_gpus_are_named_as_gpu_values(device: str, mib: int, name: str | None) -> None:
    gpus = ClusterGpus(device, count=1, per_node=1, memory_mib=mib)
    assert gpus.gpu_name == name
    if name is not None:  # the suggested name really gets this device
        assert gpus.fits(request(name).choices[0])


def test_a_gpu_missing_from_the_table_is_offered_as_any() -> None:
    text = ClusterGpus("NVIDIA RTX A6000", count=4, per_node=4).describe()
    assert text == (
        "4 x NVIDIA RTX A6000 (only as gpu='any'; name it in JUPYTER_REMOTE_GPU_TABLE to ask "
        "for it by model)"
    )


# -- what no node could ever give ------------------------------------------------------------

FAKEGPU_NODE = [
    ClusterGpus("NVIDIA H100 80GB HBM3", count=2, per_node=2, memory_mib=81559),
    ClusterGpus("NVIDIA A100-SXM4-40GB", count=1, per_node=1, memory_mib=40960),
]


@pytest.mark.parametrize(
    "gpu", ["H100", "H100:2", "A100", "A100-40GB", "any", "any:2", ["A100-80GB", "H100"]]
)
def test_gpu_shortfall_passes_what_some_node_could_give(gpu: str | list[str]) -> None:
    assert gpu_shortfall(request(gpu), FAKEGPU_NODE) is None


def test_gpu_shortfall_for_a_model_no_node_has() -> None:
    assert gpu_shortfall(request("A100-80GB"), FAKEGPU_NODE) == (
        "no node has a GPU matching gpu='A100-80GB'; this cluster has: 2 x gpu='H100' "
        "(NVIDIA H100 80GB HBM3), 1 x gpu='A100-40GB' (NVIDIA A100-SXM4-40GB). Ask for a GPU "
        "the cluster has, e.g. gpu='H100', or have an operator add nodes with that GPU "
        "(see nomad_jobs/README.md)"
    )


@pytest.mark.parametrize(
    ("gpu", "count", "suggestion"),
    [
        ("H100:3", 3, "Ask for at most 2 per worker, e.g. gpu='H100:2'"),
        ("A100:2", 2, "Ask for at most 1 per worker, e.g. gpu='A100-40GB'"),
        ("any:3", 3, "Ask for at most 2 per worker, e.g. gpu='any:2'"),
        (["B200:3", "H100:3"], 3, "Ask for at most 2 per worker, e.g. gpu='H100:2'"),
    ],
)
def test_gpu_shortfall_for_more_gpus_than_one_node_has(
    gpu: str | list[str], count: int, suggestion: str
) -> None:
    message = gpu_shortfall(request(gpu), FAKEGPU_NODE)
    assert message is not None
    assert message.startswith(
        f"no node has {count} GPUs of one model matching gpu='{request(gpu)}' "
        "(the GPUs of one worker come from one node); this cluster has: "
    )
    assert suggestion in message
    assert message.endswith("or have an operator add nodes with more (see nomad_jobs/README.md)")


def test_gpu_shortfall_counts_gpus_per_node_not_per_cluster() -> None:
    # 16 H100s, but at most 8 on a node: one worker cannot have 9.
    gpus = describe_cluster_gpus(_nodes("placement_nodes_gpu.json"))
    assert gpu_shortfall(request("H100:8"), gpus) is None
    message = gpu_shortfall(request("H100:9"), gpus)
    assert message is not None and "e.g. gpu='H100:8'" in message


def test_gpu_shortfall_on_a_cluster_without_gpus() -> None:
    message = gpu_shortfall(request("any"), [])
    assert message is not None
    assert "no ready node of this cluster reports an NVIDIA GPU" in message
    assert "Ask an operator to add GPU nodes" in message


# -- placement failures ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fixture", "unplaceable"),
    [
        ("placement_missing_gpu.json", True),
        ("placement_missing_driver.json", True),
        ("placement_no_nodes.json", True),
        ("placement_constraint.json", True),
        ("placement_busy_memory.json", False),
        ("placement_busy_cores.json", False),
        ("placement_busy_gpu.json", False),
        # Never fits, but Nomad reports it exactly like "busy": node_capacity_shortfall tells.
        ("placement_memory_too_big.json", False),
        ("placement_cores_too_many.json", False),
    ],
)
def test_is_unplaceable(fixture: str, unplaceable: bool) -> None:
    assert is_unplaceable(_metrics(fixture)) is unplaceable


def test_blocked_evaluation_carries_the_same_metrics() -> None:
    recorded = _fixture("placement_busy_memory.json")
    blocked = recorded["blocked_evaluation"]
    assert blocked["Status"] == "blocked"
    assert blocked["FailedTGAllocs"] == recorded["evaluation"]["FailedTGAllocs"]


def test_quota_exhaustion_is_waiting_not_unplaceable() -> None:
    metrics = {"NodesEvaluated": 2, "NodesFiltered": 2, "QuotaExhausted": ["memory exhausted"]}
    assert not is_unplaceable(metrics)


@pytest.mark.parametrize(
    ("fixture", "resources", "expected"),
    [
        (
            "placement_memory_too_big.json",
            None,
            "no node is big enough (asked: 100000 MiB memory; "
            "the largest node has 24105 MiB memory)",
        ),
        (
            "placement_cores_too_many.json",
            None,
            "no node is big enough (asked: 4 cores; the largest node has 2 cores)",
        ),
        ("placement_busy_memory.json", None, None),
        ("placement_busy_cores.json", None, None),
        ("placement_missing_gpu.json", None, None),
        (
            "placement_memory_too_big.json",
            {"CPU": 5000},
            "no node is big enough (asked: 5000 MHz CPU; the largest node has 4200 MHz CPU)",
        ),
    ],
)
def test_node_capacity_shortfall_on_the_dev_node(
    fixture: str, resources: dict[str, Any] | None, expected: str | None
) -> None:
    asked = resources or _fixture(fixture)["job"]["Resources"]
    assert node_capacity_shortfall(asked, _nodes("placement_nodes_dev.json")) == expected


def test_node_capacity_shortfall_needs_one_node_with_everything() -> None:
    nodes = _nodes("placement_nodes_gpu.json")
    # The H100 nodes have 64 cores; the biggest memory (minus 2048 MiB reserved) is 512952 MiB.
    assert node_capacity_shortfall({"Cores": 64, "MemoryMB": 512952}, nodes) is None
    assert node_capacity_shortfall({"Cores": 64, "MemoryMB": 512953}, nodes) == (
        "no node is big enough (asked: 512953 MiB memory; the largest node has 512952 MiB memory)"
    )
    # Down and draining nodes do not count; no node at all is is_unplaceable's business.
    assert (
        node_capacity_shortfall({"Cores": 1}, [n for n in nodes if n["Status"] == "down"]) is None
    )


def test_node_capacity_shortfall_when_only_the_combination_is_too_big() -> None:
    nodes = [
        {
            "NodeResources": {
                "Cpu": {"CpuShares": 8000, "TotalCpuCores": 4},
                "Memory": {"MemoryMB": 8000},
            }
        },
        {
            "NodeResources": {
                "Cpu": {"CpuShares": 2000, "TotalCpuCores": 1},
                "Memory": {"MemoryMB": 64000},
            }
        },
    ]
    assert node_capacity_shortfall({"Cores": 4, "MemoryMB": 32000}, nodes) == (
        "no single node has enough cpu and memory together"
    )


H100_SPEC = WorkerSpec("demo.embed", cpu=4, memory=32768, gpu=parse_gpu("H100"))
GPU_NODES = [
    ClusterGpus("NVIDIA H100 80GB HBM3", count=16, per_node=8, memory_mib=81559),
    ClusterGpus("NVIDIA A10G", count=3, per_node=3, memory_mib=23028),
]
GPU_NODES_TEXT = (
    "this cluster has: 16 x gpu='H100' (NVIDIA H100 80GB HBM3, at most 8 on one node), "
    "3 x gpu='A10G' (NVIDIA A10G)"
)


def test_explain_missing_gpu_names_what_the_cluster_has() -> None:
    spec = WorkerSpec("demo.embed", cpu=2, memory=8192, gpu=parse_gpu(["H200:2", "B200:2"]))
    message = explain_placement_failure(spec, _metrics("placement_missing_gpu.json"), GPU_NODES)
    assert message == (
        "Nomad cannot place workers for demo.embed (gpu='H200:2, B200:2', cpu=2, memory=8192 MiB): "
        "no node has 2 GPUs of one model matching gpu='H200:2, B200:2' (1 of 1 node); "
        f"{GPU_NODES_TEXT}. "
        "Ask for a GPU the cluster has, e.g. gpu='H100', or add nodes with it (see "
        "nomad_jobs/README.md; a model missing from the GPU table goes in "
        "JUPYTER_REMOTE_GPU_TABLE)."
    )


def test_explain_missing_gpu_on_a_cluster_without_gpus() -> None:
    message = explain_placement_failure(H100_SPEC, _metrics("placement_missing_gpu.json"), [])
    assert "no node has a GPU matching gpu='H100' (1 of 1 node)" in message
    assert "no ready node of this cluster reports an NVIDIA GPU" in message
    assert "nomad-device-nvidia" in message


def test_explain_missing_driver() -> None:
    spec = WorkerSpec("demo.f", cpu=1)
    message = explain_placement_failure(spec, _metrics("placement_missing_driver.json"), [])
    assert message.startswith("Nomad cannot place workers for demo.f (cpu=1): ")
    assert "the task driver is not enabled or not healthy on 1 of 1 node" in message
    assert "driver option" in message
    assert "GPU" not in message  # nothing about GPUs for a CPU-only worker


def test_explain_no_nodes_names_the_settings_to_check() -> None:
    message = explain_placement_failure(None, _metrics("placement_no_nodes.json"), [])
    assert message.startswith("Nomad cannot place workers: no ready, eligible client node")
    assert "datacenters and node_pool settings" in message


def test_explain_other_constraint_quotes_it() -> None:
    message = explain_placement_failure(None, _metrics("placement_constraint.json"), [])
    assert "1 node did not meet the constraint '${attr.kernel.name} = windows'" in message


def test_explain_busy_gpus() -> None:
    message = explain_placement_failure(H100_SPEC, _metrics("placement_busy_gpu.json"), GPU_NODES)
    assert message == (
        "Nomad cannot place workers for demo.embed (gpu='H100', cpu=4, memory=32768 MiB): "
        "1 of 3 nodes lack a GPU matching gpu='H100'; "
        "2 nodes that could run it are full (GPUs in use on 2); "
        f"{GPU_NODES_TEXT}. "
        "Capacity frees up as other allocations finish (the Nomad backend waits up to its "
        "capacity_wait setting), or ask for fewer resources."
    )


def test_explain_busy_memory_and_cores() -> None:
    spec = WorkerSpec("demo.f", cpu=1, memory=20000)
    message = explain_placement_failure(spec, _metrics("placement_busy_memory.json"), [])
    assert "1 node that could run it is full (memory on 1)" in message
    assert "capacity frees up" in message.lower()
    message = explain_placement_failure(spec, _metrics("placement_busy_cores.json"), [])
    assert "(whole cores in use on 1)" in message


def test_explain_too_big_says_so_instead_of_waiting() -> None:
    spec = WorkerSpec("demo.f", cpu=0.5, memory=100_000)
    recorded = _fixture("placement_memory_too_big.json")
    shortfall = node_capacity_shortfall(
        recorded["job"]["Resources"], _nodes("placement_nodes_dev.json")
    )
    message = explain_placement_failure(
        spec, recorded["evaluation"]["FailedTGAllocs"]["workers"], [], shortfall=shortfall
    )
    assert message == (
        "Nomad cannot place workers for demo.f (cpu=0.5, memory=100000 MiB): no node is big "
        "enough (asked: 100000 MiB memory; the largest node has 24105 MiB memory); "
        "1 node that could run it is full (memory on 1). "
        "Ask for less cpu or memory, or add bigger nodes."
    )


def test_explain_busy_gpu_request_still_names_the_cluster_gpus() -> None:
    message = explain_placement_failure(
        parse_gpu("H100:8"), _metrics("placement_busy_memory.json"), GPU_NODES
    )
    assert message.startswith("Nomad cannot place workers with gpu='H100:8': ")
    assert message.endswith(
        f"{GPU_NODES_TEXT}. Capacity frees up as other allocations finish (the Nomad backend "
        "waits up to its capacity_wait setting), or ask for fewer resources."
    )


def test_docstring_examples() -> None:
    assert doctest.testmod(_gpu, raise_on_error=True).attempted >= 5
