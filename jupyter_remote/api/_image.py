"""``Image``: the environment a function runs in, named by Modal's methods.

An Image is an immutable chain of layers; each method returns a new Image
with one more layer. Its ``key`` hashes the layers (local files by content),
and a backend builds each key once: the local backend as a cached uv virtual
environment of the caller's Python (see ``jupyter_remote.backends._images``).
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import posixpath
import re
import shutil
import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from .._unsupported import IMAGE_METHODS, unsupported_attribute
from ..backends._image_layers import (
    AptInstall,
    DebianSlim,
    Env,
    FromRegistry,
    Layer,
    LocalDir,
    LocalFile,
    LocalPythonSource,
    PipInstall,
    RunCommands,
    Workdir,
    describe_layers,
    image_key,
)
from ..exceptions import ConfigError, NotSupportedError
from ..runtime._task import is_local

__all__ = ["Image"]

_VERSION = re.compile(r"(\d+)\.(\d+)(?:\.\d+)?")
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def _caller_version() -> str:
    return f"{sys.version_info.major}.{sys.version_info.minor}"


def _python_version(method: str, value: object) -> str:
    """The caller's major.minor: ``value`` may only repeat it (cloudpickle needs the same)."""
    mine = _caller_version()
    if value is None:
        return mine
    if not isinstance(value, str):
        raise TypeError(f"Image.{method}: python_version must be a str like {mine!r}")
    match = _VERSION.fullmatch(value.strip())
    if match is None:
        raise ConfigError(f"Image.{method}: python_version={value!r} is not like {mine!r}")
    wanted = f"{match[1]}.{match[2]}"
    if wanted != mine:
        found = shutil.which(f"python{wanted}")
        where = f" (this machine has one: {found})" if found else ""
        raise ConfigError(
            f"Image.{method}: python_version={value!r} differs from this Python ({mine}): "
            "cloudpickle only loads functions and arguments in the Python version that pickled "
            f"them, so workers must run {mine}. Use python_version={mine!r} (or leave it out), "
            f"or run this code under Python {wanted}{where}"
        )
    return mine


def _strings(method: str, what: str, values: tuple[Any, ...]) -> list[str]:
    """Flatten strings and lists of strings (as Modal accepts); refuse anything else."""
    out: list[str] = []
    for value in values:
        if isinstance(value, list | tuple):
            out.extend(_strings(method, what, tuple(value)))
        elif not isinstance(value, str):
            raise TypeError(
                f"Image.{method}: {what} must be strings, not {type(value).__name__} ({value!r})"
            )
        elif not value.strip():
            raise ConfigError(f"Image.{method}: an empty string among the {what}")
        else:
            out.append(value)
    return out


def _packages(method: str, values: tuple[Any, ...]) -> tuple[str, ...]:
    names = [p.strip() for p in _strings(method, "packages", values)]
    options = [p for p in names if p.startswith("-")]
    if options:
        raise ConfigError(
            f"Image.{method}: {options[0]!r} looks like an installer option, not a package; "
            "use index_url=, extra_index_url= or pre=True"
        )
    return tuple(sorted(set(names)))  # one call installs them together: order is irrelevant


def _optional_str(method: str, name: str, value: object) -> str | None:
    if value is not None and not isinstance(value, str):
        raise TypeError(f"Image.{method}: {name} must be a str, not {type(value).__name__}")
    return value or None


def _remote(method: str, value: object) -> str:
    if not isinstance(value, str | PurePosixPath):
        raise TypeError(
            f"Image.{method}: the remote path must be a str, not {type(value).__name__}"
        )
    text = str(value)
    if not text.startswith("/"):
        raise ConfigError(
            f"Image.{method}: the remote path {text!r} must be absolute, e.g. '/root/{text}'"
        )
    normalized = posixpath.normpath(text)
    return normalized[1:] if normalized.startswith("//") else normalized


def _local(method: str, value: object, kind: str) -> Path:
    if not isinstance(value, str | os.PathLike):
        raise TypeError(f"Image.{method}: the local path must be a str or Path")
    path = Path(os.fspath(value)).expanduser().resolve()
    ok = path.is_dir() if kind == "directory" else path.is_file()
    if not ok:
        raise ConfigError(f"Image.{method}: {os.fspath(value)!r} is not a {kind} ({path})")
    return path


def _copy_flag(method: str, copy: object) -> None:
    if not isinstance(copy, bool):
        raise TypeError(f"Image.{method}: copy must be True or False")


