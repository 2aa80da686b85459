"""The volume store and ``Volume``: one contract run on a local directory and on ``memory://``.

Paths never escape a volume: ``..`` above the root, ``~``, NUL and (in a local
store) symbolic links that lead outside are refused; a leading ``/`` is the
volume's root.
"""

from __future__ import annotations

import io
import os
import pickle
import uuid
from collections.abc import Iterator
from pathlib import Path

import cloudpickle
import fsspec
import pytest

from jupyter_remote import ConfigError
from jupyter_remote.api._volume import FileEntry, FileEntryType, Volume
from jupyter_remote.runtime._mounts import VolumeKeyWarning
from jupyter_remote.state._volumes import VolumeStore, default_volumes_url, normalize_path

ESCAPES = ["..", "../x", "a/../../x", "/../x", "./../x", "~", "~/x", "~root/.ssh", "a\0b"]


def paths(store: VolumeStore, name: str = "v") -> list[str]:
    return [e.path for e in store.listdir(name, "/", recursive=True)]


def read(store: VolumeStore, name: str, path: str) -> bytes:
    return b"".join(store.read(name, path))


# -- path normalisation ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("/", ""),
        ("", ""),
        (".", ""),
        ("/a/b", "a/b"),
        ("a//b/", "a/b"),
        ("./a/./b", "a/b"),
        ("a/../b", "b"),
        ("a/b/../../c", "c"),
        ("/etc/passwd", "etc/passwd"),
        ("dir/~", "dir/~"),
        ("/~", "~"),
    ],
)
def test_normalize_path(given: str, expected: str) -> None:
    assert normalize_path(given) == expected


@pytest.mark.parametrize("bad", ESCAPES)
def test_normalize_path_refuses_escapes(bad: str) -> None:
    with pytest.raises(ConfigError) as info:
        normalize_path(bad)
    assert repr(bad) in str(info.value)


