"""User-object pickling: functions by value, numpy out of band, exceptions as Failures."""

from __future__ import annotations

import pickle
import sys
import threading
import types
from typing import Any

import numpy as np
import pytest

from jupyter_remote.protocol import (
    Failure,
    Payload,
    dumps,
    failure_from_exception,
    loads,
    safe_str,
    salvage,
)
from jupyter_remote.protocol._serialization import _INLINE_LIMIT


def test_lambda_round_trip() -> None:
    payload = dumps(lambda x, y=2: x * y)
    assert isinstance(payload, Payload) and payload.buffers == []
    assert loads(payload)(21) == 42


def test_closure_keeps_its_cell_values() -> None:
    def make(offset: int) -> Any:
        scale = 3

        def f(x: int) -> int:
            return x * scale + offset

        return f

    g = loads(dumps(make(10)))
    assert g(2) == 16
    assert g.__name__ == "f"


def test_nested_functions_and_defaults() -> None:
    def outer(n: int, *, step: int = 2) -> list[int]:
        def inner(k: int) -> int:
            return k * step

        return [inner(k) for k in range(n)]

    assert loads(dumps(outer))(3, step=5) == [0, 5, 10]


def test_numpy_array_travels_out_of_band_without_copy() -> None:
    arr = np.arange(1000, dtype=np.float64).reshape(10, 100)
    payload = dumps(arr)
    assert len(payload.buffers) == 1
    assert memoryview(payload.buffers[0]).nbytes == arr.nbytes
    assert len(payload.data) < 1000  # the array's bytes are not in the pickle stream
    assert payload.nbytes == len(payload.data) + arr.nbytes
    assert np.shares_memory(np.frombuffer(payload.buffers[0], dtype=np.uint8), arr)
    back = loads(payload)
    np.testing.assert_array_equal(back, arr)
    assert back.dtype == arr.dtype and back.shape == (10, 100)


def test_several_arrays_in_one_object() -> None:
    obj = {"a": np.ones(5, dtype=np.int32), "b": [np.zeros((2, 2)), "text"]}
    payload = dumps(obj)
    assert len(payload.buffers) == 2
    back = loads(payload)
    np.testing.assert_array_equal(back["a"], obj["a"])
    np.testing.assert_array_equal(back["b"][0], obj["b"][0])
    assert back["b"][1] == "text"


def test_unpicklable_object_raises() -> None:
    with pytest.raises(TypeError, match="lock"):
        dumps(threading.Lock())


def _pickle_out_of_band(obj: Any) -> tuple[bytes, list[pickle.PickleBuffer]]:
    buffers: list[pickle.PickleBuffer] = []
    data = pickle.dumps(obj, protocol=5, buffer_callback=buffers.append)
    return data, buffers


def test_payload_small_data_stays_inline() -> None:
    payload = Payload(b"x" * (_INLINE_LIMIT - 1), [])
    data, buffers = _pickle_out_of_band(payload)
    assert buffers == []
    assert len(data) > _INLINE_LIMIT - 1
    back = pickle.loads(data)
    assert bytes(back.data) == payload.data and back.buffers == []


