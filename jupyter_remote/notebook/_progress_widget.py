"""Progress of ``.map`` / ``.starmap`` / ``.for_each`` in a notebook, as a widget.

One display per map: the label, a bar, a line of counts and, collapsed below,
the last lines the inputs printed (so thousands of prints do not flood the
cell). The same display carries ``text/plain`` and ``text/html`` fallbacks,
replaced with the final state when the map ends, so a saved notebook, nbconvert
output or a headless run shows "square.map: 300/300 done, 0 failed in 1.7s"
rather than a bar stuck at 0 %.

>>> from jupyter_remote.notebook._progress_widget import install
>>> install()  # doctest: +SKIP
"""

from __future__ import annotations

import html
import importlib.util
import time
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

from ..api._progress import Progress, TerminalProgress, set_progress_factory
from ..controller import CallState, OutputLine
from ..controller._calls import print_output

if TYPE_CHECKING:
    from IPython.display import DisplayHandle

__all__ = ["WidgetProgress", "install", "uninstall"]

MIN_INTERVAL = 0.1  # ipywidgets sends every trait change to the frontend: cap at ~10 a second
TAIL_LINES = 200
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
STDERR_STYLE = "color:#c0392b"


def _drop(line: OutputLine) -> None:
    """Output sink while the widget shows the output (``CallState.output`` keeps it in logs)."""


def _backwards(entries: Sequence[OutputLine]) -> Iterator[tuple[int, str]]:
    for entry in reversed(entries):
        for part in reversed(entry.text.splitlines(keepends=True)):
            yield entry.stream, part


def tail_html(entries: Sequence[OutputLine], limit: int = TAIL_LINES) -> str:
    """The last ``limit`` lines of ``entries``, escaped, stderr in colour."""
    pieces: list[tuple[int, str]] = []
    lines = 0
    for stream, part in _backwards(entries):
        # Walking backwards, a piece ending in a newline closes an earlier line; a
        # piece without one is the start of the line already counted.
        if not pieces or part.endswith("\n"):
            if lines == limit:
                break
            lines += 1
        pieces.append((stream, part))
    out: list[str] = []
    for stream, text in reversed(pieces):
        text = html.escape(text)
        out.append(f'<span style="{STDERR_STYLE}">{text}</span>' if stream == 2 else text)
    return "".join(out)


def _pre(body: str) -> str:
    return (
        '<pre style="max-height:24em;overflow:auto;margin:0;font-size:12px;'
        f'line-height:1.3">{body}</pre>'
    )


