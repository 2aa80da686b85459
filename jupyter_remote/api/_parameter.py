"""``jr.parameter()``: the fields of an ``@app.cls`` that select its instances' pool.

``Model(size="large")`` binds keyword arguments to the class's parameters
(Modal's rules: keywords only, known names, ``str``/``int``/``bool``/``bytes``
values, defaults filled in); each distinct set of bound values is one pool,
whose workers see the values as attributes, ``@enter`` included.
"""

from __future__ import annotations

import inspect
from typing import Any

from ..runtime._params import NO_DEFAULT, Parameter, bind_parameters, parameters_of

__all__ = ["bind_parameters", "class_parameters", "parameter"]

_TYPES: dict[str, type] = {"str": str, "int": int, "bool": bool, "bytes": bytes}


def parameter(*, default: Any = NO_DEFAULT, init: bool = True) -> Any:
    """A class parameter (as Modal's): annotate it with ``str``, ``int``, ``bool`` or ``bytes``.

    >>> @app.cls()                                        # doctest: +SKIP
    ... class Model:
    ...     size: str = jr.parameter(default="small")
    ...     @jr.method()
    ...     def describe(self): return self.size
    >>> Model(size="large").describe.remote()             # doctest: +SKIP
    'large'

    ``init=False``: not a parameter, only a typed attribute (an ``@enter`` method sets it;
    until then it reads ``default``, if given).
    """
    if not isinstance(init, bool):
        raise TypeError(f"parameter(init=...) must be True or False, not {type(init).__name__}")
    return Parameter(default, init)


def _raw_annotation(user_cls: type, name: str) -> Any:
    for klass in user_cls.__mro__:
        annotations = inspect.get_annotations(klass)  # as written: strings stay strings
        if name in annotations:
            return annotations[name]
    return None


def _annotation(user_cls: type, name: str) -> type | None:
    raw = _raw_annotation(user_cls, name)
    if isinstance(raw, str):
        return _TYPES.get(raw.strip())
    return raw if raw in _TYPES.values() else None


def class_parameters(user_cls: type) -> dict[str, tuple[type, Parameter]]:
    """The parameters of ``user_cls`` (and its bases) with their types.

    Raises ``TypeError`` for a parameter without a supported type annotation, and
    for a class that has both parameters and its own ``__init__``.
    """
    found = parameters_of(user_cls)
    if not found:
        return {}
    where = user_cls.__name__
    if any("__init__" in vars(klass) for klass in user_cls.__mro__[:-1]):
        raise TypeError(
            f"{where} has jr.parameter() fields and its own __init__: remove __init__ and set "
            "up the instance in an @jr.enter() method (it sees the parameters as attributes)"
        )
    params: dict[str, tuple[type, Parameter]] = {}
    for name, param in found.items():
        if not param.init:  # Modal: only a typed attribute (an @enter sets it), any type
            params[name] = (object, param)
            continue
        kind = _annotation(user_cls, name)
        if kind is None:
            raw = _raw_annotation(user_cls, name)
            got = "no annotation" if raw is None else f"the annotation {raw!r}"
            raise TypeError(
                f"{where}.{name} = jr.parameter() has {got}; annotate it with one of the "
                f"supported types: {', '.join(_TYPES)} (e.g. `{name}: str = jr.parameter()`)"
            )
        if param.default is not NO_DEFAULT and type(param.default) is not kind:
            raise TypeError(
                f"{where}.{name}: the default {param.default!r} is not a {kind.__name__}"
            )
        params[name] = (kind, param)
    return params
