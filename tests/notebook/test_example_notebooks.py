"""The example notebooks run headlessly through a real kernel (nbclient) on the local backend."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import nbformat
import pytest
from nbclient import NotebookClient

EXAMPLES = Path(__file__).parent.parent.parent / "examples"


def execute(name: str, monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setenv("JUPYTER_REMOTE_PROGRESS", "1")
    nb = nbformat.read(EXAMPLES / name, as_version=4)
    NotebookClient(
        nb, timeout=120, kernel_name="python3", resources={"metadata": {"path": str(EXAMPLES)}}
    ).execute()
    return nb


def texts(cell: Any) -> str:
    out = []
    for o in cell.outputs:
        if o.output_type == "stream":
            out.append(o.text)
        elif "data" in o:
            out.append(str(o.data.get("text/plain", "")))
    return "\n".join(out)


def outputs_of(cell: Any, mime: str) -> list[Any]:
    return [o.data[mime] for o in cell.outputs if "data" in o and mime in o.data]


def test_quickstart_notebook(monkeypatch: pytest.MonkeyPatch) -> None:
    nb = execute("quickstart.ipynb", monkeypatch)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert "squaring 7" in texts(code[1]) and "49" in texts(code[1])
    assert "2646700" in texts(code[2])  # sum of squares below 200
    assert "square.map: 200/200 done" in texts(code[2])  # the final progress, saved
    assert texts(code[2]).count("squaring") == 0  # map output went under the bar
    assert "computed in worker" in texts(code[4]) and str(os.getpid()) not in texts(code[4])
    assert "285" in texts(code[4])
    assert texts(code[5]) == "back here: 285\n"


def test_notebook_tour(monkeypatch: pytest.MonkeyPatch) -> None:
    nb = execute("notebook_tour.ipynb", monkeypatch)
    code = [c for c in nb.cells if c.cell_type == "code"]
    rich = code[1]
    assert outputs_of(rich, "text/html")[0] == "<b>hello from the worker</b>"
    assert outputs_of(rich, "image/png"), "the figure is displayed"
    assert any("<table" in h for h in outputs_of(rich, "text/html"))
    assert texts(code[2]) == "14"  # the DataFrame, summed locally
    session_out = texts(code[3])
    assert "lock" in session_out and "stay in session 'work'" in session_out
    assert "lock is lock" in texts(code[4]) and "25.0" in texts(code[4])
    assert "work" in texts(code[5])
    assert texts(code[7]) == "this one / False\n"
    assert "1494 | lines logged: 500" in texts(code[8])
    assert "session work closed" in texts(code[9])
