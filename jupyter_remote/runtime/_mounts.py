"""The worker side of Volumes: make each volume visible at the path a function declares.

``apply_mounts([MountSpec("/data", "datasets", url)])`` runs in the worker
before user code. The directory it makes visible at ``/data`` is:

- for a **local-path store** (``url`` is a path or ``file://``), the volume's
  directory itself: writes are visible to everyone at once, and
  ``commit()``/``reload()`` only flush the file system;
- for a **remote store** (any other fsspec URL), a private local copy made at
  mount time: ``reload()`` downloads what changed in the store (by size and
  modification time) and ``commit()`` uploads new, changed and deleted files.
  A last ``commit()`` runs when the worker exits normally. Two workers that
  commit the same file: the last writer wins.

How the directory becomes visible at the path (``Mount.mechanism``, logged):

``existing``
    The path already is the volume's directory (or a link to it).
``bind``
    Running as root with ``CAP_SYS_ADMIN``: the worker enters a private mount
    namespace (``unshare(CLONE_NEWNS)``) and bind-mounts the directory there, so
    workers of different volumes can use the same path at once and nothing but
    an empty mount-point directory is left on the host. Only the calling thread
    and the threads and processes it starts afterwards see the mount: call
    ``apply_mounts`` on the main thread, which runs user code.
``symlink``
    The path does not exist and its parent is writable: a symbolic link to the
    directory. Workers on one machine share it; a lock file per path (held
    shared for the worker's life) stops a worker of another volume from
    re-pointing a link in use, and the last worker removes the link at exit.
``bind-userns``
    Not root and the path is an existing empty directory: a user namespace
    (``unshare(CLONE_NEWUSER | CLONE_NEWNS)``, uid and gid mapped to themselves)
    and a bind mount. The kernel allows that only in a single-threaded process,
    so ``apply_mounts`` must run before the worker starts its threads; inside,
    files of other users show as owned by ``nobody`` and ``sudo`` does not work.

``JUPYTER_REMOTE_MOUNT_MECHANISM`` (``auto``, ``symlink``, ``bind``,
``bind-userns``) forces one. This module needs only the standard library, and
fsspec for remote stores.

**Paths inside a volume.** ``volume_path`` is the one normaliser of a path in
a volume, for the caller's store (``state/_volumes.py``) and the worker alike.
A key listed by a remote store is used only when it already is the path it
normalises to (``store_key``): an object store accepts any string as a key, so
``vol/../../x`` is a key there, and a key with ``..``, ``.`` or an empty part
is skipped with a ``VolumeKeyWarning`` that names it, never followed.
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import errno
import fcntl
import hashlib
import itertools
import json
import os
import re
import shutil
import stat
import sys
import tempfile
import threading
import time
import warnings
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "MARKER",
    "MOUNTS_ENV",
    "VOLUME_NAME",
    "Mount",
    "MountError",
    "MountSpec",
    "VolumeKeyWarning",
    "active_mounts",
    "apply_mounts",
    "check_mount_path",
    "decode_mounts",
    "encode_mounts",
    "local_root",
    "mounted_volume",
    "release_mounts",
    "store_key",
    "volume_path",
    "warn_skipped_key",
]

MOUNTS_ENV = "JUPYTER_REMOTE_MOUNTS"
MECHANISM_ENV = "JUPYTER_REMOTE_MOUNT_MECHANISM"
MECHANISMS = ("auto", "symlink", "bind", "bind-userns")
VOLUME_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
# Object stores have no empty directories: a remote volume holds this file from its creation.
MARKER = ".jupyter-remote-volume"

_CLONE_NEWNS = 0x00020000
_CLONE_NEWUSER = 0x10000000
_MS_BIND = 0x1000
_MS_REC = 0x4000
_MS_PRIVATE = 0x40000
_MNT_DETACH = 2


class MountError(Exception):
    """A volume could not be made visible at its path; the message says what would work."""


@dataclass(frozen=True)
class MountSpec:
    """Volume ``volume`` of the store at ``url``, to be visible at the absolute ``path``."""

    path: str
    volume: str
    url: str


def check_mount_path(path: str) -> str:
    """Return ``path`` normalised; raise ``ValueError`` unless it is absolute and not ``/``."""
    if not isinstance(path, str):
        raise TypeError(f"a mount path must be a string, not {type(path).__name__}")
    if "\x00" in path:
        raise ValueError(f"mount path {path!r} contains a NUL byte")
    if not path.startswith("/"):
        raise ValueError(
            f"mount path {path!r} is not absolute; write it like '/data' or "
            f"{os.path.join(os.path.expanduser('~'), 'data')!r}"
        )
    if ".." in path.split("/"):
        raise ValueError(f"mount path {path!r} contains '..'; write the path it means")
    norm = os.path.normpath(path)
    if norm in ("/", "//"):
        raise ValueError("a volume cannot be mounted at '/'; choose a path like '/data'")
    return norm


def volume_path(path: str) -> str:
    """A path inside a volume, relative to its root (``""`` is the root); ``ValueError`` if bad.

    A leading ``/`` is the volume's root, ``..`` may step back but never above
    it, and a leading ``~`` or a NUL byte is refused.

    >>> volume_path("/raw/./a.txt"), volume_path("raw/x/../b"), volume_path("/")
    ('raw/a.txt', 'raw/b', '')
    """
    if not isinstance(path, str):
        raise TypeError(f"a path in a volume must be a string, not {type(path).__name__}")
    if "\x00" in path:
        raise ValueError(f"the path {path!r} contains a NUL byte")
    if path.startswith("~"):
        raise ValueError(
            f"the path {path!r} starts with '~', but paths in a volume start at its root "
            "and '~' is not expanded there; write '/' for the root"
        )
    parts: list[str] = []
    for part in path.split("/"):
        if part in ("", "."):
            continue
        if part == "..":
            if not parts:
                raise ValueError(f"the path {path!r} climbs above the volume's root with '..'")
            parts.pop()
        else:
            parts.append(part)
    return "/".join(parts)


class VolumeKeyWarning(RuntimeWarning):
    """A file in a volume's store has a key that names no path in the volume; it was skipped."""


