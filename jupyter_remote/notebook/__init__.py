"""Notebook integration: ``%load_ext jupyter_remote`` registers ``%%remote`` and friends.

To load it in every IPython session, add to ``ipython_config.py``::

    c.InteractiveShellApp.extensions = ["jupyter_remote"]

IPython is imported by the submodules only, so importing this package is cheap.
"""

from __future__ import annotations

from typing import Any

__all__ = ["load_ipython_extension", "unload_ipython_extension"]


def load_ipython_extension(ipython: Any) -> None:
    from ..api._function import set_call_hook
    from ._magics import RemoteMagics
    from ._routing import route_call

    ipython.register_magics(RemoteMagics(ipython))
    set_call_hook(route_call)
    try:
        from ._progress_widget import install
    except ImportError:  # ipywidgets missing: terminal-style progress
        return
    install()


def unload_ipython_extension(ipython: Any) -> None:
    from ..api._function import set_call_hook

    set_call_hook(None)
