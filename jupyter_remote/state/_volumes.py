"""The volume store: named directories under one fsspec URL (the ``volumes_url`` setting).

Volume ``name`` is the directory ``<volumes_url>/<name>/``, holding its files
as they are; a remote store also keeps an empty ``.jupyter-remote-volume``
file there, because object stores have no empty directories. The default URL is
``$XDG_DATA_HOME/jupyter_remote/volumes`` (``~/.local/share/...``).

**Paths inside a volume.** Every path a user gives (API, CLI, sidebar) goes
through ``normalize_path``, which returns it relative to the volume's root:

- ``"/a/b"``, ``"a/b"`` and ``"./a//b/"`` all name the volume's ``a/b``: a
  leading ``/`` is the volume's root (Modal's meaning), never the machine's, so
  ``"/etc/passwd"`` is the volume's ``etc/passwd``;
- ``..`` may step back inside the path (``"a/../b"`` is ``"b"``) but never
  above the root: ``".."`` and ``"a/../../x"`` raise ``ConfigError``;
- a leading ``~`` raises (a volume has no home directory; ``"/~"`` names a file
  called ``~``), and so does a NUL byte.

A remote store's keys are names, not paths: one that ``normalize_path`` would
change (``..``, ``.``, ``//``) is skipped with a ``VolumeKeyWarning`` naming it
when a directory is listed or copied, so it never reaches a local path or
another key.

In a local-path store the real path (symbolic links resolved) must stay inside
the volume's real directory: a link that leads outside is never followed to
read, write, list or copy (``ConfigError``); removing a link removes the link
itself. The check runs before each operation: a process that swaps a
directory for a link between the check and the use is not defended against.

>>> store = VolumeStore("/tmp/volumes")  # doctest: +SKIP
>>> store.create("datasets"); store.write("datasets", "/raw/a.txt", b"hello")  # doctest: +SKIP
>>> b"".join(store.read("datasets", "raw/a.txt"))  # doctest: +SKIP
b'hello'
"""

from __future__ import annotations

import builtins
import contextlib
import enum
import os
import posixpath
import shutil
import stat
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol

from ..exceptions import AlreadyExistsError, ConfigError, NotFoundError
from ..runtime._mounts import MARKER, local_root, store_key, volume_path, warn_skipped_key
from ..runtime._mounts import VOLUME_NAME as NAME_RE

__all__ = [
    "FileEntry",
    "FileEntryType",
    "Source",
    "VolumeInfo",
    "VolumeStore",
    "default_volumes_url",
    "display_path",
    "normalize_path",
    "validate_name",
]

CHUNK = 1 << 20

Source = str | bytes
"""What an upload writes: the path of a local file, or the bytes themselves."""


class FileEntryType(enum.IntEnum):
    """The kind of a ``FileEntry`` (Modal's values)."""

    UNSPECIFIED = 0
    FILE = 1
    DIRECTORY = 2
    SYMLINK = 3


@dataclass(frozen=True)
class FileEntry:
    """One file or directory in a volume; ``path`` is relative to the root (``"raw/a.txt"``)."""

    path: str
    type: FileEntryType
    mtime: float
    size: int


@dataclass(frozen=True)
class VolumeInfo:
    """A volume in a store: total bytes and files, and the newest modification time inside."""

    name: str
    size: int
    files: int
    mtime: float


def default_volumes_url() -> str:
    """``volumes_url`` from the settings, else the default local directory."""
    from ..config import load_settings

    url = getattr(load_settings(), "volumes_url", None) or os.environ.get(
        "JUPYTER_REMOTE_VOLUMES_URL"
    )
    if url:
        return str(url)
    data = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return str(Path(data) / "jupyter_remote" / "volumes")


def validate_name(name: str) -> str:
    """Return ``name`` if it is a valid volume name, else raise ``ConfigError``."""
    if not isinstance(name, str) or not NAME_RE.fullmatch(name):
        raise ConfigError(
            f"invalid volume name {name!r}: use 1 to 64 letters, digits, '_', '.' or '-', "
            "starting with a letter or digit"
        )
    return name


