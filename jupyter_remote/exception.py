"""Modal's exception names (``modal.exception``), as aliases into our one tree.

``from jupyter_remote.exception import NotFoundError`` works where a Modal
script has ``from modal.exception import NotFoundError``. Every name is a class
of :mod:`jupyter_remote.exceptions` (drawn there) or a builtin; none is a new
class. Where Modal's meaning is about its servers, the alias is the error that
plays that part here: a Nomad agent that refuses a token is a ``BackendError``,
so it is also ``AuthError``.

======================================  ==========================================
Modal name                               here
======================================  ==========================================
Error                                    JupyterRemoteError
InvalidError, ConflictError              ConfigError (also ValueError)
NotFoundError, AlreadyExistsError        NotFoundError, AlreadyExistsError
TimeoutError and its Modal subclasses    JupyterRemoteTimeoutError (also TimeoutError)
FunctionTimeoutError, OutputExpiredError the same names
ExecutionError                           WorkerError
SerializationError, DeserializationError SerializationError
VersionError                             VersionMismatchError
RemoteError, ImageBuildError             the same names
UnimplementedError                       NotSupportedError
ConnectionError, AuthError, ... (server) BackendError
InputCancellation                        KeyboardInterrupt: what a cancelled input gets
DeprecationError, ServerWarning, ...     UserWarning (warning categories)
======================================  ==========================================
"""

from __future__ import annotations

from .exceptions import (
    AlreadyExistsError,
    BackendError,
    ConfigError,
    FunctionTimeoutError,
    ImageBuildError,
    JupyterRemoteError,
    JupyterRemoteTimeoutError,
    NotFoundError,
    NotSupportedError,
    OutputExpiredError,
    RemoteError,
    SerializationError,
    VersionMismatchError,
    WorkerError,
)

__all__ = [
    "AlreadyExistsError",
    "AsyncUsageWarning",
    "AuthError",
    "ClientClosed",
    "ConflictError",
    "ConnectionError",
    "DataLossError",
    "DeprecationError",
    "DeserializationError",
    "Error",
    "ExecTimeoutError",
    "ExecutionError",
    "FilesystemExecutionError",
    "FunctionTimeoutError",
    "ImageBuildError",
    "InputCancellation",
    "InteractiveTimeoutError",
    "InternalError",
    "InternalFailure",
    "InvalidError",
    "LogsFetchError",
    "ModuleNotMountable",
    "MountUploadTimeoutError",
    "NotFoundError",
    "OutputExpiredError",
    "PendingDeprecationError",
    "PermissionDeniedError",
    "RemoteError",
    "RequestSizeError",
    "ResourceExhaustedError",
    "SandboxFilesystemError",
    "SandboxTerminatedError",
    "SandboxTimeoutError",
    "SerializationError",
    "ServerWarning",
    "ServiceError",
    "SnapshotCreationError",
    "TimeoutError",
    "UnimplementedError",
    "VersionError",
    "VolumeUploadTimeoutError",
    "WorkspaceManagementError",
]

Error = JupyterRemoteError
InvalidError = ConfigError
ConflictError = ConfigError
ModuleNotMountable = ConfigError

TimeoutError = JupyterRemoteTimeoutError  # Modal's name (also a builtin TimeoutError)
ExecTimeoutError = JupyterRemoteTimeoutError
InteractiveTimeoutError = JupyterRemoteTimeoutError
MountUploadTimeoutError = JupyterRemoteTimeoutError
SandboxTimeoutError = JupyterRemoteTimeoutError
VolumeUploadTimeoutError = JupyterRemoteTimeoutError

ExecutionError = WorkerError
DeserializationError = SerializationError
RequestSizeError = SerializationError
VersionError = VersionMismatchError
UnimplementedError = NotSupportedError

# Modal's errors about its servers: here the backend (the process launcher, Nomad) fails.
ConnectionError = BackendError  # Modal's name
AuthError = BackendError
DataLossError = BackendError
InternalError = BackendError
InternalFailure = BackendError
PermissionDeniedError = BackendError
ResourceExhaustedError = BackendError
ServiceError = BackendError

# Names of Modal features that are not served (Sandboxes, workspaces): importable, so that
# ``except`` clauses work; nothing here raises them.
ClientClosed = JupyterRemoteError
FilesystemExecutionError = JupyterRemoteError
LogsFetchError = JupyterRemoteError
SandboxFilesystemError = JupyterRemoteError
SandboxTerminatedError = JupyterRemoteError
SnapshotCreationError = JupyterRemoteError
WorkspaceManagementError = JupyterRemoteError

# The worker interrupts a cancelled input with KeyboardInterrupt (a BaseException, as
# Modal's InputCancellation is): ``except InputCancellation:`` catches it.
InputCancellation = KeyboardInterrupt

DeprecationError = UserWarning
PendingDeprecationError = UserWarning
ServerWarning = UserWarning
AsyncUsageWarning = UserWarning
