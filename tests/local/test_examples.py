"""`make demo` runs examples/quickstart.py: it must keep working, on local workers."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

EXAMPLES = Path(__file__).parent.parent.parent / "examples"


def test_quickstart_runs() -> None:
    env = {**os.environ, "JUPYTER_REMOTE_PROGRESS": "1"}
    proc = subprocess.run(
        [sys.executable, str(EXAMPLES / "quickstart.py")],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )
    assert proc.returncode == 0, proc.stderr
    out, err = proc.stdout, proc.stderr
    assert "square.remote(7) = 49" in out
    assert "squaring 7 in worker pid" in out  # streamed from the worker
    assert "sum = 8955050" in out
    assert "running totals: [1, 3, 6]" in out
    assert "slow_square.map [" in err and "300/300" in err  # the progress summary line
    assert 'quickstart.py", line' in err and "return a / b" in err  # remote traceback
    assert "ZeroDivisionError: division by zero" in err
