"""``main()``: build the parser from the subcommand modules, run one, map errors to exit codes."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable

from .. import __version__
from ._common import EXIT_RUNTIME, EXIT_USAGE, CliError, Parser, Subparsers
from ._image import add_parser as add_image
from ._nomad import add_parser as add_nomad
from ._run import add_parser as add_run
from ._secret import add_parser as add_secret
from ._shell import add_parser as add_shell
from ._volume import add_parser as add_volume

__all__ = ["build_parser", "main"]

# One entry per subcommand module; each registers its parser and sets ``handler``.
_COMMANDS: tuple[Callable[[Subparsers], None], ...] = (
    add_run,
    add_shell,
    add_secret,
    add_image,
    add_volume,
    add_nomad,
)


def build_parser() -> Parser:
    parser = Parser(
        prog="jupyter-remote",
        description="Run Python functions on workers: local processes or a Nomad cluster.",
    )
    parser.add_argument(
        "--version", action="version", version=f"%(prog)s {__version__}", help="show the version"
    )
    subparsers = parser.add_subparsers(title="commands", metavar="COMMAND", parser_class=Parser)
    for add_parser in _COMMANDS:
        add_parser(subparsers)
    return parser


def _exit_code(exc: SystemExit) -> int:
    if exc.code is None:
        return 0
    if isinstance(exc.code, int):
        return exc.code
    print(exc.code, file=sys.stderr)
    return EXIT_RUNTIME


def main(argv: list[str] | None = None) -> int:
    """Run ``jupyter-remote`` with ``argv`` (default: ``sys.argv[1:]``); return the exit code.

    >>> main(["--version"])  # doctest: +SKIP
    jupyter-remote 0.1.0
    0
    """
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
        handler: Callable[[argparse.Namespace], int] | None = getattr(args, "handler", None)
        if handler is None:
            parser.print_help(sys.stderr)
            return EXIT_USAGE
        return handler(args)
    except CliError as exc:
        print(f"Error: {exc}", file=sys.stderr)
        return exc.exit_code
    except SystemExit as exc:  # --help, --version, or sys.exit() in user code
        return _exit_code(exc)
    except KeyboardInterrupt:
        print("Aborted.", file=sys.stderr)
        return 130
