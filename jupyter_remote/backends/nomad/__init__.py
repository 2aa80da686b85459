"""The Nomad backend: workers as allocations of Nomad batch jobs, on GPU nodes if asked.

``JUPYTER_REMOTE_BACKEND=nomad`` plus Nomad's own variables (``NOMAD_ADDR``,
``NOMAD_TOKEN``, ``NOMAD_NAMESPACE``, ...); see ``_config.NomadConfig`` and
``nomad_jobs/README.md`` for cluster operators.
"""

from ._backend import NomadBackend
from ._client import NomadClient, NomadError
from ._config import NomadConfig

__all__ = ["NomadBackend", "NomadClient", "NomadConfig", "NomadError"]
