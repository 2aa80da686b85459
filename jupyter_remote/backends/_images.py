"""Images on the machine that runs workers: the layer data, the key, and the uv-built cache.

An :class:`~jupyter_remote.api.Image` is a tuple of layers (the frozen
dataclasses below). Its key is the sha256 of a canonical JSON of those layers,
where local files contribute their content hash instead of their path.

On the local backend (and Nomad's raw_exec) an image is a virtual environment
of the caller's Python, built with ``uv`` and cached per key::

    <cache>/                      $JUPYTER_REMOTE_CACHE/images, else
                                  $XDG_CACHE_HOME/jupyter_remote/images (~/.cache/...)
      <key>/
        venv/                     `uv venv --relocatable`: bin/python, lib/pythonX.Y/site-packages
        site/                     add_local_python_source copies; on sys.path through
                                  venv/.../site-packages/_jupyter_remote_image.pth
        root/                     the image's "/": add_local_dir/add_local_file targets and the
                                  workdir; `/srv/data` in the spec is root/srv/data here
        build.log                 everything the build printed
        .complete                 metadata (JSON), written last: an entry without it is a
                                  crashed or failed build and is rebuilt from scratch
        .last_used                its mtime is the last ensure()
      .locks/<key>.lock           flock: one build of a key at a time (threads and processes)

Builds happen in place under the key's lock, ``.complete`` last (atomically,
by rename). Building at the final path rather than renaming a temp directory
keeps absolute paths that ``run_commands`` or installers write valid.

On a Nomad node the bootstrap (``runtime._fetch``) builds the same way, into
the node's cache: the controller sends the layers with :func:`pack_image`
(the files ``add_local_*`` names travel inside it) and the node rebuilds them
with :func:`unpack_image`; the key is the same on both sides because local
files count by content, not by path. Under the docker driver an
``Image.from_registry`` base is the container itself: the venv is built on
the container's Python and sees its packages (``ImageBuilder(container=True)``).

What the local backend cannot do, it says so before building anything:
``from_registry`` needs the docker driver on Nomad; ``apt_install`` needs
root (it runs ``apt-get`` on this machine) or the docker driver. Remote paths
are absolute and are rebased under ``root/``: code that wants to run the
same on the local backend and in a container sets ``.workdir()`` and reads
relative paths, or joins ``$JUPYTER_REMOTE_IMAGE_ROOT``.
"""

from __future__ import annotations

import builtins
import collections
import contextlib
import dataclasses
import fcntl
import hashlib
import importlib.util
import io
import json
import os
import pickle
import shlex
import shutil
import stat
import subprocess
import sys
import tarfile
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from ..exceptions import BackendError, ConfigError, ImageBuildError
from ._image_layers import (
    AptInstall,
    DebianSlim,
    Env,
    FromRegistry,
    ImageSpec,
    Layer,
    LocalDir,
    LocalFile,
    LocalPythonSource,
    PipInstall,
    RunCommands,
    Workdir,
    _walk,
    apt_commands,
    canonical_spec,
    describe_layers,
    image_key,
)

__all__ = [
    "AptInstall",
    "BuiltImage",
    "CachedImage",
    "DebianSlim",
    "Env",
    "FromRegistry",
    "ImageBuildError",
    "ImageBuilder",
    "ImageSpec",
    "Layer",
    "LocalDir",
    "LocalFile",
    "LocalPythonSource",
    "PipInstall",
    "RunCommands",
    "Workdir",
    "apt_commands",
    "default_cache_dir",
    "describe_layers",
    "find_uv",
    "image_key",
    "pack_image",
    "unpack_image",
    "uv_binary",
]

ERROR_TAIL_LINES = 30


# -- the cache ---------------------------------------------------------------------------------


def default_cache_dir() -> Path:
    """``$JUPYTER_REMOTE_CACHE/images``, else ``$XDG_CACHE_HOME/jupyter_remote/images``."""
    explicit = os.environ.get("JUPYTER_REMOTE_CACHE")
    if explicit:
        return Path(explicit) / "images"
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "jupyter_remote" / "images"