def store_key(key: str) -> str:
    """``key`` (a store's name for a file, relative to the volume's root) if it is a plain path.

    Raise ``ValueError`` for a key that ``volume_path`` would refuse or change
    (``..``, ``.``, an empty part, a NUL byte): such a key is never followed.

    >>> store_key("raw/a.txt")
    'raw/a.txt'
    """
    try:
        rel = volume_path("/" + key)  # '/': a key '~x' is the file '~x' at the root
    except ValueError:
        rel = None
    if rel != key or not key:
        raise ValueError(f"the key {key!r} is not a plain path in the volume ('..', '.' or '//')")
    return key


def warn_skipped_key(volume: str, key: str) -> None:
    """Say that the store's file ``key`` (its full path there) of ``volume`` was skipped."""
    warnings.warn(
        f"volume {volume!r}: skipped the file {key!r} in its store: its key contains '..', '.' "
        "or '//', so it names no path inside the volume; rename or remove it in the store",
        VolumeKeyWarning,
        stacklevel=3,
    )


def encode_mounts(mounts: Iterable[MountSpec]) -> str:
    """The value of ``JUPYTER_REMOTE_MOUNTS`` that carries ``mounts`` to a worker."""
    return json.dumps([[m.path, m.volume, m.url] for m in mounts])


def decode_mounts(value: str) -> list[MountSpec]:
    """Inverse of ``encode_mounts``; ``""`` means no mounts."""
    if not value:
        return []
    return [MountSpec(str(p), str(v), str(u)) for p, v, u in json.loads(value)]


def local_root(url: str) -> str | None:
    """The absolute directory of a local-path store URL; ``None`` for any other fsspec URL."""
    if "::" in url:
        return None
    for prefix in ("file://", "local://"):
        if url.startswith(prefix):
            return os.path.abspath(os.path.expanduser(url[len(prefix) :]))
    if "://" in url:
        return None
    return os.path.abspath(os.path.expanduser(url))


# -- the registry that Volume.commit()/reload() consult inside a worker ----------------------


@dataclass(eq=False)
class Mount:
    """A volume made visible at ``spec.path``; ``directory`` is what that path shows."""

    spec: MountSpec
    directory: str
    mechanism: str
    remote: _RemoteCopy | None = None
    _lock_fd: int | None = field(default=None, repr=False)

    def commit(self) -> None:
        """Publish this worker's changes: upload them (remote store) or flush them (local)."""
        if self.remote is not None:
            self.remote.push()
        else:
            _flush(self.directory)

    def reload(self) -> None:
        """See changes others committed: download them (remote store), or flush (local)."""
        if self.remote is not None:
            self.remote.pull()
        else:
            _flush(self.directory)

    def describe(self) -> str:
        where = f"a local copy of {self.spec.url}" if self.remote else self.directory
        return f"volume {self.spec.volume!r} at {self.spec.path} ({self.mechanism}; shows {where})"


