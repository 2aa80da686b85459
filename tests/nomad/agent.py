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

With ``gpus`` (and ``plugin_dir``, the folder ``../shared/nomad/install
--plugins DIR`` wrote), the node runs the ``nomad-device-fakegpu`` device
plugin and looks like a node with those NVIDIA GPUs; ``start_dev_agent`` then
also waits until the node has fingerprinted all of them::

    agent = start_dev_agent(tmp_dir, plugin_dir=plugins,
                            gpus=[FakeGpus("NVIDIA H100 80GB HBM3", 2, 81559)])
    agent.gpu_ids()  # {"NVIDIA H100 80GB HBM3": ["GPU-...", "GPU-..."]}
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = [
    "A100_40GB",
    "FAKEGPU_PLUGIN",
    "H100_80GB",
    "DevAgent",
    "FakeGpus",
    "nomad_backend_for",
    "start_dev_agent",
]

#: The device plugin's file name in its plugin_dir, which is also its name in the agent config.
FAKEGPU_PLUGIN = "nomad-device-fakegpu"

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

_FAKEGPU_CONFIG = """
plugin_dir = "{plugin_dir}"

plugin "{plugin}" {{
  config {{
    gpus = [
{groups}
    ]
  }}
}}
"""


@dataclass(frozen=True)
class FakeGpus:
    """One group of identical GPUs for the fake device plugin (NVML name, count, MiB)."""

    model: str
    count: int
    memory_mib: int

    def hcl(self) -> str:
        return (
            f"      {{ model = {json.dumps(self.model)}, count = {self.count}, "
            f"memory_mib = {self.memory_mib} }},"
        )


#: The node of ../shared/nomad/fakegpu-agent.hcl, as nomad-device-nvidia would report it.
H100_80GB = FakeGpus("NVIDIA H100 80GB HBM3", 2, 81559)
A100_40GB = FakeGpus("NVIDIA A100-SXM4-40GB", 1, 40960)


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
    _argv: list[str] = field(repr=False, default_factory=list)
    _env: dict[str, str] = field(repr=False, default_factory=dict)
    _acl: bool = field(repr=False, default=False)
    _gpus: int = field(repr=False, default=0)

    def restart(self, timeout: float = 60.0) -> None:
        """Start the stopped agent again, on the same ports and config; wait until it is ready."""
        self.stop()
        self._log_file = self.log_path.open("ab")
        self.process = subprocess.Popen(
            self._argv,
            stdout=self._log_file,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=self._env,
            start_new_session=True,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and self.process.poll() is None:
            if _ready(self, self._acl, self._gpus):
                return
            time.sleep(0.25)
        raise RuntimeError(f"nomad dev agent did not come back; its log ends:\n{self.log_tail()}")

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

    def worker_allocations(self, job_id: str) -> list[dict[str, Any]]:
        """The allocations of a pool's workers: of the dispatches of its job ``job_id``."""
        return [
            a
            for a in self.get("/v1/allocations")
            if str(a.get("JobID", "")).startswith(f"{job_id}/dispatch-")
        ]

    def gpu_ids(self) -> dict[str, list[str]]:
        """The NVIDIA GPUs the node reports: model name -> instance ids (GPU UUIDs)."""
        return _gpu_ids(self._node())

    def _node(self) -> Any:
        (stub,) = self.get("/v1/nodes")
        return self.get(f"/v1/node/{stub['ID']}")

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


def _gpu_ids(node: Any) -> dict[str, list[str]]:
    devices = (node.get("NodeResources") or {}).get("Devices") or []
    return {
        str(d["Name"]): [str(i["ID"]) for i in d.get("Instances") or []]
        for d in devices
        if (d.get("Vendor"), d.get("Type")) == ("nvidia", "gpu")
    }


def _ready(agent: DevAgent, acl: bool, gpus: int = 0) -> bool:
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
    if not (driver.get("Detected") and driver.get("Healthy")):
        return False
    # Device plugins fingerprint after the node registers: jobs asking for GPUs before
    # that would be unplaceable.
    return sum(len(ids) for ids in _gpu_ids(node).values()) >= gpus


def start_dev_agent(
    tmp_dir: str | os.PathLike[str],
    *,
    acl: bool = False,
    timeout: float = 60.0,
    binary: str = "nomad",
    plugin_dir: str | os.PathLike[str] | None = None,
    gpus: Sequence[FakeGpus] = (),
) -> DevAgent:
    """Start ``nomad agent -dev`` with its state under ``tmp_dir``; wait until a node is ready.

    With ``acl``, ACLs are enforced and the agent is bootstrapped: ``agent.token``
    is the management token. With ``gpus``, the node runs the fake GPU device
    plugin found in ``plugin_dir`` and is ready once it reports every GPU.
    """
    exe = shutil.which(binary)
    if exe is None:
        raise FileNotFoundError(f"{binary!r} is not on PATH; install Nomad to run a dev agent")
    extra = ""
    if gpus:
        if plugin_dir is None or not (Path(plugin_dir) / FAKEGPU_PLUGIN).is_file():
            raise FileNotFoundError(
                f"no {FAKEGPU_PLUGIN} in plugin_dir={plugin_dir!r}; "
                "write it with ../shared/nomad/install --plugins DIR"
            )
        extra = _FAKEGPU_CONFIG.format(
            plugin_dir=Path(plugin_dir).resolve(),
            plugin=FAKEGPU_PLUGIN,
            groups="\n".join(g.hcl() for g in gpus),
        )
    root = Path(tmp_dir)
    last_error = ""
    for _attempt in range(3):  # a random port may be taken between probing and binding
        http, rpc, serf = _free_ports(3)
        data_dir = root / f"nomad-data-{http}"
        data_dir.mkdir(parents=True, exist_ok=True)
        config = root / "agent.hcl"
        config.write_text(
            _CONFIG.format(data_dir=data_dir, http=http, rpc=rpc, serf=serf, acl=str(acl).lower())
            + extra
        )
        log_path = root / f"agent-{http}.log"
        log_file = log_path.open("wb")
        env = {k: v for k, v in os.environ.items() if not k.startswith("NOMAD_")}
        argv = [exe, "agent", "-dev", f"-config={config}"]
        process = subprocess.Popen(
            argv,
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
            _argv=argv,
            _env=env,
            _acl=acl,
            _gpus=sum(g.count for g in gpus),
        )
        try:
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline and process.poll() is None:
                if _ready(agent, acl, sum(g.count for g in gpus)):
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


@contextlib.contextmanager
def nomad_backend_for(agent: DevAgent) -> Iterator[None]:
    """Give this process's controller a Nomad backend of its own for ``agent``, then the old one.

    The controller makes one Nomad backend per process from the settings of the moment
    (``NOMAD_ADDR``), and other tests point it at other agents.
    """
    from jupyter_remote.controller import controller

    ctl = controller()
    previous = ctl.backends.pop("nomad", None)
    address = os.environ.get("NOMAD_ADDR")
    os.environ["NOMAD_ADDR"] = agent.address
    try:
        yield
    finally:
        ours = ctl.backends.pop("nomad", None)
        if ours is not None:
            ctl.loop.submit(ours.close()).result(60)
        if previous is not None:
            ctl.backends["nomad"] = previous
        if address is None:
            os.environ.pop("NOMAD_ADDR", None)
        else:
            os.environ["NOMAD_ADDR"] = address
