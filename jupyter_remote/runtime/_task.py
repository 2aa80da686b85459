"""Who runs this code: the worker's task id, in its environment for user code.

The runtime sets ``JUPYTER_REMOTE_TASK_ID`` (and Modal's ``MODAL_TASK_ID``) to
its worker id before any user code runs, on every backend; ``is_local()`` is
false wherever it is set.
"""

from __future__ import annotations

import os

__all__ = ["MODAL_TASK_ID_ENV", "TASK_ID_ENV", "is_local", "set_task_id"]

TASK_ID_ENV = "JUPYTER_REMOTE_TASK_ID"
# Set always, not only for code that imported a Modal-named module: whether the function's
# module was a Modal script cannot be known before its first input is unpickled, and the
# variable costs nothing where nothing reads it.
MODAL_TASK_ID_ENV = "MODAL_TASK_ID"


def set_task_id(worker_id: str) -> None:
    """Called once by the worker, before it connects: its id becomes the task id."""
    os.environ[TASK_ID_ENV] = worker_id
    os.environ[MODAL_TASK_ID_ENV] = worker_id


def is_local() -> bool:
    """False inside a worker, True in the caller (a script, a notebook): Modal's ``is_local``.

    >>> import jupyter_remote as jr
    >>> jr.is_local()
    True
    """
    return TASK_ID_ENV not in os.environ
