"""``/jupyter-remote/api/secrets``: the secret store of ``jupyter-remote secret``.

::

    GET    secrets                       {"backend", "secrets": [{name, keys, updated_at}]}
    POST   secrets  {"name", "values"}   201 {"name", "keys"}: create (409 if it exists)
    PUT    secrets/NAME {"values", "remove"}  {"name", "keys"}: set the given keys, drop the
                                         keys in ``remove``, keep the others
    DELETE secrets/NAME                  204

The store is the configured backend's (``state.secret_store``): a local file,
or Nomad Variables. No answer, log line or error message holds a value: they
name keys only.
"""

from __future__ import annotations

from typing import Any

from tornado import web

from ..config import load_settings
from ..exceptions import AlreadyExistsError
from ..state import SecretStore, secret_store
from ..state._secrets import check_env_key, check_secret_name, check_values, secret_not_found
from ._base import ApiError, Handler, blocking

__all__ = ["routes"]


def _name(value: object) -> str:
    if not isinstance(value, str):
        raise ApiError('give the secret\'s name as a string: {"name": "db", "values": {...}}')
    return check_secret_name(value)


def _store() -> tuple[str, SecretStore]:
    backend = load_settings().backend
    return backend, secret_store(backend)


def _values(body: dict[str, Any], name: str, *, required: bool) -> dict[str, str]:
    values = body.get("values", {})
    if not isinstance(values, dict) or (required and not values):
        raise ApiError(
            f'give the variables of secret {name!r} as an object: {{"values": {{"KEY": "value"}}}}'
        )
    try:
        return check_values(values, f"secret {name!r}")
    except TypeError as exc:  # names the key and the value's type, never the value
        raise ApiError(str(exc)) from None


def _names(store: SecretStore) -> set[str]:
    return {info.name for info in store.list()}


def _create(store: SecretStore, name: str, values: dict[str, str]) -> None:
    if name in _names(store):
        raise AlreadyExistsError(
            f"secret {name!r} already exists; update it instead (or delete it first)"
        )
    store.put(name, values, overwrite=False)


def _update(store: SecretStore, name: str, values: dict[str, str], remove: list[str]) -> list[str]:
    if name not in _names(store):
        raise secret_not_found(name)
    merged = {k: v for k, v in store.get(name).items() if k not in remove}
    merged.update(values)
    if not merged:
        raise ApiError(f"secret {name!r} would have no keys left; delete it instead")
    store.put(name, merged, overwrite=True)
    return sorted(merged)


def _delete(store: SecretStore, name: str) -> None:
    if name not in _names(store):
        raise secret_not_found(name)
    store.delete(name)


class SecretsHandler(Handler):
    @web.authenticated
    async def get(self) -> None:
        backend, store = await blocking(_store)
        infos = await blocking(store.list)
        secrets = [{"name": i.name, "keys": list(i.keys), "updated_at": i.updated_at.isoformat()}
                   for i in infos]  # fmt: skip
        self.write_json({"backend": backend, "secrets": secrets})

    @web.authenticated
    async def post(self) -> None:
        body = self.json_body()
        name = _name(body.get("name"))
        values = _values(body, name, required=True)
        _, store = await blocking(_store)
        await blocking(_create, store, name, values)
        self.write_json({"name": name, "keys": sorted(values)}, status=201)


class SecretHandler(Handler):
    @web.authenticated
    async def put(self, name: str) -> None:
        check_secret_name(name)
        body = self.json_body()
        values = _values(body, name, required=False)
        remove = body.get("remove", [])
        if not isinstance(remove, list) or not all(isinstance(key, str) for key in remove):
            raise ApiError('"remove" must be a list of key names: {"remove": ["OLD_KEY"]}')
        for key in remove:
            check_env_key(key, f"secret {name!r}")
        _, store = await blocking(_store)
        keys = await blocking(_update, store, name, values, remove)
        self.write_json({"name": name, "keys": keys})

    @web.authenticated
    async def delete(self, name: str) -> None:
        check_secret_name(name)
        _, store = await blocking(_store)
        await blocking(_delete, store, name)
        self.set_status(204)
        self.finish()


def routes(api: str) -> list[tuple[str, type[Handler]]]:
    return [(f"{api}/secrets", SecretsHandler), (f"{api}/secrets/([^/]+)", SecretHandler)]
