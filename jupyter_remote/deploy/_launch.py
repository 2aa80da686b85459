"""Start the app server on demand: one detached process per user, found by its state file."""

from __future__ import annotations

import contextlib
import fcntl
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

from ..exceptions import BackendError
from ._paths import read_state, state_dir

__all__ = [
    "alive",
    "ensure_started",
    "reachable",
    "server_lock",
    "start_server",
    "stop_pid",
]

START_TIMEOUT = 60.0


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@contextlib.contextmanager
def server_lock() -> Iterator[None]:
    """Held while a process checks for, starts or stops the app server (one at a time)."""
    fd = os.open(state_dir() / "server.lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def _log_tail(n: int = 20) -> str:
    try:
        lines = (state_dir() / "server.log").read_text(errors="replace").splitlines()
    except OSError:
        return ""
    return "\n".join(lines[-n:])


def start_server() -> dict[str, Any]:
    """Start a detached app server and wait for its state file; call under :func:`server_lock`."""
    log = os.open(state_dir() / "server.log", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    try:
        proc = subprocess.Popen(
            [sys.executable, "-m", "jupyter_remote.deploy", "serve"],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
            start_new_session=True,  # outlives the caller's terminal, kernel and process group
            close_fds=True,
        )
    finally:
        os.close(log)
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        state = read_state()
        if state is not None and state.get("pid") == proc.pid:
            return state
        if proc.poll() is not None:
            raise BackendError(
                f"the app server exited at start (status {proc.returncode}); its log "
                f"({state_dir() / 'server.log'}) ends with:\n{_log_tail()}"
            )
        time.sleep(0.05)
    raise BackendError(
        f"the app server did not start within {START_TIMEOUT:g}s; see {state_dir() / 'server.log'}"
    )


def reachable(state: dict[str, Any] | None) -> bool:
    """Whether the app server of ``state`` accepts connections (a killed one does not)."""
    if state is None:
        return False
    try:
        with socket.create_connection((str(state["host"]), int(state["port"])), timeout=5):
            return True
    except (OSError, KeyError, ValueError):
        return False


def ensure_started() -> dict[str, Any]:
    """The running app server's state, starting one if none runs (or it was killed)."""
    with server_lock():
        state = read_state()
        if reachable(state):
            assert state is not None
            return state
        return start_server()


def stop_pid(pid: int, timeout: float = 20.0) -> bool:
    """SIGTERM ``pid`` and wait for it to exit; True if it did."""
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not alive(pid):
            return True
        time.sleep(0.05)
    return not alive(pid)
