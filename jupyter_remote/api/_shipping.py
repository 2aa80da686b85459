"""What a remote node cannot import travels by value.

A Nomad node has Python and installed packages, not the caller's own modules
(a project's ``mylib/``, the script next to the notebook). Functions and
classes from such modules are pickled by reference by default, which would
fail there with ``ModuleNotFoundError``; for backends other than ``local``
their top-level package is registered with cloudpickle to travel by value,
as Modal mounts the caller's local packages.
"""

from __future__ import annotations

import os
import sys
import sysconfig
from typing import Any

import cloudpickle

__all__ = ["ship_caller_modules"]


def _installed_roots() -> tuple[str, ...]:
    paths = sysconfig.get_paths()
    roots = {os.path.realpath(paths[k]) for k in ("stdlib", "platstdlib", "purelib", "platlib")}
    return tuple(sorted(roots))


def ship_caller_modules(target: Any) -> None:
    """Register the caller-owned package defining ``target`` to be pickled by value."""
    name = getattr(target, "__module__", None)
    if not name or name == "__main__":
        return  # __main__ (scripts, notebooks) is pickled by value already
    top = name.partition(".")[0]
    if top == "jupyter_remote":
        return
    module = sys.modules.get(top)
    path = getattr(module, "__file__", None)
    if module is None or path is None:
        return
    real = os.path.realpath(path)
    if "site-packages" in real or real.startswith(_installed_roots()):
        return  # installed: the node is expected to have it
    cloudpickle.register_pickle_by_value(module)  # idempotent: once per definition is cheap
