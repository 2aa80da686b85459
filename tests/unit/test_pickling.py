"""Caller-side pickling: function hashes, size limits and errors that name the culprit."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from jupyter_remote import RemoteError, SerializationError
from jupyter_remote.api._pickling import (
    Inputs,
    chunk_size_for,
    describe_type,
    function_def,
    load_values,
    pickle_chunks,
    pickle_inputs,
    rebuild_exception,
)
from jupyter_remote.config import Settings
from jupyter_remote.exceptions import RemoteTraceback
from jupyter_remote.protocol import Failure, FunctionDef, dumps, failure_from_exception, loads

MiB = 1 << 20
SETTINGS = Settings()


def notebook_function(source: str, name: str, **namespace: Any) -> Any:
    """Define a function as a notebook cell does (in ``__main__``: pickled by value)."""
    glb: dict[str, Any] = {"__name__": "__main__", **namespace}
    exec(compile(source, "<cell>", "exec"), glb)
    return glb[name]


def test_function_def_fields_and_payload() -> None:
    fn = notebook_function("def double(x):\n    return 2 * x\n", "double")
    fdef = function_def(fn, "function", "double", SETTINGS)
    assert isinstance(fdef, FunctionDef)
    assert (fdef.kind, fdef.name) == ("function", "double")
    assert len(fdef.hash) == 32 and int(fdef.hash, 16) >= 0
    assert loads(fdef.payload)(21) == 42


def test_hash_is_stable_for_the_same_function() -> None:
    source = "def f(x):\n    return x + 1\n"
    fn = notebook_function(source, "f")
    assert (
        function_def(fn, "function", "f", SETTINGS).hash
        == function_def(fn, "function", "f", SETTINGS).hash
    )
    # The same cell run again defines an equal function: same hash, so workers reuse it.
    again = notebook_function(source, "f")
    assert again is not fn
    assert (
        function_def(again, "function", "f", SETTINGS).hash
        == function_def(fn, "function", "f", SETTINGS).hash
    )


def test_hash_changes_with_the_body() -> None:
    a = notebook_function("def f(x):\n    return x + 1\n", "f")
    b = notebook_function("def f(x):\n    return x + 2\n", "f")
    assert (
        function_def(a, "function", "f", SETTINGS).hash
        != function_def(b, "function", "f", SETTINGS).hash
    )


def test_hash_changes_with_a_referenced_global() -> None:
    source = "def f():\n    return SCALE\n"
    a = notebook_function(source, "f", SCALE=1)
    b = notebook_function(source, "f", SCALE=2)
    assert (
        function_def(a, "function", "f", SETTINGS).hash
        != function_def(b, "function", "f", SETTINGS).hash
    )


def test_class_definition_with_constructor_arguments() -> None:
    cls = notebook_function(
        "class Model:\n"
        "    def __init__(self, k):\n        self.k = k\n"
        "    def predict(self, x):\n        return self.k * x\n",
        "Model",
    )
    fdef = function_def((cls, (3,), {}), "class", "Model", SETTINGS)
    got_cls, args, kwargs = loads(fdef.payload)
    assert got_cls(*args, **kwargs).predict(5) == 15
    assert fdef.kind == "class"


def _big_global_function(size: int) -> Any:
    return notebook_function(
        "def uses_table(i):\n    return BIG_TABLE[i]\n", "uses_table", BIG_TABLE=b"x" * size
    )


def test_function_over_the_limit_is_refused_naming_the_big_global() -> None:
    fn = _big_global_function(3 * MiB)
    settings = Settings(function_warn_bytes=MiB, function_max_bytes=2 * MiB)
    with pytest.raises(SerializationError) as info:
        function_def(fn, "function", "uses_table", settings)
    message = str(info.value)
    assert "uses_table pickles to 3 MiB, over the limit of 2 MiB" in message
    assert "(setting function_max_bytes)" in message
    assert "most of it is 'BIG_TABLE' (type bytes, 3 MiB)" in message
    assert "Pass large data as an argument" in message


def test_function_over_the_warning_threshold_warns() -> None:
    fn = _big_global_function(2 * MiB)
    settings = Settings(function_warn_bytes=MiB, function_max_bytes=100 * MiB)
    with pytest.warns(RuntimeWarning, match="uses_table pickles to 2 MiB") as record:
        fdef = function_def(fn, "function", "uses_table", settings)
    assert len(record) == 1
    assert "'BIG_TABLE' (type bytes, 2 MiB)" in str(record[0].message)
    assert loads(fdef.payload)(0) == ord("x")


def test_closure_over_big_data_is_named() -> None:
    def make() -> Any:
        weights = bytearray(3 * MiB)

        def predict(i: int) -> int:
            return weights[i]

        return predict

    settings = Settings(function_warn_bytes=MiB, function_max_bytes=2 * MiB)
    with pytest.raises(SerializationError, match=r"most of it is 'weights' \(type bytearray"):
        function_def(make(), "function", "predict", settings)


def test_small_function_does_not_warn() -> None:
    fn = _big_global_function(1000)
    # pytest runs with -W error: any warning here would fail the test.
    function_def(fn, "function", "uses_table", Settings(function_warn_bytes=MiB))


def test_unpicklable_global_is_named_with_its_type() -> None:
    fn = notebook_function(
        "def critical():\n    with SHARED_LOCK:\n        return 1\n",
        "critical",
        SHARED_LOCK=threading.Lock(),
    )
    with pytest.raises(SerializationError) as info:
        function_def(fn, "function", "critical", SETTINGS)
    message = str(info.value)
    assert message.startswith("critical cannot be sent to a worker")
    assert f"it refers to 'SHARED_LOCK' (type {describe_type(threading.Lock())})" in message
    assert "which cannot be pickled" in message
    assert "Create that object inside the function" in message
    assert isinstance(info.value.__cause__, TypeError)


def test_unpicklable_global_in_a_nested_function_is_named() -> None:
    fn = notebook_function(
        "def outer():\n    def inner():\n        return HANDLE\n    return inner()\n",
        "outer",
        HANDLE=threading.Lock(),
    )
    with pytest.raises(SerializationError, match="it refers to 'HANDLE'"):
        function_def(fn, "function", "outer", SETTINGS)


def test_describe_type() -> None:
    assert describe_type(3) == "int"
    assert describe_type(threading.Lock()) == "_thread.lock"
    assert describe_type(Settings()) == "jupyter_remote.config.Settings"


def test_pickle_inputs_round_trip() -> None:
    payload = pickle_inputs("f", (1, "a"), {"k": [1, 2]})
    assert loads(payload) == ([(1, "a")], {"k": [1, 2]})  # one row, shared keyword arguments


def test_pickle_inputs_names_the_argument_position() -> None:
    with pytest.raises(SerializationError) as info:
        pickle_inputs("train", (1, threading.Lock()), {})
    assert str(info.value).startswith("argument 1 of train() (type _thread.lock) cannot be pickled")
    assert "create that object inside the function" in str(info.value)
    assert isinstance(info.value.__cause__, TypeError)


def test_pickle_inputs_names_the_keyword() -> None:
    with pytest.raises(SerializationError) as info:
        pickle_inputs("train", (1,), {"ok": 2, "lock": threading.RLock()})
    message = str(info.value)
    assert message.startswith("argument 'lock' of train() (type _thread.RLock) cannot be pickled")


def test_pickle_chunks_splits_inputs() -> None:
    inputs = Inputs.from_columns((range(5), "abcde"), {"k": 1})
    chunks = pickle_chunks("f", inputs, 2)
    assert [(first, count) for first, _, count in chunks] == [(0, 2), (2, 2), (4, 1)]
    assert [loads(p) for _, p, _ in chunks] == [
        (([0, 1], ["a", "b"]), {"k": 1}),
        (([2, 3], ["c", "d"]), {"k": 1}),
        (([4], ["e"]), {"k": 1}),
    ]
    assert pickle_chunks("f", Inputs.from_columns(([],)), 3) == []


def test_pickle_chunks_of_rows() -> None:
    inputs = Inputs.from_rows([(1, 2), [3], ()], {"c": 0})
    chunks = pickle_chunks("f", inputs, 2)
    assert [loads(p) for _, p, _ in chunks] == [([(1, 2), (3,)], {"c": 0}), ([()], {"c": 0})]


def test_pickle_chunks_names_the_input_index_and_argument() -> None:
    inputs = Inputs.from_columns((range(6), [None] * 5 + [threading.Lock()]))
    with pytest.raises(SerializationError) as info:
        pickle_chunks("process", inputs, 2)
    assert str(info.value).startswith(
        "input 5: argument 1 of process() (type _thread.lock) cannot be pickled"
    )


def test_pickle_chunks_names_a_shared_keyword_argument() -> None:
    inputs = Inputs.from_columns((range(3),), {"handle": threading.Lock()})
    with pytest.raises(SerializationError) as info:
        pickle_chunks("process", inputs, 2)
    assert str(info.value).startswith(
        "input 0: argument 'handle' of process() (type _thread.lock) cannot be pickled"
    )


def test_pickle_chunks_names_a_positional_argument_of_a_row() -> None:
    inputs = Inputs.from_rows([(i, threading.Lock() if i == 3 else None) for i in range(4)])
    with pytest.raises(SerializationError, match=r"^input 3: argument 1 of g\(\)"):
        pickle_chunks("g", inputs, 10)


@pytest.mark.parametrize(
    ("n_inputs", "workers", "expected"),
    [
        (0, 4, 1),
        (1, 1, 1),
        (32, 1, 1),
        (33, 1, 2),
        (100, 1, 4),
        (1000, 4, 8),
        (10**6, 1, 1024),
        (10**6, 100, 313),
    ],
)
def test_chunk_size_for(n_inputs: int, workers: int, expected: int) -> None:
    assert chunk_size_for(n_inputs, workers) == expected


class TrainingDiverged(Exception):
    pass


class HasLock(Exception):
    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.lock = threading.Lock()


def _failure(exc: Exception) -> Failure:
    try:
        raise exc
    except Exception as caught:
        return failure_from_exception(caught)


def test_rebuild_keeps_the_type_with_the_remote_traceback_as_cause() -> None:
    failure = _failure(TrainingDiverged("loss is nan"))
    exc = rebuild_exception(failure)
    assert type(exc) is TrainingDiverged
    assert str(exc) == "loss is nan"
    assert isinstance(exc.__cause__, RemoteTraceback)
    assert exc.__cause__.tb == failure.traceback
    assert "TrainingDiverged: loss is nan" in str(exc.__cause__)
    assert str(exc.__cause__).startswith("\n\nRemote traceback:\n")


def test_rebuild_unpicklable_gives_remote_error() -> None:
    failure = _failure(HasLock("cannot ship this"))
    assert failure.exc is None
    exc = rebuild_exception(failure)
    assert type(exc) is RemoteError
    assert str(exc) == f"{HasLock.__module__}.HasLock: cannot ship this"
    assert isinstance(exc, RemoteError) and exc.remote_traceback == failure.traceback
    assert "HasLock: cannot ship this" in exc.remote_traceback
    assert exc._render_traceback_() == [failure.traceback.rstrip("\n")]


def test_rebuild_payload_that_fails_to_load_gives_remote_error() -> None:
    broken = dumps(ValueError("x"))
    broken.data = bytes(broken.data).replace(b"ValueError", b"ValueErrox")
    failure = Failure(broken, "ValueError", "x", "Traceback ...\nValueError: x\n")
    exc = rebuild_exception(failure)
    assert type(exc) is RemoteError and str(exc) == "ValueError: x"


def test_rebuild_payload_that_is_not_an_exception_gives_remote_error() -> None:
    failure = Failure(dumps("not an exception"), "str", "odd", "tb")
    exc = rebuild_exception(failure)
    assert type(exc) is RemoteError
    assert str(exc) == "str: odd" and exc.remote_traceback == "tb"


def test_unpicklable_default_argument_is_named() -> None:
    lock = threading.Lock()

    def f(x: object = lock) -> object:
        return x

    with pytest.raises(SerializationError, match=r"<default argument 0>.*_thread\.lock"):
        function_def(f, "function", "f", Settings())


class RestoreFails:
    def __init__(self) -> None:
        self.x = 1

    def __setstate__(self, state: Any) -> None:
        raise ValueError("cannot restore")


def test_load_values_fails_only_the_value_that_cannot_be_unpickled() -> None:
    payload = dumps([10, RestoreFails(), 12])
    values, errors = load_values(payload, range(40, 43), lambda: "f()")
    assert values[0] == 10 and values[2] == 12
    assert errors == [values[1]] and isinstance(values[1], SerializationError)
    assert str(values[1]).startswith(
        f"the result of input 41 of f() cannot be unpickled here: rebuilding "
        f"{RestoreFails.__module__}.RestoreFails raised ValueError: cannot restore. Return plain"
    )
    assert isinstance(values[1].__cause__, ValueError)
    # Scattered inputs (after retries): only those delivered count.
    _, errors = load_values(payload, [(0, 5), (2, 9)], lambda: "f()")
    assert errors == []
    _, errors = load_values(payload, [(1, 7)], lambda: "f()")
    assert len(errors) == 1 and "input 7 of f()" in str(errors[0])


def test_load_values_of_a_good_payload() -> None:
    assert load_values(dumps([1, 2]), range(2), lambda: "f()") == ([1, 2], [])
    broken = dumps([1, 2])
    broken.data = bytes(broken.data)[:-3]
    with pytest.raises(SerializationError, match=r"the results of f\(\) cannot be unpickled"):
        load_values(broken, range(2), lambda: "f()")
