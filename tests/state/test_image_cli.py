"""``jupyter-remote image build|ls|rm|prune`` against a per-test cache, with real builds."""

from __future__ import annotations

import argparse
import shutil
import sys
import textwrap
from pathlib import Path

import pytest

from jupyter_remote.api._image import Image
from jupyter_remote.backends._images import ImageBuilder
from jupyter_remote.cli._common import CliError, Parser
from jupyter_remote.cli._image import add_parser


@pytest.fixture(autouse=True)
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("JUPYTER_REMOTE_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache" / "images"


def cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    """What ``main()`` does for ``jupyter-remote image ...``, with only this subcommand."""
    parser = Parser(prog="jupyter-remote")
    add_parser(parser.add_subparsers(metavar="COMMAND", parser_class=Parser))
    try:
        args: argparse.Namespace = parser.parse_args(list(argv))
        code: int = args.handler(args)
    except CliError as exc:
        print(f"Error: {exc}", file=sys.stderr)
        code = exc.exit_code
    out, err = capsys.readouterr()
    return code, out, err


def script(directory: Path, name: str, body: str) -> str:
    path = directory / name
    path.write_text("from jupyter_remote.api._image import Image\n" + textwrap.dedent(body))
    return str(path)


def test_build_ls_rm_round_trip(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    target = script(
        tmp_path, "jr_cli_images.py", "image = Image.debian_slim().env({'JR': 'cli'})\n"
    )
    code, out, err = cli(capsys, "image", "ls")
    assert (code, err) == (0, "") and out.startswith("no images cached in ")

    code, out, err = cli(capsys, "image", "build", f"{target}::image")
    assert code == 0, err
    assert "==> building image" in out and "Creating virtual environment" in out
    key = out.splitlines()[-1].split()[2]
    assert out.splitlines()[-1].startswith(f"image: image {key} built; python: ")

    code, out, _ = cli(capsys, "image", "build", target)  # the only Image: no ::name needed
    assert code == 0 and out.splitlines()[-1].startswith(f"image: image {key} already built")
    assert "==> building" not in out

    code, out, _ = cli(capsys, "image", "ls")
    header, row = out.splitlines()
    assert header.split() == ["KEY", "SIZE", "MB", "CREATED", "LAST", "USED", "DESCRIPTION"]
    assert row.startswith(key) and "Image.debian_slim(" in row and "env({'JR': 'cli'})" in row

    code, out, _ = cli(capsys, "image", "rm", key[:6])
    assert (code, out) == (0, f"removed {key}\n")
    code, out, _ = cli(capsys, "image", "ls")
    assert out.startswith("no images cached in ")


def test_rm_needs_a_prefix_that_names_exactly_one_image(
    capsys: pytest.CaptureFixture[str], cache: Path
) -> None:
    built = ImageBuilder(cache).ensure(Image.debian_slim())
    twin = built.key[:4] + ("0" if built.key[4] != "0" else "1") + built.key[5:]
    shutil.copytree(built.path, cache / twin, symlinks=True)
    code, _, err = cli(capsys, "image", "rm", built.key[:4])
    assert code == 2
    assert f"{built.key[:4]!r} matches 2 images" in err
    assert built.key[:12] in err and twin[:12] in err
    code, _, err = cli(capsys, "image", "rm", "zzzz")
    assert code == 2 and "no cached image has a key starting with 'zzzz'" in err
    code, out, _ = cli(capsys, "image", "rm", built.key[:5], twin[:5])
    assert code == 0 and len(out.splitlines()) == 2
    assert ImageBuilder(cache).list() == []


def test_build_says_which_image_to_choose(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    two = script(
        tmp_path,
        "jr_cli_two.py",
        """
        small = Image.debian_slim()
        big = small.pip_install("six")
        """,
    )
    code, _, err = cli(capsys, "image", "build", two)
    assert code == 2 and "has 2 Images (big, small); choose one" in err
    assert f"image build {two}::big" in err
    code, _, err = cli(capsys, "image", "build", f"{two}::medium")
    assert code == 2 and "no Image named 'medium'; its Images: big, small" in err
    none = script(tmp_path, "jr_cli_none.py", "x = 1\n")
    code, _, err = cli(capsys, "image", "build", none)
    assert code == 2 and "defines no Image" in err
    broken = script(tmp_path, "jr_cli_broken.py", "raise RuntimeError('boom at import')\n")
    code, _, err = cli(capsys, "image", "build", broken)
    assert code == 1 and "importing" in err and "RuntimeError: boom at import" in err


def test_a_failed_build_exits_1_with_the_installers_complaint(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    bad = script(
        tmp_path, "jr_cli_bad.py", "image = Image.debian_slim().pip_install('jr-no-such-pkg-xyz')\n"
    )
    code, out, err = cli(capsys, "image", "build", bad)
    assert code == 1
    assert "jr-no-such-pkg-xyz" in out  # streamed as it happened
    assert err.startswith("Error: building image") and "jr-no-such-pkg-xyz" in err


def test_prune_removes_failed_builds(capsys: pytest.CaptureFixture[str], cache: Path) -> None:
    (cache / ("f" * 64)).mkdir(parents=True)
    code, out, _ = cli(capsys, "image", "prune")
    assert (code, out) == (0, f"removed {'f' * 12}\n1 removed\n")
    code, _, err = cli(capsys, "image", "prune", "--unused-days", "-1")
    assert code == 2 and "--unused-days -1" in err


def test_image_without_a_command_prints_help(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = cli(capsys, "image")
    assert code == 2 and "ls" in err and "build" in err and "prune" in err