_mounts: list[Mount] = []
_by_volume: dict[str, Mount] = {}
_namespace: str | None = None  # "bind" or "bind-userns" once this process has its own
_registry_lock = threading.Lock()
_atexit_registered = False


def mounted_volume(name: str) -> Mount | None:
    """The mount of volume ``name`` in this process, if ``apply_mounts`` mounted it."""
    return _by_volume.get(name)


def active_mounts() -> list[Mount]:
    """Every mount ``apply_mounts`` made in this process, in order (for logs)."""
    return list(_mounts)


def apply_mounts(mounts: list[MountSpec]) -> None:
    """Make every volume in ``mounts`` visible at its path; raise ``MountError`` if one cannot be.

    Call it on the main thread, before the worker starts other threads (see
    the module docstring); ``active_mounts()`` then tells which mechanism each
    mount used.

    >>> apply_mounts([MountSpec("/data", "datasets", "/srv/volumes")])  # doctest: +SKIP
    >>> active_mounts()[0].mechanism  # doctest: +SKIP
    'bind'
    """
    global _atexit_registered
    mode = os.environ.get(MECHANISM_ENV, "") or "auto"
    if mode not in MECHANISMS:
        raise MountError(f"{MECHANISM_ENV}={mode!r}: choose one of {', '.join(MECHANISMS)}")
    specs = [MountSpec(_checked(s.path), s.volume, s.url) for s in mounts]
    for spec in specs:
        if not VOLUME_NAME.fullmatch(spec.volume):
            raise MountError(f"invalid volume name {spec.volume!r}")
    paths = sorted(s.path for s in specs)
    for a, b in itertools.pairwise(paths):
        if a == b or b.startswith(a + "/"):
            raise MountError(f"mount paths {a} and {b} overlap; give each volume its own path")
    with _registry_lock:
        if not _atexit_registered:
            atexit.register(release_mounts)
            _atexit_registered = True
        for spec in specs:
            known = _by_volume.get(spec.volume)
            if known is not None and known.spec.path == spec.path:
                continue
            source, remote = _source(spec, known)
            try:
                mechanism, lock_fd = _mount_one(spec, source, mode)
            except BaseException:
                if remote is not None and known is None:
                    shutil.rmtree(remote.local, ignore_errors=True)
                raise
            mount = Mount(spec, source, mechanism, remote, lock_fd)
            _mounts.append(mount)
            _by_volume.setdefault(spec.volume, mount)


def release_mounts() -> None:
    """Commit remote copies, undo this process's mounts and forget them (runs at exit)."""
    with _registry_lock:
        removed_copies: set[int] = set()
        for mount in reversed(_mounts):
            if mount.remote is not None and id(mount.remote) not in removed_copies:
                removed_copies.add(id(mount.remote))
                try:
                    mount.remote.push()
                except Exception as exc:  # at exit there is no caller left to raise to
                    print(
                        f"jupyter_remote: the final commit of volume {mount.spec.volume!r} "
                        f"failed: {exc!r}",
                        file=sys.stderr,
                    )
                shutil.rmtree(mount.remote.local, ignore_errors=True)
            if mount.mechanism in ("bind", "bind-userns"):
                _libc().umount2(os.fsencode(mount.spec.path), _MNT_DETACH)
            elif mount._lock_fd is not None:
                _release_symlink(mount.spec.path, mount.directory, mount._lock_fd)
        _mounts.clear()
        _by_volume.clear()


def _checked(path: str) -> str:
    try:
        return check_mount_path(path)
    except (TypeError, ValueError) as exc:
        raise MountError(str(exc)) from None


