"""A real IPython kernel (jupyter_client) for notebook tests, with ``%load_ext jupyter_remote``."""

from __future__ import annotations

import os
import queue
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from jupyter_client.manager import KernelManager

CONFORMANCE = str(Path(__file__).parent.parent / "conformance")


@dataclass
class Execution:
    """What one execute request produced, in arrival order."""

    reply: dict[str, Any] = field(default_factory=dict)
    messages: list[tuple[float, dict[str, Any]]] = field(default_factory=list)
    started: float = 0.0
    msg_id: str = ""

    def of(self, msg_type: str) -> list[dict[str, Any]]:
        return [m["content"] for _, m in self.messages if m["msg_type"] == msg_type]

    @property
    def stdout(self) -> str:
        return "".join(c["text"] for c in self.of("stream") if c["name"] == "stdout")

    @property
    def stderr(self) -> str:
        return "".join(c["text"] for c in self.of("stream") if c["name"] == "stderr")

    def first_time(self, text: str) -> float:
        for t, m in self.messages:
            if m["msg_type"] == "stream" and text in m["content"]["text"]:
                return t - self.started
        raise AssertionError(f"{text!r} never arrived")

    @property
    def status(self) -> str:
        return str(self.reply.get("status"))


class Kernel:
    def __init__(self, km: KernelManager) -> None:
        self.km = km
        self.kc = km.client()
        self.kc.start_channels()
        self.kc.wait_for_ready(timeout=60)
        self.stray: list[dict[str, Any]] = []  # messages whose cell had already finished

    def execute(
        self, code: str, timeout: float = 60, interrupt_after: float | None = None
    ) -> Execution:
        ex = Execution(started=time.monotonic())
        msg_id = self.kc.execute(code)
        ex.msg_id = msg_id
        deadline = time.monotonic() + timeout
        interrupted = False
        idle = False
        while not idle:
            late = interrupt_after is not None and time.monotonic() - ex.started > interrupt_after
            if late and not interrupted:
                self.km.interrupt_kernel()
                interrupted = True
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"no idle status within {timeout}s for {code[:60]!r}")
            try:
                msg = self.kc.get_iopub_msg(timeout=min(left, 0.1))
            except queue.Empty:
                continue
            if msg["parent_header"].get("msg_id") != msg_id:
                self.stray.append(msg)
                continue
            ex.messages.append((time.monotonic(), msg))
            if msg["msg_type"] == "status" and msg["content"]["execution_state"] == "idle":
                idle = True
        ex.reply = self.kc.get_shell_msg(timeout=10)["content"]
        return ex

    def ok(self, code: str, timeout: float = 60) -> Execution:
        ex = self.execute(code, timeout)
        assert ex.status == "ok", ex.of("error") or ex.reply
        return ex

    def close(self, now: bool = True) -> None:
        """Stop the kernel: killed, or with ``now=False`` asked to exit (its atexit hooks run)."""
        self.kc.stop_channels()
        self.km.shutdown_kernel(now=now)


def start_kernel(env: dict[str, str] | None = None) -> Kernel:
    """A kernel with the extension loaded; ``env`` is added to this process's environment."""
    env = {**os.environ, "JUPYTER_REMOTE_PROGRESS": "1", **(env or {})}
    km = KernelManager(kernel_name="python3")
    km.start_kernel(env=env)
    kernel = Kernel(km)
    kernel.ok(
        f"import sys; sys.path.insert(0, {CONFORMANCE!r})\n"
        "%load_ext jupyter_remote\n"
        "import jupyter_remote as jr"
    )
    return kernel
