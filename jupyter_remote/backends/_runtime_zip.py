"""The runtime a bare node fetches: this package and cloudpickle, zipped (pure Python)."""

from __future__ import annotations

import functools
import hashlib
import io
import os
import zipfile
from pathlib import Path

import cloudpickle

import jupyter_remote

from ..runtime._fetch import cache_dir, sha256_file

__all__ = ["build_runtime_archive", "runtime_zip_path"]


def _add_package(zf: zipfile.ZipFile, root: Path) -> None:
    for path in sorted(root.rglob("*")):
        if "__pycache__" in path.parts or not path.is_file() or path.suffix in (".pyc", ".so"):
            continue
        info = zipfile.ZipInfo(str(path.relative_to(root.parent)), date_time=(2020, 1, 1, 0, 0, 0))
        info.compress_type = zipfile.ZIP_DEFLATED
        zf.writestr(info, path.read_bytes())  # fixed timestamps: same sources, same hash


def build_runtime_archive() -> tuple[str, bytes]:
    """Return ``(sha256 hex, zip bytes)``."""
    import fsspec  # only here: the API imports this module, and fsspec is slow to import

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        _add_package(zf, Path(jupyter_remote.__file__).parent)
        _add_package(zf, Path(cloudpickle.__file__).parent)
        _add_package(zf, Path(fsspec.__file__).parent)  # remote volumes on bare nodes
    data = buf.getvalue()
    return hashlib.sha256(data).hexdigest(), data


@functools.cache
def runtime_zip_path() -> Path:
    """The runtime zip written once into the cache, for workers that must not see our venv."""
    sha, data = build_runtime_archive()
    where = Path(cache_dir())  # the same cache a bootstrapped node uses
    where.mkdir(parents=True, exist_ok=True)
    path = where / f"runtime-{sha}.zip"
    if sha256_file(str(path)) != sha:  # missing, or not what its name says: (re)write it
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_bytes(data)
        os.replace(tmp, path)
    return path
