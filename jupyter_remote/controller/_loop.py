"""One asyncio loop in a background thread: the async core behind the sync facade.

Synchronous calls (``f.remote()``) work inside a running Jupyter kernel
because they never touch the caller's loop: they wait on a future of this
loop's thread. ``.aio`` variants await the same coroutines through
``asyncio.wrap_future``.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
from collections.abc import Coroutine
from typing import Any, TypeVar

__all__ = ["LoopThread", "loop_thread"]

T = TypeVar("T")


class LoopThread:
    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._run, name="jupyter-remote-loop", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_forever()

    @property
    def in_loop(self) -> bool:
        return threading.current_thread() is self._thread

    def submit(self, coro: Coroutine[Any, Any, T]) -> concurrent.futures.Future[T]:
        return asyncio.run_coroutine_threadsafe(coro, self.loop)

    def run(self, coro: Coroutine[Any, Any, T], timeout: float | None = None) -> T:
        """Run ``coro`` on the loop and wait for it; Ctrl-C cancels it."""
        if self.in_loop:
            coro.close()
            raise RuntimeError("jupyter_remote: blocking call made from the controller's loop")
        fut = self.submit(coro)
        try:
            return fut.result(timeout)
        except KeyboardInterrupt:
            fut.cancel()
            raise

    async def run_async(self, coro: Coroutine[Any, Any, T]) -> T:
        """Await ``coro`` (run on the loop thread) from any other event loop."""
        return await asyncio.wrap_future(self.submit(coro))

    def call_soon(self, fn: Any, *args: Any) -> None:
        self.loop.call_soon_threadsafe(fn, *args)


_lock = threading.Lock()
_instance: LoopThread | None = None


def loop_thread() -> LoopThread:
    """The process-wide loop thread, started on first use."""
    global _instance
    with _lock:
        if _instance is None:
            _instance = LoopThread()
        return _instance
