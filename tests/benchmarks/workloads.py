"""The functions every peer runs in its workers.

They live in an importable module (``tests/benchmarks`` is put on ``sys.path``
by ``run.py``) so that every peer pickles them by reference: the workers
import this module instead of receiving the function's code, as they would
for a library function.
"""

from __future__ import annotations

import os
import time
from typing import Any, TypeVar

T = TypeVar("T")


def identity(x: T) -> T:
    """The trivial function: measures pure overhead (and, with a big array, transfer)."""
    return x


def sleep_1ms(x: T) -> T:
    """One millisecond of non-CPU work per input."""
    time.sleep(0.001)
    return x


def sleep_1ms_duration(n: int = 1000) -> float:
    """What ``time.sleep(0.001)`` really takes here, in seconds (mean over ``n`` in a loop)."""
    t0 = time.perf_counter()
    for _ in range(n):
        time.sleep(0.001)
    return (time.perf_counter() - t0) / n


def sleep_pid(_: Any = None) -> int:
    """The worker's process id, after a short sleep so that every worker gets some inputs."""
    time.sleep(0.01)
    return os.getpid()
