"""Start a throwaway ``nomad agent -dev`` for tests and recordings (no pytest needed).

::

    agent = start_dev_agent(tmp_dir)
    try:
        ...  # talk to agent.address
    finally:
        agent.stop()

The agent binds 127.0.0.1 on free random ports, keeps its state under
``tmp_dir`` and enables ``raw_exec``, so several engineers (and several test
sessions) can run agents side by side. ``start_dev_agent`` returns once the
leader is elected and the dev node is ready and eligible.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["DevAgent", "start_dev_agent"]

_CONFIG = """\
bind_addr = "127.0.0.1"
data_dir  = "{data_dir}"
log_level = "INFO"
disable_update_check = true

ports {{
  http = {http}
  rpc  = {rpc}
  serf = {serf}
}}

advertise {{
  http = "127.0.0.1"
  rpc  = "127.0.0.1"
  serf = "127.0.0.1"
}}

client {{
  gc_max_allocs = 500
}}

plugin "raw_exec" {{
  config {{
    enabled = true
  }}
}}

acl {{
  enabled = {acl}
}}
"""


@dataclass
class DevAgent:
    """A running dev agent; ``address`` is its HTTP API, ``log_path`` its output.

    With ACLs enabled, ``token`` is the bootstrap (management) token's secret ID.
    """

    address: str
    process: subprocess.Popen[bytes]
    data_dir: Path
    log_path: Path
    token: str | None = field(default=None, repr=False)
    _log_file: Any = field(repr=False, default=None)

    def request(self, method: str, path: str, body: Any = None) -> Any:
        """Send a JSON request to the agent's API (with ``token``) and decode the answer."""
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.address + path, data=data, method=method)
        if self.token:
            req.add_header("X-Nomad-Token", self.token)
        with urllib.request.urlopen(req, timeout=5) as resp:
            return json.loads(resp.read() or b"null")

    def get(self, path: str) -> Any:
        """GET a JSON document from the agent's API (for readiness checks and helpers)."""
        return self.request("GET", path)

    def log_tail(self, n: int = 40) -> str:
        try:
            lines = self.log_path.read_text(errors="replace").splitlines()
        except OSError:
            return ""
        return "\n".join(lines[-n:])

    def stop(self, timeout: float = 15.0) -> None:
        """Stop the agent (SIGINT, then SIGKILL) and close its log. Safe to call twice."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=timeout)
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None


def _free_ports(n: int) -> list[int]:
    socks = []
    try:
        for _ in range(n):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def _ready(agent: DevAgent, acl: bool) -> bool:
    try:
        if not agent.get("/v1/status/leader"):
            return False
        if acl and agent.token is None:
            agent.token = agent.request("POST", "/v1/acl/bootstrap", {})["SecretID"]
        nodes = [
            n
            for n in agent.get("/v1/nodes")
            if n.get("Status") == "ready" and n.get("SchedulingEligibility") == "eligible"
        ]
        if not nodes:
            return False
        # raw_exec must be fingerprinted before jobs using it can be placed.
        node = agent.get(f"/v1/node/{nodes[0]['ID']}")
    except (OSError, urllib.error.URLError, ValueError, KeyError):
        return False
    driver = (node.get("Drivers") or {}).get("raw_exec") or {}
    return bool(driver.get("Detected") and driver.get("Healthy"))


def start_dev_agent(
    tmp_dir: str | os.PathLike[str],
    *,
    acl: bool = False,
    timeout: float = 60.0,
    binary: str = "nomad",
) -> DevAgent:
    """Start ``nomad agent -dev`` with its state under ``tmp_dir``; wait until a node is ready.

    With ``acl``, ACLs are enforced and the agent is bootstrapped: ``agent.token``
    is the management token.
    """
    exe = shutil.which(binary)
    if exe is None:
        raise FileNotFoundError(f"{binary!r} is not on PATH; install Nomad to run a dev agent")
    root = Path(tmp_dir)
    last_error = ""
    for _attempt in range(3):  # a random port may be taken between probing and binding
        http, rpc, serf = _free_ports(3)
        data_dir = root / f"nomad-data-{http}"
        data_dir.mkdir(parents=True, exist_ok=True)
        config = root / "agent.hcl"
        config.write_text(
            _CONFIG.format(data_dir=data_dir, http=http, rpc=rpc, serf=serf, acl=str(acl).lower())
        )
        log_path = root / f"agent-{http}.log"
        log_file = log_path.open("wb")
        env = {k: v for k, v in os.environ.items() if not k.startswith("NOMAD_")}
        process = subprocess.Popen(
            [exe, "agent", "-dev", f"-config={config}"],
            stdout=log_file,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=env,
            start_new_session=True,
        )
        agent = DevAgent(
            address=f"http://127.0.0.1:{http}",
            process=process,
            data_dir=data_dir,
            log_path=log_path,
            _log_file=log_file,
        )
        try:
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline and process.poll() is None:
                if _ready(agent, acl):
                    return agent
                time.sleep(0.25)
        except BaseException:
            agent.stop()
            raise
        exited = process.poll() is not None
        agent.stop()
        last_error = agent.log_tail()
        if not (exited and "address already in use" in last_error):
            break
    raise RuntimeError(f"nomad dev agent did not become ready; its log ends:\n{last_error}")
