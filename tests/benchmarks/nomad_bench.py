"""Nomad backend vs local backend, in one run: cold first result and warm `.remote` p50.

    .venv/bin/python tests/benchmarks/nomad_bench.py [--calls 2000] [--trials 5]

Needs a `nomad` binary on PATH: a dev agent (raw_exec, loopback, random ports)
is started for the run and stopped after it. "Cold" is from nothing running
(no pool, no job) to the first result of `identity(1)`: for Nomad that is
register job → evaluation → allocation → node Python starts the bootstrap →
runtime fetched (cached after the first trial) → connect → result.
"""

from __future__ import annotations

import argparse
import datetime
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "nomad"))

import cloudpickle  # noqa: E402
import workloads  # noqa: E402


def measure(backend: str, calls: int, trials: int) -> tuple[list[float], list[float]]:
    import jupyter_remote as jr

    colds: list[float] = []
    for trial in range(trials):
        app = jr.App(f"bench-{backend}-{trial}", backend=backend)
        f = app.function()(workloads.identity)
        start = time.perf_counter()
        assert f.remote(1) == 1
        colds.append(time.perf_counter() - start)
        app.stop()
    app = jr.App(f"bench-{backend}-warm", backend=backend)
    f = app.function(min_containers=1)(workloads.identity)
    for i in range(200):
        f.remote(i)
    samples = []
    for i in range(calls):
        start = time.perf_counter()
        f.remote(i)
        samples.append(time.perf_counter() - start)
    app.stop()
    return colds, samples


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--trials", type=int, default=5)
    args = parser.parse_args(argv)
    if shutil.which("nomad") is None:
        print("nomad_bench: skipped: no `nomad` binary on PATH")
        return 0
    from agent import start_dev_agent

    os.environ["JUPYTER_REMOTE_PROGRESS"] = "0"
    print(f"$ {' '.join([Path(sys.executable).name, *sys.argv])}")
    print(f"date {datetime.datetime.now(datetime.UTC).isoformat(timespec='seconds')}, "
          f"Python {sys.version.split()[0]}, {os.cpu_count()} CPUs")  # fmt: skip
    agent = start_dev_agent(Path(tempfile.mkdtemp(prefix="jr-bench-nomad-")))
    try:
        os.environ["NOMAD_ADDR"] = agent.address
        cloudpickle.register_pickle_by_value(workloads)  # nodes cannot import the harness
        rows = {}
        for backend in ("local", "nomad"):
            colds, warm = measure(backend, args.calls, args.trials)
            rows[backend] = (statistics.median(colds), statistics.median(warm))
            print(f"{backend}: cold trials {[round(c, 3) for c in colds]}")
    finally:
        agent.stop()
    (lc, lw), (nc, nw) = rows["local"], rows["nomad"]
    print()
    print("| metric | local | nomad | nomad / local | target | met |")
    print("|---|---|---|---|---|---|")
    print(f"| cold first result (median) | {lc:.3f} s | {nc:.3f} s | {nc / lc:.1f}x "
          f"| ≤ 2 s on raw_exec | {'yes' if nc <= 2 else 'no'} |")  # fmt: skip
    print(f"| warm `.remote` p50 | {lw * 1e6:.0f} µs | {nw * 1e6:.0f} µs | {nw / lw:.2f}x "
          f"| ≤ 2x local | {'yes' if nw <= 2 * lw else 'no'} |")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
