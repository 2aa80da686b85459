"""Progress of ``.map`` / ``.starmap`` / ``.for_each``.

In a terminal a one-line bar on stderr (redrawn at most 10 times a second);
elsewhere one summary line when the map ends. Notebooks register a widget
factory with :func:`set_progress_factory`. ``JUPYTER_REMOTE_PROGRESS=0`` turns
progress off.
"""

from __future__ import annotations

import contextlib
import sys
import time
from collections.abc import Callable, Iterator
from typing import Protocol

from ..controller import CallState

__all__ = [
    "Progress",
    "TerminalProgress",
    "make_progress",
    "override_progress",
    "set_progress_factory",
]


class Progress(Protocol):
    def update(self, call: CallState) -> None: ...

    def close(self, call: CallState) -> None: ...


ProgressFactory = Callable[[str, int], "Progress | None"]
_factory: ProgressFactory | None = None


def set_progress_factory(factory: ProgressFactory | None) -> None:
    """Install how progress is shown (the notebook extension installs a widget)."""
    global _factory
    _factory = factory


_override: list[bool] = []  # innermost last: ``enable_output`` blocks, ``run --quiet``


@contextlib.contextmanager
def override_progress(show: bool) -> Iterator[None]:
    """Show (or hide) progress inside the block, whatever the ``progress`` setting says."""
    _override.append(show)
    try:
        yield
    finally:
        _override.pop()


def make_progress(label: str, total: int, enabled: bool) -> Progress | None:
    if _override:
        enabled = _override[-1]
    if not enabled:
        return None
    if _factory is not None:
        return _factory(label, total)
    return TerminalProgress(label, total)


class TerminalProgress:
    def __init__(self, label: str, total: int) -> None:
        self.label = label
        self.total = total
        self.tty = sys.stderr.isatty()
        self.start = time.monotonic()
        self.last = 0.0
        self.closed = False

    def _line(self, call: CallState) -> str:
        done = call.n_succeeded + call.n_failed
        width = 30
        filled = int(width * done / self.total) if self.total else width
        failed = f", {call.n_failed} failed" if call.n_failed else ""
        elapsed = time.monotonic() - self.start
        bar = "#" * filled + "." * (width - filled)
        return f"{self.label} [{bar}] {done}/{self.total}{failed} {elapsed:.1f}s"

    def update(self, call: CallState) -> None:
        now = time.monotonic()
        if self.tty and now - self.last > 0.1:
            self.last = now
            sys.stderr.write("\r" + self._line(call))
            sys.stderr.flush()

    def close(self, call: CallState) -> None:
        if self.closed:
            return
        self.closed = True
        end = " (cancelled)" if call.cancelled else ""
        sys.stderr.write(("\r" if self.tty else "") + self._line(call) + end + "\n")
        sys.stderr.flush()
