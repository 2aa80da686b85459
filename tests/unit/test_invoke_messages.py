"""The messages of calls workers make (``protocol._invoke``): framing, chunks, outcome kinds."""

from __future__ import annotations

import random
from typing import Any

import numpy as np
import pytest

import jupyter_remote.protocol._invoke as invoke_module
from jupyter_remote import controller
from jupyter_remote.protocol import (
    OUTCOME_END,
    OUTCOME_ERR,
    OUTCOME_OK,
    OUTCOME_YIELD,
    CancelInvoke,
    Failure,
    FrameDecoder,
    FunctionRef,
    Invoke,
    InvokeOutcomes,
    InvokeRefused,
    Payload,
    chunk_columns,
    chunk_size,
    dumps,
    encode_frame,
    loads,
)


def norm(value: Any) -> Any:
    """A comparable form of a message (``Payload`` and ``Failure`` have no ``__eq__``)."""
    if isinstance(value, Payload):
        return ("Payload", bytes(value.data), [bytes(memoryview(b)) for b in value.buffers])
    if isinstance(value, Failure):
        return ("Failure", norm(value.exc), value.type_name, value.message, value.traceback)
    if isinstance(value, tuple | list):
        return (type(value).__name__, tuple(norm(v) for v in value))
    return value


def received(messages: list[Any], rng: random.Random) -> list[Any]:
    """Encode ``messages`` and decode the stream as a socket delivers it, in random pieces."""
    data = b"".join(bytes(c) for m in messages for c in encode_frame(m))
    decoder = FrameDecoder(initial=64)
    out: list[Any] = []
    pos = 0
    while pos < len(data):
        view = decoder.get_buffer()
        n = min(len(view), rng.randint(1, 5000), len(data) - pos)
        view[:n] = data[pos : pos + n]
        view.release()
        pos += n
        out.extend(decoder.feed(n))
    return out


def sample_messages() -> list[Any]:
    failure = Failure(dumps(KeyError("k")), "KeyError", "'k'", "Traceback ...\n")
    ref = FunctionRef("abc-1", "function", "app.a")
    method = FunctionRef("abc-2", "cls", "app.Model", ("predict",), "predict", dumps(((3,), {})))
    big = np.arange(1 << 18, dtype=np.float64)  # travels as an out-of-band buffer
    return [
        Invoke(1, ref, ((0, dumps(([(1,)], {})), 1),), 1, "call", False, 7),
        Invoke(2, method, tuple(chunk_columns(([1, 2, 3],), {"k": 1}, 2)), 3, "map", False, -1),
        Invoke(3, ref, ((0, dumps(([(big,)], {})), 1),), 1, "call", True, 7),
        CancelInvoke(2),
        InvokeOutcomes(1, ((OUTCOME_OK, range(0, 1), dumps([2])), (OUTCOME_END, None, None))),
        InvokeOutcomes(
            2,
            (
                (OUTCOME_OK, [(0, 0), (1, 2)], dumps([2, 4])),
                (OUTCOME_ERR, 1, failure),
                (OUTCOME_YIELD, 0, dumps(big)),
            ),
        ),
        InvokeRefused(3, failure),
    ]


def test_samples_cover_every_message_type() -> None:
    types = {
        name
        for name in invoke_module.__all__
        if isinstance(getattr(invoke_module, name), type)
        and issubclass(getattr(invoke_module, name), tuple)
    }
    assert {type(m).__name__ for m in sample_messages()} | {"FunctionRef"} == types


@pytest.mark.parametrize("seed", range(4))
def test_messages_survive_any_chunking(seed: int) -> None:
    rng = random.Random(seed)
    messages = sample_messages()
    out = received(messages, rng)
    assert [norm(m) for m in out] == [norm(m) for m in messages]
    yielded = out[5].outcomes[2][2]
    assert np.array_equal(loads(yielded), np.arange(1 << 18, dtype=np.float64))


def test_outcome_kinds_are_those_of_the_callers_result_channel() -> None:
    assert (OUTCOME_OK, OUTCOME_ERR, OUTCOME_YIELD, OUTCOME_END) == (
        controller.OK,
        controller.ERR,
        controller.YIELD,
        controller.END,
    )


def test_chunks_of_columns_and_of_rows_have_the_shape_workers_read() -> None:
    columns = chunk_columns(([1, 2, 3, 4, 5], "abcde"), {"k": 0}, 2)
    assert [(first, n) for first, _, n in columns] == [(0, 2), (2, 2), (4, 1)]
    assert loads(columns[1][1]) == (([3, 4], ["c", "d"]), {"k": 0})
    rows = chunk_columns([(1, "a"), (2, "b"), (3, "c")], {}, 5)
    assert [(first, n) for first, _, n in rows] == [(0, 3)]
    assert loads(rows[0][1]) == ([(1, "a"), (2, "b"), (3, "c")], {})
    assert chunk_columns(([],), {}, 3) == []


def test_unpicklable_input_raises_from_chunking() -> None:
    import threading

    with pytest.raises(TypeError):
        chunk_columns(([threading.Lock()],), {}, 1)


@pytest.mark.parametrize(
    ("n", "size"), [(0, 1), (1, 1), (64, 1), (65, 2), (6400, 100), (10**8, 1024)]
)
def test_chunk_size_makes_about_64_chunks_of_at_most_1024(n: int, size: int) -> None:
    assert chunk_size(n) == size
