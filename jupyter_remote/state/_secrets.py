"""Secrets at rest: the store contract, the local file store, validation and ``.env`` parsing.

A secret is a named set of environment variables. ``SecretStore`` is the whole
contract a backend implements: ``get``, ``put``, ``delete`` and ``list``. The
local store keeps every secret in one JSON file next to the config file
(``$XDG_CONFIG_HOME/jupyter_remote/secrets.json``), readable by its owner only::

    {"version": 1, "secrets": {"db": {"updated_at": "2024-05-01T12:00:00+00:00",
                                      "values": {"PASSWORD": "...", "USER": "..."}}}}

The Nomad store keeps each secret as the Variable ``jupyter_remote/secrets/<name>``,
which is why names and keys are restricted to what both accept.

Values never appear in messages: errors name the secret, the key, the file or
the line, never what a key holds.
"""

from __future__ import annotations

import builtins
import contextlib
import fcntl
import json
import os
import re
import stat
import tempfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol, TypedDict

from ..config import config_path
from ..exceptions import AlreadyExistsError, ConfigError, NotFoundError

__all__ = [
    "LocalSecretStore",
    "SecretInfo",
    "SecretStore",
    "check_env_key",
    "check_secret_name",
    "check_values",
    "parse_dotenv",
    "read_dotenv",
    "secret_not_found",
]

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}")  # no ".": Nomad Variable paths refuse it
_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_FILE_VERSION = 1


# -- validation ---------------------------------------------------------------------------


def check_secret_name(name: object) -> str:
    """Return ``name`` if it is a valid secret name, else raise ``ConfigError`` naming it."""
    if not isinstance(name, str):
        raise TypeError(f"a secret name must be a str, not {type(name).__name__}")
    if not _NAME.fullmatch(name):
        raise ConfigError(
            f"invalid secret name {name!r}: use 1 to 64 letters, digits, '_', '.' or '-', "
            "starting with a letter or digit"
        )
    return name


def check_env_key(key: object, where: str) -> str:
    """Return ``key`` if it can be an environment variable name; errors start with ``where``."""
    if not isinstance(key, str):
        raise TypeError(f"{where}: keys must be str, not {type(key).__name__}")
    if not _KEY.fullmatch(key):
        raise ConfigError(
            f"{where}: {key!r} is not a valid environment variable name "
            "(letters, digits and '_', not starting with a digit)"
        )
    return key


def check_values(values: Mapping[Any, Any], where: str) -> dict[str, str]:
    """Validate keys and values (``str``, no NUL byte) and return a plain copy."""
    if not isinstance(values, Mapping):
        raise TypeError(f"{where}: values must be a mapping, not {type(values).__name__}")
    checked: dict[str, str] = {}
    for key, value in values.items():
        check_env_key(key, where)
        if not isinstance(value, str):
            raise TypeError(
                f"{where}: the value of {key} must be a str, not {type(value).__name__}"
            )
        if "\0" in value:
            # The worker could not put it in its environment.
            raise ConfigError(f"{where}: the value of {key} contains a NUL character")
        checked[key] = value
    return checked


def secret_not_found(name: str) -> NotFoundError:
    """The error every store raises for a missing secret: it says how to create one."""
    return NotFoundError(
        f"secret {name!r} not found; create it with `jupyter-remote secret create {name} KEY=VALUE`"
    )


# -- .env files ---------------------------------------------------------------------------

_EXPORT = re.compile(r"export\s+")
_INTERPOLATION = re.compile(r"\$\{(?P<name>[^}:]+)(?::-(?P<default>[^}]*))?\}")
_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", '"': '"', "'": "'", "\\": "\\"}


def _close_quote(body: str, quote: str) -> tuple[str, str] | None:
    """Scan ``body`` (after an opening quote) to its closing quote: ``(value, rest)``."""
    out: list[str] = []
    i = 0
    while i < len(body):
        char = body[i]
        if char == "\\" and i + 1 < len(body):
            nxt = body[i + 1]
            if quote == '"' and nxt in _ESCAPES:
                out.append(_ESCAPES[nxt])
                i += 2
                continue
            if quote == "'" and nxt in "'\\":
                out.append(nxt)
                i += 2
                continue
        if char == quote:
            return "".join(out), body[i + 1 :]
        out.append(char)
        i += 1
    return None


def _interpolate(value: str, env: Mapping[str, str]) -> str:
    # python-dotenv's rule, which Modal's from_dotenv inherits: ${NAME} and ${NAME:-default}.
    def replace(match: re.Match[str]) -> str:
        found = env.get(match["name"])
        return found if found is not None else (match["default"] or "")

    return _INTERPOLATION.sub(replace, value)


