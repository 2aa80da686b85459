"""``CallLogs``: what ``call.logs()`` keeps is bounded by the setting ``log_lines``."""

from __future__ import annotations

import pytest

from jupyter_remote.config import load_settings
from jupyter_remote.controller import OutputLine
from jupyter_remote.controller._calls import CallLogs


def out(text: str, index: int = 0) -> OutputLine:
    return OutputLine(index, "w-1", 1, text)


def test_keeps_the_last_lines_and_counts_the_rest() -> None:
    logs = CallLogs(limit=100)
    for i in range(10_000):
        logs.append(out(f"line {i}\n", i))
        assert len(logs) <= 100 and len(logs.lines()) <= 100
    assert len(logs) == 100 and logs.dropped == 9_900
    first, *kept = logs.text().splitlines()
    assert first == "[9900 earlier lines dropped; the last 100 kept (setting log_lines)]"
    assert kept == [f"line {i}" for i in range(9_900, 10_000)]


def test_a_piece_of_many_lines_is_cut_to_the_bound() -> None:
    logs = CallLogs(limit=3)
    logs.append(out("".join(f"{i}\n" for i in range(10))))  # one coalesced write
    logs.append(out("partial"))
    assert len(logs) == 3 and logs.dropped == 8
    assert logs.text().split("\n", 1)[1] == "8\n9\npartial"
    assert logs.newlines == 10 and logs.appended == 2


def test_under_the_bound_nothing_is_said() -> None:
    logs = CallLogs(limit=3)
    logs.append(out("a\nb\n"))
    assert logs.text() == "a\nb\n" and logs.dropped == 0


def test_zero_keeps_nothing() -> None:
    logs = CallLogs(limit=0)
    logs.append(out("a\n"))
    assert logs.lines() == [] and logs.dropped == 1
    assert logs.text().endswith("]\n")


def test_the_setting_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    assert load_settings().log_lines == 10_000
    monkeypatch.setenv("JUPYTER_REMOTE_LOG_LINES", "50")
    assert load_settings().log_lines == 50
