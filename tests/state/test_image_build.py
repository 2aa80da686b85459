"""Building images with the real uv (packages from PyPI), cached per key on this machine.

``uv`` is a wrapper script that records each invocation, so "the second ensure
costs nothing" and "two processes build once" are counted, not timed.
"""

from __future__ import annotations

import importlib.util
import os
import shlex
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Sequence
from pathlib import Path

import pytest

from jupyter_remote.api._image import Image
from jupyter_remote.backends._images import (
    BuiltImage,
    ImageBuilder,
    ImageBuildError,
    apt_commands,
    default_cache_dir,
    find_uv,
)
from jupyter_remote.backends._runtime_zip import build_runtime_archive
from jupyter_remote.exceptions import BackendError, ConfigError

# A tiny pure-Python package from PyPI that the test environment itself does not have.
ABSENT = next(
    (spec, module)
    for spec, module in (("six==1.16.0", "six"), ("tomli-w==1.0.0", "tomli_w"))
    if importlib.util.find_spec(module) is None
)


class Uv:
    """A uv wrapper that appends each call's arguments to ``calls`` (and can be slowed down)."""

    def __init__(self, directory: Path) -> None:
        self.calls = directory / "uv-calls.txt"
        self.path = directory / "uv"
        self.path.write_text(
            "#!/bin/sh\n"
            f'echo "$*" >> {shlex.quote(str(self.calls))}\n'
            'if [ "$1" = venv ] && [ -n "$JR_TEST_UV_SLEEP" ]; then sleep "$JR_TEST_UV_SLEEP"; fi\n'
            f'exec {shlex.join(find_uv())} "$@"\n'
        )
        self.path.chmod(0o755)

    def count(self, subcommand: str = "") -> int:
        if not self.calls.exists():
            return 0
        return sum(line.startswith(subcommand) for line in self.calls.read_text().splitlines())


@pytest.fixture
def uv(tmp_path: Path) -> Uv:
    return Uv(tmp_path)


@pytest.fixture
def cache(tmp_path: Path) -> Path:
    return tmp_path / "images"


@pytest.fixture
def builder(cache: Path, uv: Uv) -> ImageBuilder:
    return ImageBuilder(cache, uv=str(uv.path))


def run_in(
    built: BuiltImage, code: str, pythonpath: Sequence[str] = ()
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(built.python), "-c", code],
        capture_output=True,
        text=True,
        timeout=30,
        env=built.environ(pythonpath=pythonpath),
        cwd=built.workdir,
    )


def test_build_installs_a_package_the_caller_lacks_and_runs_the_runtime_zip(
    builder: ImageBuilder, uv: Uv, tmp_path: Path
) -> None:
    spec, module = ABSENT
    lines: list[str] = []
    image = Image.debian_slim().pip_install(spec)
    built = builder.ensure(image, lines.append)
    assert built.built and built.key == image.key
    assert built.path == builder.cache_dir / image.key
    assert any(spec in line for line in lines), lines  # uv's own output, streamed
    assert (built.path / ".complete").is_file()

    _, data = build_runtime_archive()
    runtime = tmp_path / "runtime.zip"
    runtime.write_bytes(data)
    check = f"import jupyter_remote.runtime, cloudpickle, {module}; print({module}.__name__)"
    proc = run_in(built, check, pythonpath=[str(runtime)])
    assert (proc.returncode, proc.stdout) == (0, f"{module}\n"), proc.stderr
    # None of the caller's packages: only the runtime zip and the image's own.
    proc = run_in(built, "import numpy", pythonpath=[str(runtime)])
    assert proc.returncode == 1 and "No module named 'numpy'" in proc.stderr

    calls = uv.count()
    again = builder.ensure(image, lines.append)
    assert uv.count() == calls, "a cached image must not run uv again"
    assert not again.built and again.python == built.python
    [listed] = builder.list()
    assert listed.key == image.key and spec in listed.description and listed.size > 0


def test_a_failed_build_raises_with_the_installers_complaint(builder: ImageBuilder, uv: Uv) -> None:
    image = Image.debian_slim().pip_install("this-package-does-not-exist-jr-test")
    lines: list[str] = []
    with pytest.raises(ImageBuildError) as info:
        builder.ensure(image, lines.append)
    err = info.value
    assert isinstance(err, BackendError)
    assert "this-package-does-not-exist-jr-test" in str(err)
    assert "pip_install('this-package-does-not-exist-jr-test')" in str(err)  # which step
    assert "this-package-does-not-exist-jr-test" in err.output
    assert builder.list() == []  # nothing that looks complete
    before = uv.count()
    with pytest.raises(ImageBuildError):
        builder.ensure(image)  # a failed build is not cached: it is tried again
    assert uv.count() > before


