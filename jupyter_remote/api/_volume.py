"""``Volume``: Modal's named directories that outlive a call.

A volume lives in the store at the ``volumes_url`` setting (a local directory
by default; any fsspec URL, such as ``s3://bucket/volumes``, for a cluster).
A function mounts it at a path (``@app.function(volumes={"/data": vol})``)
and reads and writes plain files there.

**commit() and reload().** Here, in the caller, the methods below act on the
store directly and ``commit()``/``reload()`` do nothing. Inside a worker they
act on the worker's mount:

- *local-path store*: the mount **is** the volume's directory, so writes are
  visible to every worker and caller at once; ``commit()`` and ``reload()``
  only flush the file system to disk (cheap);
- *remote store*: the worker works on a local copy, downloaded when it
  starts. ``reload()`` downloads files changed in the store since the last
  sync (by size and modification time) and drops files deleted there;
  ``commit()`` uploads new and changed files and deletes in the store what
  the worker deleted. A worker that exits normally commits one last time.

There is no locking across workers: when two commit the same file, the **last
writer wins**; a ``reload()`` overwrites a local change to a file that also
changed in the store.

>>> vol = Volume.from_name("datasets", create_if_missing=True)  # doctest: +SKIP
>>> with vol.batch_upload() as batch:  # doctest: +SKIP
...     batch.put_file("train.csv", "/raw/train.csv")
>>> [e.path for e in vol.listdir("/raw")]  # doctest: +SKIP
['raw/train.csv']
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from types import TracebackType
from typing import IO

from ..exceptions import ConfigError, NotFoundError
from ..runtime._mounts import Mount, MountSpec, check_mount_path, mounted_volume
from ..state._volumes import (
    FileEntry,
    FileEntryType,
    Source,
    VolumeStore,
    local_tree,
    normalize_path,
    validate_name,
)

__all__ = ["FileEntry", "FileEntryType", "Volume", "VolumeUpload"]


def _rebuild(name: str, url: str) -> Volume:
    return Volume(name, url)


class Volume:
    """A named directory in the volume store; get one with ``Volume.from_name``.

    It pickles to its name and store URL, so functions can take it as an
    argument or close over it.

    >>> vol = Volume.from_name("datasets", create_if_missing=True)  # doctest: +SKIP
    >>> vol
    <Volume 'datasets'>
    """

    __slots__ = ("_name", "_store", "_url")

    def __init__(self, name: str, url: str) -> None:
        self._name = validate_name(name)
        self._url = url
        self._store: VolumeStore | None = None

    @staticmethod
    def from_name(
        name: str,
        *,
        create_if_missing: bool = False,
        version: int | None = None,
        environment_name: str | None = None,
    ) -> Volume:
        """The volume ``name`` of the configured store; create it if asked, else it must exist.

        ``version`` (Modal's volume format, 1 or 2) is accepted: both are served by
        the same volumes here. ``environment_name`` is accepted and unused (there
        are no Modal environments: one store per configuration).
        """
        if version is not None and (isinstance(version, bool) or version not in (1, 2)):
            raise ConfigError(
                f"Volume.from_name({name!r}, version={version!r}): Modal volumes have "
                "version 1 or 2 (both served the same way here); leave version out"
            )
        if environment_name is not None and not isinstance(environment_name, str):
            raise TypeError("Volume.from_name: environment_name must be a str")
        validate_name(name)
        mount = mounted_volume(name)
        if mount is not None:  # inside a worker that mounted it: the store the mount came from
            return Volume(name, mount.spec.url)
        store = VolumeStore()
        if not store.exists(name):
            if not create_if_missing:
                raise NotFoundError(
                    f"volume {name!r} does not exist in {store.url}; create it with "
                    f"`Volume.from_name({name!r}, create_if_missing=True)` or "
                    f"`jupyter-remote volume create {name}`"
                )
            try:
                store.create(name)
            except ConfigError:
                if not store.exists(name):  # else another process created it just now
                    raise
        volume = Volume(name, store.url)
        volume._store = store
        return volume

    @staticmethod
    def delete(name: str) -> None:
        """Delete the volume ``name`` and every file in it."""
        VolumeStore().delete(validate_name(name))

    @property
    def name(self) -> str:
        return self._name

    @property
    def url(self) -> str:
        """The store the volume lives in."""
        return self._url

    def __repr__(self) -> str:
        return f"<Volume {self._name!r}>"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Volume):
            return NotImplemented
        return (self._name, self._url) == (other._name, other._url)

    def __hash__(self) -> int:
        return hash((self._name, self._url))

    def __reduce__(self) -> tuple[object, tuple[str, str]]:
        return (_rebuild, (self._name, self._url))

    @property
    def _s(self) -> VolumeStore:
        if self._store is None:
            self._store = VolumeStore(self._url)
        return self._store

    def _mount(self) -> Mount | None:
        # By name only: a worker may reach the store under another URL than the caller.
        return mounted_volume(self._name)

    def _mount_spec(self, path: str) -> MountSpec:
        """What a worker needs to mount this volume at ``path`` (checked here, in the caller)."""
        try:
            return MountSpec(check_mount_path(path), self._name, self._url)
        except ValueError as exc:
            raise ConfigError(f"volumes={{{path!r}: {self!r}}}: {exc}") from None

    # -- commit and reload -----------------------------------------------------------------

    def commit(self) -> None:
        """Publish this worker's changes to the volume (see the module docstring)."""
        mount = self._mount()
        if mount is not None:
            mount.commit()

    def reload(self) -> None:
        """See the changes other workers committed (see the module docstring)."""
        mount = self._mount()
        if mount is not None:
            mount.reload()

    # -- files -----------------------------------------------------------------------------

    def listdir(self, path: str = "/", *, recursive: bool = False) -> list[FileEntry]:
        """The entries of the directory ``path`` (with ``recursive``, everything below it)."""
        return self._s.listdir(self._name, path, recursive)

    def iterdir(self, path: str = "/", *, recursive: bool = False) -> Iterator[FileEntry]:
        """``listdir`` as an iterator."""
        yield from self.listdir(path, recursive=recursive)

    def read_file(self, path: str) -> Iterator[bytes]:
        """The bytes of the file ``path``, in chunks.

        >>> b"".join(vol.read_file("/raw/train.csv"))  # doctest: +SKIP
        """
        return self._s.read(self._name, path)

    def read_file_into_fileobj(self, path: str, fileobj: IO[bytes]) -> int:
        """Write the file ``path`` into ``fileobj``; return the number of bytes."""
        total = 0
        for chunk in self.read_file(path):
            fileobj.write(chunk)
            total += len(chunk)
        return total

    def remove_file(self, path: str, recursive: bool = False) -> None:
        """Remove the file ``path``, or with ``recursive`` the directory ``path``."""
        self._s.remove(self._name, path, recursive)

    def copy_files(self, src_paths: Sequence[str], dst_path: str, recursive: bool = False) -> None:
        """Copy paths within the volume like ``cp`` (into ``dst_path`` if it is a directory)."""
        self._s.copy(self._name, src_paths, dst_path, recursive)

    def batch_upload(self, force: bool = False) -> VolumeUpload:
        """Collect uploads, applied when the ``with`` block ends without an exception.

        Without ``force`` an existing remote file is an error naming it, and
        nothing is uploaded.

        >>> with vol.batch_upload() as batch:  # doctest: +SKIP
        ...     batch.put_file("local.txt", "/remote.txt")
        ...     batch.put_directory("images/", "/images")
        """
        return VolumeUpload(self, force)


class VolumeUpload:
    """The uploads of one ``Volume.batch_upload()`` block."""

    def __init__(self, volume: Volume, force: bool) -> None:
        self._volume = volume
        self._force = force
        self._items: list[tuple[Source, str]] = []

    def __enter__(self) -> VolumeUpload:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        items, self._items = self._items, []
        if exc_type is None and items:
            self._volume._s.upload(self._volume.name, items, force=self._force)

    def put_file(self, local_file: str | os.PathLike[str] | IO[bytes], remote_path: str) -> None:
        """Upload a local file (a path, or a binary file object read now) to ``remote_path``."""
        normalize_path(remote_path)  # a bad path fails here, not at the end of the block
        if isinstance(local_file, str | os.PathLike):
            path = os.fspath(local_file)
            if not os.path.isfile(path):
                raise FileNotFoundError(f"{path} does not exist or is not a file")
            self._items.append((path, remote_path))
        else:
            self._items.append((bytes(local_file.read()), remote_path))

    def put_directory(self, local_path: str | os.PathLike[str], remote_path: str) -> None:
        """Upload every file below the local directory ``local_path`` to ``remote_path/...``."""
        normalize_path(remote_path)
        self._items.extend(local_tree(local_path, remote_path))
