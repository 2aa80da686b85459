"""Secrets on a Nomad cluster: one Nomad Variable per secret.

The secret ``db`` is the Variable ``jupyter_remote/secrets/db`` in the
configured namespace; its items are the environment variables::

    $ nomad var get jupyter_remote/secrets/db     # what an operator sees
    Namespace = default
    Path      = jupyter_remote/secrets/db
    Items
    PASSWORD = ...
    USER     = ...

Workers never read these Variables: the controller resolves a function's
secrets and sends the values over its authenticated channel, so only users
need an ACL policy for them (``nomad_jobs/acl-policy.hcl``)::

    variables {
      path "jupyter_remote/secrets/*" { capabilities = ["read", "list", "write", "destroy"] }
    }

Errors name the secret and, for a 403, the capability the token lacks; they
never carry values. That takes care here: a create-only write that collides
(HTTP 409) is answered with the existing Variable, values included, so that
answer never reaches a message or a traceback.
"""

from __future__ import annotations

import builtins
import contextlib
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from typing import Any

from ..backends.nomad._client import (
    NomadClient,
    NomadError,
    NomadPermissionError,
    NomadUnavailableError,
)
from ..exceptions import AlreadyExistsError, ConfigError
from ._secrets import SecretInfo, check_secret_name, check_values, secret_not_found

__all__ = ["SECRETS_PREFIX", "NomadSecretStore", "secret_variable_path"]

SECRETS_PREFIX = "jupyter_remote/secrets/"
_POLICY_PATH = SECRETS_PREFIX + "*"
_PROBE = SECRETS_PREFIX + "-"  # a valid Variable path, but no secret name starts with "-"


def secret_variable_path(name: str) -> str:
    """The Nomad Variable that holds secret ``name``.

    >>> secret_variable_path("db")
    'jupyter_remote/secrets/db'
    """
    check_secret_name(name)  # its alphabet fits Nomad Variable paths
    return SECRETS_PREFIX + name


class NomadSecretStore:
    """Secrets as Nomad Variables under ``jupyter_remote/secrets/`` (a ``SecretStore``).

    Without ``client`` each call opens a client from ``NomadConfig.load()``
    and closes it when done, so a store can be made anywhere and kept.

    >>> store = NomadSecretStore()  # doctest: +SKIP
    >>> store.put("db", {"USER": "admin", "PASSWORD": "hunter2"}, overwrite=False)  # doctest: +SKIP
    >>> [(info.name, info.keys) for info in store.list()]  # doctest: +SKIP
    [('db', ('PASSWORD', 'USER'))]
    """

    def __init__(self, client: NomadClient | None = None) -> None:
        self._client = client

    def __repr__(self) -> str:
        where = repr(self._client) if self._client is not None else "NomadConfig.load()"
        return f"NomadSecretStore({where})"

    def get(self, name: str) -> dict[str, str]:
        path = secret_variable_path(name)
        with self._connected() as nomad, _errors(nomad, name, "read"):
            variable = nomad.get_variable(path)
        if variable is None:
            raise secret_not_found(name)
        return _items(variable, name)

    def put(self, name: str, values: Mapping[str, str], *, overwrite: bool) -> None:
        path = secret_variable_path(name)
        checked = check_values(values, f"secret {name!r}")
        if not checked:
            raise ConfigError(f"secret {name!r} needs at least one key")
        try:
            with self._connected() as nomad, _errors(nomad, name, "write"):
                # cas=0: write only if no Variable exists at the path yet.
                nomad.put_variable(path, checked, cas=None if overwrite else 0)
        except NomadError as exc:
            if exc.status != 409:
                raise
            # ``from None``: the 409 answer holds the existing values.
            raise AlreadyExistsError(
                f"secret {name!r} already exists; pass overwrite=True to replace it"
            ) from None

    def delete(self, name: str) -> None:
        path = secret_variable_path(name)
        with self._connected() as nomad:
            # Nomad deletes a missing Variable without complaint: look first (a read,
            # not a listing, which a token without "list" would see empty).
            with _errors(nomad, name, "read"):
                exists = nomad.get_variable(path) is not None
            if not exists:
                raise secret_not_found(name)
            with _errors(nomad, name, "destroy"):
                nomad.delete_variable(path)

    def list(self) -> builtins.list[SecretInfo]:
        infos: builtins.list[SecretInfo] = []
        with self._connected() as nomad:
            with _errors(nomad, None, "list"):
                listed = nomad.list_variables(SECRETS_PREFIX)
                if not listed:
                    # Nomad filters a listing down to what the token may see, without a
                    # 403: read a path no secret can have, to tell "none" from "not allowed".
                    nomad.get_variable(_PROBE)
            for meta in listed:
                name = str(meta.get("Path", "")).removeprefix(SECRETS_PREFIX)
                if not _is_name(name):
                    continue  # not ours: a Variable someone put under the prefix by hand
                # The metadata has no item names, so each secret is read for its keys.
                with _errors(nomad, name, "read"):
                    variable = nomad.get_variable(SECRETS_PREFIX + name)
                if variable is None:
                    continue  # deleted between the listing and the read
                keys = tuple(sorted(_items(variable, name)))
                infos.append(SecretInfo(name, keys, _modify_time(variable)))
        return sorted(infos, key=lambda info: info.name)

    @contextlib.contextmanager
    def _connected(self) -> Iterator[NomadClient]:
        if self._client is not None:
            yield self._client
            return
        with NomadClient() as client:
            yield client


