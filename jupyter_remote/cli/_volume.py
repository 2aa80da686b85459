"""``jupyter-remote volume create|list|ls|put|get|cp|rm|delete``: Modal's ``modal volume``.

Paths inside a volume start at its root: ``/raw/a.txt`` and ``raw/a.txt`` are
the same file, and no path leads outside the volume.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import os
import sys
import tempfile
from collections.abc import Iterator, Sequence
from datetime import datetime

from ..exceptions import ConfigError
from ..state._volumes import (
    FileEntry,
    FileEntryType,
    VolumeStore,
    display_path,
    normalize_path,
    validate_name,
)
from ._common import EXIT_RUNTIME, EXIT_USAGE, CliError, Parser, Subparsers, confirm

__all__ = ["add_parser"]

_DESCRIPTION = """\
Volumes are named directories that outlive a call, mounted where a function
declares: `@app.function(volumes={"/data": jr.Volume.from_name("datasets")})`.
They live in the store at the volumes_url setting (a local directory by default).
"""
_EPILOG = """\
examples:
  jupyter-remote volume create datasets
  jupyter-remote volume put datasets train.csv /raw/     upload into /raw/train.csv
  jupyter-remote volume put datasets images/ /images     a directory, recursively
  jupyter-remote volume ls datasets /raw -r
  jupyter-remote volume get datasets /raw/train.csv -    to stdout
  jupyter-remote volume rm datasets /images -r
  jupyter-remote volume delete datasets --yes
