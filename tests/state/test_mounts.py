"""Mounting volumes in worker processes: real subprocesses call ``apply_mounts``.

Mounts at absolute paths such as ``/jr-test-<uuid>`` need root here (we run as
root in CI); every test removes what it left at ``/``. The remote-store code
path (a local copy synchronised by ``commit``/``reload``) runs in-process on
``memory://``, which exists only inside one process.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import fsspec
import pytest

from jupyter_remote.api._volume import Volume
from jupyter_remote.runtime import _mounts
from jupyter_remote.runtime._mounts import (
    MountError,
    MountSpec,
    active_mounts,
    apply_mounts,
    check_mount_path,
    decode_mounts,
    encode_mounts,
    mounted_volume,
    release_mounts,
)
from jupyter_remote.state._volumes import FileEntryType, VolumeStore

ROOT = os.geteuid() == 0
MOUNTS_PY = Path(_mounts.__file__)

# What a worker does: mount, write a file through each mount, commit through the Volume API.
WORKER = """
import json, os, sys
from jupyter_remote.runtime._mounts import MountError, active_mounts, apply_mounts, decode_mounts
try:
    apply_mounts(decode_mounts(os.environ["JUPYTER_REMOTE_MOUNTS"]))
except MountError as exc:
    print(json.dumps({"error": str(exc)}), flush=True)
    sys.exit(3)
from jupyter_remote.api._volume import Volume
out = {"mechanisms": [m.mechanism for m in active_mounts()], "seen": {}}
for m in active_mounts():
    with open(os.path.join(m.spec.path, f"from-{os.getpid()}.txt"), "w") as f:
        f.write(m.spec.volume)
    Volume.from_name(m.spec.volume).commit()
    out["seen"][m.spec.path] = sorted(os.listdir(m.spec.path))
print(json.dumps(out), flush=True)
if "--hold" in sys.argv:
    sys.stdin.readline()
