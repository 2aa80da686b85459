"""What a class with ``jr.parameter()`` fields carries to its workers.

The class travels pickled, with these objects in it; this module imports
nothing, so unpickling the class on a worker loads no more than the protocol.
"""

from __future__ import annotations

from typing import Any

__all__ = ["NO_DEFAULT", "Parameter", "construct", "parameters_of"]


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
