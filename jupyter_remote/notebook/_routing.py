"""Route a call's remote output into the notebook cell that started it.

Output arrives on the controller's loop thread, possibly long after the cell
moved on (``spawn``). ipykernel sends output written from other threads to
whichever cell runs *now*, so we do not write to ``sys.stdout`` there:
when a call starts (in the kernel's main thread, inside the cell) we capture
that cell's parent message, and publish the call's stream and display
messages on IOPub with it, from any thread.
"""

from __future__ import annotations

import sys
import threading
from typing import Any

from ..controller import CallState, EventItem, OutputLine

__all__ = ["CellPublisher", "route_call"]


class CellPublisher:
    """Publishes stream/display messages into one cell, from any thread."""

    def __init__(self, shell: Any) -> None:
        kernel = shell.kernel
        self._session = kernel.session
        self._socket = kernel.iopub_socket
        self._parent = kernel.get_parent("shell")
        self._lock = threading.Lock()

    def _send(self, msg_type: str, content: dict[str, Any], ident: bytes) -> None:
        with self._lock:
            self._session.send(self._socket, msg_type, content, parent=self._parent, ident=ident)

    def output(self, line: OutputLine) -> None:
        name = "stdout" if line.stream == 1 else "stderr"
        self._send("stream", {"name": name, "text": line.text}, f"stream.{name}".encode())

    def event(self, item: EventItem) -> None:
        data = item.data if isinstance(item.data, dict) else {}
        if item.kind == "display":
            content = {
                "data": data.get("data", {}),
                "metadata": data.get("metadata", {}),
                "transient": data.get("transient", {}),
            }
            msg_type = "update_display_data" if data.get("update") else "display_data"
            self._send(msg_type, content, b"display_data")
        elif item.kind == "clear_output":
            self._send("clear_output", {"wait": bool(data.get("wait"))}, b"clear_output")


def _in_kernel_cell(shell: Any) -> bool:
    return (
        shell is not None
        and getattr(shell, "kernel", None) is not None
        and threading.current_thread() is threading.main_thread()
    )


def route_call(call: CallState) -> None:
    """The call hook: calls made from a notebook cell publish into that cell.

    ``.map`` output goes into the progress widget instead (it would flood the
    cell); every line stays in the call's logs either way.
    """
    from IPython import get_ipython

    shell = get_ipython()
    if not _in_kernel_cell(shell):
        return
    sys.stdout.flush()  # local prints made earlier in the cell come first
    publisher = CellPublisher(shell)
    call.on_event = publisher.event
    if call.kind == "map":
        call.on_output = _keep_only
    else:
        call.on_output = publisher.output


def _keep_only(line: OutputLine) -> None:
    """Map output: already in ``call.logs``; the progress widget shows its tail."""