def _source(spec: MountSpec, known: Mount | None) -> tuple[str, _RemoteCopy | None]:
    """The local directory that holds volume ``spec.volume``, downloaded first if remote."""
    if known is not None:
        return known.directory, known.remote
    root = local_root(spec.url)
    if root is None:
        remote = _RemoteCopy(spec.url, spec.volume)
        remote.pull()
        return remote.local, remote
    directory = os.path.join(root, spec.volume)
    if not os.path.isdir(directory):
        raise MountError(
            f"volume {spec.volume!r} does not exist in {root}; create it with "
            f"`jupyter-remote volume create {spec.volume}` where the workers see that directory"
        )
    return os.path.realpath(directory), None


# -- choosing a mechanism --------------------------------------------------------------------


class _Unavailable(Exception):
    """No private mount namespace in this process; the message says why."""


def _user() -> str:
    try:
        import pwd

        return f"{pwd.getpwuid(os.geteuid()).pw_name} (uid {os.geteuid()})"
    except (ImportError, KeyError):
        return f"uid {os.geteuid()}"


def _advice(path: str, *, exists: bool) -> str:
    """What would work instead, for this user and this path."""
    home = os.path.expanduser("~")
    parent = os.path.dirname(path)
    tips = [
        "mount the volume at a path under your home directory (e.g. "
        f"{os.path.join(home, os.path.basename(path))!r})"
    ]
    parent_writable = os.access(parent, os.W_OK | os.X_OK)
    if exists and parent_writable:
        tips.append(
            f"remove the empty directory {path}, so that a symbolic link can take its place"
        )
    if not exists:
        tips.append(
            f"have an administrator create {path} once as an empty directory (`sudo mkdir -p "
            f"{path}`): the worker then bind-mounts the volume there in a private user namespace"
        )
        if parent != "/" and not parent_writable:
            tips.append(
                f"make {parent} writable for {_user()} (`sudo chown $USER {parent}`), so that "
                f"{path} can be a symbolic link"
            )
    return "To fix it, " + ", or ".join(tips) + "."


def _mount_one(spec: MountSpec, source: str, mode: str) -> tuple[str, int | None]:
    """Make ``source`` visible at ``spec.path``; return (mechanism, symlink lock fd)."""
    path = spec.path
    if os.path.islink(path):
        if mode in ("bind", "bind-userns"):
            raise MountError(f"{path} is a symbolic link; a bind mount needs a directory there")
        return "symlink", _symlink(path, source)
    if os.path.lexists(path):
        if os.path.realpath(path) == os.path.realpath(source):
            return "existing", None
        if not os.path.isdir(path) or os.listdir(path):
            raise MountError(
                f"cannot mount volume {spec.volume!r} at {path}: it exists and is not an empty "
                "directory; choose a path that does not exist yet"
            )
        if mode == "symlink":
            raise MountError(
                f"cannot mount volume {spec.volume!r} at {path} with a symbolic link: the "
                f"directory exists. Remove it, or allow a bind mount ({MECHANISM_ENV}=auto)"
            )
        try:
            mechanism = _private_namespace(userns_only=mode == "bind-userns")
        except _Unavailable as exc:
            raise MountError(
                f"cannot mount volume {spec.volume!r} at {path}: the directory exists, so it "
                "can only be bind-mounted, which needs a private mount namespace: "
                f"{exc}. {_advice(path, exists=True)}"
            ) from None
        _bind(source, path)
        return mechanism, None
    if mode in ("bind", "bind-userns") or (mode == "auto" and os.geteuid() == 0):
        try:
            mechanism = _private_namespace(userns_only=mode == "bind-userns")
            os.makedirs(path, exist_ok=True)
        except (_Unavailable, OSError) as exc:
            if mode != "auto":
                raise MountError(
                    f"cannot bind-mount volume {spec.volume!r} at {path}: {exc}. "
                    f"{_advice(path, exists=os.path.isdir(path))}"
                ) from None
        else:
            _bind(source, path)
            return mechanism, None
    try:
        return "symlink", _symlink(path, source)
    except OSError as exc:
        raise MountError(
            f"cannot mount volume {spec.volume!r} at {path}: {exc.strerror or exc} for "
            f"{_user()}. {_advice(path, exists=False)}"
        ) from None


# -- private mount namespaces and bind mounts ------------------------------------------------


_libc_handle: Any = None


def _libc() -> Any:
    global _libc_handle
    if _libc_handle is None:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.unshare.argtypes = [ctypes.c_int]
        libc.mount.argtypes = [
            ctypes.c_char_p,
            ctypes.c_char_p,
            ctypes.c_char_p,
            ctypes.c_ulong,
            ctypes.c_void_p,
        ]
        libc.umount2.argtypes = [ctypes.c_char_p, ctypes.c_int]
        _libc_handle = libc
    return _libc_handle


