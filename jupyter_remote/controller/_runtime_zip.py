"""The runtime a bare node fetches: this package and cloudpickle, zipped (pure Python)."""

from __future__ import annotations

import hashlib
import io
import zipfile
from pathlib import Path

import cloudpickle

import jupyter_remote

__all__ = ["build_runtime_archive"]


def _add_package(zf: zipfile.ZipFile, root: Path) -> None:
    for path in sorted(root.rglob("*")):
        if "__pycache__" in path.parts or not path.is_file() or path.suffix in (".pyc", ".so"):
            continue
        info = zipfile.ZipInfo(str(path.relative_to(root.parent)), date_time=(2020, 1, 1, 0, 0, 0))
        info.compress_type = zipfile.ZIP_DEFLATED
        zf.writestr(info, path.read_bytes())  # fixed timestamps: same sources, same hash


def build_runtime_archive() -> tuple[str, bytes]:
    """Return ``(sha256 hex, zip bytes)``."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        _add_package(zf, Path(jupyter_remote.__file__).parent)
        _add_package(zf, Path(cloudpickle.__file__).parent)
    data = buf.getvalue()
    return hashlib.sha256(data).hexdigest(), data