def normalize_path(path: str | os.PathLike[str]) -> str:
    """A user's path inside a volume, relative to its root (``""`` is the root).

    The rules are the worker's (``runtime._mounts.volume_path``); a bad path is a
    ``ConfigError``.

    >>> normalize_path("/raw/./a.txt"), normalize_path("raw/x/../b"), normalize_path("/")
    ('raw/a.txt', 'raw/b', '')
    """
    if isinstance(path, os.PathLike):
        path = os.fspath(path)
    try:
        return volume_path(path)
    except (TypeError, ValueError) as exc:
        raise ConfigError(str(exc)) from None


def display_path(rel: str) -> str:
    """How messages show a normalised path: from the volume's root, ``/raw/a.txt``."""
    return "/" + rel


def _missing_volume(name: str, url: str) -> NotFoundError:
    return NotFoundError(
        f"volume {name!r} does not exist in {url}; create it with "
        f"`jr.Volume.from_name({name!r}, create_if_missing=True)` or "
        f"`jupyter-remote volume create {name}`"
    )


def _not_found(name: str, rel: str) -> FileNotFoundError:
    return FileNotFoundError(f"{display_path(rel)} does not exist in volume {name!r}")


def _is_dir(name: str, rel: str, hint: str) -> IsADirectoryError:
    return IsADirectoryError(f"{display_path(rel)} is a directory in volume {name!r}{hint}")


def _umask() -> int:
    # os.umask() can only be read by setting it, which races with other threads.
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    return 0o022


class _Backend(Protocol):
    """What a kind of store does; paths are normalised and the volume exists."""

    def has(self, name: str) -> bool: ...
    def make(self, name: str) -> None: ...
    def drop(self, name: str) -> None: ...
    def volumes(self) -> list[VolumeInfo]: ...
    def entry(self, name: str, rel: str) -> FileEntry | None: ...
    def listdir(self, name: str, rel: str, recursive: bool) -> list[FileEntry]: ...
    def chunks(self, name: str, rel: str, size: int) -> Iterator[bytes]: ...
    def upload(self, name: str, items: list[tuple[Source, str]]) -> None: ...
    def remove(self, name: str, rel: str, recursive: bool) -> None: ...
    def copy(self, name: str, src: str, dst: str, directory: bool) -> None: ...


