"""What the local backend does when things go wrong around the user code.

Each scenario runs a caller script in a fresh interpreter (settings are read
once per process), with real worker processes.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

CONFORMANCE = str(Path(__file__).parent.parent / "conformance")


def run_caller(body: str, env: dict[str, str] | None = None, timeout: float = 60) -> str:
    script = f"import sys\nsys.path.insert(0, {CONFORMANCE!r})\n" + textwrap.dedent(body)
    proc = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **(env or {})},
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc.stdout


def test_missing_worker_interpreter_is_a_config_error() -> None:
    out = run_caller(
        """
        import jupyter_remote as jr, conformance_funcs as funcs
        app = jr.App("bad-python")
        try:
            app.function()(funcs.identity).remote(1)
        except jr.ConfigError as exc:
            print("ConfigError:", exc)
        """,
        env={"JUPYTER_REMOTE_PYTHON": "/nonexistent/python"},
    )
    assert "ConfigError:" in out and "/nonexistent/python" in out
    assert "JUPYTER_REMOTE_PYTHON" in out


def test_worker_that_cannot_start_shows_its_stderr(tmp_path: Path) -> None:
    broken = tmp_path / "python"
    broken.write_text("#!/bin/sh\necho 'ImportError: no module named torchvision' >&2\nexit 1\n")
    broken.chmod(0o755)
    start = time.monotonic()
    out = run_caller(
        """
        import jupyter_remote as jr, conformance_funcs as funcs
        app = jr.App("broken-python")
        try:
            app.function()(funcs.identity).remote(1)
        except jr.WorkerStartError as exc:
            print("WorkerStartError:", exc)
        """,
        env={"JUPYTER_REMOTE_PYTHON": str(broken)},
    )
    assert "WorkerStartError:" in out
    assert "exited with status 1 before it connected" in out
    assert "no module named torchvision" in out
    assert time.monotonic() - start < 30


PY312 = Path.home() / ".pyenv/versions/3.12.1/bin/python3.12"


@pytest.mark.skipif(not PY312.exists(), reason=f"needs a second Python minor version at {PY312}")
def test_python_version_mismatch_is_named() -> None:
    out = run_caller(
        """
        import jupyter_remote as jr, conformance_funcs as funcs
        app = jr.App("py312")
        try:
            app.function()(funcs.identity).remote(1)
        except jr.VersionMismatchError as exc:
            print("VersionMismatchError:", exc)
        """,
        env={"JUPYTER_REMOTE_PYTHON": str(PY312)},
    )
    assert "VersionMismatchError:" in out
    assert "runs Python 3.12 but the caller runs Python 3.11" in out


def test_ctrl_c_in_the_caller_interrupts_the_remote_input(tmp_path: Path) -> None:
    marker = tmp_path / "marker"
    script = f"""
import sys, time
sys.path.insert(0, {CONFORMANCE!r})
import jupyter_remote as jr, conformance_funcs as funcs
app = jr.App("ctrl-c")
f = app.function()(funcs.sleep_interruptible)
warm = app.function()(funcs.pid)
print("ready", flush=True)
start = time.monotonic()
try:
    f.remote(60, {str(marker)!r})
except KeyboardInterrupt:
    print(f"interrupted after {{time.monotonic() - start:.1f}}", flush=True)
print("usable", warm.remote(), flush=True)
"""
    proc = subprocess.Popen(
        [sys.executable, "-c", script], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "ready"
    time.sleep(2.0)  # the worker starts and the input begins sleeping
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=30)
    proc.stdout.close()
    assert "interrupted after" in out, out + err
    assert "usable" in out
    deadline = time.monotonic() + 5
    while not marker.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert marker.read_text() == "interrupted"  # KeyboardInterrupt was raised remotely


def test_huge_function_is_refused_naming_the_global() -> None:
    out = run_caller(
        """
        import warnings
        import jupyter_remote as jr
        BIG = b"x" * (3 << 20)
        def uses_big():
            return len(BIG)
        app = jr.App("huge")
        f = app.function()(uses_big)
        try:
            f.remote()
        except jr.SerializationError as exc:
            print("SerializationError:", exc)
        """,
        env={"JUPYTER_REMOTE_FUNCTION_MAX_BYTES": str(2 << 20)},
    )
    assert "SerializationError:" in out and "'BIG'" in out and "bytes" in out


def test_large_function_warns_and_runs() -> None:
    out = run_caller(
        """
        import warnings
        import jupyter_remote as jr
        BIG = b"x" * (3 << 20)
        def uses_big():
            return len(BIG)
        app = jr.App("large")
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            print("result", app.function()(uses_big).remote())
        print("warning:", caught[0].message)
        """,
        env={"JUPYTER_REMOTE_FUNCTION_WARN_BYTES": str(1 << 20)},
    )
    assert f"result {3 << 20}" in out
    assert "warning: uses_big pickles to 3 MiB" in out and "'BIG'" in out
