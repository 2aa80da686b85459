"""``jupyter-remote run TARGET [--param value ...]``: Modal's ``modal run``.

A local entrypoint runs here inside ``app.run()``; an ``@app.function()`` runs
on a worker with ``.remote()`` and its result is printed.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import inspect
import sys
import traceback
import types
from pathlib import Path
from types import TracebackType
from typing import Any

from ..api import LocalEntrypoint
from ..api._progress import override_progress
from ..backends import REGISTRY
from ..exceptions import JupyterRemoteError, RemoteError
from ._common import EXIT_RUNTIME, CliError, Subparsers
from ._signature import parse_call
from ._target import Runnable, UserImportError, import_target, select, split_target

__all__ = ["add_parser", "run"]

_HERE = str(Path(__file__).resolve().parent)
_DESCRIPTION = """\
Import a script or module and run its local entrypoint here, or run one of its
@app.function() functions on a worker and print the result. Options after TARGET
are the parameters of what it runs (see `jupyter-remote run TARGET --help`).
"""
_EPILOG = """\
examples:
  jupyter-remote run train.py                 the script's local entrypoint
  jupyter-remote run train.py::main --n 3     a named entrypoint, with its parameters
  jupyter-remote run train.py::square --x 7   an @app.function(), run on a worker
  jupyter-remote run train.py::main --help    the parameters a target takes
  jupyter-remote run -m pkg.train::main       a module, as `python -m` finds it
  jupyter-remote run -q train.py              no progress bars
"""


def add_parser(subparsers: Subparsers) -> None:
    parser = subparsers.add_parser(
        "run",
        help="run a script's local entrypoint or function",
        description=_DESCRIPTION,
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--backend",
        metavar="NAME",
        help=f"where workers run ({', '.join(sorted(REGISTRY))}); default: the App's or the "
        "JUPYTER_REMOTE_BACKEND setting",
    )
    parser.add_argument(
        "-q",
        "--quiet",
        action="store_true",
        help="show no progress bars or summary lines (workers' output still streams)",
    )
    parser.add_argument(
        "-m",
        dest="module_path",
        action="store_true",
        help="TARGET is a module name (pkg.mod[::name]), as in `python -m`, even if a file "
        "of that name exists",
    )
    parser.add_argument(
        "-d",
        "--detach",
        action="store_true",
        help="not available yet: it needs the app server (deployments)",
    )
    parser.add_argument(
        "target",
        metavar="TARGET",
        help="path/to/script.py or package.module, optionally followed by ::name",
    )
    parser.add_argument("params", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)
    parser.set_defaults(handler=run)


def _user_frames(tb: TracebackType | None) -> TracebackType | None:
    """Skip this CLI's and importlib's frames at the top of a traceback: user code comes first."""
    while tb is not None and tb.tb_frame.f_code.co_filename.startswith((_HERE, "<frozen ")):
        tb = tb.tb_next
    return tb


def _print_user_error(exc: BaseException) -> int:
    """Print what user code raised, with its (remote) traceback; exit 1."""
    if isinstance(exc, JupyterRemoteError) and not isinstance(exc, RemoteError):
        # Our own errors say what to do next; their internal frames would only hide that.
        print(f"Error: {exc}", file=sys.stderr)
        return EXIT_RUNTIME
    tb = _user_frames(exc.__traceback__)
    lines = traceback.TracebackException(type(exc), exc, tb).format()
    sys.stderr.write("".join(lines))
    if isinstance(exc, RemoteError) and exc.remote_traceback:
        sys.stderr.write("\nRemote traceback:\n" + exc.remote_traceback.rstrip("\n") + "\n")
    return EXIT_RUNTIME


def _call(target: Runnable, args: list[Any], kwargs: dict[str, Any]) -> None:
    obj = target.obj
    if isinstance(obj, LocalEntrypoint):
        result = obj.raw_f(*args, **kwargs)
        if inspect.iscoroutine(result):
            asyncio.run(result)
    elif obj.is_generator:
        for item in obj.remote_gen(*args, **kwargs):
            print(item, flush=True)
    else:
        value = obj.remote(*args, **kwargs)
        if value is not None:
            print(value, flush=True)


def import_user_target(where: str, *, module_path: bool = False) -> types.ModuleType | int:
    """Import a command's script or module; if that raises, report it and return an exit code."""
    try:
        return import_target(where, module_path=module_path)
    except UserImportError as exc:
        cause = exc.__cause__
        assert cause is not None
        if isinstance(cause, JupyterRemoteError) and not isinstance(cause, RemoteError):
            raise CliError(f"importing {where} failed: {cause}", EXIT_RUNTIME) from cause
        print(f"Error: importing {where} failed:", file=sys.stderr)
        return _print_user_error(cause)


def run(args: argparse.Namespace) -> int:
    """Import the target, parse its parameters, run it; return the exit code."""
    backend: str | None = args.backend
    if backend is not None and backend not in REGISTRY:
        raise CliError(f"unknown backend {backend!r}; choose one of {', '.join(sorted(REGISTRY))}")
    if args.detach:
        raise CliError(
            "--detach is not supported yet; to keep an app running after this command ends, "
            "deploy it (`jupyter-remote deploy FILE`) and call it with Function.from_name, "
            "or run without --detach (the app stops when this command ends)"
        )
    where, name = split_target(args.target)
    module = import_user_target(where, module_path=args.module_path)
    if isinstance(module, int):
        return module  # importing it raised: the traceback is printed
    target = select(where, module, name)
    shown = f"{where}::{target.name}"
    call_args, call_kwargs = parse_call(f"jupyter-remote run {shown}", target.raw_f, args.params)
    quiet = override_progress(False) if args.quiet else contextlib.nullcontext()
    try:
        with quiet, target.app.run(backend=backend):
            _call(target, call_args, call_kwargs)
    except Exception as exc:  # KeyboardInterrupt and sys.exit() are main()'s to handle
        return _print_user_error(exc)
    return 0