class VolumeStore:
    """The volumes under one URL; ``url=None`` reads the ``volumes_url`` setting.

    File operations take a volume name and a path inside it (see
    ``normalize_path``) and raise ``ConfigError`` for a bad name or path or a
    missing volume, and ``FileNotFoundError``, ``FileExistsError``,
    ``IsADirectoryError`` or ``NotADirectoryError`` as ``cp``/``rm`` would.
    """

    def __init__(self, url: str | None = None) -> None:
        url = default_volumes_url() if url is None else url
        root = local_root(url)
        self.is_local = root is not None
        self.url = root if root is not None else url.rstrip("/")
        self._impl: _Backend = _LocalStore(root) if root is not None else _FsspecStore(url)

    def __repr__(self) -> str:
        return f"<VolumeStore {self.url!r}>"

    # -- volumes ---------------------------------------------------------------------------

    def create(self, name: str) -> None:
        if self.exists(name):
            raise AlreadyExistsError(f"volume {name!r} already exists in {self.url}")
        self._impl.make(name)

    def exists(self, name: str) -> bool:
        return self._impl.has(validate_name(name))

    def delete(self, name: str) -> None:
        """Delete volume ``name`` and every file in it."""
        self._require(name)
        self._impl.drop(name)

    def list(self) -> list[VolumeInfo]:
        """Every volume in the store, by name."""
        return sorted(self._impl.volumes(), key=lambda v: v.name)

    def volume_dir(self, name: str) -> str | None:
        """The directory of volume ``name`` in a local-path store (``None`` for a remote one)."""
        return os.path.join(self.url, validate_name(name)) if self.is_local else None

    def _require(self, name: str) -> None:
        if not self.exists(name):
            raise _missing_volume(name, self.url)

    # -- files -----------------------------------------------------------------------------

    def stat(self, name: str, path: str) -> FileEntry | None:
        """The entry at ``path`` (a link inside the volume is followed), or ``None``."""
        self._require(name)
        return self._impl.entry(name, normalize_path(path))

    def listdir(
        self, name: str, path: str = "/", recursive: bool = False
    ) -> builtins.list[FileEntry]:
        """The entries of the directory ``path`` (all below it with ``recursive``), by path.

        A file's listing is its own entry; symbolic links are listed, not followed.
        """
        self._require(name)
        rel = normalize_path(path)
        if self._impl.entry(name, rel) is None:
            raise _not_found(name, rel)
        return sorted(self._impl.listdir(name, rel, recursive), key=lambda e: e.path)

    def read(self, name: str, path: str, chunk_size: int = CHUNK) -> Iterator[bytes]:
        """The bytes of the file ``path``, in chunks (errors are raised here, not on iteration)."""
        self._require(name)
        rel = normalize_path(path)
        entry = self._impl.entry(name, rel)
        if entry is None:
            raise _not_found(name, rel)
        if entry.type == FileEntryType.DIRECTORY:
            raise _is_dir(name, rel, "; read the files in it")
        return self._impl.chunks(name, rel, chunk_size)

    def write(self, name: str, path: str, data: bytes, *, force: bool = True) -> None:
        """Write ``data`` to the file ``path``, creating its directories."""
        self.upload(name, [(bytes(data), path)], force=force)

    def put_file(
        self, name: str, local: str | os.PathLike[str], remote: str, *, force: bool = False
    ) -> None:
        """Upload the local file ``local`` to ``remote`` in the volume."""
        self.upload(name, [(os.fspath(local), remote)], force=force)

    def put_directory(
        self, name: str, local: str | os.PathLike[str], remote: str, *, force: bool = False
    ) -> None:
        """Upload every file below the local directory ``local`` to ``remote/...``."""
        self.upload(name, local_tree(local, remote), force=force)

    def upload(
        self, name: str, items: Sequence[tuple[Source, str]], *, force: bool = False
    ) -> None:
        """Write each ``(source, remote path)``; all are checked before any is written.

        Without ``force`` an existing file is a ``FileExistsError`` naming it. In a
        local store every file is staged next to its destination and renamed into
        place once all are staged; in a remote store files already uploaded are
        removed again if a later one fails (unless they existed before).
        """
        self._require(name)
        planned: dict[str, Source] = {}
        kinds: dict[str, FileEntry | None] = {}

        def kind(rel: str) -> FileEntry | None:
            if rel not in kinds:
                kinds[rel] = self._impl.entry(name, rel)
            return kinds[rel]

        for source, remote in items:
            rel = normalize_path(remote)
            if not rel:
                raise _is_dir(name, rel, "; name the file to write, like '/data.bin'")
            if isinstance(source, str) and not os.path.isfile(source):
                if os.path.isdir(source):
                    raise IsADirectoryError(
                        f"{source} is a directory; upload it with put_directory"
                    )
                raise FileNotFoundError(f"{source} does not exist or is not a file")
            if rel in planned and not force:
                raise FileExistsError(
                    f"{display_path(rel)} is uploaded twice in this batch; pass force=True to let "
                    "the last one win"
                )
            parts = rel.split("/")
            for i in range(1, len(parts)):
                parent = kind("/".join(parts[:i]))
                if parent is not None and parent.type != FileEntryType.DIRECTORY:
                    raise NotADirectoryError(
                        f"cannot write {display_path(rel)}: {display_path(parent.path)} is a file "
                        f"in volume {name!r}"
                    )
            existing = kind(rel)
            if existing is not None and existing.type == FileEntryType.DIRECTORY:
                raise _is_dir(name, rel, "; cannot overwrite it with a file")
            if existing is not None and not force:
                raise FileExistsError(
                    f"{display_path(rel)} already exists in volume {name!r}; pass force=True "
                    "(CLI: --force) to overwrite it"
                )
            planned[rel] = source
        self._impl.upload(name, [(source, rel) for rel, source in planned.items()])

    def remove(self, name: str, path: str, recursive: bool = False) -> None:
        """Remove the file or (with ``recursive``) directory ``path``; a link is removed itself."""
        self._require(name)
        rel = normalize_path(path)
        if not rel:
            raise ConfigError(
                f"refusing to remove the root of volume {name!r}; to delete the volume use "
                f"`jupyter-remote volume delete {name}`"
            )
        self._impl.remove(name, rel, recursive)

    def copy(self, name: str, srcs: Sequence[str] | str, dst: str, recursive: bool = False) -> None:
        """Copy within the volume like ``cp``: into ``dst`` if it is a directory, else to it.

        Several sources need an existing directory as ``dst``; a directory source
        needs ``recursive``.
        """
        self._require(name)
        sources = [srcs] if isinstance(srcs, str) else list(srcs)
        if not sources:
            raise ConfigError("copy needs at least one source path")
        rels: builtins.list[str] = [normalize_path(s) for s in sources]
        dst_rel = normalize_path(dst)
        target_entry = self._impl.entry(name, dst_rel)
        into = target_entry is not None and target_entry.type == FileEntryType.DIRECTORY
        if len(rels) > 1 and not into:
            raise NotADirectoryError(
                f"copying {len(rels)} paths needs an existing directory as the destination; "
                f"{display_path(dst_rel)} is not one in volume {name!r}"
            )
        into = into or dst.endswith("/")
        for rel in rels:
            entry = self._impl.entry(name, rel) if rel else None
            if not rel:
                raise ConfigError("cannot copy the root of a volume; copy the paths in it")
            if entry is None:
                raise _not_found(name, rel)
            is_dir = entry.type == FileEntryType.DIRECTORY
            if is_dir and not recursive:
                raise _is_dir(name, rel, "; pass recursive=True (CLI: -r) to copy it")
            target = posixpath.join(dst_rel, posixpath.basename(rel)) if into else dst_rel
            if target == rel:
                raise ConfigError(f"{display_path(rel)} would be copied onto itself")
            if is_dir and target.startswith(rel + "/"):
                raise ConfigError(f"cannot copy the directory {display_path(rel)} into itself")
            existing = self._impl.entry(name, target)
            if not is_dir and existing is not None and existing.type == FileEntryType.DIRECTORY:
                raise _is_dir(name, target, "; cannot overwrite it with a file")
            if is_dir and existing is not None and existing.type != FileEntryType.DIRECTORY:
                raise NotADirectoryError(
                    f"cannot copy the directory {display_path(rel)} onto the file "
                    f"{display_path(target)}"
                )
            self._impl.copy(name, rel, target, is_dir)