def find_uv() -> list[str]:
    """The uv command: next to this interpreter, on PATH, or ``python -m uv``."""
    beside = Path(sys.executable).parent / "uv"
    if beside.is_file() and os.access(beside, os.X_OK):
        return [str(beside)]
    found = shutil.which("uv")
    if found:
        return [found]
    if importlib.util.find_spec("uv") is not None:
        return [sys.executable, "-m", "uv"]
    raise ConfigError(
        "building an Image needs uv, which is not installed: `pip install uv`, or put uv on PATH"
    )


def uv_binary() -> Path | None:
    """The uv executable as one file (what a node of this platform can run), if there is one."""
    try:
        command = find_uv()
    except ConfigError:
        return None
    return Path(command[0]) if len(command) == 1 else None


# -- shipping an image to a node ---------------------------------------------------------------

_LAYERS_MEMBER = "layers.pickle"


def _local_paths(layer: Layer) -> tuple[str, ...]:
    if isinstance(layer, LocalPythonSource):
        return layer.paths
    if isinstance(layer, LocalDir | LocalFile):
        return (layer.local,)
    return ()


def _with_paths(layer: Layer, paths: Sequence[str]) -> Layer:
    if isinstance(layer, LocalPythonSource):
        return dataclasses.replace(layer, paths=tuple(paths))
    if isinstance(layer, LocalDir | LocalFile):
        return dataclasses.replace(layer, local=paths[0])
    return layer


def pack_image(layers: Sequence[Layer], *, files: bool = True) -> bytes:
    """The layers as one tar for a node: pickled, with ``add_local_*`` paths made relative.

    With ``files``, the files and directories those layers name travel in the tar
    (``files/<layer>/<path>``, walked as the key hashes them: links followed, bytecode
    left out), so the node hashes them to the same key. Without, the node must already
    have the image built (it only needs the layers for the image's env and workdir).
    """
    buf = io.BytesIO()
    shipped: list[Layer] = []
    with tarfile.open(fileobj=buf, mode="w", dereference=True) as tar:
        for i, layer in enumerate(layers):
            names = [f"files/{i}/{j}" for j in range(len(_local_paths(layer)))]
            shipped.append(_with_paths(layer, names))
            if not files:
                continue
            for name, local in zip(names, _local_paths(layer), strict=True):
                path = Path(local)
                if not path.exists():
                    raise ConfigError(
                        f"{local} no longer exists; it was added to an Image with add_local_*"
                    )
                tar.add(path, name, recursive=False)
                if path.is_dir():
                    for rel, sub in _walk(path):
                        tar.add(sub, f"{name}/{rel.rstrip('/')}", recursive=False)
        data = pickle.dumps(tuple(shipped), protocol=pickle.HIGHEST_PROTOCOL)
        info = tarfile.TarInfo(_LAYERS_MEMBER)
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def unpack_image(data: bytes, dest: str | os.PathLike[str]) -> tuple[Layer, ...]:
    """The layers of a :func:`pack_image` tar, its files extracted under ``dest``.

    Only for data from an authenticated controller: the layers are unpickled.
    """
    root = Path(dest)
    with tarfile.open(fileobj=io.BytesIO(data), mode="r") as tar:
        member = tar.extractfile(_LAYERS_MEMBER)
        if member is None:
            raise ValueError("the image archive has no layers")
        layers: tuple[Layer, ...] = pickle.loads(member.read())
        files = [m for m in tar.getmembers() if m.name != _LAYERS_MEMBER]
        if hasattr(tarfile, "data_filter"):  # 3.11.4+: refuse links and paths out of dest
            tar.extractall(root, members=files, filter="data")
        else:  # pragma: no cover - older 3.11 patch releases
            tar.extractall(root, members=files)
    return tuple(
        _with_paths(layer, [str(root / p) for p in _local_paths(layer)]) for layer in layers
    )