def parse_dotenv(
    text: str, source: str = ".env", environ: Mapping[str, str] | None = None
) -> dict[str, str]:
    """Parse ``.env`` text as python-dotenv does; errors name ``source`` and the line.

    ``KEY=VALUE`` and ``export KEY=VALUE`` lines; blank lines and ``#`` comments
    are skipped; single-quoted values are literal; double-quoted values know
    ``\\n``, ``\\t``, ``\\"`` and may span lines; unquoted and double-quoted values
    expand ``${NAME}`` and ``${NAME:-default}`` from earlier keys, then ``environ``
    (default ``os.environ``). A bare ``KEY`` without ``=`` is ignored.

    >>> parse_dotenv('export USER=admin  # comment\\nPASSWORD="a b"\\n')
    {'USER': 'admin', 'PASSWORD': 'a b'}
    """
    base = os.environ if environ is None else environ
    values: dict[str, str] = {}
    lines = text.replace("\r\n", "\n").split("\n")
    i = 0
    while i < len(lines):
        lineno = i + 1
        line = lines[i].lstrip()
        i += 1
        if not line or line.startswith("#"):
            continue
        if match := _EXPORT.match(line):
            line = line[match.end() :]
        key, eq, raw = line.partition("=")
        key = key.strip()
        if not eq:
            if _KEY.fullmatch(key):
                continue
            # The line may be a pasted value: never show it.
            raise ConfigError(f"{source}, line {lineno}: expected KEY=VALUE")
        check_env_key(key, f"{source}, line {lineno}")
        raw = raw.lstrip()
        if raw[:1] in ("'", '"'):
            quote, body = raw[0], raw[1:]
            while (closed := _close_quote(body, quote)) is None:
                if i >= len(lines):
                    raise ConfigError(
                        f"{source}, line {lineno}: the value of {key} has no closing {quote}"
                    )
                body += "\n" + lines[i]
                i += 1
            value, rest = closed
            rest = rest.strip()
            if rest and not rest.startswith("#"):
                raise ConfigError(
                    f"{source}, line {lineno}: unexpected text after the quoted value of {key}"
                )
            if quote == '"':
                value = _interpolate(value, {**base, **values})
        else:
            value = re.split(r"\s#", raw, maxsplit=1)[0].strip()
            value = _interpolate(value, {**base, **values})
        values[key] = value
    return values


def read_dotenv(path: str | os.PathLike[str]) -> dict[str, str]:
    """Read and parse a ``.env`` file; a missing or unreadable file is a ``ConfigError``."""
    where = Path(path)
    try:
        text = where.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"dotenv file not found: {where}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"dotenv file {where} is not UTF-8 text") from None
    except OSError as exc:
        raise ConfigError(f"cannot read the dotenv file {where}: {exc.strerror}") from None
    return parse_dotenv(text, str(where))


# -- stores -------------------------------------------------------------------------------


@dataclass(frozen=True)
class SecretInfo:
    """What ``SecretStore.list()`` tells about a secret: never its values."""

    name: str
    keys: tuple[str, ...]
    updated_at: datetime


class SecretStore(Protocol):
    """Where named secrets live: a local file, or Nomad Variables on a cluster.

    Implementations validate names with ``check_secret_name`` and values with
    ``check_values``, and raise ``secret_not_found(name)`` for a missing secret.
    """

    def get(self, name: str) -> dict[str, str]:
        """The secret's values; ``ConfigError`` if there is no such secret."""
        ...

    def put(self, name: str, values: Mapping[str, str], *, overwrite: bool) -> None:
        """Store ``values`` (at least one key) as ``name``; ``ConfigError`` if it exists and
        ``overwrite`` is false."""
        ...

    def delete(self, name: str) -> None:
        """Remove the secret; ``ConfigError`` if there is no such secret."""
        ...

    def list(self) -> builtins.list[SecretInfo]:
        """Every secret's name, keys and update time, sorted by name."""
        ...


class _Entry(TypedDict):
    values: dict[str, str]
    updated_at: str


