"""`.map` progress in a terminal: a redrawn bar on a TTY, one summary line otherwise, or none."""

from __future__ import annotations

import os
import pty
import subprocess
import sys
from pathlib import Path

CONFORMANCE = str(Path(__file__).parent.parent / "conformance")
SCRIPT = f"""
import sys
sys.path.insert(0, {CONFORMANCE!r})
import jupyter_remote as jr, conformance_funcs as funcs
f = jr.App("progress").function()(funcs.sleep_return)
print("sum", sum(f.map([0.01] * 100)))
"""


def _run(progress: str, tty: bool) -> str:
    env = {**os.environ, "JUPYTER_REMOTE_PROGRESS": progress}
    if not tty:
        proc = subprocess.run(
            [sys.executable, "-c", SCRIPT], capture_output=True, text=True, env=env, timeout=60
        )
        assert proc.returncode == 0, proc.stderr
        return proc.stderr
    leader, follower = pty.openpty()
    proc2 = subprocess.Popen(
        [sys.executable, "-c", SCRIPT], stdin=follower, stdout=follower, stderr=follower, env=env
    )
    os.close(follower)
    chunks = []
    while True:
        try:
            data = os.read(leader, 4096)
        except OSError:  # the other side closed
            break
        if not data:
            break
        chunks.append(data)
    os.close(leader)
    assert proc2.wait(timeout=60) == 0
    return b"".join(chunks).decode()


def test_tty_gets_a_redrawn_bar() -> None:
    out = _run("1", tty=True)
    assert "sum 1.0" in out
    assert out.count("\r") >= 2 and "100/100" in out


def test_pipe_gets_one_summary_line() -> None:
    err = _run("1", tty=False)
    lines = [line for line in err.splitlines() if "sleep_return.map" in line]
    assert len(lines) == 1 and "100/100" in lines[0] and "\r" not in err


def test_progress_can_be_turned_off() -> None:
    assert "sleep_return.map" not in _run("0", tty=False)
