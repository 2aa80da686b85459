"""jupyter_remote: run notebook code and Python functions on remote GPUs.

>>> import jupyter_remote as jr
>>> app = jr.App("quickstart")
>>> @app.function(cpu=1)
... def square(x):
...     return x * x
>>> square.remote(7)  # doctest: +SKIP
49
"""

from .api import App, Cls, ClsInstance, Function, FunctionCall, LocalEntrypoint, enter, exit, method
from .exceptions import (
    BackendError,
    CallCancelledError,
    ConfigError,
    FunctionTimeoutError,
    GpuUnavailableError,
    JupyterRemoteError,
    OutputExpiredError,
    RemoteError,
    SerializationError,
    VersionMismatchError,
    WorkerDiedError,
    WorkerError,
    WorkerStartError,
)
from .retries import Retries

__version__ = "0.1.0"

__all__ = [
    "App",
    "BackendError",
    "CallCancelledError",
    "Cls",
    "ClsInstance",
    "ConfigError",
    "Function",
    "FunctionCall",
    "FunctionTimeoutError",
    "GpuUnavailableError",
    "JupyterRemoteError",
    "LocalEntrypoint",
    "OutputExpiredError",
    "RemoteError",
    "Retries",
    "SerializationError",
    "VersionMismatchError",
    "WorkerDiedError",
    "WorkerError",
    "WorkerStartError",
    "enter",
    "exit",
    "method",
]