class LocalSecretStore:
    """Secrets in one JSON file only its owner can read: ``secrets.json`` by the config file.

    The file is created with mode 0600 in a 0700 directory, rewritten atomically
    under an exclusive lock (so concurrent commands do not lose each other's
    writes), and refused if other users can access it.

    >>> store = LocalSecretStore(tmp_path / "secrets.json")  # doctest: +SKIP
    >>> store.put("db", {"USER": "admin", "PASSWORD": "hunter2"}, overwrite=False)  # doctest: +SKIP
    >>> store.list()[0].keys  # doctest: +SKIP
    ('PASSWORD', 'USER')
    """

    def __init__(self, path: str | os.PathLike[str] | None = None) -> None:
        self.path = Path(path) if path is not None else config_path().parent / "secrets.json"
        self._lock_path = self.path.with_name(self.path.name + ".lock")

    def __repr__(self) -> str:
        return f"LocalSecretStore({str(self.path)!r})"

    def get(self, name: str) -> dict[str, str]:
        check_secret_name(name)
        entry = self._read().get(name)
        if entry is None:
            raise secret_not_found(name)
        return dict(entry["values"])

    def put(self, name: str, values: Mapping[str, str], *, overwrite: bool) -> None:
        check_secret_name(name)
        checked = check_values(values, f"secret {name!r}")
        if not checked:
            raise ConfigError(f"secret {name!r} needs at least one key")
        with self._locked():
            secrets = self._read()
            if name in secrets and not overwrite:
                raise AlreadyExistsError(
                    f"secret {name!r} already exists; pass overwrite=True to replace it"
                )
            now = datetime.now(UTC).isoformat(timespec="seconds")
            secrets[name] = {"values": checked, "updated_at": now}
            self._write(secrets)

    def delete(self, name: str) -> None:
        check_secret_name(name)
        with self._locked():
            secrets = self._read()
            if name not in secrets:
                raise secret_not_found(name)
            del secrets[name]
            self._write(secrets)

    def list(self) -> builtins.list[SecretInfo]:
        return [
            SecretInfo(name, tuple(sorted(entry["values"])), _parse_time(entry["updated_at"]))
            for name, entry in sorted(self._read().items())
        ]

    # -- the file ---------------------------------------------------------------------

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        """Hold the exclusive lock for a read-modify-write; creates the directory (0700)."""
        try:
            self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            fd = os.open(self._lock_path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        except OSError as exc:
            raise ConfigError(
                f"cannot write secrets to {self.path.parent}: {exc.strerror}"
            ) from exc
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # releases the lock

    def _invalid(self, what: str) -> ConfigError:
        return ConfigError(
            f"the secrets file {self.path} is not valid ({what}); fix it or move it away"
        )

    def _read(self) -> dict[str, _Entry]:
        # Writers replace the file atomically, so a reader needs no lock.
        try:
            fd = os.open(self.path, os.O_RDONLY | os.O_CLOEXEC)
        except FileNotFoundError:
            return {}
        except OSError as exc:
            raise ConfigError(f"cannot read the secrets file {self.path}: {exc.strerror}") from exc
        with os.fdopen(fd, "rb") as file:
            mode = os.fstat(file.fileno()).st_mode
            if not stat.S_ISREG(mode):
                raise ConfigError(f"the secrets file {self.path} is not a regular file")
            if mode & 0o077:
                raise ConfigError(
                    f"the secrets file {self.path} can be accessed by other users "
                    f"(mode {stat.S_IMODE(mode):04o}); run `chmod 600 {self.path}`"
                )
            raw = file.read()
        try:
            data = json.loads(raw.decode("utf-8"))
        except UnicodeDecodeError:
            raise self._invalid("not UTF-8") from None
        except json.JSONDecodeError as exc:
            # ``from None``: the decode error holds the whole document, values included.
            raise self._invalid(f"bad JSON at line {exc.lineno}, column {exc.colno}") from None
        return self._check_shape(data)

    def _check_shape(self, data: Any) -> dict[str, _Entry]:
        if not isinstance(data, dict) or not isinstance(data.get("secrets"), dict):
            raise self._invalid("expected an object with a 'secrets' object")
        version = data.get("version")
        if not isinstance(version, int) or version > _FILE_VERSION:
            raise self._invalid(
                f"format version {version!r}; this jupyter_remote reads version {_FILE_VERSION}"
            )
        secrets: dict[str, _Entry] = {}
        for name, entry in data["secrets"].items():
            if not (
                isinstance(entry, dict)
                and isinstance(entry.get("values"), dict)
                and all(isinstance(v, str) for v in entry["values"].values())
                and isinstance(entry.get("updated_at"), str)
            ):
                raise self._invalid(f"secret {name!r} is malformed")
            try:
                _parse_time(entry["updated_at"])
            except ValueError:
                raise self._invalid(f"secret {name!r} has a bad updated_at") from None
            secrets[name] = {"values": entry["values"], "updated_at": entry["updated_at"]}
        return secrets

    def _write(self, secrets: dict[str, _Entry]) -> None:
        text = json.dumps({"version": _FILE_VERSION, "secrets": secrets}, indent=2, sort_keys=True)
        parent = self.path.parent
        try:
            # mkstemp creates the file 0600, and os.replace keeps the temporary's mode.
            fd, tmp = tempfile.mkstemp(prefix=f".{self.path.name}.", suffix=".tmp", dir=parent)
            try:
                with os.fdopen(fd, "w", encoding="utf-8") as file:
                    file.write(text + "\n")
                    file.flush()
                    os.fsync(file.fileno())
                os.replace(tmp, self.path)
            except BaseException:
                with contextlib.suppress(OSError):
                    os.unlink(tmp)
                raise
            dir_fd = os.open(parent, os.O_RDONLY)
            try:
                os.fsync(dir_fd)  # make the rename itself durable
            finally:
                os.close(dir_fd)
        except OSError as exc:
            raise ConfigError(f"cannot write the secrets file {self.path}: {exc.strerror}") from exc


def _parse_time(text: str) -> datetime:
    when = datetime.fromisoformat(text)
    return when if when.tzinfo is not None else when.replace(tzinfo=UTC)
