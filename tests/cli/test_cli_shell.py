"""``jupyter-remote shell``: a shell on a real worker, with the function's environment, on a pty."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

TARGET = str(Path(__file__).parent / "scripts" / "shell_target.py")
CONSOLE_SCRIPT = Path(sys.executable).parent / "jupyter-remote"
TYPED = 'echo "TASK=$JUPYTER_REMOTE_TASK_ID VAR=$SHELL_TEST_VAR TTY=$(tty)"\nexit 3\n'


def shell(*args: str, typed: str = TYPED) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "JUPYTER_REMOTE_PROGRESS": "0"}
    return subprocess.run(
        [str(CONSOLE_SCRIPT), "shell", *args],
        input=typed,
        capture_output=True,
        text=True,
        env=env,
        timeout=90,
    )


def test_the_shell_runs_on_a_worker_with_the_functions_environment() -> None:
    proc = shell(f"{TARGET}::fit", "--cmd", "sh")
    assert proc.returncode == 3, proc.stderr  # the shell's own exit code
    # The pty echoes what was typed; the line the shell printed has the values.
    seen = re.findall(r"TASK=([^$\s]+) VAR=(\S+) TTY=(\S+)", proc.stdout)
    assert len(seen) == 1, proc.stdout
    task, var, tty = seen[0]
    assert task.startswith("cli-shell-fit_shell-")  # a worker's task id: not this process
    assert var == "from-the-function"
    assert tty.startswith("/dev/pts/")  # a real terminal, so REPLs and editors work


def test_a_python_repl_as_the_command() -> None:
    proc = shell(f"{TARGET}::fit", "--cmd", "python3 -i -q", typed="print(6 * 7)\nexit(0)\n")
    assert proc.returncode == 0, proc.stderr
    assert "\n42" in proc.stdout.replace("\r", "")


def test_a_local_entrypoint_is_refused() -> None:
    proc = shell(f"{TARGET}::main")
    assert proc.returncode == 2
    assert "is a local entrypoint; give an @app.function()" in proc.stderr
