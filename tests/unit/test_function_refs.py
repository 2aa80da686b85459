"""A Function, Cls or Cls instance pickles as a reference to itself, whatever state it holds."""

from __future__ import annotations

import asyncio
import pickle
import subprocess
import sys
import textwrap
import threading
from pathlib import Path
from typing import Any

import pytest

import jupyter_remote as jr
from jupyter_remote.api._pickling import function_def
from jupyter_remote.config import Settings
from jupyter_remote.protocol import dumps, loads
from jupyter_remote.runtime._refs import ClsProxy, FunctionProxy, InstanceProxy


class Model:
    def __init__(self, k: int = 0) -> None:
        self.k = k

    @jr.method()
    def predict(self, x: int) -> int:
        return x + self.k


def _functions() -> tuple[jr.App, Any, Any]:
    app = jr.App("refs-unit")

    @app.function()
    def a(x: int) -> int:
        return x + 1

    @app.function()
    def b(x: int) -> int:
        return int(a.remote(x))

    return app, a, b


def test_a_function_holding_futures_and_locks_pickles_as_itself() -> None:
    _, a, _ = _functions()
    loop = asyncio.new_event_loop()
    a._state = (loop.create_future(), threading.Lock())  # what pools and calls hold
    try:
        assert loads(dumps(a)) is a
        assert pickle.loads(pickle.dumps(a)) is a
    finally:
        loop.close()


def test_a_captured_function_comes_back_as_the_callers_object() -> None:
    _, a, b = _functions()
    rebuilt = loads(dumps(b.raw_f))
    assert rebuilt.__closure__[0].cell_contents is a


def test_the_definition_of_a_caller_is_stable_and_small() -> None:
    _, _, b = _functions()
    first = function_def(b.raw_f, "function", "b", Settings())
    second = function_def(b.raw_f, "function", "b", Settings())
    assert first.hash == second.hash  # cached by hash on workers: sent once
    assert first.payload.nbytes < 4096


def test_copies_with_other_options_are_other_references() -> None:
    _, a, _ = _functions()
    fast = a.with_options(cpu=2)
    assert loads(dumps(fast)) is fast
    assert loads(dumps(a)) is a


def test_secret_values_never_travel_in_a_reference() -> None:
    app = jr.App("refs-secret")

    @app.function(secrets=[jr.Secret.from_dict({"TOKEN": "s3cr3t-VALUE-4711"})])
    def uses_secret() -> None:
        pass

    data = dumps(uses_secret)
    assert b"s3cr3t-VALUE-4711" not in bytes(data.data)
    assert all(b"s3cr3t" not in bytes(memoryview(buf)) for buf in data.buffers)


def test_cls_and_instances_pickle_as_themselves_and_their_methods() -> None:
    app = jr.App("refs-cls")
    cls = app.cls()(Model)
    instance = cls(3)
    assert loads(dumps(cls)) is cls
    assert loads(dumps(instance)) is instance
    assert loads(dumps(instance.predict)) is instance.predict


UNPICKLE = """
import pickle, sys
obj = pickle.loads(open(sys.argv[1], "rb").read())
print(repr(obj))
print(sorted(m for m in sys.modules if m.startswith("jupyter_remote.")))
try:
    {call}
except Exception as exc:
    print(type(exc).__name__, exc)
"""


def _unpickle_elsewhere(obj: Any, call: str, tmp_path: Path) -> list[str]:
    path = tmp_path / "ref.pkl"
    path.write_bytes(bytes(dumps(obj).data))
    script = textwrap.dedent(UNPICKLE).format(call=call)
    proc = subprocess.run(
        [sys.executable, "-c", script, str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return proc.stdout.splitlines()


def test_elsewhere_a_reference_is_a_proxy_that_imports_no_controller(tmp_path: Path) -> None:
    _, a, _ = _functions()
    shown, modules, error = _unpickle_elsewhere(a, "obj.remote(1)", tmp_path)
    assert shown == "<Function refs-unit.a (reference)>"
    for layer in ("api", "controller", "backends", "notebook", "cli"):
        assert f"'jupyter_remote.{layer}" not in modules
    assert error.startswith("RuntimeError refs-unit.a is a reference made by another process")
    _, _, local = _unpickle_elsewhere(a, "obj.local(1)", tmp_path)
    assert local.startswith("TypeError refs-unit.a is a reference to a function of the caller")


def test_elsewhere_a_cls_builds_instances_with_their_methods(tmp_path: Path) -> None:
    app = jr.App("refs-cls-elsewhere")
    cls = app.cls()(Model)
    shown, _, error = _unpickle_elsewhere(cls, "obj(5).nope", tmp_path)
    assert shown == "<Cls refs-cls-elsewhere.Model (reference)>"
    assert (
        error == "AttributeError InstanceProxy has no remote method 'nope'; remote methods: predict"
    )
    _, _, method = _unpickle_elsewhere(cls, "print(repr(obj(5).predict))", tmp_path)
    assert method == "<Function refs-cls-elsewhere.Model (reference)>"


def test_a_proxy_pickles_back_as_the_same_reference() -> None:
    app, a, _ = _functions()
    _, (ref,) = a.__reduce__()
    assert loads(dumps(FunctionProxy(ref))) is a  # back in the caller's process: ``a`` itself
    cls = app.cls()(Model)
    _, (cls_ref,) = cls.__reduce__()
    made = ClsProxy(cls_ref)(4)  # ``Model(4)`` on a worker
    assert isinstance(made, InstanceProxy)
    method = loads(dumps(made.predict))  # in the caller: the method of its own Model(4)
    assert method.local(1) == 5
    assert loads(dumps(made.predict)) is method  # one instance per constructor arguments


@pytest.mark.parametrize("verb", ["remote", "spawn", "map"])
def test_a_proxy_outside_a_worker_says_where_it_can_be_called(verb: str) -> None:
    _, a, _ = _functions()
    (_, (ref,)) = a.__reduce__()
    proxy = FunctionProxy(ref._replace(key="another-process-1"))
    with pytest.raises(RuntimeError, match="reference made by another process"):
        getattr(proxy, verb)([1] if verb == "map" else 1)


def test_the_worker_starts_without_asyncio() -> None:
    # Its client for nested calls imports asyncio only when async user code waits on one.
    code = "import sys, jupyter_remote.runtime._main; print('asyncio' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
