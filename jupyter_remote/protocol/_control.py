"""What clients of an app server ask besides calls: deploy, look up, list, stop.

A client (``Function.from_name``, the CLI) authenticates in the client role
(see ``_handshake``), then calls deployed functions with the same
:class:`~jupyter_remote.protocol.Invoke` messages a worker uses for nested
calls, and manages deployments with :class:`Control` requests, each answered
by one :class:`ControlReply`.

Client → app server: ``Invoke``, ``CancelInvoke``, ``Control``.
App server → client: ``InvokeOutcomes``, ``InvokeRefused``, ``ControlReply``.

Operations (``op``, with ``args``; ``result`` is plain JSON-like data):

- ``status`` → ``{"pid", "started", "apps": [names]}``
- ``load`` ``{"app"}``: (re)load the app's deployment from the store → ``{"version"}``
- ``describe`` ``{"app"}`` → ``{"functions": [...], "classes": {name: [methods]}}``
- ``list`` → ``[{"name", "version", "deployed_at", "functions", "classes"}]``
- ``stop_app`` ``{"app"}``: stop its workers and remove it from the store
- ``spawn`` ``{"invoke": Invoke}``: start a call whose outcome the app server
  keeps → ``{"object_id"}``
- ``result`` ``{"id", "wait"}``: wait for a spawned call → its outcome, as
  ``InvokeOutcomes`` carry it (``("ok", ...)``, ``("err", ...)`` or ``("end", ...)``
  if it was cancelled)
- ``cancel`` ``{"id"}``: cancel a spawned call
- ``shutdown``: stop every worker, then the app server process
"""

from __future__ import annotations

from typing import Any, NamedTuple

from ._serialization import Failure

__all__ = ["Control", "ControlReply"]


class Control(NamedTuple):
    """Client → app server: one management request."""

    request_id: int
    op: str
    args: dict[str, Any]


class ControlReply(NamedTuple):
    """App server → client: the answer to request ``request_id``: a result or an error."""

    request_id: int
    result: Any
    error: Failure | None
