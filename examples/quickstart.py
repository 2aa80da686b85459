"""The 2-minute tour: `make demo` runs this on the embedded local backend.

Every call below runs in worker processes started for this script; set
JUPYTER_REMOTE_BACKEND=nomad (and NOMAD_ADDR) to run the same code on a cluster.
"""

from __future__ import annotations

import os
import time
import traceback

import jupyter_remote as jr

app = jr.App("quickstart")


@app.function(cpu=1, memory=512, timeout=60, retries=2)
def square(x: int) -> int:
    print(f"squaring {x} in worker pid {os.getpid()}")
    return x * x


@app.function(timeout=60)
def slow_square(x: int) -> int:
    time.sleep(0.01)
    return x * x


@app.function()
def divide(a: float, b: float) -> float:
    return a / b


@app.cls(max_containers=1)
class Counter:
    @jr.enter()
    def setup(self) -> None:
        self.total = 0  # loaded once per worker, like a model on a GPU

    @jr.method()
    def add(self, x: int) -> int:
        self.total += x
        return self.total


@app.local_entrypoint()
def main() -> None:
    """Also runs as `jupyter-remote run examples/quickstart.py` (inside app.run())."""
    print(f"== jupyter_remote quickstart (caller pid {os.getpid()}, backend {app.backend_name})")
    t0 = time.perf_counter()
    print("\n-- .remote: one call, its print() streamed back")
    start = time.perf_counter()
    print("square.remote(7) =", square.remote(7), f"({time.perf_counter() - start:.2f}s)")
    print("square.local(7)  =", square.local(7), "(ran here)")

    print("\n-- .map over 300 inputs across the workers, with progress")
    start = time.perf_counter()
    results = list(slow_square.map(range(300)))
    elapsed = time.perf_counter() - start
    print(f"sum = {sum(results)} in {elapsed:.2f}s (300 x 10 ms of work)")

    print("\n-- .spawn: start now, collect later")
    call = square.spawn(12)
    print(f"{call.object_id}: {call.get(timeout=30)}")

    print("\n-- @app.cls: state from @enter persists on the worker")
    counter = Counter()
    print("running totals:", [counter.add.remote(x) for x in (1, 2, 3)])

    print("\n-- an exception keeps its type and shows the remote traceback")
    try:
        divide.remote(1, 0)
    except ZeroDivisionError:
        traceback.print_exc(limit=0)
    print(f"\n== done in {time.perf_counter() - t0:.1f}s; the workers stop when this returns")


if __name__ == "__main__":
    main()