def local_tree(local: str | os.PathLike[str], remote: str) -> list[tuple[Source, str]]:
    """``(local file, remote path)`` for every file below the local directory ``local``."""
    top = os.fspath(local)
    if not os.path.isdir(top):
        raise NotADirectoryError(f"{top} is not a directory")
    items: list[tuple[Source, str]] = []
    base = remote.rstrip("/")
    for dirpath, dirnames, filenames in os.walk(top):
        dirnames.sort()
        rel_dir = os.path.relpath(dirpath, top).replace(os.sep, "/")
        for filename in sorted(filenames):
            path = os.path.join(dirpath, filename)
            if os.path.isfile(path):
                rel = filename if rel_dir == "." else f"{rel_dir}/{filename}"
                items.append((path, f"{base}/{rel}"))
    return items


# -- a local directory ---------------------------------------------------------------------


def _within(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip(os.sep) + os.sep)


def _entry_type(mode: int) -> FileEntryType:
    if stat.S_ISLNK(mode):
        return FileEntryType.SYMLINK
    if stat.S_ISDIR(mode):
        return FileEntryType.DIRECTORY
    if stat.S_ISREG(mode):
        return FileEntryType.FILE
    return FileEntryType.UNSPECIFIED


def _local_entry(rel: str, st: os.stat_result) -> FileEntry:
    kind = _entry_type(st.st_mode)
    size = st.st_size if kind != FileEntryType.DIRECTORY else 0
    return FileEntry(rel, kind, st.st_mtime, size)


