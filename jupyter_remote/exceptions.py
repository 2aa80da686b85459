"""The one exception tree of jupyter_remote.

::

    JupyterRemoteError
    ├── ConfigError (also ValueError)      bad setting, option or resource request
    │   ├── GpuUnavailableError            no GPU of the requested kind here
    │   ├── NotFoundError                  no volume, secret or Function of that name here
    │   └── AlreadyExistsError             a volume or secret of that name exists already
    ├── SerializationError                 an argument, result or function cannot be pickled
    │   └── VersionMismatchError           caller and worker run different Python versions
    ├── WorkerError                        a worker could not start or died
    │   ├── WorkerStartError               the worker process never connected (shows its stderr)
    │   └── WorkerDiedError                killed, OOM, segfault, node lost: retries exhausted
    ├── JupyterRemoteTimeoutError (also TimeoutError)
    │   ├── FunctionTimeoutError           an input ran past ``timeout=``
    │   └── OutputExpiredError             ``FunctionCall.get(timeout=)`` elapsed
    ├── CallCancelledError                 the call was cancelled
    ├── BackendError                       the backend (process launcher, Nomad) failed
    │   └── ImageBuildError                building an Image failed (shows the installer's output)
    ├── NotSupportedError (also NotImplementedError)   a Modal feature jupyter_remote does not serve
    └── RemoteError                        user code raised an exception that cannot be rebuilt here

Exceptions raised by user code are re-raised as their own type when they
unpickle in the caller, with the remote traceback attached as ``__cause__``.
Lower-level errors (pickling, sockets, HTTP) are translated into this tree in
one place each, with ``raise ... from exc``. ``jupyter_remote.exception`` gives
Modal's exception names as aliases into this tree.
"""

from __future__ import annotations

__all__ = [
    "AlreadyExistsError",
    "BackendError",
    "CallCancelledError",
    "ConfigError",
    "FunctionTimeoutError",
    "GpuUnavailableError",
    "ImageBuildError",
    "JupyterRemoteError",
    "JupyterRemoteTimeoutError",
    "NotFoundError",
    "NotSupportedError",
    "OutputExpiredError",
    "RemoteError",
    "RemoteTraceback",
    "SerializationError",
    "VersionMismatchError",
    "WorkerDiedError",
    "WorkerError",
    "WorkerStartError",
]


class JupyterRemoteError(Exception):
    """Root of every error jupyter_remote raises itself."""


class ConfigError(JupyterRemoteError, ValueError):
    """A setting, option or resource request is invalid."""


class GpuUnavailableError(ConfigError):
    """The backend has no GPU matching the request."""


class NotFoundError(ConfigError):
    """No volume, secret or other named object exists under that name."""


class AlreadyExistsError(ConfigError):
    """A volume, secret or other named object of that name exists already."""


class SerializationError(JupyterRemoteError):
    """Something could not be pickled or unpickled."""


class VersionMismatchError(SerializationError):
    """The worker's Python differs from the caller's (cloudpickle needs the same minor)."""


class WorkerError(JupyterRemoteError):
    """A worker could not be started, or died while running inputs."""


class WorkerStartError(WorkerError):
    """A worker process exited or timed out before it connected to the controller."""


class WorkerDiedError(WorkerError):
    """A worker died while running an input, more often than the requeue cap allows."""


class JupyterRemoteTimeoutError(JupyterRemoteError, TimeoutError):
    """Something took too long to happen (Modal's ``modal.exception.TimeoutError``)."""


class FunctionTimeoutError(JupyterRemoteTimeoutError):
    """An input attempt ran longer than the function's ``timeout``."""


class OutputExpiredError(JupyterRemoteTimeoutError):
    """``FunctionCall.get(timeout=...)`` elapsed before the result arrived."""


class CallCancelledError(JupyterRemoteError):
    """The call was cancelled before it finished."""


class BackendError(JupyterRemoteError):
    """The backend that launches workers failed."""


class ImageBuildError(BackendError):
    """Building an image failed; the message ends with the installer's last lines."""

    def __init__(self, message: str, key: str = "", output: str = "") -> None:
        super().__init__(message)
        self.key = key
        self.output = output

    def __reduce__(self) -> tuple[type[ImageBuildError], tuple[str, str, str]]:
        return (type(self), (str(self), self.key, self.output))


class NotSupportedError(JupyterRemoteError, NotImplementedError):
    """A Modal feature (a name, an option) that jupyter_remote does not serve, or not yet.

    The message names the feature and, where there is one, what to use instead.
    """


class RemoteError(JupyterRemoteError):
    """User code raised an exception whose type cannot be rebuilt in the caller.

    ``str(err)`` is the remote ``Type: message``; ``err.remote_traceback`` holds
    the formatted remote traceback.
    """

    def __init__(self, message: str, remote_traceback: str = "") -> None:
        super().__init__(message)
        self.remote_traceback = remote_traceback

    def __reduce__(self) -> tuple[type[RemoteError], tuple[str, str]]:
        return (type(self), (str(self), self.remote_traceback))

    def _render_traceback_(self) -> list[str]:
        # IPython calls this instead of formatting the local frames.
        return [self.remote_traceback.rstrip("\n")] if self.remote_traceback else [str(self)]


class RemoteTraceback(Exception):
    """Carries a remote traceback as the ``__cause__`` of a re-raised exception."""

    def __init__(self, tb: str) -> None:
        super().__init__(tb)
        self.tb = tb

    def __str__(self) -> str:
        return "\n\nRemote traceback:\n" + self.tb.rstrip("\n")
