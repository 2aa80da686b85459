"""Deployments: the app server, the deployment store, and the client that reaches them.

The layers below (controller, backends, protocol, state) run the app server's
calls; ``api/`` builds deployments (``app.deploy()``) and looks them up
(``Function.from_name``). Never imports IPython.
"""

from ._client import ServerConnection, connection, not_running
from ._model import DeployedFunction, Deployment
from ._server import REF_PREFIX, AppServer, ref_for
from ._store import DeploymentStore, validate_app_name

__all__ = [
    "REF_PREFIX",
    "AppServer",
    "DeployedFunction",
    "Deployment",
    "DeploymentStore",
    "ServerConnection",
    "connection",
    "not_running",
    "ref_for",
    "validate_app_name",
]
