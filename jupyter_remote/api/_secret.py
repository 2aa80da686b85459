"""``Secret``: Modal's named sets of environment variables, by reference or by value."""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Literal

from ..exceptions import ConfigError
from ..state._secrets import (
    SecretStore,
    check_env_key,
    check_secret_name,
    check_values,
    read_dotenv,
)

__all__ = ["Secret"]

_Kind = Literal["from_name", "from_dict", "from_dotenv", "from_local_environ"]


def _names(value: Iterable[str], what: str, where: str) -> tuple[str, ...]:
    if isinstance(value, str | bytes):
        # from_local_environ("HF_TOKEN") would otherwise mean the keys H, F, _, ...
        raise TypeError(f"{where}: {what} must be a list of names, not a {type(value).__name__}")
    return tuple(check_env_key(key, where) for key in value)


class Secret:
    """A set of environment variables for the functions that use it.

    Make one with a constructor; the values are read when a function using the
    secret is defined or called, on this machine:

    - ``Secret.from_name("db", required_keys=["PASSWORD"])``: a secret stored
      with ``jupyter-remote secret create db PASSWORD=...``;
    - ``Secret.from_dict({"KEY": "value"})``;
    - ``Secret.from_dotenv()``: the ``.env`` file here or in a parent directory;
    - ``Secret.from_local_environ(["HF_TOKEN"])``: copied from this process's environment.

    ``repr()``, ``str()`` and error messages show names and keys, never values:

    >>> Secret.from_dict({"TOKEN": "s3cr3t"})
    <Secret from_dict keys=['TOKEN']>
    >>> @app.function(secrets=[Secret.from_name("db")])  # doctest: +SKIP
    ... def query() -> str:
    ...     return os.environ["USER"]
    """

    __slots__ = (
        "_env_keys",
        "_filename",
        "_keys",
        "_kind",
        "_name",
        "_path",
        "_required_keys",
        "_values",
    )

    _kind: _Kind
    _name: str | None
    _required_keys: tuple[str, ...]
    _values: dict[str, str] | None
    _path: str | None
    _filename: str
    _env_keys: tuple[str, ...]
    _keys: tuple[str, ...] | None

    def __init__(self) -> None:
        raise TypeError(
            "create a Secret with Secret.from_name(), Secret.from_dict(), Secret.from_dotenv() "
            "or Secret.from_local_environ()"
        )

    @classmethod
    def _new(
        cls,
        kind: _Kind,
        *,
        name: str | None = None,
        required_keys: tuple[str, ...] = (),
        values: dict[str, str] | None = None,
        path: str | None = None,
        filename: str = ".env",
        env_keys: tuple[str, ...] = (),
        keys: tuple[str, ...] | None = None,
    ) -> Secret:
        self = object.__new__(cls)
        self._kind = kind
        self._name = name
        self._required_keys = required_keys
        self._values = values
        self._path = path
        self._filename = filename
        self._env_keys = env_keys
        self._keys = keys
        return self

    # -- constructors ---------------------------------------------------------------------

    @classmethod
    def from_name(cls, name: str, *, required_keys: Iterable[str] = ()) -> Secret:
        """A stored secret, looked up when used; ``required_keys`` must all be in it.

        >>> Secret.from_name("db", required_keys=["PASSWORD"])
        <Secret 'db' required_keys=['PASSWORD']>
        """
        check_secret_name(name)
        required = _names(required_keys, "required_keys", f"Secret.from_name({name!r})")
        return cls._new("from_name", name=name, required_keys=required)

    @classmethod
    def from_dict(cls, env_dict: Mapping[str, str | None] | None = None) -> Secret:
        """The given variables; keys whose value is ``None`` are left out, as in Modal.

        >>> Secret.from_dict({"A": "1", "B": None})
        <Secret from_dict keys=['A']>
        """
        given = {} if env_dict is None else env_dict
        if not isinstance(given, Mapping):
            raise TypeError(f"Secret.from_dict: expected a dict, not {type(given).__name__}")
        values = check_values({k: v for k, v in given.items() if v is not None}, "Secret.from_dict")
        return cls._new("from_dict", values=values, keys=tuple(sorted(values)))

    @classmethod
    def from_dotenv(
        cls, path: str | os.PathLike[str] | None = None, *, filename: str = ".env"
    ) -> Secret:
        """The variables of a ``.env`` file, read when the secret is used.

        ``path`` is the file to read; or a directory (default: the current one)
        or a ``.py`` file (``from_dotenv(__file__)``) to search, with its parents,
        for ``filename``.

        >>> Secret.from_dotenv("config/prod.env")  # doctest: +SKIP
        <Secret from_dotenv '/home/me/project/config/prod.env'>
        """
        start = os.path.abspath(os.fspath(path) if path is not None else os.curdir)
        if not isinstance(filename, str) or not filename or os.sep in filename:
            raise ConfigError(f"Secret.from_dotenv: filename={filename!r} must be a file name")
        return cls._new("from_dotenv", path=start, filename=filename)

    @classmethod
    def from_local_environ(cls, env_keys: Iterable[str]) -> Secret:
        """Variables copied from this process's environment when the secret is used.

        >>> Secret.from_local_environ(["HF_TOKEN"])
        <Secret from_local_environ keys=['HF_TOKEN']>
        """
        keys = _names(env_keys, "env_keys", "Secret.from_local_environ")
        return cls._new("from_local_environ", env_keys=keys, keys=tuple(sorted(set(keys))))

    # -- what it holds ----------------------------------------------------------------

    @property
    def name(self) -> str | None:
        """The stored secret's name (``from_name``), else ``None``."""
        return self._name

    def keys(self) -> list[str] | None:
        """The variable names, sorted, where known without reading values: ``None`` for
        ``from_name`` and ``from_dotenv`` until the secret has been resolved."""
        return None if self._keys is None else list(self._keys)

    def resolve(self, store: SecretStore) -> dict[str, str]:
        """Read the values now: from ``store`` (``from_name``), the file or the environment.

        Raises ``ConfigError`` naming the secret, file, variable or key that is
        missing, never a value.
        """
        if self._kind == "from_name":
            assert self._name is not None
            values = store.get(self._name)
            self._check_required(self._name, values)
        elif self._kind == "from_dict":
            assert self._values is not None
            values = dict(self._values)
        elif self._kind == "from_dotenv":
            values = read_dotenv(self._dotenv_file())
        else:
            missing = [key for key in self._env_keys if key not in os.environ]
            if missing:
                raise ConfigError(
                    f"Secret.from_local_environ: environment variable(s) {', '.join(missing)} "
                    "not set in this process; set them, or pass only the ones you have"
                )
            values = {key: os.environ[key] for key in self._env_keys}
        self._keys = tuple(sorted(values))
        return values

    def _check_required(self, name: str, values: Mapping[str, str]) -> None:
        missing = [key for key in self._required_keys if key not in values]
        if not missing:
            return
        has = ", ".join(sorted(values)) or "no keys"
        pairs = " ".join(f"{key}=..." for key in sorted({*values, *missing}))
        raise ConfigError(
            f"secret {name!r} is missing required key(s) {', '.join(missing)} (it has {has}); "
            f"replace it with `jupyter-remote secret create {name} {pairs} --force`"
        )

    def _dotenv_file(self) -> Path:
        assert self._path is not None
        start = Path(self._path)
        if start.is_file() and start.suffix != ".py":
            return start
        folder = start.parent if start.is_file() else start
        if not folder.is_dir():
            raise ConfigError(f"Secret.from_dotenv: {start} does not exist")
        for candidate in (folder, *folder.parents):
            if (candidate / self._filename).is_file():
                return candidate / self._filename
        raise ConfigError(
            f"Secret.from_dotenv: no {self._filename} file in {folder} or its parent directories"
        )

    def __repr__(self) -> str:
        if self._kind == "from_name":
            head = f"<Secret {self._name!r}"
        elif self._kind == "from_dotenv":
            head = f"<Secret from_dotenv {self._path!r}"
        else:
            head = f"<Secret {self._kind}"
        if self._keys is not None:
            return f"{head} keys={list(self._keys)!r}>"
        if self._required_keys:
            return f"{head} required_keys={list(self._required_keys)!r}>"
        return f"{head}>"
