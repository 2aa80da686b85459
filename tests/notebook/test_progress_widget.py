"""The notebook progress widget of ``.map``, through a real kernel and real workers."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import nbformat
import pytest
from ipykernel.kernelspec import install as install_kernelspec
from nbclient import NotebookClient

WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
WIDGET_STATE = "application/vnd.jupyter.widget-state+json"
LINE = re.compile(r"^line \d+$", re.MULTILINE)


@pytest.fixture
def kernel_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A ``python3`` kernelspec for this interpreter, found first; progress on in the kernel."""
    prefix = tmp_path / "jupyter"
    install_kernelspec(kernel_name="python3", prefix=str(prefix))
    monkeypatch.setenv("JUPYTER_PATH", str(prefix / "share" / "jupyter"))
    monkeypatch.setenv("IPYTHONDIR", str(tmp_path / "ipython"))
    monkeypatch.setenv("JUPYTER_REMOTE_PROGRESS", "1")
    work = tmp_path / "work"
    work.mkdir()
    return work


def run_notebook(cells: list[str], cwd: Path) -> Any:
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(textwrap.dedent(src)) for src in cells]
    client = NotebookClient(
        nb,
        timeout=120,
        kernel_name="python3",
        store_widget_state=True,
        resources={"metadata": {"path": str(cwd)}},
    )
    client.execute()
    return nb


def stream_text(nb: Any) -> str:
    return "".join(
        out.get("text", "")
        for cell in nb.cells
        for out in cell.get("outputs", [])
        if out.output_type == "stream"
    )


def models(nb: Any, name: str) -> list[dict[str, Any]]:
    state = nb.metadata.widgets[WIDGET_STATE]["state"]
    return [m["state"] for m in state.values() if m["model_name"] == name]


def test_map_in_a_kernel_shows_a_widget_with_final_fallbacks(kernel_env: Path) -> None:
    nb = run_notebook(
        [
            """
            import jupyter_remote as jr
            from jupyter_remote.notebook._progress_widget import install
            install()
            """,
            """
            import sys, time
            app = jr.App("progress-widget")

            # Two workers whatever the machine, so only a few lines print before the
            # widget takes the output over.
            @app.function(max_containers=2)
            def square(x):
                time.sleep(0.002)
                print(f"line {x}")
                if x % 100 == 99:
                    print(f"warn <{x}> &", file=sys.stderr)
                return x * x

            @app.function(max_containers=2)
            def slow(x):
                time.sleep(0.05)
                return x
            """,
            "results = list(square.map(range(300)))",
            "print(sum(results))",
            """
            m = slow.map(range(50))
            first = next(m)
            m.cancel()
            try:
                list(m)
            except jr.CallCancelledError as exc:
                print("raised", exc)
            """,
            "app.stop()",
        ],
        kernel_env,
    )

    displays = [o for o in nb.cells[2].outputs if o.output_type == "display_data"]
    assert len(displays) == 1, nb.cells[2].outputs
    data = displays[0].data
    assert WIDGET_VIEW in data
    assert re.fullmatch(r"square\.map: 300/300 done, 0 failed in \d+\.\ds", data["text/plain"])
    assert "300/300 done, 0 failed" in data["text/html"]
    assert "output (303 lines, last 200)" in data["text/html"]
    assert "line 299" in data["text/html"]
    assert nb.cells[3].outputs[0].text == f"{sum(x * x for x in range(300))}\n"

    # A cancelled map: the fallback says so.
    (stopped,) = [o for o in nb.cells[4].outputs if o.output_type == "display_data"]
    assert re.fullmatch(
        r"slow\.map: \d+/50 done, 0 failed in \d+\.\ds \(cancelled\)", stopped.data["text/plain"]
    )
    assert "raised the map over slow() was cancelled" in stream_text(nb)

    # The prints go to the widget, not to the cell (the first batch's may slip through:
    # the widget only sees the call at its first update).
    leaked = LINE.findall(stream_text(nb))
    assert len(leaked) < 30, leaked

    bar, stopped_bar = models(nb, "IntProgressModel")
    assert bar["value"] == 300 and bar["max"] == 300 and bar["bar_style"] == "success"
    assert stopped_bar["max"] == 50 and stopped_bar["bar_style"] == "warning"
    accordion, _ = models(nb, "AccordionModel")
    assert accordion["titles"] == ["output (303 lines)"]
    assert accordion["selected_index"] is None
    counts, output = (
        next(m for m in models(nb, "HTMLModel") if key in m["value"]) for key in ("queued", "<pre")
    )
    assert counts["value"].startswith("300 done · 0 failed · 0 running · 0 queued")
    shown = re.sub(r"<[^>]+>", "", output["value"]).splitlines()
    assert len(shown) == 200 and "warn &lt;299&gt; &amp;" in shown, shown
    assert "line 0" not in shown and "line 299" in shown
    assert "line 299\n" in output["value"]
    assert '<span style="color:#c0392b">warn &lt;299&gt; &amp;\n</span>' in output["value"]


THROTTLE = """
import time
import jupyter_remote as jr
from jupyter_remote.api._progress import set_progress_factory
from jupyter_remote.notebook._progress_widget import WidgetProgress

class Recording(WidgetProgress):
    calls = []
    made = []

    def __init__(self, label, total):
        super().__init__(label, total)
        Recording.made.append(self)

    def update(self, call):
        Recording.calls.append(call)
        super().update(call)

set_progress_factory(Recording)
app = jr.App("throttle")

@app.function()
def noisy(x):
    print("out", x)
    return x

it = noisy.map(range(40))
first = next(it)
(p,) = Recording.made
call = Recording.calls[0]
before = p.renders
for _ in range(2000):
    p.update(call)
burst = p.renders - before
print("burst", burst, "attached", p.attached, "handle", p.handle)
rest = list(it)
print("results", [first, *rest] == list(range(40)))
print("final", p.renders, p.bar.value, p.bar.bar_style, p.accordion.get_title(0))
print("counts", p.counts.value)
app.stop()
"""


def test_updates_are_throttled_and_close_renders_the_final_state() -> None:
    proc = subprocess.run(
        [sys.executable, "-c", THROTTLE],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "JUPYTER_REMOTE_PROGRESS": "1"},
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    out = dict(line.split(" ", 1) for line in proc.stdout.splitlines() if " " in line)
    assert int(out["burst"].split()[0]) <= 2, out["burst"]
    assert "attached True handle None" in out["burst"]
    assert out["results"] == "True"
    assert out["final"].split()[1:] == ["40", "success", "output", "(40", "lines)"]
    assert out["counts"].startswith("40 done · 0 failed · 0 running · 0 queued")