def test_two_processes_build_one_key_once(cache: Path, uv: Uv, tmp_path: Path) -> None:
    go = tmp_path / "go"
    script = textwrap.dedent(
        f"""
        import os, pathlib, time
        from jupyter_remote.api._image import Image
        from jupyter_remote.backends._images import ImageBuilder
        pathlib.Path({str(tmp_path)!r}, f"ready-{{os.getpid()}}").touch()
        while not os.path.exists({str(go)!r}):
            time.sleep(0.005)
        built = ImageBuilder({str(cache)!r}, uv={str(uv.path)!r}).ensure(
            Image.debian_slim().env({{"JR": "concurrent"}}), print)
        print("RESULT", built.built, built.python)
        """
    )
    env = {**os.environ, "JR_TEST_UV_SLEEP": "1"}  # the build outlasts the start skew
    procs = [
        subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True, env=env)
        for _ in range(2)
    ]
    deadline = time.monotonic() + 30
    while len(list(tmp_path.glob("ready-*"))) < 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    go.touch()
    outs = [p.communicate(timeout=60)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outs
    assert uv.count("venv") == 1
    results = sorted(line for out in outs for line in out.splitlines() if line.startswith("RESULT"))
    assert [r.split()[1] for r in results] == ["False", "True"]
    assert results[0].split()[2] == results[1].split()[2]
    assert sum("waiting for another build" in out for out in outs) == 1


def test_threads_build_one_key_once(builder: ImageBuilder, uv: Uv) -> None:
    image = Image.debian_slim().env({"JR": "threads"})
    results: list[BuiltImage] = []
    threads = [
        threading.Thread(target=lambda: results.append(builder.ensure(image))) for _ in range(4)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert len(results) == 4 and sum(r.built for r in results) == 1
    assert uv.count("venv") == 1


def test_an_interrupted_build_never_looks_complete_and_is_rebuilt(
    builder: ImageBuilder, cache: Path, uv: Uv
) -> None:
    script = (
        "from jupyter_remote.api._image import Image\n"
        "from jupyter_remote.backends._images import ImageBuilder\n"
        f"ImageBuilder({str(cache)!r}, uv={str(uv.path)!r})"
        ".ensure(Image.debian_slim().env({'JR': 'crash'}))\n"
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", script],
        env={**os.environ, "JR_TEST_UV_SLEEP": "30"},
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 30
        while uv.count("venv") == 0 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert uv.count("venv") == 1
    finally:
        os.killpg(proc.pid, signal.SIGKILL)  # the builder and its uv, mid-build
        proc.wait()
    image = Image.debian_slim().env({"JR": "crash"})
    assert (cache / image.key).is_dir()
    assert builder.list() == []
    built = builder.ensure(image)
    assert built.built and uv.count("venv") == 2
    assert [i.key for i in builder.list()] == [image.key]


def test_local_sources_files_and_env_land_where_documented(
    builder: ImageBuilder, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    src = tmp_path / "src"
    (src / "jr_build_pkg").mkdir(parents=True)
    (src / "jr_build_pkg" / "__init__.py").write_text("NAME = 'pkg v1'\n")
    (src / "jr_build_mod.py").write_text("NAME = 'mod'\n")
    monkeypatch.syspath_prepend(str(src))
    data = tmp_path / "data.txt"
    data.write_text("hello")
    folder = tmp_path / "folder"
    (folder / "sub").mkdir(parents=True)
    (folder / "sub" / "a.txt").write_text("a")
    image = (
        Image.debian_slim()
        .env({"GREETING": "hi"})
        .workdir("/srv/app")
        .add_local_python_source("jr_build_pkg", "jr_build_mod")
        .add_local_file(data, "/srv/app/data/")
        .add_local_dir(folder, "/opt/folder")
    )
    built = builder.ensure(image)
    root = built.path / "root"
    assert built.root == root and built.workdir == root / "srv" / "app"
    assert (root / "srv" / "app" / "data" / "data.txt").read_text() == "hello"
    assert (root / "opt" / "folder" / "sub" / "a.txt").read_text() == "a"
    assert (built.site_dir / "jr_build_pkg" / "__init__.py").is_file()
    assert (built.site_dir / "jr_build_mod.py").is_file()
    assert built.env == {"GREETING": "hi"}
    code = (
        "import os, jr_build_pkg, jr_build_mod;"
        "print(jr_build_pkg.NAME, jr_build_mod.NAME, os.environ['GREETING'],"
        " open('data/data.txt').read(), os.environ['JUPYTER_REMOTE_IMAGE_ROOT'])"
    )
    proc = run_in(built, code)
    assert proc.stdout == f"pkg v1 mod hi hello {root}\n", proc.stderr

    # Editing a local source makes another image: the old one stays as it was.
    (src / "jr_build_pkg" / "__init__.py").write_text("NAME = 'pkg v2'\n")
    rebuilt = builder.ensure(image)
    assert rebuilt.built and rebuilt.key != built.key
    assert run_in(rebuilt, "import jr_build_pkg; print(jr_build_pkg.NAME)").stdout == "pkg v2\n"
    assert run_in(built, "import jr_build_pkg; print(jr_build_pkg.NAME)").stdout == "pkg v1\n"


def test_run_commands_use_the_images_python_env_and_workdir(builder: ImageBuilder) -> None:
    image = (
        Image.debian_slim()
        .env({"GREETING": "hi"})
        .workdir("/work")
        .run_commands(
            'echo "$GREETING" > made.txt',
            "python -c 'import sys; print(sys.prefix)' >> made.txt",
            "pip --version >> made.txt",
        )
    )
    lines: list[str] = []
    built = builder.ensure(image, lines.append)
    assert built.workdir is not None
    greeting, prefix, pip = (built.workdir / "made.txt").read_text().splitlines()
    assert greeting == "hi"
    assert Path(prefix) == built.venv
    assert str(built.venv) in pip  # `pip` is the image's own, never the machine's


def test_apt_install_needs_root(builder: ImageBuilder, uv: Uv) -> None:
    refusing = ImageBuilder(builder.cache_dir, uv=builder.uv, as_root=False)
    with pytest.raises(ConfigError) as info:
        refusing.ensure(Image.debian_slim().apt_install("curl"))
    assert "apt_install needs root or the docker driver on Nomad" in str(info.value)
    assert "pip_install" in str(info.value)
    assert uv.count() == 0  # refused before building anything
    if os.geteuid() != 0:
        with pytest.raises(ConfigError, match="apt_install needs root"):
            ImageBuilder(builder.cache_dir, uv=builder.uv).ensure(
                Image.debian_slim().apt_install("curl")
            )


def test_apt_install_as_root_runs_apt_get(
    builder: ImageBuilder, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert apt_commands(["curl", "git"]) == [
        ["apt-get", "update"],
        ["apt-get", "install", "-y", "--no-install-recommends", "curl", "git"],
    ]
    # A fake apt-get first on PATH records what a root build would run.
    record = tmp_path / "apt-calls.txt"
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    fake = bin_dir / "apt-get"
    fake.write_text(f'#!/bin/sh\necho "$DEBIAN_FRONTEND $*" >> {shlex.quote(str(record))}\n')
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    root = ImageBuilder(builder.cache_dir, uv=builder.uv, as_root=True)
    root.ensure(Image.debian_slim().apt_install("git", "curl"))
    assert record.read_text().splitlines() == [
        "noninteractive update",
        "noninteractive install -y --no-install-recommends curl git",
    ]


def test_from_registry_needs_the_docker_driver(builder: ImageBuilder, uv: Uv) -> None:
    with pytest.raises(ConfigError, match="docker driver") as info:
        builder.ensure(Image.from_registry("python:3.11-slim").pip_install("six"))
    assert "Image.debian_slim()" in str(info.value)
    assert uv.count() == 0


def test_remove_and_prune(builder: ImageBuilder, cache: Path) -> None:
    keep = builder.ensure(Image.debian_slim().env({"JR": "keep"}))
    gone = builder.ensure(Image.debian_slim().env({"JR": "gone"}))
    (cache / ("0" * 64)).mkdir()  # what a crashed build leaves
    builder.remove(gone.key)
    assert not gone.path.exists()
    with pytest.raises(ConfigError, match="no image"):
        builder.remove(gone.key)
    assert builder.prune() == ["0" * 64]
    assert [i.key for i in builder.list()] == [keep.key]
    assert builder.prune(unused_for=3600) == []
    os.utime(keep.path / ".last_used", (time.time() - 7200, time.time() - 7200))
    assert builder.prune(unused_for=3600) == [keep.key]
    assert builder.list() == []


def test_default_cache_dir(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("JUPYTER_REMOTE_CACHE", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert default_cache_dir() == tmp_path / "xdg" / "jupyter_remote" / "images"
    monkeypatch.setenv("JUPYTER_REMOTE_CACHE", str(tmp_path / "jr"))
    assert default_cache_dir() == tmp_path / "jr" / "images"
    assert ImageBuilder().cache_dir == tmp_path / "jr" / "images"


def test_environ_drops_the_callers_python_path() -> None:
    built = BuiltImage(
        key="k",
        path=Path("/c/k"),
        python=Path("/c/k/venv/bin/python"),
        env={"A": "1", "PYTHONPATH": "/img"},
    )
    base = {"PATH": "/usr/bin", "PYTHONPATH": "/caller", "PYTHONHOME": "/x", "HOME": "/h"}
    env = built.environ(base, pythonpath=["/rt.zip"])
    assert env == {
        "A": "1",
        "HOME": "/h",
        "PATH": f"/c/k/venv/bin{os.pathsep}/usr/bin",
        "PYTHONPATH": f"/rt.zip{os.pathsep}/img",
        "VIRTUAL_ENV": "/c/k/venv",
        "JUPYTER_REMOTE_IMAGE_ROOT": "/c/k/root",
    }
