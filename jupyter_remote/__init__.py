"""jupyter_remote: run notebook code and Python functions on remote GPUs.

>>> import jupyter_remote as jr
>>> app = jr.App("quickstart")
>>> @app.function(cpu=1)
... def square(x):
...     return x * x
>>> square.remote(7)  # doctest: +SKIP
49
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

# What the checker sees: every public name and Modal-style submodule, imported for real
# (so ``jr.App`` is ``App``, not ``Any``). At run time they load on first use, below.
if TYPE_CHECKING:
    from . import app as app
    from . import cls as cls
    from . import exception as exception
    from . import functions as functions
    from . import gpu as gpu
    from . import image as image
    from . import output as output
    from . import partial_function as partial_function
    from . import retries as retries
    from . import secret as secret
    from . import volume as volume
    from .api import (
        App,
        Cls,
        ClsInstance,
        Cron,
        Function,
        FunctionCall,
        Image,
        LocalEntrypoint,
        Period,
        Secret,
        Volume,
        concurrent,
        enter,
        exit,
        method,
        parameter,
    )
    from .api._output import enable_output
    from .exceptions import (
        AlreadyExistsError,
        BackendError,
        CallCancelledError,
        ConfigError,
        FunctionTimeoutError,
        GpuUnavailableError,
        ImageBuildError,
        JupyterRemoteError,
        JupyterRemoteTimeoutError,
        NotFoundError,
        NotSupportedError,
        OutputExpiredError,
        RemoteError,
        SerializationError,
        VersionMismatchError,
        WorkerDiedError,
        WorkerError,
        WorkerStartError,
    )
    from .retries import Retries
    from .runtime import current_function_call_id, current_input_id
    from .runtime._task import is_local

__version__ = "0.1.0"

__all__ = [
    "AlreadyExistsError",
    "App",
    "BackendError",
    "CallCancelledError",
    "Cls",
    "ClsInstance",
    "ConfigError",
    "Cron",
    "Function",
    "FunctionCall",
    "FunctionTimeoutError",
    "GpuUnavailableError",
    "Image",
    "ImageBuildError",
    "JupyterRemoteError",
    "JupyterRemoteTimeoutError",
    "LocalEntrypoint",
    "NotFoundError",
    "NotSupportedError",
    "OutputExpiredError",
    "Period",
    "RemoteError",
    "Retries",
    "Secret",
    "SerializationError",
    "VersionMismatchError",
    "Volume",
    "WorkerDiedError",
    "WorkerError",
    "WorkerStartError",
    "concurrent",
    "current_function_call_id",
    "current_input_id",
    "enable_output",
    "enter",
    "exit",
    "is_local",
    "load_ipython_extension",
    "method",
    "parameter",
    "unload_ipython_extension",
]

# Loaded on first use, so that the worker (``python -m jupyter_remote.runtime``) imports
# only the protocol, and ``import jupyter_remote`` stays cheap.
_HOME = {
    name: ".exceptions" if name.endswith("Error") else ".api"
    for name in __all__
    if not name.endswith("ipython_extension")  # defined below
}
_HOME["Retries"] = ".retries"
_HOME["current_function_call_id"] = _HOME["current_input_id"] = ".runtime"
_HOME["enable_output"] = ".api._output"
_HOME["is_local"] = ".runtime._task"

# Modal's module paths (``modal.gpu.H100``, ``modal.exception.NotFoundError`` after
# ``import modal``): submodules imported on first attribute access.
_SUBMODULES = frozenset(
    {
        "app",
        "cls",
        "exception",
        "functions",
        "gpu",
        "image",
        "output",
        "partial_function",
        "retries",
        "secret",
        "volume",
    }
)


def load_ipython_extension(ipython: Any) -> None:
    """``%load_ext jupyter_remote``: register ``%%remote``, ``%remote`` and ``%remote_config``."""
    from .notebook import load_ipython_extension as load

    load(ipython)


def unload_ipython_extension(ipython: Any) -> None:
    from .notebook import unload_ipython_extension as unload

    unload(ipython)


def _lazy_attribute(name: str) -> Any:
    """``jr.NAME``: import the module NAME lives in, on first use, and keep it here."""
    home = _HOME.get(name)
    if home is None:
        if name in _SUBMODULES:
            return importlib.import_module(f".{name}", __name__)
        from ._unsupported import unsupported_name

        error = unsupported_name("jupyter_remote", name)
        if error is not None:
            raise error
        raise AttributeError(f"module 'jupyter_remote' has no attribute {name!r}")
    value = getattr(importlib.import_module(home, __name__), name)
    globals()[name] = value
    return value


# Hidden from the checker: a module ``__getattr__`` would make ``jr.<any typo>`` type as
# ``Any``; with the imports above, a name outside the public surface is an error there.
if not TYPE_CHECKING:
    __getattr__ = _lazy_attribute


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