def test_default_url_is_under_the_data_directory(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("JUPYTER_REMOTE_VOLUMES_URL", raising=False)
    monkeypatch.setenv("XDG_DATA_HOME", "/srv/data")
    assert default_volumes_url() == "/srv/data/jupyter_remote/volumes"
    monkeypatch.setenv("JUPYTER_REMOTE_VOLUMES_URL", "memory://elsewhere")
    assert default_volumes_url() == "memory://elsewhere"


# -- the store contract, on every kind of store ----------------------------------------------


class StoreContract:
    """Subclassed once per kind of store, with a ``store`` fixture holding an empty volume 'v'."""

    def test_create_exists_list_delete(self, store: VolumeStore) -> None:
        assert store.exists("v") and not store.exists("w")
        store.create("w")
        store.write("w", "a.bin", b"12345")
        infos = {i.name: i for i in store.list()}
        assert sorted(infos) == ["v", "w"]
        assert (infos["w"].size, infos["w"].files, infos["v"].files) == (5, 1, 0)
        store.delete("w")
        assert not store.exists("w")
        assert [i.name for i in store.list()] == ["v"]

    def test_create_twice_and_missing_volumes_are_errors(self, store: VolumeStore) -> None:
        with pytest.raises(ConfigError, match="already exists"):
            store.create("v")
        with pytest.raises(ConfigError) as info:
            store.listdir("nope")
        assert "jupyter-remote volume create nope" in str(info.value)
        with pytest.raises(ConfigError):
            store.delete("nope")

    @pytest.mark.parametrize("bad", ["", "-a", ".hidden", "a/b", "a b", "x" * 65, "..", "é"])
    def test_invalid_names(self, store: VolumeStore, bad: str) -> None:
        with pytest.raises(ConfigError, match="invalid volume name"):
            store.create(bad)

    def test_write_read_listdir(self, store: VolumeStore) -> None:
        data = bytes(range(256)) * 1000
        store.write("v", "/raw/a.bin", data)
        store.write("v", "raw/deep/b.txt", b"b")
        assert b"".join(store.read("v", "/raw/a.bin", chunk_size=1000)) == data
        assert len(list(store.read("v", "/raw/a.bin", chunk_size=1000))) == 256
        top = store.listdir("v")
        assert [(e.path, e.type) for e in top] == [("raw", FileEntryType.DIRECTORY)]
        assert [e.path for e in store.listdir("v", "raw")] == ["raw/a.bin", "raw/deep"]
        assert paths(store) == ["raw", "raw/a.bin", "raw/deep", "raw/deep/b.txt"]
        (entry,) = store.listdir("v", "/raw/a.bin")
        assert (entry.path, entry.type, entry.size) == ("raw/a.bin", FileEntryType.FILE, 256000)
        assert entry.mtime > 0

    def test_leading_slash_is_the_volume_root(self, store: VolumeStore) -> None:
        store.write("v", "/etc/passwd", b"mine")
        assert read(store, "v", "etc/passwd") == b"mine"
        assert paths(store) == ["etc", "etc/passwd"]
        assert read(store, "v", "/a/../etc/./passwd") == b"mine"

    @pytest.mark.parametrize("bad", ESCAPES)
    def test_no_operation_accepts_an_escaping_path(self, store: VolumeStore, bad: str) -> None:
        store.write("v", "f", b"x")
        operations = [
            lambda: store.read("v", bad),
            lambda: store.write("v", bad, b"x"),
            lambda: store.listdir("v", bad),
            lambda: store.remove("v", bad, recursive=True),
            lambda: store.copy("v", [bad], "/g"),
            lambda: store.copy("v", ["f"], bad),
            lambda: store.stat("v", bad),
        ]
        for operation in operations:
            with pytest.raises(ConfigError):
                operation()
        assert paths(store) == ["f"]

    def test_missing_and_wrong_kind(self, store: VolumeStore) -> None:
        store.write("v", "d/f", b"x")
        with pytest.raises(FileNotFoundError, match=r"/nope does not exist in volume 'v'"):
            store.read("v", "nope")
        with pytest.raises(FileNotFoundError):
            store.listdir("v", "nope")
        with pytest.raises(IsADirectoryError, match="/d is a directory"):
            store.read("v", "d")

    def test_upload_needs_force_to_overwrite(self, store: VolumeStore, tmp_path: Path) -> None:
        local = tmp_path / "local.txt"
        local.write_bytes(b"new")
        store.write("v", "a.txt", b"old")
        with pytest.raises(FileExistsError, match=r"/a.txt already exists in volume 'v'.*force"):
            store.put_file("v", local, "/a.txt")
        assert read(store, "v", "a.txt") == b"old"
        store.put_file("v", local, "/a.txt", force=True)
        assert read(store, "v", "a.txt") == b"new"

    def test_upload_checks_everything_before_writing(
        self, store: VolumeStore, tmp_path: Path
    ) -> None:
        store.write("v", "exists.txt", b"old")
        store.write("v", "file", b"")
        store.write("v", "dir/x", b"")
        bad_batches = [
            ([(b"1", "first.txt"), (b"2", "exists.txt")], FileExistsError),
            ([(b"1", "first.txt"), (b"2", "file/under-a-file")], NotADirectoryError),
            ([(b"1", "first.txt"), (b"2", "dir")], IsADirectoryError),
            ([(b"1", "first.txt"), (b"2", "/")], IsADirectoryError),
            ([(b"1", "first.txt"), (b"2", "first.txt")], FileExistsError),
            ([(b"1", "first.txt"), (str(tmp_path / "missing"), "m")], FileNotFoundError),
            ([(b"1", "first.txt"), (str(tmp_path), "m")], IsADirectoryError),
        ]
        for items, error in bad_batches:
            with pytest.raises(error):
                store.upload("v", items)
        assert paths(store) == ["dir", "dir/x", "exists.txt", "file"]
        store.upload("v", [(b"1", "first.txt"), (b"2", "first.txt")], force=True)
        assert read(store, "v", "first.txt") == b"2"

    def test_put_directory(self, store: VolumeStore, tmp_path: Path) -> None:
        (tmp_path / "src" / "sub").mkdir(parents=True)
        (tmp_path / "src" / "a.txt").write_text("a")
        (tmp_path / "src" / "sub" / "b.txt").write_text("b")
        store.put_directory("v", tmp_path / "src", "/dst/")
        assert paths(store) == ["dst", "dst/a.txt", "dst/sub", "dst/sub/b.txt"]
        with pytest.raises(FileExistsError):
            store.put_directory("v", tmp_path / "src", "/dst")
        with pytest.raises(NotADirectoryError):
            store.put_directory("v", tmp_path / "src" / "a.txt", "/x")

    def test_remove(self, store: VolumeStore) -> None:
        store.write("v", "d/e/f", b"x")
        store.write("v", "g", b"x")
        store.remove("v", "/g")
        with pytest.raises(IsADirectoryError, match="recursive=True"):
            store.remove("v", "d")
        with pytest.raises(FileNotFoundError):
            store.remove("v", "g")
        with pytest.raises(ConfigError, match="root"):
            store.remove("v", "/", recursive=True)
        store.remove("v", "d", recursive=True)
        assert paths(store) == []

    def test_copy_like_cp(self, store: VolumeStore) -> None:
        store.write("v", "a.txt", b"a")
        store.write("v", "b.txt", b"b")
        store.write("v", "d/inner.txt", b"i")
        store.copy("v", ["a.txt"], "/c.txt")  # to a new name
        store.copy("v", ["a.txt", "b.txt"], "/d")  # into a directory
        store.copy("v", ["b.txt"], "/new/")  # a trailing '/' is a directory
        with pytest.raises(IsADirectoryError, match="recursive=True"):
            store.copy("v", ["d"], "/e")
        store.copy("v", ["d"], "/e", recursive=True)
        assert paths(store) == [
            "a.txt",
            "b.txt",
            "c.txt",
            "d",
            "d/a.txt",
            "d/b.txt",
            "d/inner.txt",
            "e",
            "e/a.txt",
            "e/b.txt",
            "e/inner.txt",
            "new",
            "new/b.txt",
        ]
        assert read(store, "v", "e/inner.txt") == b"i"
        with pytest.raises(NotADirectoryError):
            store.copy("v", ["a.txt", "b.txt"], "/c.txt")
        with pytest.raises(ConfigError, match="into itself"):
            store.copy("v", ["d"], "/d/sub", recursive=True)
        with pytest.raises(ConfigError, match="onto itself"):
            store.copy("v", ["a.txt"], "a.txt")
        with pytest.raises(FileNotFoundError):
            store.copy("v", ["missing"], "x")


class TestLocalStore(StoreContract):
    @pytest.fixture
    def store(self, tmp_path: Path) -> VolumeStore:
        store = VolumeStore(str(tmp_path / "volumes"))
        store.create("v")
        return store


class TestMemoryStore(StoreContract):
    @pytest.fixture
    def store(self) -> Iterator[VolumeStore]:
        url = f"memory://jr-test-{uuid.uuid4().hex}"
        store = VolumeStore(url)
        store.create("v")
        yield store
        fs, root = fsspec.core.url_to_fs(url)
        fs.rm(root, recursive=True)


# -- symbolic links in a local store ----------------------------------------------------------


@pytest.fixture
def linked(tmp_path: Path) -> tuple[VolumeStore, Path, Path]:
    """A local volume 'v' with links to a file and a directory outside it, and one inside."""
    store = VolumeStore(str(tmp_path / "volumes"))
    store.create("v")
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_text("secret")
    root = tmp_path / "volumes" / "v"
    (root / "inside").mkdir()
    (root / "inside" / "ok.txt").write_text("ok")
    os.symlink(outside, root / "dirlink")
    os.symlink(outside / "secret.txt", root / "filelink")
    os.symlink("/etc", root / "etc")
    os.symlink("inside", root / "alias")
    return store, root, outside


def test_links_leading_outside_are_never_followed(linked: tuple[VolumeStore, Path, Path]) -> None:
    store, _, outside = linked
    operations = {
        "read file link": lambda: store.read("v", "filelink"),
        "read through dir link": lambda: store.read("v", "dirlink/secret.txt"),
        "read /etc/passwd": lambda: store.read("v", "etc/passwd"),
        "list dir link": lambda: store.listdir("v", "dirlink"),
        "write through dir link": lambda: store.write("v", "dirlink/new.txt", b"x"),
        "write onto file link": lambda: store.write("v", "filelink", b"x"),
        "copy file link": lambda: store.copy("v", ["filelink"], "/copy"),
        "copy dir link": lambda: store.copy("v", ["dirlink"], "/copy", recursive=True),
        "copy into dir link": lambda: store.copy("v", ["inside/ok.txt"], "/dirlink/"),
        "remove through dir link": lambda: store.remove("v", "dirlink/secret.txt"),
        "stat through link": lambda: store.stat("v", "dirlink/secret.txt"),
    }
    for what, operation in operations.items():
        with pytest.raises(ConfigError, match="outside the volume"):
            operation()
            pytest.fail(what)
    assert sorted(os.listdir(outside)) == ["secret.txt"]
    assert (outside / "secret.txt").read_text() == "secret"


def test_links_are_listed_not_descended(linked: tuple[VolumeStore, Path, Path]) -> None:
    store, _, _ = linked
    kinds = {e.path: e.type for e in store.listdir("v", recursive=True)}
    assert kinds == {
        "alias": FileEntryType.SYMLINK,
        "dirlink": FileEntryType.SYMLINK,
        "etc": FileEntryType.SYMLINK,
        "filelink": FileEntryType.SYMLINK,
        "inside": FileEntryType.DIRECTORY,
        "inside/ok.txt": FileEntryType.FILE,
    }


def test_links_inside_the_volume_are_followed(linked: tuple[VolumeStore, Path, Path]) -> None:
    store, root, _ = linked
    assert read(store, "v", "alias/ok.txt") == b"ok"
    assert [e.path for e in store.listdir("v", "alias")] == ["alias/ok.txt"]
    store.write("v", "alias/new.txt", b"new")
    assert (root / "inside" / "new.txt").read_bytes() == b"new"


def test_removing_a_link_removes_the_link_only(linked: tuple[VolumeStore, Path, Path]) -> None:
    store, root, outside = linked
    store.remove("v", "dirlink")
    store.remove("v", "filelink")
    store.remove("v", "etc", recursive=True)
    assert not os.path.lexists(root / "dirlink") and not os.path.lexists(root / "etc")
    assert (outside / "secret.txt").read_text() == "secret"
    assert os.path.exists("/etc/passwd")


def test_copying_a_directory_copies_its_links_as_links(
    linked: tuple[VolumeStore, Path, Path],
) -> None:
    store, root, outside = linked
    os.symlink(outside, root / "inside" / "out")
    store.copy("v", ["inside"], "/copy", recursive=True)
    assert os.readlink(root / "copy" / "out") == str(outside)
    with pytest.raises(ConfigError):
        store.read("v", "copy/out/secret.txt")


def test_a_volume_linked_elsewhere_by_an_administrator(tmp_path: Path) -> None:
    (tmp_path / "volumes").mkdir()
    (tmp_path / "big-disk").mkdir()
    os.symlink(tmp_path / "big-disk", tmp_path / "volumes" / "big")
    store = VolumeStore(str(tmp_path / "volumes"))
    store.write("big", "a", b"a")
    assert (tmp_path / "big-disk" / "a").read_bytes() == b"a"
    store.delete("big")
    assert (tmp_path / "big-disk" / "a").exists()


# -- the user API -----------------------------------------------------------------------------


@pytest.fixture(params=["local", "memory"])
def volumes_url(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[str]:
    if request.param == "local":
        url = str(tmp_path / "volumes")
    else:
        url = f"memory://jr-test-{uuid.uuid4().hex}"
    monkeypatch.setenv("JUPYTER_REMOTE_VOLUMES_URL", url)
    yield url
    if request.param == "memory":
        fs, root = fsspec.core.url_to_fs(url)
        if fs.exists(root):
            fs.rm(root, recursive=True)


def test_from_name_needs_the_volume_or_create_if_missing(volumes_url: str) -> None:
    with pytest.raises(ConfigError) as info:
        Volume.from_name("datasets")
    message = str(info.value)
    assert "'datasets'" in message
    assert "create_if_missing=True" in message
    assert "jupyter-remote volume create datasets" in message
    vol = Volume.from_name("datasets", create_if_missing=True)
    assert repr(vol) == "<Volume 'datasets'>"
    assert (
        vol == Volume.from_name("datasets") == Volume.from_name("datasets", create_if_missing=True)
    )
    with pytest.raises(ConfigError, match="invalid volume name"):
        Volume.from_name("../etc")


def test_volume_pickles_to_a_small_reference(volumes_url: str) -> None:
    vol = Volume.from_name("datasets", create_if_missing=True)
    for dumps in (pickle.dumps, cloudpickle.dumps):
        data = dumps(vol)
        assert len(data) < 300
        copy = pickle.loads(data)
        assert copy == vol and copy.name == "datasets" and copy.url == vol.url


def test_api_round_trip(volumes_url: str, tmp_path: Path) -> None:
    vol = Volume.from_name("datasets", create_if_missing=True)
    (tmp_path / "up" / "sub").mkdir(parents=True)
    (tmp_path / "up" / "one.txt").write_text("one")
    (tmp_path / "up" / "sub" / "two.txt").write_text("two")
    with vol.batch_upload() as batch:
        batch.put_file(tmp_path / "up" / "one.txt", "/files/one.txt")
        batch.put_file(io.BytesIO(b"\x00\xffraw"), "/files/raw.bin")
        batch.put_directory(tmp_path / "up", "/tree")
        assert vol.listdir("/") == []  # nothing is uploaded before the block ends
    entries = vol.listdir("/files")
    assert all(isinstance(e, FileEntry) for e in entries)
    assert [(e.path, e.type, e.size) for e in entries] == [
        ("files/one.txt", FileEntryType.FILE, 3),
        ("files/raw.bin", FileEntryType.FILE, 5),
    ]
    assert [e.path for e in vol.iterdir("/tree", recursive=True)] == [
        "tree/one.txt",
        "tree/sub",
        "tree/sub/two.txt",
    ]
    assert b"".join(vol.read_file("/files/raw.bin")) == b"\x00\xffraw"
    sink = io.BytesIO()
    assert vol.read_file_into_fileobj("tree/sub/two.txt", sink) == 3
    assert sink.getvalue() == b"two"
    vol.copy_files(["/files/one.txt"], "/tree/sub")
    vol.copy_files(["/tree"], "/tree2", recursive=True)
    assert b"".join(vol.read_file("/tree2/sub/one.txt")) == b"one"
    vol.remove_file("/files/raw.bin")
    vol.remove_file("/tree", recursive=True)
    assert [e.path for e in vol.listdir("/")] == ["files", "tree2"]
    vol.commit()  # in the caller, writes went straight to the store: nothing to do
    vol.reload()
    Volume.delete("datasets")
    with pytest.raises(ConfigError):
        Volume.from_name("datasets")


def test_batch_upload_without_force_uploads_nothing_on_a_conflict(
    volumes_url: str, tmp_path: Path
) -> None:
    vol = Volume.from_name("datasets", create_if_missing=True)
    local = tmp_path / "f.txt"
    local.write_text("new")
    with vol.batch_upload() as batch:
        batch.put_file(io.BytesIO(b"old"), "/taken.txt")
    conflict = pytest.raises(FileExistsError, match=r"/taken\.txt already exists.*force=True")
    with conflict, vol.batch_upload() as batch:
        batch.put_file(local, "/fresh.txt")
        batch.put_file(local, "/taken.txt")
    assert [e.path for e in vol.listdir()] == ["taken.txt"]
    with vol.batch_upload(force=True) as batch:
        batch.put_file(local, "/fresh.txt")
        batch.put_file(local, "/taken.txt")
    assert b"".join(vol.read_file("taken.txt")) == b"new"
    assert [e.path for e in vol.listdir()] == ["fresh.txt", "taken.txt"]


def test_batch_upload_is_dropped_when_the_block_raises(volumes_url: str, tmp_path: Path) -> None:
    vol = Volume.from_name("datasets", create_if_missing=True)
    with pytest.raises(RuntimeError), vol.batch_upload() as batch:
        batch.put_file(io.BytesIO(b"x"), "/x")
        raise RuntimeError("changed my mind")
    assert vol.listdir() == []


def test_batch_upload_checks_paths_when_they_are_given(volumes_url: str, tmp_path: Path) -> None:
    vol = Volume.from_name("datasets", create_if_missing=True)
    local = tmp_path / "vanishing.txt"
    local.write_text("x")
    with pytest.raises(FileNotFoundError, match=r"vanishing\.txt"), vol.batch_upload() as batch:
        with pytest.raises(ConfigError):
            batch.put_file(io.BytesIO(b"x"), "../../escape")
        with pytest.raises(FileNotFoundError):
            batch.put_file(tmp_path / "missing", "/x")
        batch.put_file(io.BytesIO(b"y"), "/also.txt")
        batch.put_file(local, "/kept.txt")
        local.unlink()  # gone before the block ends: the whole batch fails
    assert vol.listdir() == []


# -- keys in a remote store that are not plain paths -----------------------------------------


def test_store_keys_that_are_not_plain_paths_are_skipped_and_named(tmp_path: Path) -> None:
    """An object store takes any string as a key: '..' in one never reaches a path or a key."""
    url = f"memory://jr-test-{uuid.uuid4().hex}"
    store = VolumeStore(url)
    store.create("v")
    store.write("v", "d/ok.txt", b"ok")
    fs, root = fsspec.core.url_to_fs(url)
    bad = ["d/../../../escape.txt", "d/./dot.txt", "d//twice.txt"]
    try:
        for key in bad:
            fs.pipe_file(f"{root}/v/{key}", b"bad")
        # Listing one level shows only the prefixes 'd/..' and 'd/.': skipped, no file to name.
        assert [e.path for e in store.listdir("v", "/d")] == ["d/ok.txt"]
        with pytest.warns(VolumeKeyWarning) as caught:
            assert [e.path for e in store.listdir("v", "/d", recursive=True)] == ["d/ok.txt"]
        named = "\n".join(str(w.message) for w in caught)
        assert all(repr(f"{root}/v/{key}") in named for key in bad)
        with pytest.warns(VolumeKeyWarning) as caught:
            store.copy("v", ["d"], "/e", recursive=True)
        assert len(caught) == len(bad)
        with pytest.warns(VolumeKeyWarning):
            assert [e.path for e in store.listdir("v", recursive=True)] == [
                "d",
                "d/ok.txt",
                "e",
                "e/ok.txt",
            ]
        copied = [k for k in fs.store if k.startswith(f"{root}/v/e/")]
        assert copied == [f"{root}/v/e/ok.txt"]
        for key in bad:  # a user's path is normalised: it never names the bad key
            with pytest.raises((ConfigError, FileNotFoundError)):
                store.read("v", key)
    finally:
        fs.rm(root, recursive=True)
