"""Command-line options from a function's signature, the way ``modal run`` builds them.

Each parameter becomes ``--name VALUE`` (``--some-name`` and ``--some_name`` both
work); ``int``, ``float``, ``str`` and ``bool`` annotations (or defaults of those
types) convert the value, and ``bool`` becomes ``--flag/--no-flag``. A parameter
without a default is a required option.
"""

from __future__ import annotations

import argparse
import inspect
import types
import typing
from collections.abc import Callable
from typing import Any

from ._common import CliError, Parser

__all__ = ["parse_call"]

_SUPPORTED: dict[str, type] = {"int": int, "float": float, "str": str, "bool": bool}


def _signature(fn: Callable[..., Any]) -> inspect.Signature:
    try:
        return inspect.signature(fn, eval_str=True)
    except Exception:
        # An annotation that does not evaluate here (e.g. imported under TYPE_CHECKING).
        return inspect.signature(fn)


def _strip_optional(annotation: Any) -> Any:
    if isinstance(annotation, str):
        parts = [p.strip() for p in annotation.split("|") if p.strip() != "None"]
        text = parts[0] if len(parts) == 1 else annotation
        if text.startswith("Optional[") and text.endswith("]"):
            text = text[len("Optional[") : -1]
        return _SUPPORTED.get(text, annotation)
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        if len(args) == 1:
            return args[0]
    return annotation


def _kind_of(param: inspect.Parameter) -> type | None:
    """The type to convert the value to, or ``None`` when the command line cannot express it."""
    annotation = _strip_optional(param.annotation)
    if annotation is inspect.Parameter.empty or annotation is Any:
        default = param.default
        if default is inspect.Parameter.empty or default is None:
            return str
        return type(default) if type(default) in _SUPPORTED.values() else None
    return annotation if annotation in _SUPPORTED.values() else None


def _add_option(parser: Parser, param: inspect.Parameter, kind: type) -> None:
    flags = [f"--{param.name.replace('_', '-')}"]
    if param.name.replace("_", "-") != param.name:
        flags.append(f"--{param.name}")
    required = param.default is inspect.Parameter.empty
    default = argparse.SUPPRESS if required else param.default
    note = "required" if required else f"default: {param.default!r}"
    if kind is bool:
        parser.add_argument(
            *flags,
            dest=param.name,
            action=argparse.BooleanOptionalAction,
            required=required,
            default=default,
            help=f"({note})",
        )
        return
    parser.add_argument(
        *flags,
        dest=param.name,
        type=kind,
        required=required,
        default=default,
        metavar=kind.__name__.upper(),
        help=f"({kind.__name__}, {note})",
    )


def _build_parser(prog: str, fn: Callable[..., Any]) -> tuple[Parser, list[str]]:
    """The parser, and the names of the positional-only parameters (passed positionally)."""
    doc = inspect.getdoc(fn) or ""
    parser = Parser(
        prog=prog,
        description=doc or None,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    positional: list[str] = []
    for param in _signature(fn).parameters.values():
        if param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
            continue
        kind = _kind_of(param)
        if kind is None:
            if param.default is not inspect.Parameter.empty:
                continue  # keeps its default: the command line cannot express it
            raise CliError(
                f"parameter {param.name!r} of {prog} has type {param.annotation!r}, which the "
                "command line cannot express; annotate it as int, float, str or bool, or give "
                "it a default"
            )
        if param.kind is param.POSITIONAL_ONLY:
            positional.append(param.name)
        try:
            _add_option(parser, param, kind)
        except argparse.ArgumentError as exc:
            raise CliError(
                f"parameter {param.name!r} of {prog} clashes with an option ({exc}); rename it"
            ) from None
    return parser, positional


def parse_call(
    prog: str, fn: Callable[..., Any], argv: list[str]
) -> tuple[list[Any], dict[str, Any]]:
    """Parse ``argv`` against ``fn``'s parameters into ``(args, kwargs)`` for calling it."""
    parser, positional = _build_parser(prog, fn)
    values = vars(parser.parse_args(argv))
    args = [values.pop(name) for name in positional if name in values]
    return args, values
