"""Imports flow one way: the API and the worker never need IPython or Jupyter."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

CONFORMANCE = str(Path(__file__).parent.parent / "conformance")

BLOCK = """
import sys
BLOCKED = ("IPython", "ipykernel", "ipywidgets", "tornado", "jupyter_server", "jupyter_client")
class Blocker:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in BLOCKED:
            raise ImportError(f"{name} is blocked in this test")
        return None
sys.meta_path.insert(0, Blocker())
"""


def test_api_and_worker_run_without_ipython() -> None:
    script = BLOCK + textwrap.dedent(
        f"""
        sys.path.insert(0, {CONFORMANCE!r})
        import jupyter_remote as jr
        import jupyter_remote.runtime._main
        import conformance_funcs as funcs

        def loaded_on_worker():
            import sys
            return sorted(m for m in sys.modules if m.split(".")[0] in (
                "IPython", "ipykernel", "ipywidgets", "tornado", "jupyter_server"))

        app = jr.App("no-ipython")
        assert app.function()(funcs.square).remote(3) == 9
        print("worker modules:", app.function()(loaded_on_worker).remote())
        print("caller modules:", sorted(m for m in sys.modules if m.split(".")[0] in BLOCKED))
        """
    )
    proc = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0, proc.stderr
    assert "worker modules: []" in proc.stdout
    assert "caller modules: []" in proc.stdout


def test_worker_imports_only_the_protocol() -> None:
    code = (
        "import sys, jupyter_remote.runtime._main; "
        "print(sorted(m for m in sys.modules if m.startswith('jupyter_remote.')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    loaded = eval(out.stdout)
    for layer in ("api", "controller", "backends", "notebook", "cli"):
        assert not [m for m in loaded if m.startswith(f"jupyter_remote.{layer}")], loaded
    assert "jupyter_remote.runtime._worker" in loaded


PACKAGE = Path(__file__).parent.parent.parent / "jupyter_remote"
# Which top-level modules each part may import (DESIGN.md: imports flow one way).
ONLY_IN = {
    "tornado": ("lab",),
    "jupyter_server": ("lab",),
    "IPython": ("notebook",),
    "ipykernel": ("notebook",),
    "ipywidgets": ("notebook",),
}


def _imported(path: Path) -> set[str]:
    import ast

    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


def test_jupyter_server_and_ipython_are_imported_only_in_their_layers() -> None:
    wrong = []
    for path in sorted(PACKAGE.rglob("*.py")):
        part = path.relative_to(PACKAGE).parts[0]
        for name in _imported(path) & set(ONLY_IN):
            if part not in ONLY_IN[name]:
                wrong.append(f"{path.relative_to(PACKAGE)} imports {name}")
    assert not wrong
    assert "tornado" in _imported(PACKAGE / "lab" / "_base.py")  # the scan sees imports


def test_the_cli_and_the_stores_run_without_jupyter_server() -> None:
    script = BLOCK + textwrap.dedent(
        """
        import jupyter_remote.cli._main, jupyter_remote.state._nomad_jobs
        import jupyter_remote.state._volumes, jupyter_remote.state._secrets
        print("loaded:", sorted(m for m in sys.modules if m.split(".")[0] in BLOCKED))
        """
    )
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert "loaded: []" in proc.stdout
