"""``jupyter-remote image ls|build|rm|prune``: the image cache of this machine.

Images are cached in ``$JUPYTER_REMOTE_CACHE/images`` (default
``$XDG_CACHE_HOME/jupyter_remote/images``), one virtual environment per key.
"""

from __future__ import annotations

import argparse
import sys
import time
import types

from ..api._image import Image
from ..backends._images import CachedImage, ImageBuilder
from ..exceptions import JupyterRemoteError
from ._common import EXIT_RUNTIME, EXIT_USAGE, CliError, Parser, Subparsers
from ._run import import_user_target
from ._target import split_target

__all__ = ["add_parser"]

_EPILOG = """\
examples:
  jupyter-remote image build train.py::image   build the Image assigned to `image` in train.py
  jupyter-remote image ls                      what is cached, most recently used first
  jupyter-remote image rm 3f2a                 remove the image whose key starts with 3f2a
  jupyter-remote image prune --unused-days 30  remove failed builds and images unused for 30 days
"""
_SHOWN_KEY = 12
_SHOWN_DESCRIPTION = 60


def add_parser(subparsers: Subparsers) -> None:
    parser = subparsers.add_parser(
        "image",
        help="build, list and remove cached images",
        description="Build, list and remove the images cached on this machine.",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.set_defaults(handler=lambda _args: _help(parser))
    commands = parser.add_subparsers(title="commands", metavar="COMMAND", parser_class=Parser)

    ls = commands.add_parser("ls", help="list cached images", description="List cached images.")
    ls.set_defaults(handler=list_images)

    build = commands.add_parser(
        "build",
        help="build an Image defined in a script or module",
        description="Import a script or module and build one of its Images, showing the output.",
    )
    build.add_argument(
        "target",
        metavar="TARGET",
        help="path/to/script.py or package.module, optionally followed by ::name",
    )
    build.set_defaults(handler=build_image)

    rm = commands.add_parser(
        "rm", help="remove cached images", description="Remove cached images by key prefix."
    )
    rm.add_argument("prefixes", metavar="KEY_PREFIX", nargs="+", help="the start of a key")
    rm.set_defaults(handler=remove_images)

    prune = commands.add_parser(
        "prune",
        help="remove failed builds and unused images",
        description="Remove failed or interrupted builds, and images unused for a while.",
    )
    prune.add_argument(
        "--unused-days",
        type=float,
        metavar="N",
        help="also remove images not used for N days",
    )
    prune.set_defaults(handler=prune_images)


def _help(parser: argparse.ArgumentParser) -> int:
    parser.print_help(sys.stderr)
    return EXIT_USAGE


def _when(epoch: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M", time.localtime(epoch))


def _row(info: CachedImage) -> str:
    desc = info.description
    if len(desc) > _SHOWN_DESCRIPTION:
        desc = desc[: _SHOWN_DESCRIPTION - 1] + "…"
    size = f"{info.size / 1e6:.1f}"
    return (
        f"{info.key[:_SHOWN_KEY]:<12}  {size:>8}  {_when(info.created):<16}  "
        f"{_when(info.last_used):<16}  {desc}"
    )


def list_images(_args: argparse.Namespace) -> int:
    builder = ImageBuilder()
    found = builder.list()
    if not found:
        print(f"no images cached in {builder.cache_dir}")
        return 0
    print(f"{'KEY':<12}  {'SIZE MB':>8}  {'CREATED':<16}  {'LAST USED':<16}  DESCRIPTION")
    for info in found:
        print(_row(info))
    return 0


def _images(module: types.ModuleType) -> dict[str, Image]:
    return {k: v for k, v in vars(module).items() if isinstance(v, Image)}


def _choose(where: str, images: dict[str, Image], name: str | None) -> tuple[str, Image]:
    if name is not None:
        if name in images:
            return name, images[name]
        choices = f"; its Images: {', '.join(sorted(images))}" if images else ""
        raise CliError(f"{where} has no Image named {name!r}{choices}")
    if len(images) == 1:
        return next(iter(images.items()))
    if not images:
        raise CliError(f"{where} defines no Image (e.g. `image = jr.Image.debian_slim()`)")
    raise CliError(
        f"{where} has {len(images)} Images ({', '.join(sorted(images))}); choose one, "
        f"e.g. `jupyter-remote image build {where}::{sorted(images)[0]}`"
    )


def build_image(args: argparse.Namespace) -> int:
    where, name = split_target(args.target)
    module = import_user_target(where)
    if isinstance(module, int):
        return module  # importing it raised: the traceback is printed
    shown, image = _choose(where, _images(module), name)
    try:
        built = ImageBuilder().ensure(image, lambda line: print(line, flush=True))
    except JupyterRemoteError as exc:
        raise CliError(str(exc), EXIT_RUNTIME) from exc
    state = "built" if built.built else "already built"
    print(f"{shown}: image {built.key[:_SHOWN_KEY]} {state}; python: {built.python}")
    return 0


def remove_images(args: argparse.Namespace) -> int:
    builder = ImageBuilder()
    keys = sorted(i.key for i in builder.list())
    chosen: list[str] = []
    for prefix in args.prefixes:
        matches = [k for k in keys if k.startswith(prefix.lower())]
        if not matches:
            raise CliError(f"no cached image has a key starting with {prefix!r} (see `image ls`)")
        if len(matches) > 1:
            listing = ", ".join(k[:_SHOWN_KEY] for k in matches)
            raise CliError(f"{prefix!r} matches {len(matches)} images ({listing}); give more of it")
        chosen.append(matches[0])
    for key in chosen:
        try:
            builder.remove(key)
        except JupyterRemoteError as exc:
            raise CliError(str(exc), EXIT_RUNTIME) from exc
        print(f"removed {key[:_SHOWN_KEY]}")
    return 0


def prune_images(args: argparse.Namespace) -> int:
    days: float | None = args.unused_days
    if days is not None and days < 0:
        raise CliError(f"--unused-days {days:g}: give a number of days >= 0")
    removed = ImageBuilder().prune(None if days is None else days * 86400)
    for key in removed:
        print(f"removed {key[:_SHOWN_KEY]}")
    print(f"{len(removed)} removed")
    return 0
