"""The GPUs of this machine, as ``nvidia-smi`` reports them, and which ones a worker gets.

Stdlib only. The local backend calls :func:`detect_gpus` once, fails fast with
:func:`check_gpu_request` when a request can never run here, and hands each
worker the GPUs :func:`assign_gpus` picks via ``CUDA_VISIBLE_DEVICES``::

    >>> from jupyter_remote.resources import parse_gpu
    >>> gpus = parse_nvidia_smi("0, GPU-1a2b, NVIDIA A10G, 23028\\n")
    >>> cuda_visible_devices(assign_gpus(parse_gpu("A10G"), gpus, busy=set()))
    '0'

The indices are nvidia-smi's, which are in PCI bus order: the launcher must
also set ``CUDA_DEVICE_ORDER=PCI_BUS_ID`` so CUDA numbers devices the same way.
"""

from __future__ import annotations

import shutil
import subprocess
from collections import Counter
from dataclasses import dataclass

from jupyter_remote.exceptions import GpuUnavailableError
from jupyter_remote.resources import GpuChoice, GpuRequest

__all__ = [
    "NVIDIA_SMI_QUERY",
    "LocalGpu",
    "assign_gpus",
    "check_gpu_request",
    "cuda_visible_devices",
    "detect_gpus",
    "parse_nvidia_smi",
]

NVIDIA_SMI_QUERY = (
    "nvidia-smi",
    "--query-gpu=index,uuid,name,memory.total",
    "--format=csv,noheader,nounits",
)
_NOMAD_HINT = (
    "To run on a GPU cluster instead, set JUPYTER_REMOTE_BACKEND=nomad "
    "and NOMAD_ADDR=http://your-nomad:4646."
)


@dataclass(frozen=True)
class LocalGpu:
    """One GPU of this machine: nvidia-smi index, UUID, model name and memory in MiB."""

    index: int
    uuid: str
    name: str
    memory_mib: int


def parse_nvidia_smi(csv_text: str) -> list[LocalGpu]:
    """Parse ``nvidia-smi --query-gpu=index,uuid,name,memory.total --format=csv,noheader,nounits``.

    Lines that are not four such fields (blank lines, "No devices were found",
    ``[N/A]`` values) are skipped.

    >>> parse_nvidia_smi("0, GPU-6c9f, Tesla T4, 15360")
    [LocalGpu(index=0, uuid='GPU-6c9f', name='Tesla T4', memory_mib=15360)]
    """
    gpus: list[LocalGpu] = []
    for line in csv_text.splitlines():
        fields = [f.strip() for f in line.split(",")]
        if len(fields) < 4:
            continue
        # The model name is the only field that could hold a comma.
        index, uuid, name, memory = fields[0], fields[1], ", ".join(fields[2:-1]), fields[-1]
        if not (index.isdigit() and memory.isdigit() and uuid and name):
            continue
        gpus.append(LocalGpu(int(index), uuid, name, int(memory)))
    return gpus


def detect_gpus(timeout: float = 10.0) -> list[LocalGpu]:
    """This machine's NVIDIA GPUs; ``[]`` when nvidia-smi is missing, fails or hangs."""
    exe = shutil.which(NVIDIA_SMI_QUERY[0])
    if exe is None:
        return []
    try:
        proc = subprocess.run(
            [exe, *NVIDIA_SMI_QUERY[1:]],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return []
    if proc.returncode != 0:
        return []
    return parse_nvidia_smi(proc.stdout)


def cuda_visible_devices(gpus: list[LocalGpu]) -> str:
    """The ``CUDA_VISIBLE_DEVICES`` value for these GPUs, e.g. ``"0,3"``."""
    return ",".join(str(gpu.index) for gpu in gpus)


def _matching(choice: GpuChoice, gpus: list[LocalGpu]) -> list[LocalGpu]:
    return sorted(
        (gpu for gpu in gpus if choice.matches(gpu.name, gpu.memory_mib)),
        key=lambda gpu: gpu.index,
    )


def _describe_machine(gpus: list[LocalGpu]) -> str:
    if not gpus:
        if shutil.which(NVIDIA_SMI_QUERY[0]) is None:
            return "this machine has no NVIDIA GPU (nvidia-smi not found)"
        return "this machine has no NVIDIA GPU (nvidia-smi lists none)"
    counts = Counter(gpu.name for gpu in sorted(gpus, key=lambda gpu: gpu.index))
    return "this machine has: " + ", ".join(f"{n} x {name}" for name, n in counts.items())


def check_gpu_request(request: GpuRequest, gpus: list[LocalGpu]) -> GpuChoice:
    """The first choice this machine could ever satisfy, busy or not.

    Raises :class:`GpuUnavailableError` when none could, so a call fails fast
    instead of waiting for GPUs that do not exist.
    """
    for choice in request.choices:
        if len(_matching(choice, gpus)) >= choice.count:
            return choice
    raise GpuUnavailableError(
        f"No local GPU matches gpu={str(request)!r}: {_describe_machine(gpus)}. {_NOMAD_HINT}"
    )


def assign_gpus(request: GpuRequest, gpus: list[LocalGpu], busy: set[int]) -> list[LocalGpu]:
    """Pick ``count`` free GPUs for the first choice, in preference order, that fits now.

    ``busy`` holds the indices other workers use. Returns ``[]`` when matching
    GPUs exist but are all busy (wait and retry); raises
    :class:`GpuUnavailableError` when no choice could ever be satisfied here.
    """
    check_gpu_request(request, gpus)
    for choice in request.choices:
        free = [gpu for gpu in _matching(choice, gpus) if gpu.index not in busy]
        if len(free) >= choice.count:
            return free[: choice.count]
    return []