"""


def worker_env(mounts: list[MountSpec], mechanism: str = "auto") -> dict[str, str]:
    return {
        **os.environ,
        "JUPYTER_REMOTE_MOUNTS": encode_mounts(mounts),
        "JUPYTER_REMOTE_MOUNT_MECHANISM": mechanism,
    }


def run_worker(mounts: list[MountSpec], mechanism: str = "auto") -> tuple[int, dict[str, Any]]:
    proc = subprocess.run(
        [sys.executable, "-c", WORKER],
        env=worker_env(mounts, mechanism),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.stdout, proc.stderr
    return proc.returncode, json.loads(proc.stdout)


class Held:
    """A worker that keeps its mounts until ``release()``."""

    def __init__(self, mounts: list[MountSpec], mechanism: str = "auto") -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-c", WORKER, "--hold"],
            env=worker_env(mounts, mechanism),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.proc.stdout is not None
        self.report: dict[str, Any] = json.loads(self.proc.stdout.readline())

    def release(self) -> None:
        if self.proc.poll() is None:
            assert self.proc.stdin is not None
            self.proc.stdin.write("\n")
            self.proc.stdin.flush()
        self.proc.wait(timeout=30)
        for stream in (self.proc.stdin, self.proc.stdout):
            if stream is not None:
                stream.close()


@pytest.fixture
def store(tmp_path: Path) -> VolumeStore:
    store = VolumeStore(str(tmp_path / "volumes"))
    store.create("a")
    store.create("b")
    store.write("a", "only-in-a.txt", b"a")
    store.write("b", "only-in-b.txt", b"b")
    return store


def _remove_from_root(path: str) -> None:
    if os.path.islink(path):
        os.unlink(path)
    elif os.path.isdir(path):
        os.rmdir(path)  # an empty mount point; never rmtree at '/'


@pytest.fixture
def root_path() -> Iterator[str]:
    """An absolute path at '/', removed afterwards whatever a mount left there."""
    if not ROOT:
        pytest.skip("mounting at '/' needs root")
    path = f"/jr-test-{uuid.uuid4().hex[:12]}"
    yield path
    _remove_from_root(path)


@pytest.fixture(autouse=True)
def no_leftover_locks() -> Iterator[None]:
    lock_dir = os.path.join(tempfile.gettempdir(), f"jupyter_remote-{os.geteuid()}", "mounts")
    before = set(os.listdir(lock_dir)) if os.path.isdir(lock_dir) else set()
    yield
    if os.path.isdir(lock_dir):
        for name in set(os.listdir(lock_dir)) - before:
            os.unlink(os.path.join(lock_dir, name))


@pytest.fixture
def in_process(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """apply_mounts in the test process: symbolic links only (no namespace for pytest itself)."""
    monkeypatch.setenv("JUPYTER_REMOTE_MOUNT_MECHANISM", "symlink")
    yield
    release_mounts()


def skip_without_user_namespaces(report: dict[str, Any]) -> None:
    if "unshare(CLONE_NEWUSER" in report.get("error", ""):
        pytest.skip(f"no user namespaces here: {report['error']}")


# -- mounting in a worker process ------------------------------------------------------------


EXPECTED = {
    "auto": "bind" if ROOT else "symlink",
    "symlink": "symlink",
    "bind": "bind",
    "bind-userns": "bind-userns",
}


@pytest.mark.parametrize("mechanism", list(EXPECTED))
def test_writes_through_mounts_reach_the_store(
    mechanism: str, store: VolumeStore, tmp_path: Path
) -> None:
    if mechanism == "bind" and not ROOT:
        pytest.skip("a bind mount without a user namespace needs root")
    root_path = f"/jr-test-{uuid.uuid4().hex[:12]}"
    mounts = [MountSpec(str(tmp_path / "work" / "data"), "a", store.url)]
    if ROOT:
        mounts.append(MountSpec(root_path, "b", store.url))
    try:
        code, report = run_worker(mounts, mechanism)
        skip_without_user_namespaces(report)
        assert code == 0, report
        assert report["mechanisms"] == [EXPECTED[mechanism]] * len(mounts)
        (written_a,) = [e.path for e in store.listdir("a") if e.path.startswith("from-")]
        assert report["seen"][mounts[0].path] == sorted(["only-in-a.txt", written_a])
        if ROOT:
            (written_b,) = [e.path for e in store.listdir("b") if e.path.startswith("from-")]
            assert report["seen"][root_path] == sorted(["only-in-b.txt", written_b])
        for spec in mounts:
            if EXPECTED[mechanism] == "symlink":
                assert not os.path.lexists(spec.path)  # the last user removed its link
            else:
                assert os.listdir(spec.path) == []  # the host sees an empty mount point
    finally:
        if ROOT:
            _remove_from_root(root_path)


def test_workers_of_different_volumes_share_a_path_with_bind_mounts(
    store: VolumeStore, root_path: str
) -> None:
    first = Held([MountSpec(root_path, "a", store.url)])
    try:
        second = Held([MountSpec(root_path, "b", store.url)])
        second.release()
    finally:
        first.release()
    assert first.report["mechanisms"] == second.report["mechanisms"] == ["bind"]
    assert "only-in-a.txt" in first.report["seen"][root_path]
    assert "only-in-b.txt" in second.report["seen"][root_path]
    assert "only-in-a.txt" not in second.report["seen"][root_path]


THREADED = """
import json, os, sys, threading, time
from jupyter_remote.runtime._mounts import MountError, MountSpec, active_mounts, apply_mounts
early = threading.Thread(target=time.sleep, args=(30,), daemon=True)
early.start()  # like the worker's reader and watchdog
try:
    apply_mounts([MountSpec(sys.argv[1], "a", sys.argv[2])])
except MountError as exc:
    print(json.dumps({"error": str(exc)}))
    sys.exit(3)