"""
_TYPES = {
    FileEntryType.FILE: "file",
    FileEntryType.DIRECTORY: "dir",
    FileEntryType.SYMLINK: "link",
    FileEntryType.UNSPECIFIED: "other",
}


def add_parser(subparsers: Subparsers) -> None:
    parser = subparsers.add_parser(
        "volume",
        help="create, list, read and write volumes",
        description=_DESCRIPTION,
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.set_defaults(handler=functools.partial(_show_help, parser))
    commands = parser.add_subparsers(title="commands", metavar="COMMAND", parser_class=Parser)

    create = commands.add_parser("create", help="create an empty volume")
    create.add_argument("name", metavar="NAME")
    create.set_defaults(handler=create_volume)

    listing = commands.add_parser("list", help="list volumes: names, sizes, modification times")
    listing.set_defaults(handler=list_volumes)

    ls = commands.add_parser("ls", help="list the files of a volume")
    ls.add_argument("name", metavar="NAME")
    ls.add_argument("path", metavar="PATH", nargs="?", default="/", help="default: the root")
    ls.add_argument("-r", "--recursive", action="store_true", help="everything below PATH")
    ls.set_defaults(handler=ls_volume)

    put = commands.add_parser(
        "put",
        help="upload a local file or directory",
        description="Upload LOCAL (a file, or a directory with everything in it) to REMOTE. "
        "A REMOTE ending in '/' (the default, '/') is a directory to upload into.",
    )
    put.add_argument("name", metavar="NAME")
    put.add_argument("local", metavar="LOCAL")
    put.add_argument("remote", metavar="REMOTE", nargs="?", default="/")
    put.add_argument("-f", "--force", action="store_true", help="overwrite existing files")
    put.set_defaults(handler=put_volume)

    get = commands.add_parser(
        "get",
        help="download a file or directory",
        description="Download PATH to LOCAL (default: the current directory; into it if it is a "
        "directory). LOCAL '-' writes a file to stdout.",
    )
    get.add_argument("name", metavar="NAME")
    get.add_argument("path", metavar="PATH")
    get.add_argument("local", metavar="LOCAL", nargs="?", default=".")
    get.add_argument("-f", "--force", action="store_true", help="overwrite existing local files")
    get.set_defaults(handler=get_volume)

    cp = commands.add_parser("cp", help="copy files within a volume, like cp")
    cp.add_argument("name", metavar="NAME")
    cp.add_argument("paths", metavar="PATH", nargs="+", help="sources, then the destination")
    cp.add_argument("-r", "--recursive", action="store_true", help="copy directories")
    cp.set_defaults(handler=cp_volume)

    rm = commands.add_parser("rm", help="remove a file or directory from a volume")
    rm.add_argument("name", metavar="NAME")
    rm.add_argument("path", metavar="PATH")
    rm.add_argument("-r", "--recursive", action="store_true", help="remove a directory")
    rm.set_defaults(handler=rm_volume)

    delete = commands.add_parser("delete", help="delete a volume and every file in it")
    delete.add_argument("name", metavar="NAME")
    delete.add_argument("-y", "--yes", action="store_true", help="do not ask for confirmation")
    delete.set_defaults(handler=delete_volume)


def _show_help(parser: Parser, args: argparse.Namespace) -> int:
    parser.print_help(sys.stderr)
    return EXIT_USAGE


@contextlib.contextmanager
def _errors() -> Iterator[None]:
    """Store errors become one ``Error: ...`` line with exit status 1."""
    try:
        yield
    except (ConfigError, OSError) as exc:
        raise CliError(str(exc), EXIT_RUNTIME) from None


def _store_for(name: str, *paths: str) -> VolumeStore:
    """Check NAME and the paths (usage errors), then open the store."""
    try:
        validate_name(name)
        for path in paths:
            normalize_path(path)
    except ConfigError as exc:
        raise CliError(str(exc)) from None
    with _errors():
        return VolumeStore()


def _when(mtime: float) -> str:
    return datetime.fromtimestamp(mtime).strftime("%Y-%m-%d %H:%M") if mtime else "-"


def _table(rows: Sequence[tuple[str, ...]], right: set[int]) -> None:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]) - 1)]
    for row in rows:
        cells = [
            cell.rjust(width) if i in right else cell.ljust(width)
            for i, (cell, width) in enumerate(zip(row, widths, strict=False))
        ]
        print("  ".join([*cells, row[-1]]))


def create_volume(args: argparse.Namespace) -> int:
    """``volume create NAME``."""
    store = _store_for(args.name)
    with _errors():
        store.create(args.name)
    print(f"Created volume {args.name!r} in {store.url}")
    return 0


def list_volumes(args: argparse.Namespace) -> int:
    """``volume list``: a table of names, sizes and modification times."""
    with _errors():
        store = VolumeStore()
        infos = store.list()
    if not infos:
        print(f"No volumes in {store.url}. Create one with `jupyter-remote volume create NAME`.")
        return 0
    rows = [("NAME", "FILES", "BYTES", "MODIFIED")]
    rows += [(i.name, str(i.files), str(i.size), _when(i.mtime)) for i in infos]
    _table(rows, {1, 2})
    return 0


def _shown(entry: FileEntry) -> str:
    return "/" + entry.path + ("/" if entry.type == FileEntryType.DIRECTORY else "")


def ls_volume(args: argparse.Namespace) -> int:
    """``volume ls NAME [PATH] [-r]``: type, size, modification time and path of each entry."""
    store = _store_for(args.name, args.path)
    with _errors():
        entries = store.listdir(args.name, args.path, recursive=args.recursive)
    if entries:
        rows = [(_TYPES[e.type], str(e.size), _when(e.mtime), _shown(e)) for e in entries]
        _table([("TYPE", "BYTES", "MODIFIED", "PATH"), *rows], {1})
    return 0


def put_volume(args: argparse.Namespace) -> int:
    """``volume put NAME LOCAL [REMOTE] [--force]``: a file or a whole directory."""
    store = _store_for(args.name, args.remote)
    local: str = args.local
    remote: str = args.remote
    if remote.endswith("/"):
        remote += os.path.basename(os.path.normpath(local))
    with _errors():
        if os.path.isdir(local):
            store.put_directory(args.name, local, remote, force=args.force)
        elif os.path.exists(local):
            store.put_file(args.name, local, remote, force=args.force)
        else:
            raise CliError(f"{local} does not exist", EXIT_RUNTIME)
    print(f"Uploaded {local} to {display_path(normalize_path(remote))} in volume {args.name!r}")
    return 0


def _download(store: VolumeStore, name: str, rel: str, dest: str, force: bool) -> None:
    if os.path.exists(dest) and not force:
        raise CliError(f"{dest} exists; pass --force to overwrite it", EXIT_RUNTIME)
    parent = os.path.dirname(os.path.abspath(dest))
    os.makedirs(parent, exist_ok=True)
    fd, temp = tempfile.mkstemp(dir=parent, prefix=".jr-download-")
    try:
        with os.fdopen(fd, "wb") as out:
            for chunk in store.read(name, rel):
                out.write(chunk)
        os.replace(temp, dest)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temp)


def get_volume(args: argparse.Namespace) -> int:
    """``volume get NAME PATH [LOCAL|-] [--force]``: a file or a directory, or a file to stdout."""
    store = _store_for(args.name, args.path)
    rel = normalize_path(args.path)
    local: str = args.local
    with _errors():
        entry = store.stat(args.name, rel)
        if entry is None:
            raise FileNotFoundError(f"{display_path(rel)} does not exist in volume {args.name!r}")
        if local == "-":
            if entry.type == FileEntryType.DIRECTORY:
                raise CliError(f"{display_path(rel)} is a directory; '-' takes a file", EXIT_USAGE)
            out = sys.stdout.buffer
            for chunk in store.read(args.name, rel):
                out.write(chunk)
            out.flush()
            return 0
        base = os.path.basename(rel) or args.name
        dest = os.path.join(local, base) if os.path.isdir(local) else local
        if entry.type != FileEntryType.DIRECTORY:
            _download(store, args.name, rel, dest, args.force)
        else:
            for item in store.listdir(args.name, rel, recursive=True):
                inner = item.path[len(rel) :].lstrip("/").split("/")
                target = os.path.join(dest, *inner)
                if item.type == FileEntryType.DIRECTORY:
                    os.makedirs(target, exist_ok=True)
                elif item.type == FileEntryType.FILE:
                    _download(store, args.name, item.path, target, args.force)
            os.makedirs(dest, exist_ok=True)
    print(f"Downloaded {display_path(rel)} from volume {args.name!r} to {dest}")
    return 0


def cp_volume(args: argparse.Namespace) -> int:
    """``volume cp NAME SRC... DST [-r]``."""
    if len(args.paths) < 2:
        raise CliError("give at least one source and a destination: volume cp NAME SRC... DST")
    store = _store_for(args.name, *args.paths)
    *sources, dst = args.paths
    with _errors():
        store.copy(args.name, sources, dst, recursive=args.recursive)
    return 0


def rm_volume(args: argparse.Namespace) -> int:
    """``volume rm NAME PATH [-r]``."""
    store = _store_for(args.name, args.path)
    with _errors():
        store.remove(args.name, args.path, recursive=args.recursive)
    return 0


def delete_volume(args: argparse.Namespace) -> int:
    """``volume delete NAME [--yes]``: asks first on a terminal; needs --yes otherwise."""
    store = _store_for(args.name)
    with _errors():
        if not store.exists(args.name):
            raise ConfigError(f"volume {args.name!r} does not exist in {store.url}")
    if not args.yes:
        if sys.stdin is None or not sys.stdin.isatty():
            raise CliError(
                f"not deleting volume {args.name!r}: stdin is not a terminal to confirm on; "
                "pass --yes to delete without asking"
            )
        if not confirm(f"Delete volume {args.name!r} and every file in it? This cannot be undone."):
            print("Not deleted.", file=sys.stderr)
            return EXIT_RUNTIME
    with _errors():
        store.delete(args.name)
    print(f"Deleted volume {args.name!r}")
    return 0
