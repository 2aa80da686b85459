"""The conformance suite on the embedded local backend, plus what only it can check."""

from __future__ import annotations

import os
from pathlib import Path

from conformance_suite import BackendConformance, kill_caller_and_wait

CALLER = """
import subprocess, sys, time
sys.path.insert(0, {path!r})
import jupyter_remote as jr, conformance_funcs as funcs
app = jr.App("orphans")
f = app.function(max_containers=2)(funcs.sleep_pid)
calls = [f.spawn(60) for _ in range(2)]
pool = calls[0]._call.pool
deadline = time.monotonic() + 30
while sum(1 for w in pool.workers.values() if w.inflight) < 2:
    assert time.monotonic() < deadline
    time.sleep(0.05)
for w in pool.workers.values():
    out = subprocess.run(["pgrep", "-f", w.worker_id], capture_output=True, text=True).stdout
    for line in out.split():
        print(line, flush=True)
print("ready", flush=True)
time.sleep(120)
"""


class TestLocalBackend(BackendConformance):
    backend = "local"


def test_caller_killed_leaves_no_worker() -> None:
    script = CALLER.format(path=str(Path(__file__).parent))
    pids, gone = kill_caller_and_wait(script, dict(os.environ), timeout=30)
    assert len(pids) == 2, pids
    assert gone, f"workers still alive 30 s after the caller died: {pids}"