@dataclass(frozen=True)
class BuiltImage:
    """A built image on this machine: how to start a Python inside it.

    Start workers with ``python``, the environment ``environ(os.environ,
    pythonpath=[runtime_zip])`` and, when ``workdir`` is set, that directory as
    the working directory.
    """

    key: str
    path: Path  # the cache entry
    python: Path  # venv/bin/python
    env: Mapping[str, str] = field(default_factory=dict)  # the image's .env() variables
    workdir: Path | None = None  # the .workdir(), rebased under root; None: not set
    site_dir: Path = Path()  # add_local_python_source copies (on the venv's sys.path)
    root: Path = Path()  # the image's "/"
    built: bool = False  # this ensure() built it (False: it was cached)

    @property
    def venv(self) -> Path:
        return self.path / "venv"

    def environ(
        self, base: Mapping[str, str] | None = None, *, pythonpath: Sequence[str] = ()
    ) -> dict[str, str]:
        """``base`` (default ``os.environ``) with the image's variables and the venv first.

        The caller's ``PYTHONPATH``, ``PYTHONHOME`` and ``VIRTUAL_ENV`` are dropped
        (they would bring back the caller's packages); ``pythonpath`` (e.g. the
        runtime zip) comes first in ``PYTHONPATH``, then the image's own.
        """
        return _environ(os.environ if base is None else base, self.env, self.path, pythonpath)