class WidgetProgress:
    """A map's progress as an ipywidgets box, with fallbacks for frontends without widgets.

    Built by the factory :func:`install` registers; ``update`` is called after each
    batch of results (at most ~10 renders a second), ``close`` once at the end.
    """

    def __init__(self, label: str, total: int) -> None:
        import ipywidgets as w

        self.label = label
        self.total = total
        self.start = time.monotonic()
        self.last = float("-inf")
        self.closed = False
        self.renders = 0
        self.attached = False
        self.n_entries = 0  # log entries rendered so far (CallLogs.appended)
        self.n_lines = 0  # newlines in those entries
        self.partial = False  # the last entry ended without a newline
        self.tail = ""  # the output's last lines, as rendered

        self.bar = w.IntProgress(
            value=0, min=0, max=max(total, 1), bar_style="info", layout=w.Layout(flex="1")
        )
        self.counts = w.HTML(self._counts_html(0, 0, 0, total, 0))
        self.output = w.HTML(_pre(""))
        self.accordion = w.Accordion(children=[self.output], selected_index=None)
        self.accordion.set_title(0, "output (0 lines)")
        title = w.HTML(f"<b>{html.escape(label)}</b>", layout=w.Layout(min_width="8em"))
        self.box = w.VBox([w.HBox([title, self.bar]), self.counts, self.accordion])
        self.handle = self._display()

    # -- the display ------------------------------------------------------------

    def _view(self) -> dict[str, Any]:
        return {"model_id": self.box.model_id, "version_major": 2, "version_minor": 0}

    def _display(self) -> DisplayHandle | None:
        from IPython import get_ipython
        from IPython.display import display

        if get_ipython() is None:
            return None  # outside IPython display() would print the bundle's dict
        bundle = {
            WIDGET_VIEW: self._view(),
            "text/plain": f"{self.label}: 0/{self.total} (running)",
            "text/html": f"<b>{html.escape(self.label)}</b>: 0/{self.total} (running)",
        }
        handle: DisplayHandle | None = display(  # type: ignore[no-untyped-call]
            bundle, raw=True, display_id=True
        )
        return handle

    def attach(self, call: CallState) -> None:
        """Show the call's output in the widget only, unless a router already took it over.

        Lines that arrived before this (the first batch's) have already been printed.
        """
        if not self.attached:
            self.attached = True
            if call.on_output is print_output:
                call.on_output = _drop

    @staticmethod
    def _counts_html(done: int, failed: int, running: int, queued: int, workers: int) -> str:
        failed_html = (
            f'<span style="{STDERR_STYLE}">{failed} failed</span>' if failed else "0 failed"
        )
        return (
            f"{done} done · {failed_html} · {running} running · {queued} queued"
            f" · {workers} worker{'s' if workers != 1 else ''} active"
        )

    def _render(self, call: CallState) -> None:
        self.renders += 1
        self.last = time.monotonic()
        done = call.n_succeeded + call.n_failed
        workers = sum(1 for w in list(call.pool.workers.values()) if w.state == "ready")
        self.bar.value = min(done, self.bar.max) if self.total else self.bar.max
        if call.n_failed:
            self.bar.bar_style = "danger"
        self.counts.value = self._counts_html(
            done, call.n_failed, call.inflight, call.queued, workers
        )
        logs = call.logs  # appended on the loop thread, bounded (setting log_lines)
        if logs.appended != self.n_entries:
            n, newlines = logs.appended, logs.newlines
            entries = logs.lines()  # at least the first n entries' surviving lines
            self.n_lines = newlines
            self.partial = bool(entries) and not entries[-1].text.endswith("\n")
            self.n_entries = n
            self.tail = tail_html(entries)
            self.output.value = _pre(self.tail)
            self.accordion.set_title(0, f"output ({self._line_count()} lines)")

    def _line_count(self) -> int:
        return self.n_lines + (1 if self.partial else 0)

    # -- Progress ---------------------------------------------------------------

    def update(self, call: CallState) -> None:
        self.attach(call)
        if not self.closed and time.monotonic() - self.last >= MIN_INTERVAL:
            self._render(call)

    def close(self, call: CallState) -> None:
        if self.closed:
            return
        self.closed = True
        self.attach(call)
        self._render(call)
        # Cancelled, or the reader stopped early (an error, a break) and is cancelling it.
        cancelled = call.cancelled or not call.finished
        done = call.n_succeeded + call.n_failed
        elapsed = time.monotonic() - self.start
        summary = f"{done}/{self.total} done, {call.n_failed} failed in {elapsed:.1f}s"
        if cancelled:
            summary += " (cancelled)"
            self.bar.bar_style = "warning"
        elif not call.n_failed:
            self.bar.bar_style = "success"
        if self.handle is None:
            return
        n_lines = self._line_count()
        details = ""
        if n_lines:
            shown = min(n_lines, TAIL_LINES)
            what = f"output ({n_lines} lines" + (f", last {shown})" if shown < n_lines else ")")
            details = f"<details><summary>{what}</summary>{_pre(self.tail)}</details>"
        width = 100 * done // self.total if self.total else 100
        self.handle.update(  # type: ignore[no-untyped-call]
            {
                WIDGET_VIEW: self._view(),
                "text/plain": f"{self.label}: {summary}",
                "text/html": (
                    f"<div><b>{html.escape(self.label)}</b>: {summary}"
                    f'<div style="background:#eee;height:6px;max-width:30em">'
                    f'<div style="background:#4caf50;height:6px;width:{width}%"></div></div>'
                    f"{details}</div>"
                ),
            },
            raw=True,
        )


# -- installing ---------------------------------------------------------------------


def _in_kernel() -> bool:
    """Inside an IPython kernel (a frontend may render widgets) with ipywidgets installed."""
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    shell = get_ipython()
    if shell is None or getattr(shell, "kernel", None) is None:
        return False
    return importlib.util.find_spec("ipywidgets") is not None


def _factory(label: str, total: int) -> Progress:
    if _in_kernel():
        return WidgetProgress(label, total)
    return TerminalProgress(label, total)


def install() -> None:
    """Show map progress as a widget in notebooks (the terminal bar elsewhere)."""
    set_progress_factory(_factory)


def uninstall() -> None:
    """Back to the default progress (the terminal bar)."""
    set_progress_factory(None)
