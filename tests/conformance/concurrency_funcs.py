"""Functions the concurrency suite runs on workers: async ones and ``@concurrent`` ones.

Concurrency is proven without clocks: inputs that wait for each other (an
``asyncio.Event`` or a ``threading.Barrier`` per test ``token``, on the worker)
only finish if they run at the same time; the 30 s bound only turns a hang into
an error. State lives in module globals, so each worker has its own.
"""

from __future__ import annotations

import asyncio
import os
import threading
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import jupyter_remote as jr

WAIT = 30.0  # a bound that turns a hang into an error, never a measurement
# Plain data only: on Nomad this module travels by value, with its globals.
_groups: dict[str, dict[str, Any]] = {}

Ids = tuple[int, str | None, str | None]


def _ids(x: int) -> Ids:
    return x, jr.current_input_id(), jr.current_function_call_id()


async def _meet(token: str, n: int, x: int) -> Ids:
    """Wait until ``n`` inputs of ``token`` are running on this worker's loop."""
    group = _groups.setdefault(token, {"arrived": 0, "all": asyncio.Event()})
    group["arrived"] += 1
    print(f"arrived {x}")
    if group["arrived"] >= n:
        group["all"].set()
    await asyncio.wait_for(group["all"].wait(), WAIT)
    print(f"met {x}")
    return _ids(x)


async def meet(token: str, n: int, x: int) -> Ids:
    return await _meet(token, n, x)


@jr.concurrent(max_inputs=4)
async def meet4(token: str, n: int, x: int) -> Ids:
    return await _meet(token, n, x)


@jr.concurrent(max_inputs=2)
async def peak2(token: str, x: int) -> int:
    """How many inputs of ``token`` ran at once at most, having waited until 2 did."""
    group = _groups.setdefault(token, {"running": 0, "peak": 0, "full": asyncio.Event()})
    group["running"] += 1
    group["peak"] = max(group["peak"], group["running"])
    if group["running"] >= 2:
        group["full"].set()
    await asyncio.wait_for(group["full"].wait(), WAIT)
    await asyncio.sleep(0.01)  # lets an input admitted past the limit show up in the peak
    group["running"] -= 1
    return int(group["peak"])


async def peak1(token: str, x: int) -> int:
    """How many inputs of ``token`` ran at once at most (an async function, no @concurrent)."""
    group = _groups.setdefault(token, {"running": 0, "peak": 0})
    group["running"] += 1
    group["peak"] = max(group["peak"], group["running"])
    await asyncio.sleep(0.01)
    group["running"] -= 1
    return int(group["peak"])


@jr.concurrent(max_inputs=3)
def meet_threads(token: str, n: int, x: int) -> Ids:
    """A sync input in one of the worker's threads: waits until ``n`` of them run."""
    # dict.setdefault is atomic: every thread gets the same barrier.
    barrier = _groups.setdefault(token, {"barrier": threading.Barrier(n)})["barrier"]
    print(f"arrived {x}")
    barrier.wait(WAIT)
    print(f"met {x}")
    return _ids(x)


def plain_ids(x: int) -> Ids:
    return _ids(x)


@jr.concurrent(max_inputs=4, target_inputs=2)
def pid_targeted(_: Any) -> int:
    return os.getpid()


@jr.concurrent(max_inputs=4)
def pid_concurrent(_: Any) -> int:
    return os.getpid()


async def double(x: int) -> int:
    await asyncio.sleep(0)
    return 2 * x


async def acount(n: int) -> AsyncIterator[int]:
    for i in range(n):
        await asyncio.sleep(0)
        yield i


async def araise(x: int) -> None:
    await asyncio.sleep(0)
    raise ValueError(f"async failure {x}")


async def asleep(seconds: float) -> float:
    await asyncio.sleep(seconds)
    return seconds


async def fail_twice(path: str) -> int:
    """Fails on its first two attempts (counted in ``path``), then returns the attempt number."""
    file = Path(path)
    attempt = int(file.read_text()) + 1 if file.exists() else 1
    file.write_text(str(attempt))
    await asyncio.sleep(0)
    if attempt <= 2:
        raise RuntimeError(f"attempt {attempt} fails")
    return attempt


async def wait_cancelled(started: str, marker: str) -> None:
    Path(started).write_text("started")
    try:
        await asyncio.sleep(WAIT * 4)
    except asyncio.CancelledError:
        Path(marker).write_text("cancelled")
        raise


@jr.concurrent(max_inputs=2)
def spin_interruptible(started: str, marker: str) -> None:
    Path(started).write_text("started")
    try:
        deadline = time.monotonic() + WAIT * 4
        while time.monotonic() < deadline:
            time.sleep(0.01)
    except KeyboardInterrupt:
        Path(marker).write_text("interrupted")
        raise


@jr.concurrent(max_inputs=3)
class Service:
    """A class whose hooks are async and whose methods run at once (async and sync)."""

    def __init__(self, exit_marker: str = "") -> None:
        self.exit_marker = exit_marker
        self.entered: tuple[str | None, bool] | None = None

    @jr.enter()
    async def start(self) -> None:
        await asyncio.sleep(0)
        self.entered = (jr.current_input_id(), asyncio.get_running_loop().is_running())

    @jr.method()
    async def ameet(self, token: str, n: int, x: int) -> tuple[Ids, Any]:
        return await _meet(token, n, x), self.entered

    @jr.method()
    def smeet(self, token: str, n: int, x: int) -> Ids:
        return meet_threads(token, n, x)

    @jr.exit()
    async def stop(self) -> None:
        await asyncio.sleep(0)
        if self.exit_marker:
            Path(self.exit_marker).write_text("async exit ran")


class Meeter:
    """No ``@concurrent`` of its own: the caller sets it with ``Cls.with_concurrency``."""

    @jr.method()
    async def meet(self, token: str, n: int, x: int) -> Ids:
        return await _meet(token, n, x)


@jr.concurrent(max_inputs=2)
async def stuck_or_second_try(x: int, marker: str) -> int:
    """Input 0 never ends; input 1 hangs on its first attempt and returns on its next."""
    if x == 1 and Path(marker).exists():
        return x
    if x == 1:
        Path(marker).write_text("first attempt")
    await asyncio.sleep(WAIT * 4)
    return x


def hidden_coroutine(x: int) -> Any:
    """A sync wrapper around a coroutine function: what a careless decorator makes."""
    return double(x)


def build_nested(app: jr.App) -> Any:
    """``outer``: two inputs at once, which meet, then each make a call that prints."""

    @app.function()
    def loud(word: str) -> str:
        print(f"nested call of {word}")
        return word

    @app.function(max_containers=1)
    @jr.concurrent(max_inputs=2)
    async def outer(token: str, word: str) -> str:
        await _meet(token, 2, 0)  # both run: for one of them, another input started last
        return str(await loud.remote.aio(word))

    return outer


class Mixed:
    """No ``@concurrent``: its async and sync methods share one input at a time."""

    def __init__(self) -> None:
        self.holding = False

    @jr.method()
    async def hold(self, started: str) -> bool:
        self.holding = True
        Path(started).write_text("started")
        await asyncio.sleep(1.0)  # a sync input that ran meanwhile would see holding
        self.holding = False
        return True

    @jr.method()
    def peek(self) -> bool:
        return self.holding