seen = []
later = threading.Thread(target=lambda: seen.extend(sorted(os.listdir(sys.argv[1]))))
later.start()
later.join()
print(json.dumps({"mechanism": active_mounts()[0].mechanism, "later_thread_sees": seen}))
"""


@pytest.mark.parametrize("mechanism", ["auto", "bind-userns"])
def test_mounting_after_threads_started(mechanism: str, store: VolumeStore, root_path: str) -> None:
    """A root bind mount works once threads run; a user namespace needs a single thread."""
    proc = subprocess.run(
        [sys.executable, "-c", THREADED, root_path, store.url],
        env={**os.environ, "JUPYTER_REMOTE_MOUNT_MECHANISM": mechanism},
        capture_output=True,
        text=True,
        timeout=60,
    )
    report = json.loads(proc.stdout)
    if mechanism == "auto":
        assert report == {"mechanism": "bind", "later_thread_sees": ["only-in-a.txt"]}
    else:
        assert proc.returncode == 3
        assert (
            "single-threaded" in report["error"]
            and "before the worker starts threads" in (report["error"])
        )


def test_symlinks_are_shared_by_one_volume_and_refused_to_another(
    store: VolumeStore, tmp_path: Path
) -> None:
    path = str(tmp_path / "shared" / "data")
    first = Held([MountSpec(path, "a", store.url)], "symlink")
    second = Held([MountSpec(path, "a", store.url)], "symlink")
    try:
        assert first.report["mechanisms"] == second.report["mechanisms"] == ["symlink"]
        code, report = run_worker([MountSpec(path, "b", store.url)], "symlink")
        assert code == 3
        assert f"{path} is in use" in report["error"]
        assert "Mount this volume at another path" in report["error"]
        first.release()
        assert os.path.realpath(path) == os.path.realpath(store.volume_dir("a") or "")
    finally:
        first.release()
        second.release()
    assert not os.path.lexists(path)
    code, report = run_worker([MountSpec(path, "b", store.url)], "symlink")
    assert code == 0 and "only-in-b.txt" in report["seen"][path]


def test_a_stale_link_of_another_volume_is_repointed(store: VolumeStore, tmp_path: Path) -> None:
    path = str(tmp_path / "data")
    code, _ = run_worker([MountSpec(path, "a", store.url)], "symlink")
    assert code == 0
    # A worker that died without cleaning up leaves its link behind: simulate that.
    os.symlink(os.path.realpath(store.volume_dir("a") or ""), path)
    lock = _mounts._lock_file(path)
    _mounts._record(lock, os.readlink(path))
    os.close(lock)
    code, report = run_worker([MountSpec(path, "b", store.url)], "symlink")
    assert code == 0 and "only-in-b.txt" in report["seen"][path]


def test_a_link_we_did_not_make_is_left_alone(store: VolumeStore, tmp_path: Path) -> None:
    path = str(tmp_path / "data")
    os.symlink(tmp_path, path)
    code, report = run_worker([MountSpec(path, "a", store.url)], "symlink")
    assert code == 3 and "did not create" in report["error"]
    assert os.readlink(path) == str(tmp_path)


def test_existing_paths_that_cannot_take_a_mount(
    store: VolumeStore, tmp_path: Path, in_process: None
) -> None:
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x").write_text("x")
    (tmp_path / "empty").mkdir()
    (tmp_path / "file").write_text("x")
    for path in ("full", "file"):
        with pytest.raises(MountError, match="not an empty directory"):
            apply_mounts([MountSpec(str(tmp_path / path), "a", store.url)])
    with pytest.raises(MountError) as info:
        apply_mounts([MountSpec(str(tmp_path / "empty"), "a", store.url)])
    assert "the directory exists" in str(info.value)
    assert active_mounts() == []


def test_errors_name_a_setup_that_works(
    store: VolumeStore, in_process: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    with pytest.raises(MountError, match="not absolute"):
        apply_mounts([MountSpec("data", "a", store.url)])
    with pytest.raises(MountError, match="at '/'"):
        apply_mounts([MountSpec("/", "a", store.url)])
    with pytest.raises(MountError, match="overlap"):
        apply_mounts(
            [MountSpec("/x/data", "a", store.url), MountSpec("/x/data/in", "b", store.url)]
        )
    with pytest.raises(MountError, match="invalid volume name"):
        apply_mounts([MountSpec("/x/data", "../etc", store.url)])
    with pytest.raises(MountError, match="jupyter-remote volume create nope"):
        apply_mounts([MountSpec("/x/data", "nope", store.url)])
    monkeypatch.setenv("JUPYTER_REMOTE_MOUNT_MECHANISM", "magic")
    with pytest.raises(MountError, match="JUPYTER_REMOTE_MOUNT_MECHANISM='magic'"):
        apply_mounts([])


def _unprivileged_python() -> str | None:
    for candidate in ("/usr/bin/python3", "/usr/local/bin/python3"):
        if os.path.exists(candidate):
            version = subprocess.run(
                [candidate, "-c", "import sys; print(sys.version_info >= (3, 11))"],
                capture_output=True,
                text=True,
            )
            if version.stdout.strip() == "True":
                return candidate
    return None


def test_unprivileged_worker(store: VolumeStore) -> None:
    """As 'nobody': a link under a writable directory; a bind mount in a user namespace.

    Everything 'nobody' reads is copied below ``base`` (mode 0777) first: the
    checkout and pytest's ``tmp_path`` may sit in directories only we can enter.
    """
    python = _unprivileged_python()
    if not ROOT or shutil.which("setpriv") is None or python is None:
        pytest.skip("needs root, setpriv and a python3 >= 3.11 that any user can run")
    base = Path(tempfile.mkdtemp(prefix="jr-nobody-"))
    missing_at_root = f"/jr-test-{uuid.uuid4().hex[:12]}"
    empty_at_root = f"/jr-test-{uuid.uuid4().hex[:12]}"
    os.mkdir(empty_at_root)
    try:
        mounts_py = base / "_mounts.py"  # the module needs only the standard library
        shutil.copyfile(MOUNTS_PY, mounts_py)
        mounts_py.chmod(0o644)
        volumes = base / "volumes"
        shutil.copytree(store.url, volumes)
        for path in (base, base / "work", volumes, volumes / "a"):
            path.mkdir(exist_ok=True)
            path.chmod(0o777)
        script = (
            "import importlib.util, json, os, sys\n"
            f"spec = importlib.util.spec_from_file_location('_mounts', {str(mounts_py)!r})\n"
            "m = importlib.util.module_from_spec(spec); sys.modules['_mounts'] = m\n"
            "spec.loader.exec_module(m)\n"
            "path = sys.argv[1]\n"
            "try:\n"
            f"    m.apply_mounts([m.MountSpec(path, 'a', {str(volumes)!r})])\n"
            "except m.MountError as exc:\n"
            "    print(json.dumps({'error': str(exc)})); sys.exit(3)\n"
            "open(os.path.join(path, 'by-nobody.txt'), 'w').write('x')\n"
            "print(json.dumps({'mechanism': m.active_mounts()[0].mechanism, 'uid': os.getuid()}))\n"
        )

        def as_nobody(path: str) -> tuple[int, dict[str, Any]]:
            nobody = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]
            proc = subprocess.run(
                [*nobody, python, "-c", script, path],
                capture_output=True,
                text=True,
                timeout=60,
                cwd="/",
                env={"PATH": "/usr/bin:/bin", "TMPDIR": str(base)},
            )
            assert proc.stdout, proc.stderr
            return proc.returncode, json.loads(proc.stdout)

        code, report = as_nobody(str(base / "work" / "data"))
        assert (code, report) == (0, {"mechanism": "symlink", "uid": 65534})
        code, report = as_nobody(missing_at_root)
        assert code == 3
        assert "Permission denied" in report["error"]
        assert "under your home directory" in report["error"]
        assert f"sudo mkdir -p {missing_at_root}" in report["error"]
        assert "chown" not in report["error"]  # never suggest taking over '/'
        assert not os.path.lexists(missing_at_root)
        code, report = as_nobody(empty_at_root)
        skip_without_user_namespaces(report)
        assert (code, report) == (0, {"mechanism": "bind-userns", "uid": 65534})
        assert os.listdir(empty_at_root) == []
        assert (volumes / "a" / "by-nobody.txt").stat().st_uid == 65534
    finally:
        os.rmdir(empty_at_root)
        shutil.rmtree(base)


# -- the registry and the mount specification ------------------------------------------------


def test_mount_specs_travel_in_the_environment() -> None:
    specs = [MountSpec("/data", "a", "/srv/volumes"), MountSpec("/models", "b", "s3://bucket/v")]
    assert decode_mounts(encode_mounts(specs)) == specs
    assert decode_mounts("") == []


@pytest.mark.parametrize(
    ("given", "expected"), [("/data", "/data"), ("/data/", "/data"), ("/a//b/./c", "/a/b/c")]
)
def test_check_mount_path(given: str, expected: str) -> None:
    assert check_mount_path(given) == expected


@pytest.mark.parametrize("bad", ["data", "~/data", "/", "/a/../b", "/a\0"])
def test_check_mount_path_refuses(bad: str) -> None:
    with pytest.raises(ValueError):
        check_mount_path(bad)


def test_volume_commit_in_a_worker_finds_its_mount(
    store: VolumeStore, tmp_path: Path, in_process: None
) -> None:
    path = str(tmp_path / "data")
    apply_mounts([MountSpec(path, "a", store.url)])
    (mount,) = active_mounts()
    assert mounted_volume("a") is mount and mount.mechanism == "symlink"
    assert "symlink" in mount.describe() and path in mount.describe()
    vol = Volume("a", store.url)
    vol.commit()  # a local store: a flush
    vol.reload()
    Path(path, "new.txt").write_text("new")
    assert b"".join(vol.read_file("new.txt")) == b"new"  # the mount is the volume itself


# -- a remote store: the worker's local copy -------------------------------------------------


@pytest.fixture
def remote(monkeypatch: pytest.MonkeyPatch) -> Iterator[VolumeStore]:
    url = f"memory://jr-test-{uuid.uuid4().hex}"
    monkeypatch.setenv("JUPYTER_REMOTE_VOLUMES_URL", url)
    store = VolumeStore(url)
    store.create("r")
    store.write("r", "a/one.txt", b"1")
    yield store
    fs, root = fsspec.core.url_to_fs(url)
    fs.rm(root, recursive=True)


def tree(store: VolumeStore) -> dict[str, bytes]:
    return {
        e.path: b"".join(store.read("r", e.path)) if e.type == FileEntryType.FILE else b"<dir>"
        for e in store.listdir("r", recursive=True)
    }


def test_remote_volume_commit_and_reload(
    remote: VolumeStore, tmp_path: Path, in_process: None
) -> None:
    data = tmp_path / "data"
    apply_mounts([MountSpec(str(data), "r", remote.url)])
    (mount,) = active_mounts()
    assert mount.remote is not None and "local copy of memory://" in mount.describe()
    assert (data / "a" / "one.txt").read_text() == "1"
    assert not (data / ".jupyter-remote-volume").exists()
    vol = Volume.from_name("r")  # inside the worker: the mounted volume
    assert vol.url == remote.url

    (data / "new.txt").write_text("new")
    (data / "empty").mkdir()
    assert "new.txt" not in tree(remote)  # not before commit()
    vol.commit()
    assert tree(remote) == {"a": b"<dir>", "a/one.txt": b"1", "empty": b"<dir>", "new.txt": b"new"}

    remote.write("r", "a/two.txt", b"2")
    remote.remove("r", "a/one.txt")
    assert sorted(os.listdir(data / "a")) == ["one.txt"]  # not before reload()
    vol.reload()
    assert sorted(os.listdir(data / "a")) == ["two.txt"]

    (data / "new.txt").unlink()
    shutil.rmtree(data / "empty")
    (data / "a" / "two.txt").write_text("2, changed here")
    vol.commit()
    assert tree(remote) == {"a": b"<dir>", "a/two.txt": b"2, changed here"}

    (data / "last.txt").write_text("committed at exit")
    release_mounts()
    assert tree(remote)["last.txt"] == b"committed at exit"
    assert not os.path.lexists(data) and not os.path.exists(mount.directory)


def test_reload_keeps_local_changes_unless_the_store_changed_too(
    remote: VolumeStore, tmp_path: Path, in_process: None
) -> None:
    data = tmp_path / "data"
    remote.write("r", "both.txt", b"store 1")
    apply_mounts([MountSpec(str(data), "r", remote.url)])
    (data / "mine.txt").write_text("local only")
    (data / "a" / "one.txt").write_text("changed here only")
    (data / "both.txt").write_text("changed here")
    remote.write("r", "both.txt", b"store 2")
    Volume.from_name("r").reload()
    assert (data / "mine.txt").read_text() == "local only"
    assert (data / "a" / "one.txt").read_text() == "changed here only"
    assert (data / "both.txt").read_text() == "store 2"  # the store wins on reload


def test_last_writer_wins(remote: VolumeStore) -> None:
    first = _mounts._RemoteCopy(remote.url, "r")
    second = _mounts._RemoteCopy(remote.url, "r")
    try:
        for copy in (first, second):
            copy.pull()
        Path(first.local, "a", "one.txt").write_text("first")
        Path(second.local, "a", "one.txt").write_text("second")
        first.push()
        second.push()
        assert tree(remote)["a/one.txt"] == b"second"
        second.pull()
        first.pull()
        assert Path(first.local, "a", "one.txt").read_text() == "second"
    finally:
        shutil.rmtree(first.local)
        shutil.rmtree(second.local)


def test_a_missing_remote_volume_is_named(remote: VolumeStore, in_process: None) -> None:
    with pytest.raises(MountError, match="volume 'nope' does not exist in memory://"):
        apply_mounts([MountSpec("/x/data", "nope", remote.url)])


# Keys an object store accepts but that name no path in the volume as written.
BAD_KEYS = ["../../escape.txt", "a/../../../escape-nested.txt", "a/./dot.txt", "a//twice.txt"]


def _files_under(top: Path, but: Path) -> set[str]:
    """Every file below ``top`` and not below ``but``, relative to ``top`` (links not followed)."""
    found = {os.path.join(d, f) for d, _, files in os.walk(top) for f in files}
    return {os.path.relpath(f, top) for f in found if not f.startswith(f"{but}{os.sep}")}


def test_store_keys_that_leave_the_copy_are_skipped_and_named(
    remote: VolumeStore, tmp_path: Path, in_process: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A key with '..' never makes the worker write outside its local copy of the volume."""
    temp = tmp_path / "t1" / "t2"  # the copy is made here: '../../' would land in tmp_path
    temp.mkdir(parents=True)
    monkeypatch.setattr(tempfile, "tempdir", str(temp))
    fs, root = fsspec.core.url_to_fs(remote.url)
    for key in BAD_KEYS:
        fs.pipe_file(f"{root}/r/{key}", b"from the store")
    data = tmp_path / "data"
    with pytest.warns(_mounts.VolumeKeyWarning) as caught:
        apply_mounts([MountSpec(str(data), "r", remote.url)])
    messages = "\n".join(str(w.message) for w in caught)
    for key in BAD_KEYS:
        assert repr(f"{root}/r/{key}") in messages
    (mount,) = active_mounts()
    copy = Path(mount.directory)
    assert copy.parent == temp
    locks = temp / f"jupyter_remote-{os.geteuid()}"  # the symbolic link's lock file
    assert _files_under(tmp_path, locks) == {f"t1/t2/{copy.name}/a/one.txt"}

    remote.write("r", "a/two.txt", b"2")
    with pytest.warns(_mounts.VolumeKeyWarning):
        Volume.from_name("r").reload()
    assert _files_under(tmp_path, locks) == {f"t1/t2/{copy.name}/a/{n}.txt" for n in ("one", "two")}
    (data / "mine.txt").write_text("mine")
    Volume.from_name("r").commit()
    release_mounts()
    with pytest.warns(_mounts.VolumeKeyWarning):  # the store's own listing skips them too
        assert tree(remote) == {
            "a": b"<dir>",
            "a/one.txt": b"1",
            "a/two.txt": b"2",
            "mine.txt": b"mine",
        }
    for key in BAD_KEYS:  # what the worker did not understand, it left alone
        assert fs.cat_file(f"{root}/r/{key}") == b"from the store"
