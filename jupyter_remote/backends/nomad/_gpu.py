"""GPU requests as Nomad device blocks, and why Nomad could not place a job.

A worker's GPUs are one ``device "nvidia/gpu"`` request of its task. Each
:class:`~jupyter_remote.resources.GpuChoice` becomes constraints on what the
NVIDIA device plugin (``nomad-device-nvidia``) fingerprints for each group of
identical GPUs on a node::

    ${device.model}        the NVML device name, e.g. "NVIDIA H100 80GB HBM3"
    ${device.attr.memory}  an int attribute with unit MiB, e.g. 81559 MiB

    >>> from jupyter_remote.resources import parse_gpu
    >>> block = device_block(parse_gpu("A100-80GB:2"))
    >>> block["Count"], [c["RTarget"] for c in block["Constraints"]]
    (2, ['^NVIDIA A100[- ].*80GB.*$', '73728 MiB'])

How Nomad evaluates these (``scheduler/feasible.go``, ``plugins/shared/structs``):

- ``RTarget`` is parsed as an attribute: ``"73728 MiB"`` becomes the int 73728
  with unit MiB, and two attributes compare only when their units convert to
  the same base (bytes here), so ``"72 GiB"`` would work too. A bare number
  (``"73728"``) has no unit and is *not comparable* with the plugin's
  ``memory`` attribute: such a constraint silently matches no device.
- A regexp ``RTarget`` is compiled with Go's RE2, so the table's regexes stay
  within the syntax Python and RE2 share.
- All of one request's GPUs come from one device group (same model) on one
  node: ``"H100:8"`` needs a node with eight H100s, not two nodes with four.

A preference list (``gpu=["H100", "A100-80GB"]``) is one device block: a
constraint accepting any listed model, and ``Affinities`` with decreasing
weights (100, 50, 25, ...) so Nomad picks the earliest choice it can place
now. Nomad has one ``Count`` per block, so every choice must ask for the same
number of GPUs.

Before a job is registered, :func:`gpu_shortfall` compares a request with
the GPUs the nodes report (:func:`describe_cluster_gpus`), so a model no node
has, or more GPUs than any one node has, fails at once. Messages name the
cluster's GPUs as a user writes them (``2 x gpu='H100' (NVIDIA H100 80GB
HBM3)``, the table's name from
:func:`~jupyter_remote.resources.model_for_device`), so the next attempt can
be copied from the error.

Placement failures come back as an evaluation's ``FailedTGAllocs[group]``
(Nomad's ``AllocMetric``). :func:`is_unplaceable` tells "can never run here"
(every node filtered: no such GPU, no driver, a constraint) from "waiting for
capacity" (nodes exhausted: GPUs, cores or memory in use);
:func:`explain_placement_failure` says which, naming the GPUs the cluster has.
The scheduler cannot tell "memory in use" from "more memory than any node
has", so :func:`node_capacity_shortfall` compares the task's resources with
the nodes themselves.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from jupyter_remote.backends.base import WorkerSpec
from jupyter_remote.exceptions import ConfigError
from jupyter_remote.resources import GPU_TABLE_ENV, GpuChoice, GpuRequest, model_for_device

__all__ = [
    "DEVICE_NAME",
    "ClusterGpus",
    "describe_cluster_gpus",
    "device_block",
    "explain_placement_failure",
    "gpu_shortfall",
    "is_unplaceable",
    "node_capacity_shortfall",
    "preference_weights",
]

#: ``<vendor>/<type>`` as the NVIDIA device plugin registers its GPUs.
DEVICE_NAME = "nvidia/gpu"
_VENDOR, _TYPE = DEVICE_NAME.split("/")
_MODEL = "${device.model}"
_MEMORY = "${device.attr.memory}"
# Nomad's FilterConstraint* reasons (scheduler/feasible.go).
_MISSING_DEVICES = "missing devices"
_MISSING_DRIVERS = "missing drivers"


def preference_weights(n: int) -> list[int]:
    """Affinity weights for ``n`` choices in preference order: 100, 50, 25, ...

    Nomad weights are non-zero ints up to 100, so from the eighth choice on
    the weight stays 1 (those choices are accepted but no longer ranked).

    >>> preference_weights(4)
    [100, 50, 25, 12]
    """
    return [max(1, 100 >> i) for i in range(n)]


def _memory_constraint(min_mib: int) -> dict[str, str]:
    # The unit is what makes the value comparable with the plugin's attribute.
    return {"LTarget": _MEMORY, "RTarget": f"{min_mib} MiB", "Operand": ">="}


def _model_regex(choices: Sequence[GpuChoice]) -> str | None:
    """One RE2 regexp accepting every listed model; None when any model will do."""
    regexes: list[str] = []
    for choice in choices:
        if choice.model is None:
            return None
        if choice.model.model_regex not in regexes:
            regexes.append(choice.model.model_regex)
    if len(regexes) == 1:
        return regexes[0]
    return "|".join(f"(?:{regex})" for regex in regexes)


def device_block(request: GpuRequest) -> dict[str, Any]:
    """The ``Resources.Devices`` entry (Nomad API JSON) for a GPU request.

    Raises :class:`ConfigError` for a preference list whose choices ask for
    different GPU counts, which one Nomad device request cannot express.

    >>> from jupyter_remote.resources import parse_gpu
    >>> device_block(parse_gpu("any:2"))
    {'Name': 'nvidia/gpu', 'Count': 2, 'Constraints': [], 'Affinities': []}
    """
    choices = request.choices
    counts = sorted({choice.count for choice in choices})
    if len(counts) > 1:
        same = ", ".join(
            repr(f"{c.model.name if c.model else 'any'}:{counts[-1]}") for c in choices
        )
        raise ConfigError(
            f"gpu={str(request)!r} asks for different GPU counts ({', '.join(map(str, counts))}), "
            "but a Nomad job asks for one number of GPUs per worker whichever model it gets. "
            f"Use the same count for every choice, e.g. gpu=[{same}], or call the function "
            "with a separate .with_options(gpu=...) per count."
        )
    constraints: list[dict[str, str]] = []
    regex = _model_regex(choices)
    if regex is not None:
        constraints.append({"LTarget": _MODEL, "RTarget": regex, "Operand": "regexp"})
        # The weakest memory floor among the choices; each model's regex does the rest.
        floor = min(choice.model.min_memory_mib for choice in choices if choice.model)
        constraints.append(_memory_constraint(floor))
    affinities: list[dict[str, Any]] = []
    if len(choices) > 1:
        for choice, weight in zip(choices, preference_weights(len(choices)), strict=True):
            if choice.model is None:
                continue  # "any" as a fallback: accepted, nothing to prefer
            affinities.append(
                {
                    "LTarget": _MODEL,
                    "RTarget": choice.model.model_regex,
                    "Operand": "regexp",
                    "Weight": weight,
                }
            )
    return {
        "Name": DEVICE_NAME,
        "Count": counts[0],
        "Constraints": constraints,
        "Affinities": affinities,
    }


def _schedulable(node: Mapping[str, Any]) -> bool:
    status: object = node.get("Status", "ready")
    eligibility: object = node.get("SchedulingEligibility", "eligible")
    return status == "ready" and eligibility == "eligible"


@dataclass(frozen=True)
class ClusterGpus:
    """The healthy GPUs of one NVIDIA model on the ready, eligible nodes.

    ``device`` is NVIDIA's model string (Nomad's ``${device.model}``),
    ``count`` the GPUs in the cluster, ``per_node`` the most on one node (all
    GPUs of one worker come from one node, so that is the largest
    ``gpu="...:N"`` that can run), ``memory_mib`` the smallest memory reported.
    """

    device: str
    count: int
    per_node: int
    memory_mib: int | None = None

    @property
    def gpu_name(self) -> str | None:
        """What a user passes as ``gpu=`` to get this device; None when the GPU table has none."""
        model = model_for_device(self.device, self.memory_mib)
        return None if model is None else model.name

    def fits(self, choice: GpuChoice) -> bool:
        """Whether one worker could get ``choice`` from these GPUs (when they are free)."""
        return self.per_node >= choice.count and choice.matches(self.device, self.memory_mib)

    def describe(self) -> str:
        """E.g. ``2 x gpu='H100' (NVIDIA H100 80GB HBM3)``."""
        per_node = f", at most {self.per_node} on one node" if self.per_node < self.count else ""
        name = self.gpu_name
        if name is None:
            return (
                f"{self.count} x {self.device} (only as gpu='any'{per_node}; "
                f"name it in {GPU_TABLE_ENV} to ask for it by model)"
            )
        return f"{self.count} x gpu={name!r} ({self.device}{per_node})"


def _memory_mib(device: Mapping[str, Any]) -> int | None:
    attribute = (device.get("Attributes") or {}).get("memory") or {}
    value, unit = attribute.get("Int"), attribute.get("Unit")
    if not isinstance(value, int):
        return None
    return {"MiB": value, "GiB": value * 1024}.get(str(unit))


def describe_cluster_gpus(nodes: Sequence[Mapping[str, Any]]) -> list[ClusterGpus]:
    """Healthy NVIDIA GPUs per model on ready, eligible nodes, the most numerous first.

    ``nodes`` is what ``GET /v1/nodes?resources=true`` returns (node stubs
    whose ``NodeResources.Devices`` lists each node's device groups).

    >>> node = {"NodeResources": {"Devices": [{"Vendor": "nvidia", "Type": "gpu",
    ...     "Name": "NVIDIA A10G", "Instances": [{"Healthy": True}, {"Healthy": True}]}]}}
    >>> [gpus.describe() for gpus in describe_cluster_gpus([node, node])]
    ["4 x gpu='A10G' (NVIDIA A10G, at most 2 on one node)"]
    """
    count: dict[str, int] = {}
    per_node: dict[str, int] = {}
    memory: dict[str, int | None] = {}
    for node in nodes:
        if not _schedulable(node):
            continue
        for device in (node.get("NodeResources") or {}).get("Devices") or ():
            if device.get("Vendor") != _VENDOR or device.get("Type") != _TYPE:
                continue
            healthy = sum(1 for i in device.get("Instances") or () if i.get("Healthy", True))
            if not healthy:
                continue
            name = str(device.get("Name"))
            count[name] = count.get(name, 0) + healthy
            per_node[name] = max(per_node.get(name, 0), healthy)
            mib = _memory_mib(device)
            seen = memory.get(name, mib)
            memory[name] = None if mib is None or seen is None else min(mib, seen)
    groups = [ClusterGpus(name, n, per_node[name], memory[name]) for name, n in count.items()]
    return sorted(groups, key=lambda g: (-g.count, g.device))


def _cluster_gpus_phrase(gpus: Sequence[ClusterGpus]) -> str:
    if not gpus:
        return (
            "no ready node of this cluster reports an NVIDIA GPU (is the nomad-device-nvidia "
            "plugin installed on the GPU clients? see nomad_jobs/README.md)"
        )
    return "this cluster has: " + ", ".join(g.describe() for g in gpus)


def _with_count(name: str, count: int) -> str:
    return repr(name if count == 1 else f"{name}:{count}")


def _next_try(request: GpuRequest | None, gpus: Sequence[ClusterGpus]) -> str:
    """What to ask for instead: fewer GPUs of a model asked for, else a model the cluster has."""
    named = [g for g in gpus if g.gpu_name is not None]
    for choice in request.choices if request is not None else ():
        same = [g for g in gpus if choice.matches(g.device, g.memory_mib)]
        if same:
            most = max(same, key=lambda g: g.per_node)
            name = "any" if choice.model is None else most.gpu_name or "any"
            return (
                f"Ask for at most {most.per_node} per worker, e.g. "
                f"gpu={_with_count(name, most.per_node)}"
            )
    if named:
        return f"Ask for a GPU the cluster has, e.g. gpu={named[0].gpu_name!r}"
    if gpus:
        return "Ask for gpu='any'"
    return "Ask an operator to add GPU nodes"


def gpu_shortfall(request: GpuRequest, gpus: Sequence[ClusterGpus]) -> str | None:
    """Why no node could ever give one worker ``request``'s GPUs, or None if one could.

    ``gpus`` is what :func:`describe_cluster_gpus` found. Busy GPUs count as
    available here: they free up.

    >>> from jupyter_remote.resources import parse_gpu
    >>> h100 = [ClusterGpus("NVIDIA H100 80GB HBM3", 2, 2, 81559)]
    >>> gpu_shortfall(parse_gpu(["A100-80GB", "H100"]), h100) is None
    True
    >>> print(gpu_shortfall(parse_gpu("H100:3"), h100))
    no node has 3 GPUs of one model matching gpu='H100:3' (the GPUs of one worker come from one \
node); this cluster has: 2 x gpu='H100' (NVIDIA H100 80GB HBM3). Ask for at most 2 per worker, \
e.g. gpu='H100:2', or have an operator add nodes with more (see nomad_jobs/README.md)
    """
    if any(g.fits(choice) for choice in request.choices for g in gpus):
        return None
    matching = any(
        choice.matches(g.device, g.memory_mib) for choice in request.choices for g in gpus
    )
    if matching:
        why = " (the GPUs of one worker come from one node)"
        more = "nodes with more"
    else:
        why = ""
        more = "nodes with that GPU"
    return (
        f"no node has {_gpu_wanted(request)}{why}; {_cluster_gpus_phrase(gpus)}. "
        f"{_next_try(request, gpus)}, or have an operator add {more} (see nomad_jobs/README.md)"
    )


def _get_int(metrics: Mapping[str, Any], key: str) -> int:
    value = metrics.get(key)
    return value if isinstance(value, int) else 0


def _get_counts(metrics: Mapping[str, Any], key: str) -> dict[str, int]:
    value = metrics.get(key)
    return {str(k): int(v) for k, v in value.items()} if isinstance(value, Mapping) else {}


def is_unplaceable(metrics: Mapping[str, Any]) -> bool:
    """Whether a failed placement can never succeed by waiting for capacity.

    ``metrics`` is one entry of an evaluation's ``FailedTGAllocs``. True when
    no node was evaluated (no ready node in the job's datacenters and node
    pool) or every evaluated node was filtered out (missing GPU model or
    count, missing driver, an unmet constraint). False when some node was
    only exhausted (cpu, cores, memory, GPUs in use, quota): those free up.
    Combine with :func:`node_capacity_shortfall` for asks larger than any
    node, which the scheduler reports as exhausted too.
    """
    evaluated = _get_int(metrics, "NodesEvaluated")
    if evaluated == 0:
        return True
    if _get_int(metrics, "NodesExhausted") > 0 or metrics.get("QuotaExhausted"):
        return False
    return _get_int(metrics, "NodesFiltered") >= evaluated


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def _asked(request: WorkerSpec | GpuRequest | None) -> str:
    if isinstance(request, GpuRequest):
        return f"workers with gpu={str(request)!r}"
    if request is None:
        return "workers"
    parts = []
    if request.gpu is not None:
        parts.append(f"gpu={str(request.gpu)!r}")
    if request.cpu is not None:
        parts.append(f"cpu={request.cpu:g}")
    if request.memory is not None:
        parts.append(f"memory={request.memory} MiB")
    what = f"workers for {request.label}"
    return f"{what} ({', '.join(parts)})" if parts else what


def _dimension(name: str) -> str:
    if name.startswith("devices"):
        return "GPUs in use"  # feasibility already found matching GPUs on these nodes
    if name.startswith("network"):
        return f"network ({name.partition(':')[2].strip() or 'ports'})"
    return {"cores": "whole cores in use", "cpu": "CPU", "memory": "memory"}.get(name, name)


def _gpu_wanted(gpu: GpuRequest | None) -> str:
    if gpu is None:
        return "the devices asked for"
    if gpu.count > 1:
        return f"{gpu.count} GPUs of one model matching gpu={str(gpu)!r}"
    return f"a GPU matching gpu={str(gpu)!r}"


def explain_placement_failure(
    request: WorkerSpec | GpuRequest | None,
    metrics: Mapping[str, Any],
    gpus: Sequence[ClusterGpus],
    *,
    shortfall: str | None = None,
) -> str:
    """One paragraph: what was asked, why Nomad could not place it, what to do next.

    ``request`` is the worker spec (or just its GPU request), ``metrics`` is
    ``FailedTGAllocs[group]`` of the job's evaluation, ``gpus`` what
    :func:`describe_cluster_gpus` found and ``shortfall`` what
    :func:`node_capacity_shortfall` found, if anything.

    >>> from jupyter_remote.resources import parse_gpu
    >>> metrics = {"NodesEvaluated": 3, "NodesFiltered": 3,
    ...            "ConstraintFiltered": {"missing devices": 3}}
    >>> a10g = [ClusterGpus("NVIDIA A10G", 2, 1, 23028)]
    >>> msg = explain_placement_failure(parse_gpu("H100"), metrics, a10g)
    >>> msg.partition(":")[2].split(";")[0]
    " no node has a GPU matching gpu='H100' (3 of 3 nodes)"
    >>> "this cluster has: 2 x gpu='A10G' (NVIDIA A10G, at most 1 on one node)" in msg
    True
    """
    gpu = request.gpu if isinstance(request, WorkerSpec) else request
    evaluated = _get_int(metrics, "NodesEvaluated")
    filtered = _get_counts(metrics, "ConstraintFiltered")
    classes = _get_counts(metrics, "ClassFiltered")
    exhausted = _get_int(metrics, "NodesExhausted")
    dimensions = _get_counts(metrics, "DimensionExhausted")
    quota = [str(q) for q in metrics.get("QuotaExhausted") or ()]
    reasons: list[str] = []
    advice: list[str] = []

    if shortfall:
        reasons.append(shortfall)
        advice.append("Ask for less cpu or memory, or add bigger nodes")
    if evaluated == 0:
        reasons.append("no ready, eligible client node is in the job's datacenters and node pool")
        advice.append(
            "Check the Nomad backend's datacenters and node_pool settings against "
            "`nomad node status`"
        )
    missing_devices = filtered.pop(_MISSING_DEVICES, 0)
    if missing_devices and exhausted:
        # Other nodes have the GPUs and are busy: this part is not the problem.
        reasons.append(f"{missing_devices} of {_plural(evaluated, 'node')} lack {_gpu_wanted(gpu)}")
    elif missing_devices:
        reasons.append(
            f"no node has {_gpu_wanted(gpu)} ({missing_devices} of {_plural(evaluated, 'node')}); "
            + _cluster_gpus_phrase(gpus)
        )
        advice.append(
            f"{_next_try(gpu, gpus)}, or add nodes with it (see nomad_jobs/README.md; "
            f"a model missing from the GPU table goes in {GPU_TABLE_ENV})"
        )
    missing_drivers = filtered.pop(_MISSING_DRIVERS, 0)
    if missing_drivers:
        reasons.append(
            f"the task driver is not enabled or not healthy on {missing_drivers} of "
            f"{_plural(evaluated, 'node')}"
        )
        advice.append(
            "Enable it on the clients (raw_exec is off by default: see "
            "nomad_jobs/agent-gpu-client.hcl) or set the Nomad backend's driver option to one "
            "they run"
        )
    for text, n in sorted(filtered.items()):
        reasons.append(f"{_plural(n, 'node')} did not meet the constraint {text!r}")
    for cls, n in sorted(classes.items()):
        reasons.append(f"{_plural(n, 'node')} of class {cls!r} did not meet a constraint")
    if exhausted or quota:
        verb = "is" if exhausted == 1 else "are"
        text = f"{_plural(exhausted, 'node')} that could run it {verb} full"
        if dimensions:
            text += (
                " ("
                + ", ".join(f"{_dimension(d)} on {n}" for d, n in sorted(dimensions.items()))
                + ")"
            )
        if quota:
            text += f"; quota exhausted: {', '.join(quota)}"
        reasons.append(text)
        if not shortfall:
            advice.append(
                "Capacity frees up as other allocations finish (the Nomad backend waits up to "
                "its capacity_wait setting), or ask for fewer resources"
            )
    if gpu is not None and not (missing_devices and not exhausted):
        reasons.append(_cluster_gpus_phrase(gpus))
    if not reasons:
        reasons.append(f"none of the {_plural(evaluated, 'node')} evaluated fits")

    message = f"Nomad cannot place {_asked(request)}: {'; '.join(reasons)}."
    if advice:
        message += " " + ". ".join(advice) + "."
    return message


def _node_capacity(node: Mapping[str, Any]) -> tuple[int, int, int]:
    """(reservable cores, CPU MHz, memory MiB) a node offers to allocations."""
    resources = node.get("NodeResources") or {}
    reserved = node.get("ReservedResources") or {}
    cpu = resources.get("Cpu") or {}
    cores = len(cpu.get("ReservableCpuCores") or ()) or int(cpu.get("TotalCpuCores") or 0)
    mhz = int(cpu.get("CpuShares") or 0) - int((reserved.get("Cpu") or {}).get("CpuShares") or 0)
    memory = int((resources.get("Memory") or {}).get("MemoryMB") or 0) - int(
        (reserved.get("Memory") or {}).get("MemoryMB") or 0
    )
    return cores, mhz, memory


def node_capacity_shortfall(
    resources: Mapping[str, Any], nodes: Sequence[Mapping[str, Any]]
) -> str | None:
    """Why no ready node could ever hold ``resources``, or None if one could.

    ``resources`` is a task's ``Resources`` JSON (``Cores`` or ``CPU`` MHz,
    ``MemoryMB``) as :func:`~jupyter_remote.backends.nomad._jobspec.build_worker_job`
    builds it; ``nodes`` is ``GET /v1/nodes?resources=true``. GPUs are not
    checked here: the scheduler already filters nodes without them.

    >>> node = {"NodeResources": {"Cpu": {"CpuShares": 4200, "ReservableCpuCores": [0, 1]},
    ...                           "Memory": {"MemoryMB": 24105}}}
    >>> node_capacity_shortfall({"Cores": 4, "MemoryMB": 1024}, [node])
    'no node is big enough (asked: 4 cores; the largest node has 2 cores)'
    """
    ready = [_node_capacity(node) for node in nodes if _schedulable(node)]
    if not ready:
        return None  # nothing to compare with: is_unplaceable covers "no nodes"
    cores = int(resources.get("Cores") or 0)
    mhz = int(resources.get("CPU") or 0)
    memory = int(resources.get("MemoryMB") or 0)
    if any(c >= cores and m >= memory and (cores or s >= mhz) for c, s, m in ready):
        return None
    asked: list[str] = []
    largest: list[str] = []
    if cores and max(c for c, _, _ in ready) < cores:
        asked.append(_plural(cores, "core"))
        largest.append(_plural(max(c for c, _, _ in ready), "core"))
    if mhz and max(s for _, s, _ in ready) < mhz:
        asked.append(f"{mhz} MHz CPU")
        largest.append(f"{max(s for _, s, _ in ready)} MHz CPU")
    if memory and max(m for _, _, m in ready) < memory:
        asked.append(f"{memory} MiB memory")
        largest.append(f"{max(m for _, _, m in ready)} MiB memory")
    if not asked:
        return "no single node has enough cpu and memory together"
    return (
        f"no node is big enough (asked: {', '.join(asked)}; "
        f"the largest node has {', '.join(largest)})"
    )
