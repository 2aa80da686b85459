"""What a class with ``jr.parameter()`` fields carries to its workers.

The class travels pickled, with these objects in it; this module imports
the protocol only, so unpickling the class on a worker loads no more. The app
server binds a deployed class's parameters here too, without its API objects.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from typing import Any

from ..protocol import Payload, loads

__all__ = [
    "NO_DEFAULT",
    "ClassParameters",
    "Parameter",
    "PickledClass",
    "bind_parameters",
    "construct",
    "parameters_of",
]


class _NoDefault:
    def __repr__(self) -> str:
        return "<no default>"

    def __reduce__(self) -> str:
        return "NO_DEFAULT"  # the module's own singleton, on every side


NO_DEFAULT: Any = _NoDefault()


class Parameter:
    """A ``jr.parameter()`` field: its default and whether the constructor takes it.

    A non-data descriptor: the value set on the instance wins; an instance made
    without one reads the default.
    """

    def __init__(self, default: Any = NO_DEFAULT, init: bool = True) -> None:
        self.default = default
        self.init = init
        self.name = ""

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return f"parameter(default={self.default!r}, init={self.init})"

    def __get__(self, obj: Any, owner: type | None = None) -> Any:
        if obj is None:
            return self
        if self.default is NO_DEFAULT:
            raise AttributeError(f"parameter {self.name!r} has no value and no default")
        return self.default


class PickledClass:
    """A class pickled once (at deploy time) inside another pickle, which loads it.

    The app server makes a definition per set of parameters from it without ever
    loading the class (it may not import the app's modules).
    """

    def __init__(self, payload: Payload) -> None:
        self.payload = payload

    def __reduce__(self) -> tuple[Any, ...]:
        return (loads, (self.payload,))


def parameters_of(cls: type) -> dict[str, Parameter]:
    """The ``jr.parameter()`` fields of ``cls`` and its bases, by name."""
    found: dict[str, Parameter] = {}
    for klass in reversed(cls.__mro__):
        for name, attr in vars(klass).items():
            if isinstance(attr, Parameter):
                found[name] = attr
    return found


def construct(cls: type, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    """An instance of a user class: a parametrized one (no ``__init__``) gets its values set.

    ``kwargs`` of a parametrized class were checked by the caller (``bind_parameters``).
    """
    if not parameters_of(cls):
        return cls(*args, **kwargs)
    obj = cls()
    for name, value in kwargs.items():
        setattr(obj, name, value)
    return obj


ClassParameters = Mapping[str, tuple[type, Parameter]]  # name -> (type, field)


def bind_parameters(
    where: str,
    params: ClassParameters,
    args: tuple[Any, ...],
    kwargs: Mapping[str, Any],
) -> dict[str, Any]:
    """The constructor keywords checked against ``params``, defaults filled in, sorted by name."""
    settable = [name for name, (_, p) in params.items() if p.init]
    if args:
        raise TypeError(
            f"{where}() takes its parameters by keyword only, got {len(args)} positional "
            f"argument(s); e.g. {where}({', '.join(f'{n}=...' for n in settable) or ''})"
        )
    for name in kwargs:
        if name not in params:
            close = difflib.get_close_matches(name, settable, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise TypeError(
                f"{where}() got an unknown parameter {name!r}{hint}; its parameters: "
                f"{', '.join(settable) or 'none'}"
            )
        if not params[name][1].init:
            raise TypeError(
                f"{where}() cannot set {name!r}: it is a jr.parameter(init=False); "
                "set it on the instance in an @jr.enter() method instead"
            )
    bound: dict[str, Any] = {}
    for name, (kind, param) in sorted(params.items()):
        if not param.init:
            continue  # not the pool's: read through its default until the instance sets it
        value = kwargs.get(name, param.default)
        if value is NO_DEFAULT:
            raise TypeError(f"{where}() is missing the parameter {name!r} (it has no default)")
        if type(value) is not kind:
            raise TypeError(
                f"{where}(): parameter {name!r} takes a {kind.__name__}, not "
                f"{type(value).__name__} ({value!r})"
            )
        bound[name] = value
    return bound
