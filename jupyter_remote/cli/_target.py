"""Import what ``jupyter-remote run TARGET`` names and choose the entrypoint or function to run.

``TARGET`` is ``path/to/script.py`` or ``package.module``, optionally followed by
``::name``. A script is imported under its file name (not ``__main__``, so its
``if __name__ == "__main__":`` block does not run), with its directory first on
``sys.path`` so that its sibling imports work here and on workers. The imported
module is pickled by value, so workers never need to import it.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import re
import sys
import types
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import cloudpickle

from ..api import App, Function, LocalEntrypoint
from ._common import CliError

__all__ = ["Runnable", "UserImportError", "import_target", "select", "split_target"]


class UserImportError(Exception):
    """The target's own code raised while being imported; ``__cause__`` is what it raised."""


@dataclass(frozen=True)
class Runnable:
    """A local entrypoint or an ``@app.function()`` found in the target."""

    name: str
    kind: Literal["local entrypoint", "function"]
    obj: LocalEntrypoint | Function[..., Any, Any]

    @property
    def app(self) -> App:
        return self.obj.app

    @property
    def raw_f(self) -> Any:
        return self.obj.raw_f


def split_target(target: str) -> tuple[str, str | None]:
    """``"a.py::main"`` -> ``("a.py", "main")``; ``"a.py"`` -> ``("a.py", None)``."""
    where, sep, name = target.partition("::")
    if not where:
        raise CliError(f"{target!r} names no script or module; use `path/to/script.py[::name]`")
    if sep and not name:
        raise CliError(f"{target!r} ends with '::'; put a function name after it, or drop it")
    return where, (name or None)


def _is_path(where: str) -> bool:
    return where.endswith(".py") or os.sep in where or "/" in where or Path(where).is_file()


def _module_name_for(path: Path) -> str:
    stem = re.sub(r"\W", "_", path.stem)
    if not stem or stem[0].isdigit():
        stem = "_" + stem
    existing = sys.modules.get(stem)
    if existing is None or getattr(existing, "__file__", None) == str(path):
        return stem
    # The name is taken by another module (e.g. a script called json.py): use a private one.
    return f"_jupyter_remote_script_{stem}"


def _import_script(where: str) -> types.ModuleType:
    path = Path(where).expanduser().resolve()
    if not path.is_file():
        raise CliError(
            f"no such file: {where} (give the path of a Python script, or a module name)"
        )
    directory = str(path.parent)
    if directory not in sys.path:
        sys.path.insert(0, directory)
    name = _module_name_for(path)
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise CliError(f"cannot import {where}: is it a Python source file?")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException as exc:
        sys.modules.pop(name, None)
        if not isinstance(exc, Exception):
            raise  # KeyboardInterrupt, sys.exit(): main() handles them
        raise UserImportError(where) from exc
    return module


def _import_module(where: str) -> types.ModuleType:
    # `python -m` puts the working directory first; do the same so `pkg.mod` resolves.
    cwd = os.getcwd()
    if cwd not in sys.path:
        sys.path.insert(0, cwd)
    try:
        return importlib.import_module(where)
    except ModuleNotFoundError as exc:
        if exc.name is not None and (where == exc.name or where.startswith(exc.name + ".")):
            raise CliError(
                f"no module named {exc.name!r}: give the path of a script (ending in .py), "
                "or run from the directory that contains the package"
            ) from None
        raise UserImportError(where) from exc
    except Exception as exc:
        raise UserImportError(where) from exc


def import_target(where: str, *, module_path: bool = False) -> types.ModuleType:
    """Import a script path or a module name and mark it to be pickled by value.

    ``module_path`` (``run -m``): ``where`` is a module name even if a file of
    that name exists here.
    """
    if module_path and (where.endswith(".py") or "/" in where or os.sep in where):
        raise CliError(
            f"-m takes a module name like pkg.mod, not the path {where!r}; drop -m to run a script"
        )
    is_script = not module_path and _is_path(where)
    module = _import_script(where) if is_script else _import_module(where)
    cloudpickle.register_pickle_by_value(module)
    return module


def _runnables(module: types.ModuleType) -> list[Runnable]:
    """Every local entrypoint, then every function, of the Apps the module refers to."""
    apps: dict[int, App] = {}
    for value in list(vars(module).values()):
        app = value if isinstance(value, App) else getattr(value, "app", None)
        if isinstance(value, App | LocalEntrypoint | Function) and isinstance(app, App):
            apps.setdefault(id(app), app)
    found: list[Runnable] = []
    for app in apps.values():
        for name, ep in app.registered_entrypoints.items():
            found.append(Runnable(name, "local entrypoint", ep))
    for app in apps.values():
        for name, fn in app.registered_functions.items():
            found.append(Runnable(name, "function", fn))
    return found


def _listing(runnables: list[Runnable]) -> str:
    return ", ".join(f"{r.name} ({r.kind})" for r in runnables)


def _by_name(where: str, module: types.ModuleType, name: str, found: list[Runnable]) -> Runnable:
    value = getattr(module, name, None)
    if isinstance(value, LocalEntrypoint | Function):
        for r in found:
            if r.obj is value:
                return r
        kind: Literal["local entrypoint", "function"] = (
            "local entrypoint" if isinstance(value, LocalEntrypoint) else "function"
        )
        return Runnable(name, kind, value)
    matches = [r for r in found if r.name == name]
    if len(matches) == 1:
        return matches[0]
    if len(matches) > 1:
        raise CliError(
            f"{where} has several things named {name!r} (in different Apps); "
            "give each a distinct name"
        )
    if value is not None:
        what = f"{name!r} in {where} is not decorated with @app.local_entrypoint() or "
        what += "@app.function()"
    else:
        what = f"{where} has no local entrypoint or function named {name!r}"
    choices = f"; it can run: {_listing(found)}" if found else ""
    raise CliError(what + choices)


def select(where: str, module: types.ModuleType, name: str | None) -> Runnable:
    """What to run: ``::name``, else the one local entrypoint, else the one function."""
    found = _runnables(module)
    if name is not None:
        return _by_name(where, module, name, found)
    entrypoints = [r for r in found if r.kind == "local entrypoint"]
    functions = [r for r in found if r.kind == "function"]
    if len(entrypoints) == 1:
        return entrypoints[0]
    if len(entrypoints) > 1:
        names = ", ".join(r.name for r in entrypoints)
        raise CliError(
            f"{where} has {len(entrypoints)} local entrypoints ({names}); choose one, "
            f"e.g. `jupyter-remote run {where}::{entrypoints[0].name}`"
        )
    if len(functions) == 1:
        return functions[0]
    if functions:
        names = ", ".join(r.name for r in functions)
        raise CliError(
            f"{where} has no local entrypoint and {len(functions)} functions ({names}); choose "
            f"one, e.g. `jupyter-remote run {where}::{functions[0].name}`, or add "
            "@app.local_entrypoint()"
        )
    raise CliError(
        f"{where} defines nothing to run: decorate a function with @app.local_entrypoint() "
        "or @app.function() on an App defined or imported there"
    )