def _environ(
    base: Mapping[str, str], image_env: Mapping[str, str], entry: Path, pythonpath: Sequence[str]
) -> dict[str, str]:
    env = {k: v for k, v in base.items() if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")}
    env.update(image_env)
    paths = [*pythonpath, *([image_env["PYTHONPATH"]] if image_env.get("PYTHONPATH") else [])]
    if paths:
        env["PYTHONPATH"] = os.pathsep.join(paths)
    else:
        env.pop("PYTHONPATH", None)
    env["VIRTUAL_ENV"] = str(entry / "venv")
    env["PATH"] = f"{entry / 'venv' / 'bin'}{os.pathsep}{env.get('PATH') or os.defpath}"
    env["JUPYTER_REMOTE_IMAGE_ROOT"] = str(entry / "root")
    return env


@dataclass(frozen=True)
class CachedImage:
    """One complete entry of the cache, as ``list()`` reports it."""

    key: str
    path: Path
    size: int  # bytes (files hard-linked from uv's cache count in full)
    created: float  # epoch seconds
    last_used: float  # epoch seconds
    description: str


def _rebase(root: Path, remote: str) -> Path:
    return root / remote.lstrip("/")


def _is_complete(entry: Path) -> bool:
    # A venv whose base interpreter was removed is not usable: rebuild it.
    return (entry / ".complete").is_file() and (entry / "venv" / "bin" / "python").exists()


def _tree_size(path: Path) -> int:
    seen: set[tuple[int, int]] = set()
    total = 0
    for dirpath, _dirs, files in os.walk(path):
        for name in files:
            with contextlib.suppress(OSError):
                st = os.lstat(os.path.join(dirpath, name))
                if stat.S_ISREG(st.st_mode) and (st.st_dev, st.st_ino) not in seen:
                    seen.add((st.st_dev, st.st_ino))
                    total += st.st_size
    return total


class _Build:
    """One build of one key, in place at ``entry``; raises ImageBuildError on failure."""

    def __init__(
        self, builder: ImageBuilder, key: str, entry: Path, log: Callable[[str], None]
    ) -> None:
        self.b = builder
        self.key = key
        self.entry = entry
        self.log = log
        self.env: dict[str, str] = {}  # the image's variables so far
        self.workdir: str | None = None
        self.logfile = (entry / "build.log").open("a", encoding="utf-8")

    @property
    def root(self) -> Path:
        return self.entry / "root"

    @property
    def python(self) -> Path:
        return self.entry / "venv" / "bin" / "python"

    def say(self, line: str) -> None:
        self.logfile.write(line + "\n")
        self.logfile.flush()
        self.log(line)

    def run(self, argv: Sequence[str], step: str, *, env: Mapping[str, str], cwd: Path) -> None:
        """Run one command, streaming its output line by line; raise with its last lines."""
        tail: collections.deque[str] = collections.deque(maxlen=ERROR_TAIL_LINES)
        try:
            proc = subprocess.Popen(
                list(argv),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                env=dict(env),
                cwd=cwd,
                text=True,
                errors="replace",
            )
        except OSError as exc:
            raise ImageBuildError(
                f"building image {self.key[:12]} failed at {step}: cannot run "
                f"`{shlex.join(argv)}`: {exc}",
                self.key,
            ) from exc
        assert proc.stdout is not None
        with proc:
            for raw in proc.stdout:
                line = raw.rstrip("\r\n")
                tail.append(line)
                self.say(line)
        if proc.returncode != 0:
            output = "\n".join(tail)
            raise ImageBuildError(
                f"building image {self.key[:12]} failed at {step}: `{shlex.join(argv)}` exited "
                f"with status {proc.returncode}. Its last lines:\n{output}\n"
                f"(full output: {self.entry / 'build.log'})",
                self.key,
                output,
            )

    def uv_env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if k != "VIRTUAL_ENV"}
        env.update(self.env)  # like Docker's ENV: visible to later steps, installers included
        return env

    def create_venv(self, layers: Sequence[Layer]) -> None:
        # pip in the venv when commands may call it: else `pip` on PATH is the system's.
        seed = ["--seed"] if any(isinstance(layer, RunCommands) for layer in layers) else []
        if isinstance(layers[0], FromRegistry):
            seed.append("--system-site-packages")  # the container's own packages stay visible
        venv = self.entry / "venv"
        argv = [*self.b.uv, "venv", "--relocatable", "--no-progress", "--color", "never", *seed]
        argv += ["--python", self.b.python, str(venv)]
        self.run(argv, "creating the virtual environment", env=self.uv_env(), cwd=self.entry)
        (self.entry / "site").mkdir()
        self.root.mkdir()
        for site_packages in venv.glob("lib/python*/site-packages"):
            rel = os.path.relpath(self.entry / "site", site_packages)
            (site_packages / "_jupyter_remote_image.pth").write_text(rel + "\n")

    def apply(self, n: int, total: int, layer: Layer) -> None:
        step = f"step {n}/{total} {layer.describe()}"
        self.say(f"==> [{n}/{total}] {layer.describe()}")
        cwd = _rebase(self.root, self.workdir) if self.workdir else self.root
        if isinstance(layer, PipInstall):
            argv = [*self.b.uv, "pip", "install", "--no-progress", "--color", "never"]
            argv += ["--python", str(self.python)]
            if layer.index_url:
                argv += ["--index-url", layer.index_url]
            if layer.extra_index_url:
                argv += ["--extra-index-url", layer.extra_index_url]
            if layer.pre:
                argv += ["--prerelease", "allow"]
            # cwd=entry: no uv.toml or pyproject.toml of the caller's project applies
            self.run([*argv, *layer.packages], step, env=self.uv_env(), cwd=self.entry)
        elif isinstance(layer, AptInstall):
            env = {**self.uv_env(), "DEBIAN_FRONTEND": "noninteractive"}
            for argv in apt_commands(layer.packages):
                self.run(argv, step, env=env, cwd=self.entry)
        elif isinstance(layer, RunCommands):
            env = _environ(os.environ, self.env, self.entry, ())
            for command in layer.commands:
                self.run(["/bin/sh", "-c", command], step, env=env, cwd=cwd)
        elif isinstance(layer, Env):
            self.env.update(layer.items)
        elif isinstance(layer, Workdir):
            self.workdir = layer.path
            _rebase(self.root, layer.path).mkdir(parents=True, exist_ok=True)
        elif isinstance(layer, LocalPythonSource):
            if layer.package:
                for src in layer.paths:
                    _copy_tree(Path(src), self.entry / "site" / layer.name)
            else:
                shutil.copy2(layer.paths[0], self.entry / "site" / f"{layer.name}.py")
        elif isinstance(layer, LocalDir):
            _copy_tree(Path(layer.local), _rebase(self.root, layer.remote))
        elif isinstance(layer, LocalFile):
            target = _rebase(self.root, layer.remote)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(layer.local, target)
        # DebianSlim: the venv is the base. FromRegistry: the container (else refused).

    def finish(self, layers: Sequence[Layer], spec: str, started: float) -> None:
        meta = {
            "key": self.key,
            "created": time.time(),
            "description": describe_layers(layers),
            "python": self.b.python,
            "spec": json.loads(spec),
            "seconds": round(time.monotonic() - started, 3),
        }
        tmp = self.entry / ".complete.tmp"
        tmp.write_text(json.dumps(meta, indent=1) + "\n")
        (self.entry / ".last_used").touch()
        os.replace(tmp, self.entry / ".complete")  # last: the entry is usable from here on


