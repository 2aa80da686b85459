"""``jupyter-remote volume ...`` through a parser built from ``add_parser``, like ``main()``'s."""

from __future__ import annotations

import argparse
import os
import pty
import select
import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest

from jupyter_remote.cli._common import CliError, Parser
from jupyter_remote.cli._volume import add_parser
from jupyter_remote.state._volumes import VolumeStore

BINARY = bytes(range(256)) * 64 + b"\r\n\x00\n"


def build_parser() -> Parser:
    parser = Parser(prog="jupyter-remote")
    add_parser(parser.add_subparsers(metavar="COMMAND", parser_class=Parser))
    return parser


def cli(capsysbinary: pytest.CaptureFixture[bytes], *args: str) -> tuple[int, bytes, str]:
    """Run one command as ``main()`` does: ``Error: ...`` lines and exit codes."""
    try:
        parsed = build_parser().parse_args(["volume", *args])
        handler: Callable[[argparse.Namespace], int] = parsed.handler
        code = handler(parsed)
    except CliError as exc:
        print(f"Error: {exc}", file=sys.stderr)
        code = exc.exit_code
    out, err = capsysbinary.readouterr()
    return code, out, err.decode()


@pytest.fixture
def store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> VolumeStore:
    monkeypatch.setenv("JUPYTER_REMOTE_VOLUMES_URL", str(tmp_path / "volumes"))
    monkeypatch.chdir(tmp_path)
    return VolumeStore()


def test_round_trip(
    store: VolumeStore, tmp_path: Path, capsysbinary: pytest.CaptureFixture[bytes]
) -> None:
    run = lambda *args: cli(capsysbinary, *args)  # noqa: E731
    code, out, _ = run("list")
    assert code == 0 and out.startswith(f"No volumes in {store.url}.".encode())
    assert run("create", "data")[:2] == (0, f"Created volume 'data' in {store.url}\n".encode())

    (tmp_path / "blob.bin").write_bytes(BINARY)
    (tmp_path / "tree" / "sub").mkdir(parents=True)
    (tmp_path / "tree" / "a.txt").write_text("a")
    (tmp_path / "tree" / "sub" / "b.txt").write_text("b")
    assert run("put", "data", "blob.bin")[0] == 0  # into '/': /blob.bin
    assert run("put", "data", "blob.bin", "/raw/")[0] == 0  # into a directory
    assert run("put", "data", "blob.bin", "/named.bin")[0] == 0
    code, out, _ = run("put", "data", "tree", "/trees/")
    assert (code, out) == (0, b"Uploaded tree to /trees/tree in volume 'data'\n")

    code, out, _ = run("ls", "data")
    lines = out.decode().splitlines()
    assert lines[0].split() == ["TYPE", "BYTES", "MODIFIED", "PATH"]
    assert [(line.split()[0], line.split()[-1]) for line in lines[1:]] == [
        ("file", "/blob.bin"),
        ("file", "/named.bin"),
        ("dir", "/raw/"),
        ("dir", "/trees/"),
    ]
    assert str(len(BINARY)) in lines[1]
    code, out, _ = run("ls", "data", "/trees", "-r")
    assert [line.split()[-1] for line in out.decode().splitlines()[1:]] == [
        "/trees/tree/",
        "/trees/tree/a.txt",
        "/trees/tree/sub/",
        "/trees/tree/sub/b.txt",
    ]

    code, out, err = run("get", "data", "/raw/blob.bin", "-")
    assert (code, out, err) == (0, BINARY, "")
    assert run("get", "data", "named.bin", "copy.bin")[0] == 0
    assert (tmp_path / "copy.bin").read_bytes() == BINARY
    code, _, err = run("get", "data", "named.bin", "copy.bin")
    assert (code, err) == (1, "Error: copy.bin exists; pass --force to overwrite it\n")
    assert run("get", "data", "named.bin", "copy.bin", "--force")[0] == 0
    (tmp_path / "down").mkdir()
    assert run("get", "data", "/trees", "down")[0] == 0
    assert (tmp_path / "down" / "trees" / "tree" / "sub" / "b.txt").read_text() == "b"

    assert run("cp", "data", "/named.bin", "/raw/blob.bin", "/trees")[0] == 0
    code, _, err = run("rm", "data", "/trees")
    assert code == 1 and "is a directory" in err and "-r" in err
    assert run("rm", "data", "/trees", "-r")[0] == 0
    assert run("rm", "data", "named.bin")[0] == 0
    code, out, _ = run("ls", "data")
    assert [line.split()[-1] for line in out.decode().splitlines()[1:]] == ["/blob.bin", "/raw/"]

    code, out, _ = run("list")
    header, row = out.decode().splitlines()
    assert header.split() == ["NAME", "FILES", "BYTES", "MODIFIED"]
    assert row.split()[:3] == ["data", "2", str(2 * len(BINARY))]