def test_payload_large_data_goes_out_of_band() -> None:
    blob = bytes(range(256)) * (_INLINE_LIMIT // 256)
    assert len(blob) == _INLINE_LIMIT
    data, buffers = _pickle_out_of_band(Payload(blob, []))
    assert len(buffers) == 1 and buffers[0].raw().nbytes == len(blob)
    assert len(data) < 200
    back = pickle.loads(data, buffers=buffers)
    assert bytes(back.data) == blob


def test_payload_buffers_are_forwarded_out_of_band() -> None:
    arr = np.arange(50_000, dtype=np.int64)
    payload = dumps({"arr": arr})
    data, buffers = _pickle_out_of_band(payload)
    assert len(buffers) == 1 and buffers[0].raw().nbytes == arr.nbytes
    assert len(data) < 1000
    back = pickle.loads(data, buffers=buffers)
    np.testing.assert_array_equal(loads(back)["arr"], arr)


def test_payload_repr_and_nbytes() -> None:
    payload = Payload(b"abc", [b"12345", bytearray(2)])
    assert payload.nbytes == 10
    assert repr(payload) == "<Payload 10 bytes>"


class CustomError(Exception):
    pass


class NeedsTwoArgs(Exception):
    def __init__(self, a: int, b: int) -> None:
        super().__init__(f"{a}/{b}")  # args == ("a/b",): pickles, but cannot be rebuilt


class HoldsALock(Exception):
    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.lock = threading.Lock()


def _level_two() -> None:
    raise CustomError("deep problem")


def _level_one() -> None:
    _level_two()


def _capture(exc_factory: Any, **kwargs: Any) -> Failure:
    try:
        exc_factory()
    except Exception as exc:
        return failure_from_exception(exc, **kwargs)
    raise AssertionError("did not raise")


def test_builtin_exception_keeps_type_and_short_name() -> None:
    def boom() -> None:
        raise KeyError("missing")

    failure = _capture(boom)
    assert failure.type_name == "KeyError"
    assert failure.message == "'missing'"
    assert failure.exc is not None
    exc = loads(failure.exc)
    assert type(exc) is KeyError and exc.args == ("missing",)
    assert exc.__traceback__ is None
    assert "raise KeyError" in failure.traceback
    assert failure.traceback.rstrip().endswith("KeyError: 'missing'")


def test_custom_exception_keeps_type_and_qualified_name() -> None:
    failure = _capture(_level_one)
    assert failure.type_name == f"{CustomError.__module__}.CustomError"
    assert failure.message == "deep problem"
    assert failure.exc is not None
    exc = loads(failure.exc)
    assert type(exc) is CustomError and str(exc) == "deep problem"
    assert repr(failure) == f"<Failure {failure.type_name}: deep problem>"


def test_failure_pickles_as_itself() -> None:
    failure = _capture(_level_one)
    back = pickle.loads(pickle.dumps(failure, protocol=5))
    assert isinstance(back, Failure)
    assert (back.type_name, back.message, back.traceback) == (
        failure.type_name,
        failure.message,
        failure.traceback,
    )
    assert back.exc is not None and type(loads(back.exc)) is CustomError


def test_unpicklable_exception_keeps_name_message_and_traceback() -> None:
    def boom() -> None:
        raise HoldsALock("locked out")

    failure = _capture(boom)
    assert failure.exc is None
    assert failure.type_name == f"{HoldsALock.__module__}.HoldsALock"
    assert failure.message == "locked out"
    assert "HoldsALock: locked out" in failure.traceback
    assert "in boom" in failure.traceback


def test_exception_that_cannot_be_rebuilt_counts_as_unpicklable() -> None:
    def boom() -> None:
        raise NeedsTwoArgs(1, 2)

    failure = _capture(boom)
    assert failure.exc is None
    assert failure.type_name.endswith("NeedsTwoArgs")
    assert failure.message == "1/2"


def test_skip_frames_drops_the_callers_frames() -> None:
    full = _capture(_level_one)
    assert "in _capture" in full.traceback
    assert "in _level_one" in full.traceback and "in _level_two" in full.traceback

    one = _capture(_level_one, skip_frames=1)
    assert "in _capture" not in one.traceback
    assert "in _level_one" in one.traceback and "in _level_two" in one.traceback

    two = _capture(_level_one, skip_frames=2)
    assert "in _level_one" not in two.traceback
    assert "in _level_two" in two.traceback


def test_skip_frames_never_drops_the_raising_frame() -> None:
    failure = _capture(_level_one, skip_frames=50)
    assert "in _level_two" in failure.traceback
    assert "in _level_one" not in failure.traceback
    assert "CustomError: deep problem" in failure.traceback


class BrokenStr(Exception):
    def __str__(self) -> str:
        raise SystemExit("no str")  # even a BaseException


class ReduceExits(Exception):
    def __reduce__(self) -> Any:
        raise SystemExit("no pickling")


def test_failure_of_an_exception_whose_str_raises() -> None:
    failure = _capture(lambda: _raise(BrokenStr("x")))
    assert failure.type_name == f"{BrokenStr.__module__}.BrokenStr"
    assert failure.message == "<str() failed: SystemExit>"
    assert "BrokenStr: <exception str() failed>" in failure.traceback
    assert "in _raise" in failure.traceback
    assert failure.exc is not None and type(loads(failure.exc)) is BrokenStr


def test_failure_of_an_exception_whose_pickling_raises_system_exit() -> None:
    failure = _capture(lambda: _raise(ReduceExits("odd")))
    assert failure.exc is None  # it cannot travel: the caller gets a RemoteError
    assert (failure.type_name, failure.message) == (f"{ReduceExits.__module__}.ReduceExits", "odd")
    assert failure.traceback.rstrip().endswith("ReduceExits: odd")


def _raise(exc: BaseException) -> None:
    raise exc


def test_safe_str_gives_a_plain_str() -> None:
    class Text(str):
        pass

    class Shows:
        def __str__(self) -> str:
            return Text("shown")

    assert type(safe_str(Shows())) is str and safe_str(Shows()) == "shown"
    assert safe_str(BrokenStr()) == "<str() failed: SystemExit>"


class RestoreFails:
    def __init__(self, x: int) -> None:
        self.x = x

    def __setstate__(self, state: dict[str, int]) -> None:
        raise ValueError(f"cannot restore {state['x']}")


def _refuse() -> None:
    raise RuntimeError("refused")


class ReducesToError:
    def __reduce__(self) -> Any:
        return (_refuse, ())


def test_salvage_marks_only_what_cannot_be_rebuilt() -> None:
    arr = np.arange(10)
    shared = ReducesToError()
    obj = [0, RestoreFails(1), [2, ReducesToError()], {"k": RestoreFails(3)}, arr, shared]
    obj += [(shared, 4), "end", {"fine": [5]}]
    payload = dumps(obj)
    with pytest.raises(ValueError, match="cannot restore 1"):
        loads(payload)
    back, cause_of = salvage(payload)
    causes = [cause_of(v) for v in back]
    assert [c is not None for c in causes] == [
        False,
        True,
        True,
        True,
        False,
        True,
        True,
        False,
        False,
    ]
    assert [back[0], back[7], back[8]] == [0, "end", {"fine": [5]}]
    np.testing.assert_array_equal(back[4], arr)  # out-of-band buffers stay in step
    assert causes[1] is not None and not causes[1].importing
    assert causes[1].describe() == (
        f"rebuilding {RestoreFails.__module__}.RestoreFails raised ValueError: cannot restore 1"
    )
    assert causes[2] is not None and causes[2].what.endswith("._refuse")
    assert "raised RuntimeError: refused" in causes[2].describe()
    assert causes[3] is not None and "cannot restore 3" in causes[3].describe()
    assert cause_of(back) is not None  # the list holds them


def test_salvage_names_a_class_whose_module_is_missing() -> None:
    module = types.ModuleType("jr_gone_module")
    module.__file__ = "<made by a test>"
    exec("class Thing:\n    def __init__(self):\n        self.x = 1\n", module.__dict__)
    sys.modules["jr_gone_module"] = module
    try:
        payload = dumps([1, module.Thing(), 3])
    finally:
        del sys.modules["jr_gone_module"]
    back, cause_of = salvage(payload)
    cause = cause_of(back[1])
    assert cause is not None and cause.importing and cause.what == "jr_gone_module.Thing"
    assert isinstance(cause.error, ModuleNotFoundError)
    assert cause.describe().startswith("importing jr_gone_module.Thing raised ModuleNotFoundError")
    assert (back[0], back[2]) == (1, 3) and cause_of(back[0]) is None
