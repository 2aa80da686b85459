"""What workers run in the tests of Modal's everyday names (local backend and Nomad)."""

from __future__ import annotations

import os

import jupyter_remote as jr


def task_env() -> tuple[str | None, str | None, bool]:
    """The task ids the runtime put in this worker's environment, and ``is_local()`` here."""
    return os.environ.get("JUPYTER_REMOTE_TASK_ID"), os.environ.get("MODAL_TASK_ID"), jr.is_local()


def import_in_image_block() -> str:
    """``image.imports()`` on a worker: a missing module must raise here."""
    with jr.Image.debian_slim().imports():
        import a_module_that_is_nowhere  # type: ignore[import-not-found]  # noqa: F401
    return "the import error was swallowed"


def task_env_of(_: int) -> str:
    """The worker's task id, for an input: which worker ran it."""
    return os.environ["JUPYTER_REMOTE_TASK_ID"]
