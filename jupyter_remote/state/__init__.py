"""State that outlives a call: secrets, volumes and schedules, and where each is stored."""

from __future__ import annotations

from ._secrets import LocalSecretStore, SecretStore

__all__ = ["LocalSecretStore", "SecretStore", "secret_store"]


def secret_store(backend: str) -> SecretStore:
    """Where the secrets of functions running on ``backend`` are kept.

    ``"nomad"``: Nomad Variables in the configured namespace (imported only then,
    so the local backend never loads the Nomad client); anything else: the local file.
    """
    if backend == "nomad":
        from ._nomad_secrets import NomadSecretStore

        return NomadSecretStore()
    return LocalSecretStore()
