"""``Image``: immutable layers, a stable content key, and arguments checked where they are given."""

from __future__ import annotations

import dataclasses
import pickle
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from jupyter_remote.api._image import Image
from jupyter_remote.exceptions import ConfigError

MINE = f"{sys.version_info.major}.{sys.version_info.minor}"


def base() -> Image:
    return Image.debian_slim()


# -- the key ------------------------------------------------------------------------------------


def test_key_is_a_sha256_that_does_not_depend_on_the_process() -> None:
    # A fixed spec (no local files, no caller version) has a fixed key: a change to the
    # canonical JSON changes every cached key, so it must be deliberate (bump KEY_FORMAT).
    image = Image.from_registry("python:3.11-slim").pip_install("six==1.16.0")
    image = image.env({"B": "2", "A": "1"})
    assert image.key == "b1bee4a99b90b1887c60bb44e600b961cf4349c51c1884a24bdf7a7c40ecf2ef"
    code = (
        "from jupyter_remote.api._image import Image;"
        "print(Image.debian_slim().pip_install('six', 'attrs').env({'A': '1'}).key)"
    )
    other = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert other.stdout.strip() == base().pip_install("six", "attrs").env({"A": "1"}).key


def test_what_changes_the_key_and_what_does_not() -> None:
    one = base().pip_install("six==1.16.0")
    assert one.key == base().pip_install("six==1.16.0").key
    assert one.key != base().pip_install("six==1.15.0").key
    assert one.key != base().uv_pip_install("six==1.16.0").key
    assert one.key != base().pip_install("six==1.16.0", pre=True).key
    assert one.key != base().pip_install("six==1.16.0", index_url="https://example.org/simple").key
    # Within one call packages install together: order and duplicates do not matter.
    assert base().pip_install("a", "b").key == base().pip_install("b", "a", "a").key
    assert base().pip_install("a", "b").key == base().pip_install(["b", "a"]).key
    # Separate calls are separate layers: their order does.
    assert (
        base().pip_install("a").pip_install("b").key != base().pip_install("b").pip_install("a").key
    )
    assert base().pip_install("a").key != base().pip_install("a").pip_install("b").key
    # Environment: names and values count, dict order does not.
    assert base().env({"A": "1", "B": "2"}).key == base().env({"B": "2", "A": "1"}).key
    assert base().env({"A": "1"}).key != base().env({"A": "2"}).key
    assert base().run_commands("a", "b").key != base().run_commands("b", "a").key
    assert base().workdir("/srv").key != base().workdir("/app").key
    assert base().apt_install("curl").key != base().pip_install("curl").key


def test_python_version_must_be_the_callers() -> None:
    assert Image.debian_slim(MINE).key == Image.debian_slim().key == Image.debian_slim(None).key
    assert Image.debian_slim(f"{MINE}.1").key == Image.debian_slim().key
    other = "3.10" if MINE != "3.10" else "3.12"
    with pytest.raises(ConfigError, match="cloudpickle") as info:
        Image.debian_slim(other)
    assert repr(MINE) in str(info.value)
    with pytest.raises(ConfigError, match="cloudpickle"):
        Image.from_registry("nvcr.io/nvidia/pytorch:24.01-py3", add_python=other)
    with pytest.raises(ConfigError, match="not like"):
        Image.debian_slim("three")
    with pytest.raises(TypeError, match="python_version"):
        Image.debian_slim(3.11)  # type: ignore[arg-type]


def test_local_files_count_by_content(tmp_path: Path) -> None:
    data = tmp_path / "data.txt"
    data.write_text("one")
    folder = tmp_path / "folder"
    (folder / "sub").mkdir(parents=True)
    (folder / "sub" / "a.txt").write_text("a")
    file_image = base().add_local_file(data, "/srv/data.txt")
    dir_image = base().add_local_dir(folder, "/srv/folder")
    file_key, dir_key = file_image.key, dir_image.key
    assert file_image.key == file_key  # stable while nothing changes

    data.write_text("two")
    (folder / "sub" / "a.txt").write_text("b")
    assert file_image.key != file_key
    assert dir_image.key != dir_key
    dir_key = dir_image.key
    (folder / "new.txt").write_text("")
    assert dir_image.key != dir_key
    dir_key = dir_image.key
    (folder / "__pycache__").mkdir()
    (folder / "__pycache__" / "x.cpython.pyc").write_bytes(b"\0")
    assert dir_image.key == dir_key, "bytecode caches must not change the key"

    # The same content from another local path gives the same key; another remote path does not.
    copy = tmp_path / "copy.txt"
    copy.write_text("two")
    assert base().add_local_file(copy, "/srv/data.txt").key == file_image.key
    assert base().add_local_file(copy, "/srv/other.txt").key != file_image.key
    # Modal's copy= is accepted; files are always copied into the image here.
    assert base().add_local_file(copy, "/srv/data.txt", copy=True).key == file_image.key
    data.unlink()
    with pytest.raises(ConfigError, match="no longer exists"):
        _ = file_image.key


