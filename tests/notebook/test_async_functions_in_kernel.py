"""Async functions defined in a notebook cell, called from a real kernel (its loop runs)."""

from __future__ import annotations

from kernel_harness import Kernel

CELL = """
import asyncio, jupyter_remote as jr
app = jr.App("nb-async")

@app.function(max_containers=1)
@jr.concurrent(max_inputs=3)
async def meet(x):
    state = globals().setdefault("_met", {"n": 0, "all": asyncio.Event()})
    state["n"] += 1
    if state["n"] >= 3:
        state["all"].set()
    await asyncio.wait_for(state["all"].wait(), 30)
    print("met", x, jr.current_input_id() is not None)
    return x * 10

@app.function()
async def double(x):
    await asyncio.sleep(0)
    return 2 * x
"""


def test_async_function_from_a_cell_runs_and_prints_into_the_cell(kernel: Kernel) -> None:
    kernel.ok(CELL)
    # Three calls (not a map: its output goes to the progress widget) meet on one worker.
    ex = kernel.ok("calls = [meet.spawn(x) for x in range(3)]\nprint([c.get() for c in calls])")
    assert ex.stdout.splitlines()[-1] == "[0, 10, 20]"
    for x in range(3):
        assert f"met {x} True\n" in ex.stdout
    assert kernel.ok("print(double.remote(4))").stdout == "8\n"  # sync call, loop running
    assert kernel.ok("print(await double.remote.aio(5))").stdout == "10\n"  # top-level await