@contextlib.contextmanager
def _errors(client: NomadClient, name: str | None, capability: str) -> Iterator[None]:
    """Say which secret a Nomad error is about and, for a 403, which capability is missing."""
    what = "secrets" if name is None else f"secret {name!r}"
    verb = _VERBS[capability]
    try:
        yield
    except NomadPermissionError as exc:
        raise NomadPermissionError(
            _denied(client, f"{verb} {what}", capability, exc.server_message),
            exc.status,
            exc.server_message,
        ) from None
    except NomadError as exc:
        if isinstance(exc, NomadUnavailableError) or exc.status in (None, 409):
            raise
        raise type(exc)(
            f"Nomad could not {verb} {what}: {_safe(exc.server_message)} (HTTP {exc.status})",
            exc.status,
            _safe(exc.server_message),
        ) from None


def _denied(client: NomadClient, action: str, capability: str, server: str) -> str:
    ns = client.config.namespace
    head = f"Nomad refused to {action}: {server or 'Permission denied'} (HTTP 403)."
    if not client.config.token:
        return (
            f"{head} This cluster enforces ACLs and NOMAD_TOKEN is not set: set it to an "
            "ACL token's secret ID (nomad acl token create)."
        )
    return (
        f"{head} Either the token in NOMAD_TOKEN is unknown to this cluster or its ACL "
        f'policy lacks the variables capability "{capability}" on path "{_POLICY_PATH}" '
        f'in namespace {ns!r}: add to namespace "{ns}" {{ variables {{ path '
        f'"{_POLICY_PATH}" {{ capabilities = ["read", "list", "write", "destroy"] }} }} }} '
        "(see nomad_jobs/acl-policy.hcl)."
    )


_VERBS = {"read": "read", "write": "write", "destroy": "delete", "list": "list"}


def _is_name(name: str) -> bool:
    try:
        check_secret_name(name)
    except ConfigError:
        return False
    return True


def _safe(server: str) -> str:
    # A JSON answer may be a Variable, values and all: never quote one.
    return "(details withheld)" if server.lstrip().startswith("{") else server


def _items(variable: Mapping[str, Any], name: str) -> dict[str, str]:
    items = variable.get("Items")
    if not isinstance(items, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in items.items()
    ):
        raise ConfigError(
            f"the Nomad Variable {SECRETS_PREFIX + name} of secret {name!r} is malformed: "
            "its items should map names to strings"
        )
    return dict(items)


def _modify_time(variable: Mapping[str, Any]) -> datetime:
    nanoseconds = variable.get("ModifyTime")
    if not isinstance(nanoseconds, int):
        nanoseconds = 0
    return datetime.fromtimestamp(nanoseconds / 1e9, tz=UTC)