def test_local_python_source_counts_by_content(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "jr_img_helper.py").write_text("VALUE = 1\n")
    (tmp_path / "jr_img_pkg").mkdir()
    (tmp_path / "jr_img_pkg" / "__init__.py").write_text("")
    (tmp_path / "jr_img_pkg" / "mod.py").write_text("X = 1\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    image = base().add_local_python_source("jr_img_helper", "jr_img_pkg")
    assert "add_local_python_source('jr_img_helper')" in repr(image)
    key = image.key
    (tmp_path / "jr_img_pkg" / "mod.py").write_text("X = 2\n")
    assert image.key != key
    key = image.key
    (tmp_path / "jr_img_helper.py").write_text("VALUE = 2\n")
    assert image.key != key

    with pytest.raises(ConfigError, match="no module named 'jr_no_such_module_xyz'"):
        base().add_local_python_source("jr_no_such_module_xyz")
    with pytest.raises(ConfigError, match="top-level package 'jr_img_pkg'"):
        base().add_local_python_source("jr_img_pkg.mod")
    with pytest.raises(ConfigError, match="not Python source"):
        base().add_local_python_source("sys")


# -- immutability, identity, repr ---------------------------------------------------------------


def test_each_method_returns_a_new_image_and_leaves_the_old_one_alone() -> None:
    first = base()
    key = first.key
    second = first.pip_install("six").env({"A": "1"}).workdir("/srv")
    assert second is not first
    assert len(first.layers) == 1 and first.key == key
    assert len(second.layers) == 4
    layer: Any = second.layers[1]
    with pytest.raises(dataclasses.FrozenInstanceError):
        second.layers = ()  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        layer.packages = ("x",)
    assert second == base().pip_install("six").env({"A": "1"}).workdir("/srv")
    assert hash(second) == hash(base().pip_install("six").env({"A": "1"}).workdir("/srv"))
    assert pickle.loads(pickle.dumps(second)) == second
    # Nothing to add: the same image.
    assert first.pip_install() == first and first.env({}) == first and first.run_commands() == first


def test_repr_reads_like_the_code_that_made_it() -> None:
    image = base().pip_install("torch", "numpy", "pandas", "scipy").env({"MODE": "fast"})
    assert repr(image) == (
        f"Image.debian_slim(python_version={MINE!r})"
        ".pip_install('numpy', 'pandas', 'scipy', …+1).env({'MODE': 'fast'})"
    )
    assert repr(Image.from_registry("python:3.11")) == "Image.from_registry('python:3.11')"


# -- arguments ----------------------------------------------------------------------------------


def test_bad_arguments_name_what_is_wrong(tmp_path: Path) -> None:
    with pytest.raises(TypeError, match=r"packages must be strings, not int \(1\)"):
        base().pip_install("six", 1)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="empty string among the packages"):
        base().pip_install("six", " ")
    with pytest.raises(ConfigError, match="'--upgrade' looks like an installer option"):
        base().pip_install("--upgrade", "six")
    with pytest.raises(TypeError, match="index_url must be a str"):
        base().pip_install("six", index_url=3)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="pre must be True or False"):
        base().uv_pip_install("six", pre="yes")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="apt_install: packages must be strings, not NoneType"):
        base().apt_install(None)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="empty string among the commands"):
        base().run_commands("echo hi", "")
    with pytest.raises(TypeError, match="check 'A': 1"):
        base().env({"A": 1})  # type: ignore[dict-item]
    with pytest.raises(TypeError, match="expected a dict"):
        base().env(["A=1"])  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="'A-B' is not a valid environment variable name"):
        base().env({"A-B": "1"})
    with pytest.raises(ConfigError, match=r"'srv' must be absolute, e\.g\. '/root/srv'"):
        base().workdir("srv")
    with pytest.raises(ConfigError, match="must be absolute"):
        base().add_local_file(__file__, "data/x.py")
    with pytest.raises(ConfigError, match="is not a file"):
        base().add_local_file(tmp_path / "missing.txt", "/srv/x")
    with pytest.raises(ConfigError, match="is not a directory"):
        base().add_local_dir(__file__, "/srv/x")
    with pytest.raises(ConfigError, match="the tag is empty"):
        Image.from_registry("")


def test_remote_paths_are_normalized() -> None:
    image = base().workdir("/srv/./app/../data/").add_local_file(__file__, "/srv/tests/")
    assert repr(image).endswith(
        f".workdir('/srv/data').add_local_file({str(Path(__file__).resolve())!r}, "
        f"'/srv/tests/{Path(__file__).name}')"
    )