def _copy_tree(src: Path, dst: Path) -> None:
    dst.mkdir(parents=True, exist_ok=True)
    for rel, path in _walk(src):
        target = dst / rel
        if rel.endswith("/"):
            target.mkdir(parents=True, exist_ok=True)
        else:
            shutil.copy2(path, target)


class ImageBuilder:
    """Builds images as uv virtual environments and caches them by key.

    >>> from jupyter_remote.api._image import Image
    >>> image = Image.debian_slim().pip_install("six")
    >>> built = ImageBuilder().ensure(image, print)  # doctest: +SKIP
    >>> built.python  # doctest: +SKIP
    PosixPath('/home/me/.cache/jupyter_remote/images/3f2a.../venv/bin/python')
    """

    def __init__(
        self,
        cache_dir: str | os.PathLike[str] | None = None,
        *,
        python: str | None = None,
        uv: Sequence[str] | str | None = None,
        as_root: bool | None = None,
        container: bool = False,
    ) -> None:
        """``python``: the base interpreter (default: this one); ``uv``: the uv command
        (default: :func:`find_uv`); ``as_root``: whether ``apt_install`` may run
        ``apt-get`` here (default: running as root); ``container``: this runs inside
        the container of an ``Image.from_registry`` base (Nomad's docker driver), so
        that base is the machine itself."""
        self.cache_dir = Path(cache_dir) if cache_dir is not None else default_cache_dir()
        self.python = python or sys.executable
        self._uv = [uv] if isinstance(uv, str) else (list(uv) if uv is not None else None)
        self.as_root = os.geteuid() == 0 if as_root is None else as_root
        self.container = container

    @property
    def uv(self) -> list[str]:
        if self._uv is None:
            self._uv = find_uv()
        return self._uv

    def entry(self, key: str) -> Path:
        return self.cache_dir / key

    @contextlib.contextmanager
    def _locked(self, key: str, log: Callable[[str], None] | None) -> Iterator[None]:
        locks = self.cache_dir / ".locks"
        locks.mkdir(parents=True, exist_ok=True)
        with (locks / f"{key}.lock").open("a") as fh:
            try:
                fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                if log is None:
                    raise
                log(f"waiting for another build of image {key[:12]} to finish")
                fcntl.flock(fh, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)

    def _check(self, layers: Sequence[Layer]) -> None:
        """Refuse what this machine cannot build, before building anything."""
        if not layers or not isinstance(layers[0], DebianSlim | FromRegistry):
            raise ConfigError("an Image starts with Image.debian_slim() or Image.from_registry()")
        for layer in layers:
            if isinstance(layer, FromRegistry) and not self.container:
                raise ConfigError(
                    f"Image.{layer.describe()} needs a container runtime: run it on a Nomad "
                    "cluster with the docker driver (JUPYTER_REMOTE_BACKEND=nomad). The local "
                    "backend builds Image.debian_slim() as a virtual environment of this Python; "
                    "use that with pip_install()"
                )
            if isinstance(layer, AptInstall) and not self.as_root:
                raise ConfigError(
                    f"Image.{layer.describe()}: apt_install needs root or the docker driver on "
                    "Nomad; install the packages on the machine, or use pip_install"
                )

    def _built(self, image: ImageSpec, key: str, built: bool) -> BuiltImage:
        entry = self.entry(key)
        env: dict[str, str] = {}
        workdir: str | None = None
        for layer in image.layers:
            if isinstance(layer, Env):
                env.update(layer.items)
            elif isinstance(layer, Workdir):
                workdir = layer.path
        root = entry / "root"
        return BuiltImage(
            key=key,
            path=entry,
            python=entry / "venv" / "bin" / "python",
            env=env,
            workdir=_rebase(root, workdir) if workdir else None,
            site_dir=entry / "site",
            root=root,
            built=built,
        )

    def is_built(self, key: str) -> bool:
        """Whether ``key`` has a complete entry here."""
        return _is_complete(self.entry(key))

    def cached(self, image: ImageSpec, key: str) -> BuiltImage | None:
        """The image built earlier under ``key`` (trusted, not re-hashed), or None.

        For a node told the key by its job: ``image`` only supplies the env and workdir.
        """
        entry = self.entry(key)
        if not _is_complete(entry):
            return None
        (entry / ".last_used").touch()
        return self._built(image, key, built=False)

    def ensure(self, image: ImageSpec, log: Callable[[str], None] | None = None) -> BuiltImage:
        """The built image, building it first unless it is cached.

        Build output goes to ``log`` line by line as it is printed. Concurrent
        calls for one key (threads or processes) build it once; the others
        wait and then use it. A failed build raises :class:`ImageBuildError`
        with the installer's last lines.
        """
        layers = image.layers
        self._check(layers)
        spec = canonical_spec(layers)  # hashes local files once: the key and the record agree
        key = hashlib.sha256(spec.encode()).hexdigest()
        entry = self.entry(key)
        if _is_complete(entry):
            (entry / ".last_used").touch()
            return self._built(image, key, built=False)
        emit: Callable[[str], None] = log if log is not None else (lambda _line: None)
        with self._locked(key, emit):
            if _is_complete(entry):  # another thread or process built it while we waited
                (entry / ".last_used").touch()
                return self._built(image, key, built=False)
            if entry.exists():
                shutil.rmtree(entry)  # a crashed or failed build
            entry.mkdir(parents=True)
            started = time.monotonic()
            build = _Build(self, key, entry, emit)
            try:
                build.say(f"==> building image {key[:12]}: {describe_layers(layers)}")
                build.create_venv(layers)
                for n, layer in enumerate(layers, 1):
                    try:
                        build.apply(n, len(layers), layer)
                    except OSError as exc:  # a local file vanished, a disk filled up
                        raise ImageBuildError(
                            f"building image {key[:12]} failed at step {n}/{len(layers)} "
                            f"{layer.describe()}: {exc}",
                            key,
                        ) from exc
                build.finish(layers, spec, started)
                build.say(f"==> image {key[:12]} built in {time.monotonic() - started:.1f} s")
            finally:
                build.logfile.close()
        return self._built(image, key, built=True)

    def _read(self, entry: Path) -> CachedImage | None:
        try:
            meta = json.loads((entry / ".complete").read_text())
            last = (entry / ".last_used").stat().st_mtime
        except (OSError, ValueError):
            return None
        return CachedImage(
            key=entry.name,
            path=entry,
            size=_tree_size(entry),
            created=float(meta.get("created", 0.0)),
            last_used=last,
            description=str(meta.get("description", "")),
        )

    def remove(self, key: str) -> None:
        """Delete one entry (a full key). Workers still using it will break."""
        entry = self.entry(key)
        if not entry.is_dir():
            raise ConfigError(f"no image {key} in {self.cache_dir}")
        try:
            with self._locked(key, None):
                shutil.rmtree(entry)
        except BlockingIOError:
            raise BackendError(
                f"image {key[:12]} is being built; try again when it is done"
            ) from None

    def prune(self, unused_for: float | None = None) -> builtins.list[str]:
        """Remove crashed or failed builds and, with ``unused_for`` (seconds), entries not
        used for that long; return the removed keys."""
        removed: builtins.list[str] = []
        if not self.cache_dir.is_dir():
            return removed
        now = time.time()
        for entry in sorted(self.cache_dir.iterdir()):
            if entry.name.startswith(".") or not entry.is_dir():
                continue
            if _is_complete(entry):
                last = entry / ".last_used"
                if unused_for is None or (
                    last.exists() and now - last.stat().st_mtime < unused_for
                ):
                    continue
            try:
                with self._locked(entry.name, None):
                    if entry.is_dir():
                        shutil.rmtree(entry)
            except BlockingIOError:
                continue  # being built right now
            removed.append(entry.name)
        return removed

    def list(self) -> builtins.list[CachedImage]:
        """The complete entries, most recently used first."""
        if not self.cache_dir.is_dir():
            return []
        found = [
            info
            for entry in self.cache_dir.iterdir()
            if not entry.name.startswith(".") and _is_complete(entry)
            for info in [self._read(entry)]
            if info is not None
        ]
        return sorted(found, key=lambda i: i.last_used, reverse=True)


def check_local_image(image: ImageSpec) -> None:
    """Fail fast (``ConfigError``) for an image this machine cannot build."""
    ImageBuilder()._check(image.layers)
