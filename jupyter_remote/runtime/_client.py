"""The worker's client for calls its user code makes (``a.remote(x)`` on a worker).

Requests go out over the worker's one connection to its controller (already
authenticated, TLS where the controller's is); outcomes come back on the same
socket. Threads: user code sends from whatever thread it runs in (the main
thread, or threads of its own), through ``Worker.send`` and its lock; the
worker's reader thread, which owns the receiving side, hands each
``InvokeOutcomes`` / ``InvokeRefused`` to :meth:`Client.deliver`, which files
it under its request. Nothing here blocks the reader.

Waiting for outcomes is interruptible: ``Request.take`` waits in short steps,
so the ``KeyboardInterrupt`` the worker raises when the outer call is
cancelled (or the caller pressed Ctrl-C) reaches user code at once; the
request is then cancelled.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from .._outcomes import Outcome, OutcomeQueue
from ..protocol import (
    OUTCOME_END,
    CancelInvoke,
    Chunk,
    Failure,
    FunctionRef,
    Invoke,
    InvokeOutcomes,
    InvokeRefused,
)

if TYPE_CHECKING:
    pass  # imported when async code waits: the worker itself starts without it

__all__ = ["REFUSED", "Client", "Request"]

REFUSED = "refused"  # the kind of the one outcome of a refused request: (REFUSED, None, Failure)


class Request(OutcomeQueue):
    """One call made from this worker: its outcomes, filed by the reader thread."""

    def __init__(self, client: Client, request_id: int, ref: FunctionRef, parent: int) -> None:
        self.client = client
        self.request_id = request_id
        self.ref = ref
        self.parent = parent
        self.ended = False  # "end" or a refusal arrived: nothing more will
        super().__init__()

    def file(self, items: tuple[Outcome, ...]) -> None:
        """File outcomes the reader thread received (under ``Client.deliver``)."""
        if any(kind in (OUTCOME_END, REFUSED) for kind, _, _ in items):
            self.ended = True
        self.extend(items)

    def cancel(self) -> None:
        """Stop the call (queued inputs dropped, running ones interrupted), from any thread."""
        self.client.cancel(self)


class Client:
    """The requests of one worker connection, by id."""

    def __init__(self, send: Callable[[Any], None]) -> None:
        self._send = send
        self._lock = threading.Lock()
        self._ids = itertools.count(1)
        self._requests: dict[int, Request] = {}

    def invoke(
        self,
        ref: FunctionRef,
        chunks: list[Chunk],
        n_inputs: int,
        kind: str,
        generator: bool,
        parent: int,
    ) -> Request:
        with self._lock:
            request = Request(self, next(self._ids), ref, parent)
            self._requests[request.request_id] = request
        msg = Invoke(request.request_id, ref, tuple(chunks), n_inputs, kind, generator, parent)
        try:
            self._send(msg)
        except BaseException:
            with self._lock:
                self._requests.pop(request.request_id, None)
            raise
        return request

    def deliver(self, msg: InvokeOutcomes | InvokeRefused) -> None:
        """(Reader thread.) File outcomes under their request; forget it once it ended."""
        with self._lock:
            request = self._requests.get(msg.request_id)
        if request is None:
            return  # cancelled meanwhile
        items: tuple[Outcome, ...]
        if isinstance(msg, InvokeRefused):
            failure: Failure = msg.error
            items = ((REFUSED, None, failure),)
        else:
            items = msg.outcomes
        request.file(items)
        if request.ended:
            with self._lock:
                self._requests.pop(msg.request_id, None)

    def cancel(self, request: Request) -> None:
        with self._lock:
            known = self._requests.pop(request.request_id, None) is not None
        if known and not request.ended:
            self._send(CancelInvoke(request.request_id))
            request.file(((OUTCOME_END, None, None),))

    def fail_all(self, error: Failure) -> None:
        """The connection is gone: every request still waiting ends with ``error``."""
        with self._lock:
            requests, self._requests = list(self._requests.values()), {}
        for request in requests:
            request.file(((REFUSED, None, error),))

    def cancel_children(self, call_id: int) -> None:
        """(Reader thread.) The call ``call_id`` was cancelled: so are the calls its inputs made."""
        with self._lock:
            children = [r for r in self._requests.values() if r.parent == call_id]
        for request in children:
            self.cancel(request)
