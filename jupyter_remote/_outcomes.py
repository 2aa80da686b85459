"""A thread-safe queue of outcomes that a thread or another event loop waits on.

The caller's calls (``controller/_calls.py``) and a worker's own calls
(``runtime/_client.py``) both file outcomes from one thread and read them from
another, so both use this. It imports nothing of the package, and asyncio only
when an event loop waits (the worker starts without asyncio).
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import asyncio

__all__ = ["Outcome", "OutcomeQueue"]

Outcome = tuple[str, Any, Any]


class OutcomeQueue:
    """Outcomes filed by one thread, taken (all that are there) by a thread or a loop."""

    def __init__(self) -> None:
        self._items: deque[Outcome] = deque()
        self._cond = threading.Condition()
        self._waiters: list[tuple[asyncio.AbstractEventLoop, asyncio.Future[None]]] = []

    def push(self, item: Outcome) -> None:
        self.extend((item,))

    def extend(self, items: Iterable[Outcome]) -> None:
        with self._cond:
            self._items.extend(items)
            self._cond.notify_all()
            waiters, self._waiters = self._waiters, []
        for loop, fut in waiters:
            loop.call_soon_threadsafe(_resolve, fut)

    def take(self, timeout: float | None = None) -> list[Outcome]:
        """Wait for outcomes (all that are there); ``[]`` when ``timeout`` elapsed."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            while not self._items:
                left = 0.25 if deadline is None else min(0.25, deadline - time.monotonic())
                if left <= 0:
                    return []
                self._cond.wait(left)  # short waits: a KeyboardInterrupt gets through
            items = list(self._items)
            self._items.clear()
            return items

    async def atake(self) -> list[Outcome]:
        import asyncio

        loop = asyncio.get_running_loop()
        while True:
            with self._cond:
                if self._items:
                    items = list(self._items)
                    self._items.clear()
                    return items
                fut: asyncio.Future[None] = loop.create_future()
                self._waiters.append((loop, fut))
            await fut


def _resolve(fut: asyncio.Future[None]) -> None:
    if not fut.done():
        fut.set_result(None)
