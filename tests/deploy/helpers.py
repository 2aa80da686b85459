"""Real processes around a real app server: a private state directory and store per test."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]


class Env:
    """Where one test's app server keeps its state, and how to run processes against it."""

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.state = tmp / "state"
        self.store = tmp / "store"
        self.vars = {
            **os.environ,
            "JUPYTER_REMOTE_STATE_DIR": str(self.state),
            "JUPYTER_REMOTE_DEPLOYMENTS_URL": str(self.store),
            "PYTHONPATH": str(ROOT),
        }

    def write(self, name: str, source: str) -> Path:
        path = self.tmp / name
        path.write_text(textwrap.dedent(source))
        return path

    def cli(
        self, *args: str, check: bool = True, timeout: float = 120
    ) -> subprocess.CompletedProcess[str]:
        code = "import sys, jupyter_remote.cli as c; sys.exit(c.main(sys.argv[1:]))"
        proc = subprocess.run(
            [sys.executable, "-c", code, *args],
            env=self.vars,
            cwd=self.tmp,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        if check and proc.returncode != 0:
            raise AssertionError(
                f"jupyter-remote {' '.join(args)} failed:\n{proc.stdout}\n{proc.stderr}"
            )
        return proc

    def python(
        self, source: str, check: bool = True, timeout: float = 120
    ) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run(
            [sys.executable, "-c", textwrap.dedent(source)],
            env=self.vars,
            cwd=self.tmp,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        if check and proc.returncode != 0:
            raise AssertionError(f"the client process failed:\n{proc.stdout}\n{proc.stderr}")
        return proc

    def popen(self, source: str) -> subprocess.Popen[str]:
        return subprocess.Popen(
            [sys.executable, "-c", textwrap.dedent(source)],
            env=self.vars,
            cwd=self.tmp,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    def server_state(self) -> dict[str, Any] | None:
        try:
            value: dict[str, Any] = json.loads((self.state / "server.json").read_text())
        except (OSError, ValueError):
            return None
        return value

    def app_log(self, app: str) -> str:
        path = self.state / "logs" / f"{app}.log"
        return path.read_text() if path.exists() else ""

    def wait_for(self, what: str, predicate: Any, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate():
                return
            time.sleep(0.1)
        raise AssertionError(f"timed out after {timeout}s waiting for {what}")

    def stop(self) -> None:
        """Stop this test's app server (and make sure it is gone)."""
        state = self.server_state()
        self.cli("server", "stop", check=False, timeout=60)
        if state is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(int(state["pid"]), signal.SIGKILL)


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie (killed, not yet reaped by its parent) is gone for our purposes.
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except OSError:
        return False
