"""``jupyter-remote secret create|list|delete``: Modal's ``modal secret``.

Values come from arguments, a ``.env`` file or stdin (``KEY=-``); no command
prints them.
"""

from __future__ import annotations

import argparse
import functools
import getpass
import sys
from collections.abc import Iterable
from typing import Any

from ..backends import REGISTRY
from ..config import load_settings
from ..exceptions import BackendError, ConfigError
from ..state import secret_store
from ..state._secrets import (
    SecretStore,
    check_env_key,
    check_secret_name,
    read_dotenv,
    secret_not_found,
)
from ._common import EXIT_RUNTIME, EXIT_USAGE, CliError, Parser, Subparsers, confirm

__all__ = ["add_parser", "create_secret", "delete_secret", "list_secrets"]

_DESCRIPTION = """\
Secrets are named sets of environment variables for the functions that use
them: `@app.function(secrets=[jr.Secret.from_name("db")])`. Values are never
printed. They are kept where the backend's workers get them: a local file for
the local backend, Nomad Variables (jupyter_remote/secrets/NAME) for Nomad.
"""
_EPILOG = """\
examples:
  jupyter-remote secret create db USER=admin PASSWORD=-   PASSWORD read from stdin
  jupyter-remote secret create api --from-dotenv .env     every key of a .env file
  jupyter-remote secret create db USER=root --force       replace an existing secret
  jupyter-remote secret list
  jupyter-remote secret delete db --yes
  jupyter-remote secret --backend nomad list              the Nomad cluster's secrets
"""


class _Parser(Parser):
    """Lets ``KEY=VALUE`` words follow options too: ``secret create db --force A=1``.

    argparse fills a ``nargs="*"`` positional from the words before the first
    option only; the words after it come back unrecognized, and are pairs here.
    """

    def parse_known_args(
        self, args: Iterable[str] | None = None, namespace: Any = None
    ) -> tuple[Any, list[str]]:
        parsed, extras = super().parse_known_args(args, namespace)
        if isinstance(getattr(parsed, "pairs", None), list):
            parsed.pairs += [word for word in extras if not word.startswith("-")]
            extras = [word for word in extras if word.startswith("-")]
        return parsed, extras


