"""``/jupyter-remote/api/volumes``: the volume store of ``jupyter-remote volume``.

::

    GET    volumes                              {"url", "volumes": [{name, size, files, mtime}]}
    POST   volumes           {"name"}           201: create
    DELETE volumes/NAME                         204: the volume and every file in it
    GET    volumes/NAME/files?path=&recursive=  {"path", "entries": [{path, name, type, size,
                                                mtime}]}: a directory's entries (or a file's own)
    PUT    volumes/NAME/files?path=&force=      201: the body's bytes become the file at path
    DELETE volumes/NAME/files?path=&recursive=  204: a file, or a directory with ``recursive``
    GET    volumes/NAME/download?path=          the file's bytes, as an attachment

Every path goes through ``state._volumes.normalize_path``: it is inside the
volume (``/`` is the volume's root, ``..`` never climbs above it).
"""

from __future__ import annotations

import posixpath
import urllib.parse
from typing import Any

from tornado import web

from ..state._volumes import (
    FileEntry,
    FileEntryType,
    VolumeStore,
    display_path,
    normalize_path,
    validate_name,
)
from ._base import ApiError, Handler, blocking

__all__ = ["routes"]

_TYPES = {
    FileEntryType.FILE: "file",
    FileEntryType.DIRECTORY: "dir",
    FileEntryType.SYMLINK: "link",
    FileEntryType.UNSPECIFIED: "other",
}


def _entry(entry: FileEntry) -> dict[str, Any]:
    return {
        "path": display_path(entry.path),
        "name": posixpath.basename(entry.path),
        "type": _TYPES[entry.type],
        "size": entry.size,
        "mtime": entry.mtime,
    }


class _VolumeHandler(Handler):
    def path_argument(self) -> str:
        """``?path=``, normalised (a ``ConfigError`` for one that leaves the volume)."""
        return normalize_path(self.get_query_argument("path", "/"))


class VolumesHandler(_VolumeHandler):
    @web.authenticated
    async def get(self) -> None:
        store = await blocking(VolumeStore)
        infos = await blocking(store.list)
        volumes = [{"name": i.name, "size": i.size, "files": i.files, "mtime": i.mtime}
                   for i in infos]  # fmt: skip
        self.write_json({"url": store.url, "volumes": volumes})

    @web.authenticated
    async def post(self) -> None:
        name = self.json_body().get("name")
        if not isinstance(name, str):
            raise ApiError('give the new volume\'s name: {"name": "datasets"}')
        validate_name(name)
        store = await blocking(VolumeStore)
        await blocking(store.create, name)
        self.write_json({"name": name, "url": store.url}, status=201)


class VolumeHandler(_VolumeHandler):
    @web.authenticated
    async def delete(self, name: str) -> None:
        validate_name(name)
        store = await blocking(VolumeStore)
        await blocking(store.delete, name)
        self.set_status(204)
        self.finish()


class FilesHandler(_VolumeHandler):
    @web.authenticated
    async def get(self, name: str) -> None:
        validate_name(name)
        rel = self.path_argument()
        store = await blocking(VolumeStore)
        entries = await blocking(store.listdir, name, rel, recursive=self.flag("recursive"))
        self.write_json({"path": display_path(rel), "entries": [_entry(e) for e in entries]})

    @web.authenticated
    async def put(self, name: str) -> None:
        validate_name(name)
        rel = self.path_argument()
        store = await blocking(VolumeStore)
        await blocking(store.write, name, rel, self.request.body, force=self.flag("force"))
        entry = await blocking(store.stat, name, rel)
        self.write_json(_entry(entry) if entry else {"path": display_path(rel)}, status=201)

    @web.authenticated
    async def delete(self, name: str) -> None:
        validate_name(name)
        rel = self.path_argument()
        store = await blocking(VolumeStore)
        await blocking(store.remove, name, rel, recursive=self.flag("recursive"))
        self.set_status(204)
        self.finish()


class DownloadHandler(_VolumeHandler):
    @web.authenticated
    async def get(self, name: str) -> None:
        validate_name(name)
        rel = self.path_argument()
        store = await blocking(VolumeStore)
        chunks = iter(await blocking(store.read, name, rel))
        filename = posixpath.basename(rel) or name
        self.set_header("Content-Type", "application/octet-stream")
        self.set_header(
            "Content-Disposition",
            f"attachment; filename*=UTF-8''{urllib.parse.quote(filename, safe='')}",
        )
        while (chunk := await blocking(next, chunks, None)) is not None:
            self.write(chunk)
            await self.flush()
        await self.finish(set_content_type="application/octet-stream")


def routes(api: str) -> list[tuple[str, type[Handler]]]:
    """The URL patterns under ``api`` (``<base_url>/jupyter-remote/api``)."""
    name = r"([^/]+)"
    return [
        (f"{api}/volumes", VolumesHandler),
        (f"{api}/volumes/{name}", VolumeHandler),
        (f"{api}/volumes/{name}/files", FilesHandler),
        (f"{api}/volumes/{name}/download", DownloadHandler),
    ]