def test_put_refuses_to_overwrite_without_force(
    store: VolumeStore, tmp_path: Path, capsysbinary: pytest.CaptureFixture[bytes]
) -> None:
    store.create("data")
    store.write("data", "f.txt", b"old")
    (tmp_path / "f.txt").write_text("new")
    code, _, err = cli(capsysbinary, "put", "data", "f.txt")
    assert code == 1
    assert (
        err == "Error: /f.txt already exists in volume 'data'; pass force=True (CLI: --force) "
        "to overwrite it\n"
    )
    assert cli(capsysbinary, "put", "data", "f.txt", "--force")[0] == 0
    assert b"".join(store.read("data", "f.txt")) == b"new"
    code, _, err = cli(capsysbinary, "put", "data", "missing.txt")
    assert (code, err) == (1, "Error: missing.txt does not exist\n")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("ls", "data", "../.."), "climbs above the volume's root"),
        (("get", "data", "a/../../etc/passwd", "-"), "climbs above the volume's root"),
        (("rm", "data", "~/x"), "starts with '~'"),
        (("put", "data", "x", "/../x"), "climbs above"),
        (("ls", "bad name"), "invalid volume name"),
        (("create", "../x"), "invalid volume name"),
    ],
)
def test_paths_and_names_are_checked(
    store: VolumeStore,
    capsysbinary: pytest.CaptureFixture[bytes],
    args: tuple[str, ...],
    message: str,
) -> None:
    store.create("data")
    code, out, err = cli(capsysbinary, *args)
    assert (code, out) == (2, b"")
    assert err.startswith("Error: ") and message in err and len(err.splitlines()) == 1


def test_errors_are_one_line_with_status_1(
    store: VolumeStore, capsysbinary: pytest.CaptureFixture[bytes]
) -> None:
    code, _, err = cli(capsysbinary, "ls", "nope")
    assert code == 1
    assert err.startswith("Error: volume 'nope' does not exist in ")
    assert "jupyter-remote volume create nope" in err
    store.create("data")
    code, _, err = cli(capsysbinary, "create", "data")
    assert (code, err) == (1, f"Error: volume 'data' already exists in {store.url}\n")
    code, _, err = cli(capsysbinary, "get", "data", "/missing", "-")
    assert (code, err) == (1, "Error: /missing does not exist in volume 'data'\n")
    code, _, err = cli(capsysbinary, "get", "data", "/", "-")
    assert code == 2 and "is a directory" in err
    code, _, err = cli(capsysbinary, "ls")
    assert code == 2 and err.startswith("Error: the following arguments are required: NAME")


def test_a_link_leading_outside_is_refused(
    store: VolumeStore, tmp_path: Path, capsysbinary: pytest.CaptureFixture[bytes]
) -> None:
    store.create("data")
    os.symlink("/etc", tmp_path / "volumes" / "data" / "etc")
    code, out, err = cli(capsysbinary, "get", "data", "/etc/passwd", "-")
    assert (code, out) == (1, b"")
    assert "leads outside the volume" in err


def test_delete_needs_yes_without_a_terminal(
    store: VolumeStore, capsysbinary: pytest.CaptureFixture[bytes]
) -> None:
    store.create("data")
    code, _, err = cli(capsysbinary, "delete", "data")  # pytest's stdin is not a terminal
    assert code == 2 and "pass --yes" in err
    assert store.exists("data")
    code, out, _ = cli(capsysbinary, "delete", "data", "--yes")
    assert (code, out) == (0, b"Deleted volume 'data'\n")
    assert not store.exists("data")
    code, _, err = cli(capsysbinary, "delete", "data", "--yes")
    assert code == 1 and "does not exist" in err


@pytest.mark.parametrize(("answer", "deleted"), [("y", True), ("n", False)])
def test_delete_asks_on_a_terminal(tmp_path: Path, answer: str, deleted: bool) -> None:
    url = str(tmp_path / "volumes")
    VolumeStore(url).create("data")
    script = textwrap.dedent(
        """
        import sys
        from jupyter_remote.cli._common import Parser
        from jupyter_remote.cli._volume import add_parser
        parser = Parser(prog="jupyter-remote")
        add_parser(parser.add_subparsers(parser_class=Parser))
        args = parser.parse_args(["volume", "delete", "data"])
        sys.exit(args.handler(args))
        """
    )
    leader, follower = pty.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-c", script],
        stdin=follower,
        stdout=subprocess.PIPE,
        stderr=follower,
        env={**os.environ, "JUPYTER_REMOTE_VOLUMES_URL": url},
    )
    os.close(follower)
    prompt = b""
    while b"[y/N]" not in prompt:
        ready, _, _ = select.select([leader], [], [], 30)
        assert ready, prompt
        prompt += os.read(leader, 1024)
    assert b"Delete volume 'data' and every file in it?" in prompt
    os.write(leader, answer.encode() + b"\n")
    out, _ = proc.communicate(timeout=30)
    os.close(leader)
    assert proc.returncode == (0 if deleted else 1)
    assert VolumeStore(url).exists("data") is not deleted
    assert out == (b"Deleted volume 'data'\n" if deleted else b"")