class _LocalStore:
    def __init__(self, root: str) -> None:
        self.root = root

    def _vdir(self, name: str) -> str:
        return os.path.realpath(os.path.join(self.root, name))

    def _real(self, name: str, rel: str, *, follow: bool = True) -> str:
        """The real path of ``rel``; with ``follow=False`` the last component stays unresolved."""
        vdir = self._vdir(name)
        if not rel:
            return vdir
        if follow:
            real = os.path.realpath(os.path.join(vdir, *rel.split("/")))
        else:
            parent = os.path.realpath(os.path.join(vdir, *rel.split("/")[:-1]))
            real = os.path.join(parent, rel.rsplit("/", 1)[-1])
        if not _within(real, vdir) or (not follow and not _within(os.path.dirname(real), vdir)):
            raise ConfigError(
                f"{display_path(rel)} in volume {name!r} leads outside the volume through a "
                "symbolic link; refusing to follow it"
            )
        return real

    def has(self, name: str) -> bool:
        return os.path.isdir(os.path.join(self.root, name))

    def make(self, name: str) -> None:
        os.makedirs(self.root, exist_ok=True)
        os.mkdir(os.path.join(self.root, name))

    def drop(self, name: str) -> None:
        path = os.path.join(self.root, name)
        if os.path.islink(path):
            os.unlink(path)  # a volume an administrator linked elsewhere: keep the data there
        else:
            shutil.rmtree(path)

    def volumes(self) -> list[VolumeInfo]:
        out: list[VolumeInfo] = []
        with contextlib.suppress(FileNotFoundError), os.scandir(self.root) as it:
            for item in it:
                if NAME_RE.fullmatch(item.name) and item.is_dir():
                    out.append(self._info(item.name))
        return out

    def _info(self, name: str) -> VolumeInfo:
        top = self._vdir(name)
        size = files = 0
        mtime = os.stat(top).st_mtime
        for dirpath, dirnames, filenames in os.walk(top):
            for item in (*dirnames, *filenames):
                with contextlib.suppress(OSError):
                    st = os.lstat(os.path.join(dirpath, item))
                    mtime = max(mtime, st.st_mtime)
                    if stat.S_ISREG(st.st_mode):
                        size += st.st_size
                        files += 1
        return VolumeInfo(name, size, files, mtime)

    def entry(self, name: str, rel: str) -> FileEntry | None:
        try:
            return _local_entry(rel, os.stat(self._real(name, rel)))
        except (FileNotFoundError, NotADirectoryError):
            return None

    def listdir(self, name: str, rel: str, recursive: bool) -> list[FileEntry]:
        real = self._real(name, rel)
        st = os.stat(real)
        if not stat.S_ISDIR(st.st_mode):
            return [_local_entry(rel, st)]
        out: list[FileEntry] = []
        pending = [(real, rel)]
        while pending:
            directory, prefix = pending.pop()
            with os.scandir(directory) as it:
                for item in it:
                    if not prefix and item.name == MARKER:
                        continue
                    child = f"{prefix}/{item.name}" if prefix else item.name
                    entry = _local_entry(child, item.stat(follow_symlinks=False))
                    out.append(entry)
                    if recursive and entry.type == FileEntryType.DIRECTORY:
                        pending.append((item.path, child))
        return out

    def chunks(self, name: str, rel: str, size: int) -> Iterator[bytes]:
        real = self._real(name, rel)
        # O_NOFOLLOW: a link swapped in since the check is not followed.
        fd = os.open(real, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
        with os.fdopen(fd, "rb") as f:
            while chunk := f.read(size):
                yield chunk

    def upload(self, name: str, items: list[tuple[Source, str]]) -> None:
        mode = 0o666 & ~_umask()
        staged: list[tuple[str, str]] = []
        try:
            for source, rel in items:
                dest = self._real(name, rel)
                os.makedirs(os.path.dirname(dest), exist_ok=True)
                fd, temp = tempfile.mkstemp(dir=os.path.dirname(dest), prefix=".jr-upload-")
                staged.append((temp, dest))
                with os.fdopen(fd, "wb") as out:
                    os.fchmod(out.fileno(), mode)
                    if isinstance(source, bytes):
                        out.write(source)
                    else:
                        with open(source, "rb") as src:
                            shutil.copyfileobj(src, out, CHUNK)
            for temp, dest in staged:
                os.replace(temp, dest)
        finally:
            for temp, _ in staged:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(temp)

    def remove(self, name: str, rel: str, recursive: bool) -> None:
        path = self._real(name, rel, follow=False)
        try:
            st = os.lstat(path)
        except (FileNotFoundError, NotADirectoryError):
            raise _not_found(name, rel) from None
        if not stat.S_ISDIR(st.st_mode):
            os.unlink(path)  # a symbolic link goes, not what it points to
        elif not recursive:
            raise _is_dir(name, rel, "; pass recursive=True (CLI: -r) to remove it")
        else:
            shutil.rmtree(path)

    def copy(self, name: str, src: str, dst: str, directory: bool) -> None:
        source = self._real(name, src)
        target = self._real(name, dst)
        if directory:
            if _within(target, source):
                raise ConfigError(f"cannot copy the directory {display_path(src)} into itself")
            # symlinks=True: links are copied as links, never followed.
            shutil.copytree(source, target, symlinks=True, dirs_exist_ok=True)
            return
        os.makedirs(os.path.dirname(target), exist_ok=True)
        fd, temp = tempfile.mkstemp(dir=os.path.dirname(target), prefix=".jr-copy-")
        os.close(fd)
        try:
            shutil.copyfile(source, temp)
            shutil.copymode(source, temp)
            os.replace(temp, target)
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(temp)


# -- any other fsspec file system ----------------------------------------------------------


def _mtime(info: dict[str, Any]) -> float:
    for key in ("mtime", "LastModified", "last_modified", "updated", "modified", "created"):
        value = info.get(key)
        if isinstance(value, datetime):
            return value.timestamp()
        if isinstance(value, int | float):
            return float(value)
        if isinstance(value, str):
            with contextlib.suppress(ValueError):
                return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
    return 0.0


class _FsspecStore:
    def __init__(self, url: str) -> None:
        import fsspec

        try:
            self.fs, root = fsspec.core.url_to_fs(url)
        except (ImportError, ValueError) as exc:
            raise ConfigError(f"volumes_url {url!r} cannot be opened: {exc}") from exc
        self.root: str = self.fs._strip_protocol(root).rstrip("/")

    def _p(self, name: str, rel: str = "") -> str:
        base = f"{self.root}/{name}"
        return f"{base}/{rel}" if rel else base

    def _entry(self, rel: str, info: dict[str, Any]) -> FileEntry:
        if info.get("type") == "directory":
            return FileEntry(rel, FileEntryType.DIRECTORY, _mtime(info), 0)
        return FileEntry(rel, FileEntryType.FILE, _mtime(info), int(info.get("size") or 0))

    def has(self, name: str) -> bool:
        return bool(self.fs.isdir(self._p(name)) or self.fs.exists(self._p(name, MARKER)))

    def make(self, name: str) -> None:
        self.fs.makedirs(self._p(name), exist_ok=True)
        self.fs.pipe_file(self._p(name, MARKER), b"")

    def drop(self, name: str) -> None:
        self.fs.rm(self._p(name), recursive=True)

    def volumes(self) -> list[VolumeInfo]:
        try:
            listing = self.fs.ls(self.root, detail=True)
        except FileNotFoundError:
            return []
        out: list[VolumeInfo] = []
        for info in listing:
            name = posixpath.basename(info["name"].rstrip("/"))
            if info.get("type") == "directory" and NAME_RE.fullmatch(name) and self.has(name):
                size = files = 0
                mtime = _mtime(info)
                for path, item in self.fs.find(self._p(name), detail=True).items():
                    if path.rstrip("/") != self._p(name, MARKER):
                        size += int(item.get("size") or 0)
                        files += 1
                        mtime = max(mtime, _mtime(item))
                out.append(VolumeInfo(name, size, files, mtime))
        return out

    def entry(self, name: str, rel: str) -> FileEntry | None:
        try:
            return self._entry(rel, self.fs.info(self._p(name, rel)))
        except FileNotFoundError:
            return None

    def listdir(self, name: str, rel: str, recursive: bool) -> list[FileEntry]:
        top = self._p(name, rel)
        info = self.fs.info(top)
        if info.get("type") != "directory":
            return [self._entry(rel, info)]
        if recursive:
            found = self.fs.find(top, withdirs=True, detail=True)
        else:
            found = {i["name"]: i for i in self.fs.ls(top, detail=True)}
        out: dict[str, FileEntry] = {}
        for path, item in found.items():
            path = path.rstrip("/")  # 'd' and 'd/' (a key 'd//x' makes both) are one entry
            if not path.startswith(top + "/") or not self._plain(name, path, item):
                continue
            child = path[len(self._p(name)) + 1 :]
            if child != MARKER:
                out.setdefault(child, self._entry(child, item))
        return list(out.values())

    def _plain(self, name: str, path: str, item: dict[str, Any]) -> bool:
        """Whether the store's ``path`` in volume ``name`` is a plain path (else it is named)."""
        try:
            store_key(path[len(self._p(name)) + 1 :])
        except ValueError:
            # Directories such as 'vol/..' exist only as prefixes of a bad file's key.
            if item.get("type") != "directory":
                warn_skipped_key(name, path)
            return False
        return True

    def chunks(self, name: str, rel: str, size: int) -> Iterator[bytes]:
        with self.fs.open(self._p(name, rel), "rb") as f:
            while chunk := f.read(size):
                yield chunk

    def upload(self, name: str, items: list[tuple[Source, str]]) -> None:
        created: list[str] = []
        try:
            for source, rel in items:
                path = self._p(name, rel)
                existed = self.fs.exists(path)
                self.fs.makedirs(posixpath.dirname(path), exist_ok=True)
                if isinstance(source, bytes):
                    self.fs.pipe_file(path, source)
                else:
                    self.fs.put_file(source, path)
                if not existed:
                    created.append(path)
        except BaseException:
            for path in created:
                with contextlib.suppress(Exception):
                    self.fs.rm_file(path)
            raise

    def remove(self, name: str, rel: str, recursive: bool) -> None:
        entry = self.entry(name, rel)
        if entry is None:
            raise _not_found(name, rel)
        if entry.type == FileEntryType.DIRECTORY:
            if not recursive:
                raise _is_dir(name, rel, "; pass recursive=True (CLI: -r) to remove it")
            self.fs.rm(self._p(name, rel), recursive=True)
        else:
            self.fs.rm_file(self._p(name, rel))

    def copy(self, name: str, src: str, dst: str, directory: bool) -> None:
        source, target = self._p(name, src), self._p(name, dst)
        if not directory:
            self.fs.makedirs(posixpath.dirname(target), exist_ok=True)
            self.fs.cp_file(source, target)
            return
        self.fs.makedirs(target, exist_ok=True)
        for path, item in sorted(self.fs.find(source, withdirs=True, detail=True).items()):
            path = path.rstrip("/")
            if not path.startswith(source + "/") or not self._plain(name, path, item):
                continue
            dest = f"{target}/{path[len(source) + 1 :]}"
            if item.get("type") == "directory":
                self.fs.makedirs(dest, exist_ok=True)
            else:
                self.fs.makedirs(posixpath.dirname(dest), exist_ok=True)
                self.fs.cp_file(path, dest)
