"""What an Image is made of: immutable layers, their canonical spec and its hash.

Layers live here, not in ``api/``, so that backends (which build images) never
import the API; ``api/_image.Image`` is a tuple of these.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Protocol

from ..exceptions import ConfigError

KEY_FORMAT = 1  # bump when the canonical JSON changes shape: every key changes with it
_SKIP_NAMES = frozenset({"__pycache__"})
_SKIP_SUFFIXES = (".pyc", ".pyo")

# -- layers: what an Image is made of ---------------------------------------------------------


def _short(items: Sequence[str], limit: int = 3) -> str:
    shown = ", ".join(repr(i) for i in items[:limit])
    return shown + (f", …+{len(items) - limit}" if len(items) > limit else "")


def _walk(root: Path) -> Iterator[tuple[str, Path]]:
    """Files and directories under ``root``, sorted, without bytecode caches."""
    for dirpath, dirnames, filenames in os.walk(root, followlinks=True):
        dirnames[:] = sorted(d for d in dirnames if d not in _SKIP_NAMES)
        base = Path(dirpath)
        for d in dirnames:
            yield (base / d).relative_to(root).as_posix() + "/", base / d
        for f in sorted(filenames):
            if not f.endswith(_SKIP_SUFFIXES):
                yield (base / f).relative_to(root).as_posix(), base / f


def _hash_file(h: Any, path: Path) -> None:
    h.update(b"x" if os.access(path, os.X_OK) else b"-")
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)


def content_digest(path: str) -> str:
    """sha256 of a file's bytes and exec bit, or of a directory's names and files."""
    p = Path(path)
    h = hashlib.sha256()
    if p.is_file():
        _hash_file(h, p)
    elif p.is_dir():
        for rel, sub in _walk(p):
            h.update(rel.encode() + b"\0")
            if not rel.endswith("/"):
                _hash_file(h, sub)
                h.update(b"\0")
    else:
        raise ConfigError(f"{path} no longer exists; it was added to an Image with add_local_*")
    return h.hexdigest()


class _Plain:
    """A layer whose key data are its fields (no local content)."""

    def key_data(self) -> dict[str, Any]:
        data: dict[str, Any] = dataclasses.asdict(self)  # type: ignore[call-overload]
        return data  # tuples become JSON lists


@dataclass(frozen=True)
class DebianSlim(_Plain):
    """The base: a Debian slim container, or a virtual environment of the caller's Python."""

    python_version: str  # major.minor, always the caller's
    kind: ClassVar[str] = "debian_slim"

    def describe(self) -> str:
        return f"debian_slim(python_version={self.python_version!r})"


@dataclass(frozen=True)
class FromRegistry(_Plain):
    """The base: a container image by tag (Nomad's docker driver only)."""

    tag: str
    add_python: str | None = None
    kind: ClassVar[str] = "from_registry"

    def describe(self) -> str:
        extra = f", add_python={self.add_python!r}" if self.add_python else ""
        return f"from_registry({self.tag!r}{extra})"


@dataclass(frozen=True)
class PipInstall(_Plain):
    """Packages installed together; ``installer`` records pip_install vs uv_pip_install."""

    packages: tuple[str, ...]  # sorted and unique: order within one call does not matter
    index_url: str | None = None
    extra_index_url: str | None = None
    pre: bool = False
    installer: str = "pip"  # "pip" | "uv"; both use uv on the local backend
    kind: ClassVar[str] = "pip_install"

    def describe(self) -> str:
        name = "uv_pip_install" if self.installer == "uv" else "pip_install"
        opts = "".join(
            f", {k}={v!r}"
            for k, v in (("index_url", self.index_url), ("extra_index_url", self.extra_index_url))
            if v
        )
        return f"{name}({_short(self.packages)}{opts}{', pre=True' if self.pre else ''})"


@dataclass(frozen=True)
class AptInstall(_Plain):
    packages: tuple[str, ...]  # sorted and unique
    kind: ClassVar[str] = "apt_install"

    def describe(self) -> str:
        return f"apt_install({_short(self.packages)})"


@dataclass(frozen=True)
class RunCommands(_Plain):
    commands: tuple[str, ...]  # in order, each run with /bin/sh -c
    kind: ClassVar[str] = "run_commands"

    def describe(self) -> str:
        return f"run_commands({_short(self.commands, 2)})"


@dataclass(frozen=True)
class Env(_Plain):
    items: tuple[tuple[str, str], ...]  # sorted by name: dict order does not matter
    kind: ClassVar[str] = "env"

    def describe(self) -> str:
        shown = ", ".join(f"{k!r}: {v!r}" for k, v in self.items[:3])
        more = f", …+{len(self.items) - 3}" if len(self.items) > 3 else ""
        return f"env({{{shown}{more}}})"


@dataclass(frozen=True)
class Workdir(_Plain):
    path: str  # absolute POSIX path inside the image
    kind: ClassVar[str] = "workdir"

    def describe(self) -> str:
        return f"workdir({self.path!r})"


@dataclass(frozen=True)
class LocalPythonSource:
    """A module or package of the caller, copied into the image's ``site/``."""

    name: str  # top-level module name
    paths: tuple[str, ...]  # the package directory (several for a namespace package) or .py file
    package: bool
    kind: ClassVar[str] = "local_python_source"

    def key_data(self) -> dict[str, Any]:
        digests = [content_digest(p) for p in self.paths]
        return {"name": self.name, "package": self.package, "digests": digests}

    def describe(self) -> str:
        return f"add_local_python_source({self.name!r})"


@dataclass(frozen=True)
class LocalDir:
    local: str  # absolute
    remote: str  # absolute POSIX path inside the image
    kind: ClassVar[str] = "local_dir"

    def key_data(self) -> dict[str, Any]:
        return {"remote": self.remote, "digest": content_digest(self.local)}

    def describe(self) -> str:
        return f"add_local_dir({self.local!r}, {self.remote!r})"


@dataclass(frozen=True)
class LocalFile:
    local: str  # absolute
    remote: str  # absolute POSIX path of the file inside the image
    kind: ClassVar[str] = "local_file"

    def key_data(self) -> dict[str, Any]:
        return {"remote": self.remote, "digest": content_digest(self.local)}

    def describe(self) -> str:
        return f"add_local_file({self.local!r}, {self.remote!r})"


Layer = (
    DebianSlim
    | FromRegistry
    | PipInstall
    | AptInstall
    | RunCommands
    | Env
    | Workdir
    | LocalPythonSource
    | LocalDir
    | LocalFile
)


class ImageSpec(Protocol):
    """What the builder needs of an Image: its layers."""

    @property
    def layers(self) -> tuple[Layer, ...]: ...


def canonical_spec(layers: Sequence[Layer]) -> str:
    """The JSON that is hashed into the key (local content is hashed now)."""
    data = {
        "format": KEY_FORMAT,
        "layers": [{"kind": layer.kind, **layer.key_data()} for layer in layers],
    }
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=True)


def image_key(layers: Sequence[Layer]) -> str:
    """sha256 hex of :func:`canonical_spec`."""
    return hashlib.sha256(canonical_spec(layers).encode()).hexdigest()


def describe_layers(layers: Sequence[Layer]) -> str:
    """``Image.debian_slim(python_version='3.11').pip_install('six')``: reads like the code."""
    return "Image." + ".".join(layer.describe() for layer in layers)


def apt_commands(packages: Sequence[str]) -> list[list[str]]:
    """The commands an ``apt_install`` layer runs (as root, on this machine)."""
    return [
        ["apt-get", "update"],
        ["apt-get", "install", "-y", "--no-install-recommends", *packages],
    ]
