"""The public surface: one sorted ``__all__`` and one exception tree, kept honest."""

from __future__ import annotations

import inspect
import pickle
import re

import jupyter_remote
from jupyter_remote import exceptions


def test_all_is_sorted_and_unique() -> None:
    assert list(jupyter_remote.__all__) == sorted(jupyter_remote.__all__)
    assert len(set(jupyter_remote.__all__)) == len(jupyter_remote.__all__)


def test_every_name_in_all_exists() -> None:
    missing = [name for name in jupyter_remote.__all__ if not hasattr(jupyter_remote, name)]
    assert missing == []


def test_every_public_class_and_function_is_in_all() -> None:
    exposed = set()
    for name, value in vars(jupyter_remote).items():
        if name.startswith("_") or inspect.ismodule(value):
            continue
        if not (inspect.isclass(value) or inspect.isfunction(value)):
            continue
        if getattr(value, "__module__", "").split(".")[0] == "jupyter_remote":
            exposed.add(name)
    assert exposed == set(jupyter_remote.__all__)


def test_star_import_gives_exactly_all() -> None:
    namespace: dict[str, object] = {}
    exec("from jupyter_remote import *", namespace)
    assert sorted(k for k in namespace if k != "__builtins__") == jupyter_remote.__all__


def test_version() -> None:
    assert re.fullmatch(r"\d+\.\d+\.\d+.*", jupyter_remote.__version__)


def _exception_classes() -> dict[str, type[BaseException]]:
    return {
        name: value
        for name, value in vars(exceptions).items()
        if inspect.isclass(value)
        and issubclass(value, BaseException)
        and value.__module__ == exceptions.__name__
    }


def test_exceptions_all_lists_every_exception() -> None:
    assert sorted(_exception_classes()) == sorted(exceptions.__all__)
    assert list(exceptions.__all__) == sorted(exceptions.__all__)


def test_every_exception_is_a_jupyter_remote_error() -> None:
    outside = [
        name
        for name, cls in _exception_classes().items()
        if not issubclass(cls, jupyter_remote.JupyterRemoteError)
    ]
    assert outside == ["RemoteTraceback"]


def test_every_user_facing_exception_is_exported() -> None:
    assert set(_exception_classes()) - {"RemoteTraceback"} <= set(jupyter_remote.__all__)
    for name in set(_exception_classes()) - {"RemoteTraceback"}:
        assert getattr(jupyter_remote, name) is getattr(exceptions, name)


def test_builtin_bases() -> None:
    assert issubclass(jupyter_remote.FunctionTimeoutError, TimeoutError)
    assert issubclass(jupyter_remote.OutputExpiredError, TimeoutError)
    assert issubclass(jupyter_remote.ConfigError, ValueError)
    assert issubclass(jupyter_remote.GpuUnavailableError, ValueError)
    assert not issubclass(jupyter_remote.SerializationError, ValueError)
    assert not issubclass(jupyter_remote.RemoteError, TimeoutError)


def test_docstring_tree_matches_the_classes() -> None:
    """The tree drawn in ``exceptions.__doc__`` is the real hierarchy, and complete."""
    assert exceptions.__doc__ is not None
    classes = _exception_classes()
    parents: dict[str, str | None] = {}
    stack: list[str] = []
    for line in exceptions.__doc__.splitlines():
        match = re.search(r"\b([A-Z]\w*Error)\b", line)
        if match is None or not re.match(r"^[\s│├└─]*$", line[: match.start()]):
            continue
        depth = (match.start() - 4) // 4
        stack[depth:] = [match.group(1)]
        parents[match.group(1)] = stack[depth - 1] if depth > 0 else None
    assert set(parents) == set(classes) - {"RemoteTraceback"}
    for name, parent in parents.items():
        if parent is None:
            assert classes[name].__bases__ == (Exception,)
        else:
            assert classes[name].__bases__[0] is classes[parent], name


def test_remote_error_pickles_with_its_traceback() -> None:
    err = jupyter_remote.RemoteError("KeyError: 'x'", "Traceback ...\nKeyError: 'x'\n")
    back = pickle.loads(pickle.dumps(err))
    assert type(back) is jupyter_remote.RemoteError
    assert str(back) == "KeyError: 'x'"
    assert back.remote_traceback == err.remote_traceback
    assert back._render_traceback_() == ["Traceback ...\nKeyError: 'x'"]
    assert jupyter_remote.RemoteError("plain")._render_traceback_() == ["plain"]