def _errno_text(call: str) -> str:
    code = ctypes.get_errno()
    return f"{call} failed: {os.strerror(code)} ({errno.errorcode.get(code, code)})"


def _private_namespace(*, userns_only: bool) -> str:
    """Enter a private mount namespace once per process; return the mechanism's name."""
    global _namespace
    if _namespace is not None:
        return _namespace
    if sys.platform != "linux":
        raise _Unavailable("private mount namespaces exist only on Linux")
    if threading.current_thread() is not threading.main_thread():
        # A namespace belongs to the calling thread; user code runs on the main one.
        raise _Unavailable("apply_mounts must run on the main thread")
    libc = _libc()
    why: list[str] = []
    if os.geteuid() == 0 and not userns_only:
        if libc.unshare(_CLONE_NEWNS) == 0:
            _namespace = "bind"
            _make_private()
            return _namespace
        why.append(_errno_text("unshare(CLONE_NEWNS)"))
    threads = len(os.listdir("/proc/self/task"))
    if threads > 1:
        why.append(
            f"a user namespace needs a single-threaded process and this one has {threads} "
            "threads (apply_mounts must run before the worker starts threads)"
        )
        raise _Unavailable("; ".join(why))
    uid, gid = os.geteuid(), os.getegid()
    if libc.unshare(_CLONE_NEWUSER | _CLONE_NEWNS) != 0:
        why.append(
            _errno_text("unshare(CLONE_NEWUSER|CLONE_NEWNS)")
            + " (unprivileged user namespaces may be disabled: see "
            "kernel.unprivileged_userns_clone, user.max_user_namespaces, AppArmor)"
        )
        raise _Unavailable("; ".join(why))
    # Map our ids to themselves, so files we create stay ours and getuid() is unchanged.
    with contextlib.suppress(FileNotFoundError):  # kernels before 3.19 have no setgroups
        _write("/proc/self/setgroups", "deny")
    _write("/proc/self/uid_map", f"{uid} {uid} 1")
    _write("/proc/self/gid_map", f"{gid} {gid} 1")
    _namespace = "bind-userns"
    _make_private()
    return _namespace


def _write(path: str, text: str) -> None:
    with open(path, "w") as f:
        f.write(text)


def _make_private() -> None:
    # Without this, a bind mount could propagate back to the host's shared mounts.
    if _libc().mount(None, b"/", None, _MS_REC | _MS_PRIVATE, None) != 0:
        raise MountError(_errno_text("making the mounts of the new namespace private"))


def _bind(source: str, path: str) -> None:
    if _libc().mount(os.fsencode(source), os.fsencode(path), None, _MS_BIND | _MS_REC, None):
        raise MountError(_errno_text(f"bind-mounting {source} at {path}"))


# -- shared symbolic links -------------------------------------------------------------------


def _lock_dir() -> str:
    directory = os.path.join(tempfile.gettempdir(), f"jupyter_remote-{os.geteuid()}", "mounts")
    os.makedirs(directory, mode=0o700, exist_ok=True)
    info = os.lstat(os.path.dirname(directory))
    if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.geteuid():
        raise MountError(f"{os.path.dirname(directory)} is not a directory owned by {_user()}")
    return directory


def _lock_file(path: str) -> int:
    digest = hashlib.sha256(os.fsencode(path)).hexdigest()[:32]
    fd = os.open(os.path.join(_lock_dir(), f"{digest}.lock"), os.O_RDWR | os.O_CREAT, 0o600)
    os.set_inheritable(fd, False)
    return fd


def _recorded(fd: int) -> str:
    return os.pread(fd, 65536, 0).decode("utf-8", "surrogateescape")


def _record(fd: int, target: str) -> None:
    os.ftruncate(fd, 0)
    os.pwrite(fd, target.encode("utf-8", "surrogateescape"), 0)


def _readlink(path: str) -> str | None:
    try:
        return os.readlink(path)
    except OSError:
        return None


