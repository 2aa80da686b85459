"""What every subcommand shares: the parser class, the error it raises, exit codes."""

from __future__ import annotations

import argparse
import sys
from typing import NoReturn, TypeAlias

__all__ = ["EXIT_RUNTIME", "EXIT_USAGE", "CliError", "Parser", "Subparsers", "confirm"]

EXIT_RUNTIME = 1
EXIT_USAGE = 2


class CliError(Exception):
    """Printed by ``main`` as one ``Error: ...`` line; never escapes ``main``."""

    def __init__(self, message: str, exit_code: int = EXIT_USAGE) -> None:
        super().__init__(message)
        self.exit_code = exit_code


class Parser(argparse.ArgumentParser):
    """An ``ArgumentParser`` whose errors become one ``Error: ...`` line with a hint."""

    def error(self, message: str) -> NoReturn:
        raise CliError(f"{message} (see `{self.prog} --help`)")


Subparsers: TypeAlias = "argparse._SubParsersAction[Parser]"


def confirm(question: str) -> bool:
    """Ask ``question [y/N]`` on stderr (the terminal even when stdout is piped)."""
    print(f"{question} [y/N] ", end="", file=sys.stderr, flush=True)
    return sys.stdin.readline().strip().lower() in ("y", "yes")