def _python_source(name: object) -> LocalPythonSource:
    method = "add_local_python_source"
    if not isinstance(name, str):
        raise TypeError(f"Image.{method}: module names must be strings, not {type(name).__name__}")
    if not all(part.isidentifier() for part in name.split(".")):
        raise ConfigError(f"Image.{method}: {name!r} is not a module name")
    if "." in name:
        top = name.split(".")[0]
        raise ConfigError(f"Image.{method}: give the top-level package {top!r}, not {name!r}")
    try:
        spec = importlib.util.find_spec(name)
    except (ImportError, ValueError):
        spec = None
    if spec is None:
        raise ConfigError(
            f"Image.{method}: no module named {name!r} can be imported here; check sys.path "
            "(the directory that contains it must be on it)"
        )
    if spec.submodule_search_locations is not None:
        paths = tuple(str(Path(p).resolve()) for p in spec.submodule_search_locations)
        return LocalPythonSource(name, paths, package=True)
    if spec.origin is None or not spec.origin.endswith(".py"):
        raise ConfigError(
            f"Image.{method}: {name!r} is not Python source ({spec.origin}); "
            "install it into the image with pip_install instead"
        )
    return LocalPythonSource(name, (str(Path(spec.origin).resolve()),), package=False)


class _ImageType(type):
    """Modal's ``Image.from_dockerfile(...)`` and the like: our error, not an AttributeError."""

    def __getattr__(cls, name: str) -> Any:
        raise unsupported_attribute(IMAGE_METHODS, "Image", name)