def _symlink(path: str, source: str) -> int:
    """Point ``path`` at ``source`` (shared with other workers of the volume); return the lock fd.

    The lock file records the target we set: a link it does not describe is not
    ours, and a link whose lock is held shared by a live worker is in use.
    """
    fd = _lock_file(path)
    try:
        for _ in range(50):
            fcntl.flock(fd, fcntl.LOCK_SH)
            if _readlink(path) == source:
                return fd
            fcntl.flock(fd, fcntl.LOCK_UN)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                current = _readlink(path)
                if current is not None and current != source:
                    raise MountError(
                        f"{path} is in use: a worker on this machine has another volume there "
                        f"({current}). Mount this volume at another path, or run the workers "
                        "as root, where each gets a private bind mount"
                    ) from None
                time.sleep(0.05)
                continue
            current = _readlink(path)
            if current is None:
                os.makedirs(os.path.dirname(path), exist_ok=True)
                os.symlink(source, path)
            elif current != source:
                if current != _recorded(fd):
                    raise MountError(
                        f"{path} is a symbolic link to {current} that jupyter_remote did not "
                        "create; remove it or choose another mount path"
                    )
                temp = f"{path}.jr-{os.getpid()}"
                os.symlink(source, temp)
                os.replace(temp, path)  # re-point atomically: no moment without a link
            _record(fd, source)
            # Not atomic: the loop re-checks the link once the shared lock is held.
            fcntl.flock(fd, fcntl.LOCK_SH)
        raise MountError(f"{path}: gave up waiting for other workers to settle the link")
    except BaseException:
        os.close(fd)
        raise


def _release_symlink(path: str, source: str, fd: int) -> None:
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        pass  # other workers still use the link
    else:
        if _readlink(path) == source:
            with contextlib.suppress(OSError):
                os.unlink(path)
                _record(fd, "")
    finally:
        os.close(fd)


