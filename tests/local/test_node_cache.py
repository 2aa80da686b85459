"""A node's runtime cache cannot be used to run someone else's code in a worker.

Workers start like tasks on a bare Nomad node (``bare_node_backend``): they
fetch the runtime zip into the cache and reuse it. A zip swapped in the
cache, or a cache directory another user made or may write, must never be
imported. Where the tests run as root, the other user is ``nobody``.
"""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import tempfile
import zipfile
from collections.abc import Iterator
from pathlib import Path

import bare_node_backend
import conformance_funcs as funcs
import pytest

import jupyter_remote as jr

ROOT = os.geteuid() == 0
NOBODY = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]


@pytest.fixture
def bare(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """The bare-node backend with its cache at a path the test picks (``tmp_path/cache``)."""
    monkeypatch.setattr(bare_node_backend, "CACHE", str(tmp_path / "cache"))
    bare_node_backend.register()
    yield tmp_path / "cache"
    bare_node_backend.unregister()


def _planted_zip(path: Path, marker: Path) -> None:
    """A 'runtime' whose import would prove that a worker ran it."""
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("jupyter_remote/__init__.py", f"open({str(marker)!r}, 'w').write('ran')\n")
        zf.writestr("jupyter_remote/runtime/__init__.py", "")
        zf.writestr("jupyter_remote/runtime/_main.py", "def main(argv): raise SystemExit(9)\n")


def _runtime_name(app: jr.App) -> str:
    from jupyter_remote.controller import controller

    sha, _ = controller().runtime_archive()
    return f"runtime-{sha}.zip"


def test_a_swapped_runtime_zip_is_never_run(bare: Path, tmp_path: Path) -> None:
    app = jr.App("cache-swap", backend="bare-local")
    f = app.function()(funcs.pid)
    assert f.remote() > 0
    cached = bare / _runtime_name(app)
    assert cached.exists()
    app.stop()
    marker = tmp_path / "ran"
    _planted_zip(cached, marker)  # same name, other content
    assert f.remote() > 0  # a new worker checks the hash and fetches the runtime again
    assert not marker.exists()
    from jupyter_remote.controller import controller

    assert cached.read_bytes() == controller().runtime_archive()[1]
    app.stop()


def test_a_cache_open_to_other_users_is_closed_before_use(bare: Path) -> None:
    bare.mkdir(mode=0o777)
    bare.chmod(0o777)
    app = jr.App("cache-open", backend="bare-local")
    assert app.function()(funcs.pid).remote() > 0
    assert stat.S_IMODE(bare.stat().st_mode) == 0o700
    assert (bare / _runtime_name(app)).exists()
    app.stop()


@pytest.mark.skipif(
    not ROOT or shutil.which("setpriv") is None, reason="needs root and setpriv (util-linux)"
)
def test_a_cache_made_by_another_user_is_not_used(monkeypatch: pytest.MonkeyPatch) -> None:
    base = Path(tempfile.mkdtemp(prefix="jr-nobody-cache-"))  # a /tmp nobody can reach
    try:
        base.chmod(0o777)
        cache, marker, planted = base / "cache", base / "ran", base / "planted.zip"
        monkeypatch.setattr(bare_node_backend, "CACHE", str(cache))
        bare_node_backend.register()
        app = jr.App("cache-nobody", backend="bare-local")
        _planted_zip(planted, marker)
        planted.chmod(0o644)
        # As nobody: make the cache directory the worker will look at, with a zip in it.
        script = f"mkdir -m 0755 {cache} && cp {planted} {cache / _runtime_name(app)}"
        subprocess.run([*NOBODY, "sh", "-c", script], check=True, capture_output=True)
        assert cache.stat().st_uid == 65534
        assert app.function()(funcs.pid).remote() > 0
        assert not marker.exists()  # nobody's zip never ran, whatever its name
        app.stop()
    finally:
        bare_node_backend.unregister()
        shutil.rmtree(base)
