"""Calls workers make: user code on a worker calling ``a.remote(x)``, ``a.map(...)``...

A worker sends :class:`~jupyter_remote.protocol.Invoke` over its own
(authenticated) connection; the API's starter (installed with
:func:`set_starter`, so that this layer never imports the API) finds the
Function the reference names, opens its pool if it has none yet and starts an
ordinary call there: its inputs count for that pool's autoscaling like any
other. Its outcomes are streamed back to the worker as they arrive, exactly as
the caller's result channel holds them; a call that cannot start is answered
with :class:`~jupyter_remote.protocol.InvokeRefused`, carrying the error.

A nested call ends with the calling worker's interest in it: the worker
cancels it (``CancelInvoke``: its input was cancelled, or user code stopped
waiting), or the connection is lost (the worker timed out, died or was
stopped); then its queued inputs are dropped and running ones interrupted.
Runs on the controller's loop thread.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from ..exceptions import NotFoundError
from ..protocol import (
    CancelInvoke,
    Invoke,
    InvokeOutcomes,
    InvokeRefused,
    failure_from_exception,
)
from ._calls import END, CallState

if TYPE_CHECKING:
    from ._pool import Pool
    from ._server import Connection

__all__ = ["NestedCalls", "Starter", "set_starter"]

log = logging.getLogger("jupyter_remote")

# Starts the call an Invoke asks for, made by a worker of the given pool (the API's part).
Starter = Callable[[Invoke, "Pool"], Awaitable[CallState]]
_starter: Starter | None = None


def set_starter(starter: Starter | None) -> None:
    """Install what turns a worker's ``Invoke`` into a call (``api._function`` does)."""
    global _starter
    _starter = starter


class NestedCalls:
    """The calls one worker connection made, by the worker's request id."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self._tasks: dict[int, asyncio.Task[None]] = {}

    @property
    def waiting(self) -> bool:
        """Whether the worker waits on calls it made (it must not be sent more work then)."""
        return bool(self._tasks)

    def handle(self, pool: Pool, msg: Invoke | CancelInvoke) -> None:
        if isinstance(msg, CancelInvoke):
            task = self._tasks.pop(msg.request_id, None)
            if task is not None:
                task.cancel()
            return
        task = asyncio.get_running_loop().create_task(self._serve(pool, msg))
        self._tasks[msg.request_id] = task
        task.add_done_callback(lambda t: self._done(msg.request_id, t))

    def _done(self, request_id: int, task: asyncio.Task[None]) -> None:
        if self._tasks.get(request_id) is task:
            del self._tasks[request_id]
        if not task.cancelled() and task.exception() is not None:  # a bug of ours
            log.error("serving a call from %s failed", self.conn.peer, exc_info=task.exception())

    async def _serve(self, pool: Pool, msg: Invoke) -> None:
        try:
            if _starter is None:
                raise NotFoundError(
                    f"{msg.ref.label}: this controller cannot start calls from workers"
                )
            call = await _starter(msg, pool)
        except Exception as exc:  # refused: the worker raises this error
            self.conn.send(InvokeRefused(msg.request_id, failure_from_exception(exc)))
            return
        try:
            while True:
                items = await call.channel.atake()
                self.conn.send(InvokeOutcomes(msg.request_id, tuple(items)))
                if any(kind == END for kind, _, _ in items):
                    return
        finally:
            if not call.finished:  # cancelled by the worker, or its connection is gone
                call.pool.cancel(call)

    def close(self) -> None:
        """The connection is gone: cancel every call it made."""
        tasks, self._tasks = self._tasks, {}
        for task in tasks.values():
            task.cancel()
