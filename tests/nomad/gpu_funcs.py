"""What GPU workers run in the placement tests (shipped by value: nodes cannot import it)."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass


@dataclass(frozen=True)
class Seen:
    """What one input saw on its worker: process, GPUs and when it ran (host clock)."""

    pid: int
    cuda: str | None  # CUDA_VISIBLE_DEVICES
    nvidia: str | None  # NVIDIA_VISIBLE_DEVICES, as Nomad's device plugin set it
    start: float
    end: float

    @property
    def gpus(self) -> list[str]:
        return (self.cuda or "").split(",") if self.cuda else []


def visible_gpus(seconds: float = 0.0) -> Seen:
    start = time.time()
    time.sleep(seconds)
    env = os.environ
    return Seen(
        os.getpid(),
        env.get("CUDA_VISIBLE_DEVICES"),
        env.get("NVIDIA_VISIBLE_DEVICES"),
        start,
        time.time(),
    )