def _flush(directory: str) -> None:
    """Write the file system holding ``directory`` to disk (syncfs; sync where it is missing)."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        os.sync()
        return
    try:
        syncfs = getattr(_libc(), "syncfs", None) if sys.platform == "linux" else None
        if syncfs is None or syncfs(fd) != 0:
            os.sync()
    finally:
        os.close(fd)


# -- the local copy of a volume in a remote store --------------------------------------------


_STAMP_KEYS = ("mtime", "LastModified", "last_modified", "updated", "modified", "created")
_HASH_KEYS = ("ETag", "etag", "md5", "md5Hash", "crc32c", "generation")


def _fingerprint(info: dict[str, Any]) -> str:
    """What tells a changed file in a remote store apart: size, stamps and hashes it reports."""
    keys = ("size", *_STAMP_KEYS, *_HASH_KEYS)
    return repr([(k, str(info[k])) for k in keys if info.get(k) is not None])


class _RemoteCopy:
    """A private local copy of a volume in a remote store, synchronised on demand.

    It remembers, per file, the local (size, mtime) and the store's fingerprint
    at the last synchronisation: ``push`` uploads files whose local stamp moved
    and deletes in the store what was deleted here; ``pull`` downloads files
    whose fingerprint moved and deletes here what was deleted in the store.
    Local changes to files the store did not change survive ``pull``.
    """

    def __init__(self, url: str, name: str) -> None:
        try:
            import fsspec  # only remote stores need it; the bare-node runtime may lack it
        except ImportError as exc:
            raise MountError(
                f"volume {name!r} lives in {url}, which needs fsspec on the worker: "
                "`pip install fsspec` (and the package for that protocol, e.g. s3fs)"
            ) from exc
        self.fs, root = fsspec.core.url_to_fs(url)
        self.name = name
        self.root: str = self.fs._strip_protocol(f"{root.rstrip('/')}/{name}")
        if not self.fs.isdir(self.root) and not self.fs.exists(f"{self.root}/{MARKER}"):
            raise MountError(
                f"volume {name!r} does not exist in {url}; create it with "
                f"`jupyter-remote volume create {name}`"
            )
        self.local = tempfile.mkdtemp(prefix=f"jr-volume-{name}-")
        self._local: dict[str, tuple[int, int]] = {}
        self._remote: dict[str, str] = {}
        self._dirs: set[str] = set()
        self._lock = threading.Lock()

    def _rpath(self, rel: str) -> str:
        return f"{self.root}/{rel}"

    def _lpath(self, rel: str) -> str:
        path = os.path.join(self.local, *store_key(rel).split("/"))
        if not path.startswith(self.local + os.sep):  # store_key lets no key out; keep it so
            raise MountError(f"{rel!r} leads outside the local copy of volume {self.name!r}")
        return path

    def _stamp(self, rel: str) -> tuple[int, int]:
        st = os.lstat(self._lpath(rel))
        return st.st_size, st.st_mtime_ns

    def _scan_remote(self) -> tuple[dict[str, str], set[str]]:
        files: dict[str, str] = {}
        dirs: set[str] = set()
        found = self.fs.find(self.root, withdirs=True, detail=True)
        for name, info in found.items():
            name = name.rstrip("/")
            if not name.startswith(self.root + "/"):
                continue
            rel = name[len(self.root) + 1 :]
            if rel == MARKER:
                continue
            try:
                store_key(rel)
            except ValueError:
                # Directories such as 'vol/..' exist only as prefixes of a bad file's key.
                if info.get("type") != "directory":
                    warn_skipped_key(self.name, name)
                continue
            if info.get("type") == "directory":
                dirs.add(rel)
            else:
                files[rel] = _fingerprint(info)
        return files, dirs

    def _scan_local(self) -> tuple[dict[str, tuple[int, int]], set[str]]:
        files: dict[str, tuple[int, int]] = {}
        dirs: set[str] = set()
        for top, dirnames, filenames in os.walk(self.local):
            base = os.path.relpath(top, self.local).replace(os.sep, "/")
            prefix = "" if base == "." else base + "/"
            for d in dirnames:
                if not os.path.islink(os.path.join(top, d)):
                    dirs.add(prefix + d)
            for f in filenames:
                st = os.lstat(os.path.join(top, f))
                if stat.S_ISREG(st.st_mode):  # links and special files stay local
                    files[prefix + f] = (st.st_size, st.st_mtime_ns)
        files.pop(MARKER, None)
        return files, dirs

    def pull(self) -> None:
        """Download what changed in the store since the last sync; the store wins conflicts."""
        with self._lock:
            files, dirs = self._scan_remote()
            for rel in sorted(dirs):
                path = self._lpath(rel)
                if os.path.lexists(path) and not os.path.isdir(path):
                    os.unlink(path)
                os.makedirs(path, exist_ok=True)
            for rel, fp in files.items():
                if self._remote.get(rel) == fp:
                    continue  # unchanged in the store: keep what this worker did to it
                path = self._lpath(rel)
                os.makedirs(os.path.dirname(path), exist_ok=True)
                if os.path.isdir(path) and not os.path.islink(path):
                    shutil.rmtree(path)
                fd, temp = tempfile.mkstemp(dir=os.path.dirname(path), prefix=".jr-download-")
                os.close(fd)
                try:
                    self.fs.get_file(self._rpath(rel), temp)
                    os.replace(temp, path)
                except BaseException:
                    with contextlib.suppress(OSError):
                        os.unlink(temp)
                    raise
                self._remote[rel] = fp
                self._local[rel] = self._stamp(rel)
            for rel in set(self._remote) - set(files):
                with contextlib.suppress(FileNotFoundError, IsADirectoryError):
                    os.unlink(self._lpath(rel))
                self._remote.pop(rel, None)
                self._local.pop(rel, None)
            for rel in sorted(self._dirs - dirs, reverse=True):
                with contextlib.suppress(OSError):  # not empty: local files still live there
                    os.rmdir(self._lpath(rel))
            self._dirs = dirs

    def push(self) -> None:
        """Upload new and changed files, delete in the store what was deleted here."""
        with self._lock:
            files, dirs = self._scan_local()
            for rel in sorted(dirs - self._dirs):
                self.fs.makedirs(self._rpath(rel), exist_ok=True)
            for rel, st in sorted(files.items()):
                if self._local.get(rel) == st:
                    continue
                self.fs.put_file(self._lpath(rel), self._rpath(rel))
                self._local[rel] = st
                self._remote[rel] = _fingerprint(self.fs.info(self._rpath(rel)))
            for rel in set(self._local) - set(files):
                if self.fs.exists(self._rpath(rel)):
                    self.fs.rm(self._rpath(rel))
                self._local.pop(rel, None)
                self._remote.pop(rel, None)
            for rel in sorted(self._dirs - dirs, reverse=True):
                if self.fs.exists(self._rpath(rel)):
                    self.fs.rm(self._rpath(rel), recursive=True)
            self._dirs = dirs
