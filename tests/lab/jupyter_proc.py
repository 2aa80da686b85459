"""A real ``jupyter server`` or ``jupyter lab`` in a subprocess, on a free port, with a token.

Its config, data and runtime directories are the test's own (the installed
extensions are still found under ``sys.prefix``); jupyter_remote's settings,
secrets and volumes are under the test's ``tmp`` too. ``log()`` is all the
server wrote (stdout and stderr), so tests can check what it logged.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import httpx

JUPYTER = str(Path(sys.executable).with_name("jupyter"))
BASE_URL = "/jr-base/"  # not "/": handlers must join the base URL


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Jupyter:
    url: str  # http://127.0.0.1:PORT/jr-base/
    token: str
    home: Path  # the test's directory: volumes, secrets, root_dir
    proc: subprocess.Popen[bytes]
    log_path: Path

    @property
    def api(self) -> str:
        return f"{self.url}jupyter-remote/api/"

    def client(self, *, token: bool = True) -> httpx.Client:
        headers = {"Authorization": f"token {self.token}"} if token else {}
        return httpx.Client(base_url=self.api, headers=headers, timeout=30)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


def isolated_env(home: Path, extra: Mapping[str, str] | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("JUPYTER", "NOMAD_"))}
    env.update(
        JUPYTER_CONFIG_DIR=str(home / "jupyter-config"),
        JUPYTER_DATA_DIR=str(home / "jupyter-data"),
        JUPYTER_RUNTIME_DIR=str(home / "jupyter-runtime"),
        JUPYTER_PLATFORM_DIRS="1",
        XDG_CONFIG_HOME=str(home / "xdg-config"),
        XDG_DATA_HOME=str(home / "xdg-data"),
        JUPYTER_REMOTE_BACKEND="local",
        JUPYTER_REMOTE_VOLUMES_URL=str(home / "volumes"),
        JUPYTER_REMOTE_PROGRESS="0",
    )
    env.update(extra or {})
    return env


@contextlib.contextmanager
def running_jupyter(
    home: Path, app: str = "server", env: Mapping[str, str] | None = None
) -> Iterator[Jupyter]:
    """Start ``jupyter APP`` and wait until it answers; stop it afterwards."""
    home.mkdir(parents=True, exist_ok=True)
    port, token = free_port(), secrets.token_hex(16)
    log_path = home / f"jupyter-{app}.log"
    cmd = [
        JUPYTER, app, "--no-browser", "--ServerApp.ip=127.0.0.1", f"--ServerApp.port={port}",
        f"--IdentityProvider.token={token}", f"--ServerApp.base_url={BASE_URL}",
        f"--ServerApp.root_dir={home}", "--ServerApp.port_retries=0",
    ]  # fmt: skip
    if os.geteuid() == 0:  # CI and these machines run as root
        cmd.append("--allow-root")
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            cmd, env=isolated_env(home, env), stdout=log, stderr=subprocess.STDOUT
        )
    jupyter = Jupyter(f"http://127.0.0.1:{port}{BASE_URL}", token, home, proc, log_path)
    try:
        deadline = time.monotonic() + 90
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"jupyter {app} exited: {jupyter.log()}")
            with contextlib.suppress(httpx.HTTPError):
                status = httpx.get(f"{jupyter.url}api/status?token={token}", timeout=2)
                if status.status_code == 200:
                    break
            if time.monotonic() > deadline:
                raise RuntimeError(f"jupyter {app} did not answer in 90 s: {jupyter.log()}")
            time.sleep(0.2)
        yield jupyter
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