@dataclass(frozen=True, repr=False)
class Image(metaclass=_ImageType):
    """The environment a function runs in. Start from :meth:`debian_slim`.

    Each method returns a new Image; the original is unchanged. Order within
    one ``pip_install`` call does not matter; the order of calls does.

    >>> import jupyter_remote as jr
    >>> image = jr.Image.debian_slim().pip_install("six==1.16.0").env({"MODE": "fast"})
    >>> image  # doctest: +ELLIPSIS
    Image.debian_slim(python_version='3...').pip_install('six==1.16.0').env({'MODE': 'fast'})
    >>> len(image.key)
    64
    """

    layers: tuple[Layer, ...]

    # -- bases ------------------------------------------------------------------------------

    @classmethod
    def debian_slim(cls, python_version: str | None = None) -> Image:
        """Debian slim with this Python; on the local backend, a venv of this interpreter.

        ``python_version`` may only be the caller's major.minor (or None).
        """
        return cls((DebianSlim(_python_version("debian_slim", python_version)),))

    @classmethod
    def from_registry(cls, tag: str, *, add_python: str | None = None) -> Image:
        """A container image by tag; needs Nomad's docker driver (the local backend refuses it).

        The image's Python must be the caller's major.minor; ``add_python`` installs it.
        """
        if not isinstance(tag, str):
            raise TypeError(f"Image.from_registry: tag must be a str, not {type(tag).__name__}")
        if not tag.strip():
            raise ConfigError("Image.from_registry: the tag is empty; e.g. 'python:3.11-slim'")
        version = None if add_python is None else _python_version("from_registry", add_python)
        return cls((FromRegistry(tag.strip(), version),))

    # -- layers -----------------------------------------------------------------------------

    def _add(self, layer: Layer) -> Image:
        return Image((*self.layers, layer))

    def pip_install(
        self,
        *packages: str | list[str],
        index_url: str | None = None,
        extra_index_url: str | None = None,
        pre: bool = False,
    ) -> Image:
        """Install packages (requirement specifiers) with pip; the local backend uses uv."""
        return self._pip("pip_install", "pip", packages, index_url, extra_index_url, pre)

    def uv_pip_install(
        self,
        *packages: str | list[str],
        index_url: str | None = None,
        extra_index_url: str | None = None,
        pre: bool = False,
    ) -> Image:
        """Install packages with ``uv pip install`` (a different key from :meth:`pip_install`)."""
        return self._pip("uv_pip_install", "uv", packages, index_url, extra_index_url, pre)

    def _pip(
        self,
        method: str,
        installer: str,
        packages: tuple[Any, ...],
        index_url: object,
        extra_index_url: object,
        pre: object,
    ) -> Image:
        names = _packages(method, packages)
        if not isinstance(pre, bool):
            raise TypeError(f"Image.{method}: pre must be True or False")
        if not names:
            return self
        return self._add(
            PipInstall(
                names,
                _optional_str(method, "index_url", index_url),
                _optional_str(method, "extra_index_url", extra_index_url),
                pre,
                installer,
            )
        )

    def apt_install(self, *packages: str | list[str]) -> Image:
        """Install Debian packages; needs root on the local backend, or Nomad's docker driver."""
        names = _packages("apt_install", packages)
        return self._add(AptInstall(names)) if names else self

    def run_commands(self, *commands: str | list[str]) -> Image:
        """Run shell commands, in order, with the image's Python first on PATH.

        On the local backend they run as the caller's user in the image's
        workdir (else its root directory); ``pip`` there is the image's own.
        """
        cmds = tuple(_strings("run_commands", "commands", commands))
        return self._add(RunCommands(cmds)) if cmds else self

    def env(self, vars: Mapping[str, str]) -> Image:
        """Set environment variables for later build steps and for the functions."""
        if not isinstance(vars, Mapping):
            raise TypeError(f"Image.env: expected a dict of str to str, not {type(vars).__name__}")
        for k, v in vars.items():
            if not isinstance(k, str) or not isinstance(v, str):
                raise TypeError(f"Image.env: names and values must be strings; check {k!r}: {v!r}")
            if not _ENV_NAME.fullmatch(k):
                raise ConfigError(f"Image.env: {k!r} is not a valid environment variable name")
        return self._add(Env(tuple(sorted(vars.items())))) if vars else self

    def workdir(self, path: str | PurePosixPath) -> Image:
        """The working directory of later commands and of the functions (absolute)."""
        return self._add(Workdir(_remote("workdir", path)))

    def add_local_python_source(self, *modules: str, copy: bool = False) -> Image:
        """Copy importable local modules or packages into the image (by top-level name).

        They are found with this Python's import path now, and hashed into the
        key by content: edit them and the key changes. ``copy`` is accepted for
        Modal compatibility: files are always copied into the image here.
        """
        _copy_flag("add_local_python_source", copy)
        image = self
        for name in modules:
            image = image._add(_python_source(name))
        return image

    def add_local_dir(
        self,
        local_path: str | os.PathLike[str],
        remote_path: str | PurePosixPath,
        *,
        copy: bool = False,
    ) -> Image:
        """Copy a local directory to ``remote_path`` (absolute) in the image.

        On the local backend, remote paths live under the image's root directory
        (``$JUPYTER_REMOTE_IMAGE_ROOT``); set :meth:`workdir` and use relative paths
        to write code that runs the same in a container. ``copy``: as for
        :meth:`add_local_python_source`.
        """
        _copy_flag("add_local_dir", copy)
        local = _local("add_local_dir", local_path, "directory")
        return self._add(LocalDir(str(local), _remote("add_local_dir", remote_path)))

    def add_local_file(
        self,
        local_path: str | os.PathLike[str],
        remote_path: str | PurePosixPath,
        *,
        copy: bool = False,
    ) -> Image:
        """Copy a local file to ``remote_path`` (absolute; ending in ``/``: into that directory)."""
        _copy_flag("add_local_file", copy)
        local = _local("add_local_file", local_path, "file")
        remote = _remote("add_local_file", remote_path)
        if str(remote_path).endswith("/"):
            remote = posixpath.join(remote, local.name)
        return self._add(LocalFile(str(local), remote))

    def pip_install_from_requirements(
        self,
        requirements_txt: str | os.PathLike[str],
        find_links: str | None = None,
        *,
        index_url: str | None = None,
        extra_index_url: str | None = None,
        pre: bool = False,
    ) -> Image:
        """Install the requirements a ``requirements.txt`` lists (read now; its lines are the key).

        Comments and blank lines are skipped; installer options in the file
        (``-r``, ``-e``, ``--hash``, ...) are refused, naming the line.
        """
        method = "pip_install_from_requirements"
        if find_links is not None:
            raise NotSupportedError(f"Image.{method}: find_links= is not supported; use index_url=")
        path = _local(method, requirements_txt, "file")
        packages = []
        for lineno, line in enumerate(path.read_text().splitlines(), 1):
            text = line.split(" #", 1)[0].strip()
            if not text or text.startswith("#"):
                continue
            if text.startswith("-"):
                raise ConfigError(
                    f"Image.{method}: {path}, line {lineno}: {text!r} is an installer option; "
                    "list plain requirements (use index_url= / extra_index_url= for indexes)"
                )
            packages.append(text)
        return self._pip(method, "pip", tuple(packages), index_url, extra_index_url, pre)

    # -- imports ----------------------------------------------------------------------------

    @contextlib.contextmanager
    def imports(self) -> Iterator[None]:
        """Imports that only have to work on the workers: ``with image.imports(): import torch``.

        In the caller an ``ImportError`` inside the block is swallowed (the
        package may be in the image only); in a worker it is raised.
        """
        try:
            yield
        except ImportError:
            if not is_local():
                raise

    # -- identity ---------------------------------------------------------------------------

    @property
    def key(self) -> str:
        """sha256 hex of the layers; local files count by content (hashed on each access)."""
        return image_key(self.layers)

    def __repr__(self) -> str:
        return describe_layers(self.layers)

    def __getattr__(self, name: str) -> Any:
        raise unsupported_attribute(IMAGE_METHODS, "Image", name)