def add_parser(subparsers: Subparsers) -> None:
    parser = subparsers.add_parser(
        "secret",
        help="create, list and delete secrets",
        description=_DESCRIPTION,
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.set_defaults(handler=functools.partial(_show_help, parser))
    _add_backend_option(parser)
    commands = parser.add_subparsers(title="commands", metavar="COMMAND", parser_class=_Parser)

    create = commands.add_parser(
        "create",
        help="create a secret from KEY=VALUE pairs and/or a .env file",
        description="Create a secret. Values given as arguments stay in your shell history: "
        "use KEY=- to read one value from stdin (or a hidden prompt on a terminal).",
    )
    create.add_argument("name", metavar="NAME", help="the secret's name")
    create.add_argument(
        "pairs", nargs="*", metavar="KEY=VALUE", help="a variable; these win over --from-dotenv"
    )
    create.add_argument("--from-dotenv", metavar="FILE", help="read variables from a .env file")
    create.add_argument("--force", action="store_true", help="replace the secret if it exists")
    create.set_defaults(handler=create_secret)
    _add_backend_option(create)

    listing = commands.add_parser("list", help="list secrets: names, keys, update times")
    listing.set_defaults(handler=list_secrets)
    _add_backend_option(listing)

    delete = commands.add_parser("delete", help="delete a secret")
    delete.add_argument("name", metavar="NAME", help="the secret's name")
    delete.add_argument("--yes", "-y", action="store_true", help="do not ask for confirmation")
    delete.set_defaults(handler=delete_secret)
    _add_backend_option(delete)


def _add_backend_option(parser: Parser) -> None:
    # On `secret` and on each subcommand, so that `secret --backend nomad list` and
    # `secret list --backend nomad` both work; SUPPRESS keeps a subcommand from
    # overwriting the value given before it with a default.
    parser.add_argument(
        "--backend",
        metavar="NAME",
        default=argparse.SUPPRESS,
        help="the backend whose secrets to manage: "
        f"{', '.join(sorted(REGISTRY))} (default: the configured backend)",
    )


def _show_help(parser: Parser, args: argparse.Namespace) -> int:
    parser.print_help(sys.stderr)
    return EXIT_USAGE


def _store(args: argparse.Namespace) -> SecretStore:
    """The store of ``--backend``, else of the configured backend (``backend`` setting)."""
    backend: str | None = getattr(args, "backend", None)
    if backend is None:
        try:
            backend = load_settings().backend
        except ConfigError as exc:
            raise CliError(str(exc), EXIT_RUNTIME) from None
    if backend not in REGISTRY:
        raise CliError(f"unknown backend {backend!r}; choose one of {', '.join(sorted(REGISTRY))}")
    return secret_store(backend)


def _name(args: argparse.Namespace) -> str:
    try:
        return check_secret_name(args.name)
    except ConfigError as exc:
        raise CliError(str(exc)) from None


def _names(store: SecretStore) -> set[str]:
    try:
        return {info.name for info in store.list()}
    except (ConfigError, BackendError) as exc:
        raise CliError(str(exc), EXIT_RUNTIME) from None


def _read_stdin(key: str) -> str:
    if sys.stdin is not None and sys.stdin.isatty():
        return getpass.getpass(f"Value for {key}: ")
    value = sys.stdin.read() if sys.stdin is not None else ""
    return value.removesuffix("\n").removesuffix("\r")


def _values(args: argparse.Namespace, name: str) -> dict[str, str]:
    values: dict[str, str] = {}
    if args.from_dotenv is not None:
        try:
            values.update(read_dotenv(args.from_dotenv))
        except ConfigError as exc:
            raise CliError(str(exc)) from None
    from_stdin: str | None = None
    for position, pair in enumerate(args.pairs, start=1):
        key, eq, value = pair.partition("=")
        if not eq:
            # The argument may be a value typed without its key: never echo it.
            raise CliError(f"argument {position} after {name} is not KEY=VALUE")
        try:
            check_env_key(key, f"secret {name!r}")
        except ConfigError as exc:
            raise CliError(str(exc)) from None
        if value == "-":
            if from_stdin is not None:
                raise CliError(f"only one key can read stdin (KEY=-): {from_stdin} and {key} do")
            from_stdin = key
            value = _read_stdin(key)
        values[key] = value
    if not values:
        raise CliError("give the secret's variables: KEY=VALUE ... and/or --from-dotenv FILE")
    return values


def create_secret(args: argparse.Namespace) -> int:
    """``secret create NAME KEY=VALUE... [--from-dotenv FILE] [--force]``."""
    name = _name(args)
    values = _values(args, name)
    store = _store(args)
    existed = name in _names(store)
    if existed and not args.force:
        raise CliError(f"secret {name!r} already exists; pass --force to replace it", EXIT_RUNTIME)
    try:
        store.put(name, values, overwrite=args.force)
    except (ConfigError, BackendError) as exc:
        raise CliError(str(exc), EXIT_RUNTIME) from None
    verb = "Replaced" if existed else "Created"
    print(f"{verb} secret {name!r} with keys: {', '.join(sorted(values))}")
    return 0


def list_secrets(args: argparse.Namespace) -> int:
    """``secret list``: a table of names, keys and update times."""
    try:
        infos = _store(args).list()
    except (ConfigError, BackendError) as exc:
        raise CliError(str(exc), EXIT_RUNTIME) from None
    if not infos:
        print("No secrets. Create one with `jupyter-remote secret create NAME KEY=VALUE`.")
        return 0
    rows = [("NAME", "KEYS", "UPDATED")]
    for info in infos:
        updated = info.updated_at.astimezone().strftime("%Y-%m-%d %H:%M:%S")
        rows.append((info.name, ", ".join(info.keys), updated))
    widths = [max(len(row[i]) for row in rows) for i in range(2)]
    for row in rows:
        print(f"{row[0]:<{widths[0]}}  {row[1]:<{widths[1]}}  {row[2]}")
    return 0


def delete_secret(args: argparse.Namespace) -> int:
    """``secret delete NAME [--yes]``: asks first on a terminal; needs --yes otherwise."""
    name = _name(args)
    store = _store(args)
    if name not in _names(store):
        raise CliError(str(secret_not_found(name)), EXIT_RUNTIME)
    if not args.yes:
        if sys.stdin is None or not sys.stdin.isatty():
            raise CliError(
                f"not deleting secret {name!r}: stdin is not a terminal to confirm on; "
                "pass --yes to delete without asking"
            )
        if not confirm(f"Delete secret {name!r}? This cannot be undone."):
            print("Not deleted.", file=sys.stderr)
            return EXIT_RUNTIME
    try:
        store.delete(name)
    except (ConfigError, BackendError) as exc:
        raise CliError(str(exc), EXIT_RUNTIME) from None
    print(f"Deleted secret {name!r}")
    return 0
