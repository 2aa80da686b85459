"""The public surface types for a user's checker: mypy (strict) on two user scripts.

``typed_scripts/user_script.py`` must check clean, each ``reveal_type`` printing what
its ``# revealed:`` comment says (``f.remote()`` of ``async def f() -> T`` is
``T``, ``.map`` yields the result type, ``remote_gen`` the item type, a
``@method()`` on an instance is a ``Function``). ``typed_scripts/user_errors.py`` must
get exactly the errors its ``# error:`` comments name, on those lines.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

mypy_api = pytest.importorskip("mypy.api")

HERE = Path(__file__).parent / "typed_scripts"
NOTE = re.compile(r"^(?P<file>[\w.]+):(?P<line>\d+): (?P<kind>note|error): (?P<text>.*)$")


def _expected(path: Path, marker: str) -> dict[int, str]:
    pattern = re.compile(rf"\s#\s*{marker}:\s*(.+?)\s*$")  # after code, not in a docstring
    lines = path.read_text().splitlines()
    return {n: m.group(1) for n, text in enumerate(lines, 1) if (m := pattern.search(text))}


@pytest.fixture(scope="module")
def mypy_output(tmp_path_factory: pytest.TempPathFactory) -> list[re.Match[str]]:
    """One mypy run over both scripts, in a folder of their own (no project config)."""
    tmp = tmp_path_factory.mktemp("typed")
    for name in ("user_script.py", "user_errors.py"):
        shutil.copy(HERE / name, tmp / name)
    config = tmp / "mypy.ini"
    config.write_text("[mypy]\nstrict = True\nshow_error_codes = True\n")
    stdout, stderr, _ = mypy_api.run(
        [
            "--config-file",
            str(config),
            "--cache-dir",
            str(tmp / "cache"),
            "--no-pretty",
            "--no-error-summary",
            str(tmp / "user_script.py"),
            str(tmp / "user_errors.py"),
        ]
    )
    assert not stderr, stderr
    matches = [NOTE.match(Path(line).name if ":" in line else line) for line in stdout.splitlines()]
    found = [m for m in matches if m is not None]
    assert found, f"mypy printed nothing to parse:\n{stdout}"
    return found


def _of(found: list[re.Match[str]], file: str, kind: str) -> dict[int, str]:
    return {int(m["line"]): m["text"] for m in found if m["file"] == file and m["kind"] == kind}


def test_user_script_checks_clean(mypy_output: list[re.Match[str]]) -> None:
    assert _of(mypy_output, "user_script.py", "error") == {}


def test_reveal_types(mypy_output: list[re.Match[str]]) -> None:
    expected = _expected(HERE / "user_script.py", "revealed")
    assert len(expected) >= 35
    notes = _of(mypy_output, "user_script.py", "note")
    revealed = {
        n: text.removeprefix('Revealed type is "').removesuffix('"')
        for n, text in notes.items()
        if text.startswith("Revealed type is")
    }
    assert revealed == expected


def test_type_errors_are_reported(mypy_output: list[re.Match[str]]) -> None:
    expected = _expected(HERE / "user_errors.py", "error")
    assert len(expected) >= 10
    errors = _of(mypy_output, "user_errors.py", "error")
    code = re.compile(r"\[([\w-]+)\]$")
    assert {
        n: (m.group(1) if (m := code.search(text)) else text) for n, text in errors.items()
    } == expected
