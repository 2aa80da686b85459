"""Frames: every message survives any chunking; big frames are received without a copy."""

from __future__ import annotations

import pickle
import random
import struct
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

import jupyter_remote.protocol._messages as messages_module
from jupyter_remote.protocol import (
    MAX_FRAME_BYTES,
    Cancel,
    Event,
    Failure,
    FrameDecoder,
    FrameError,
    FunctionDef,
    Heartbeat,
    Output,
    Payload,
    Ping,
    Results,
    RunBatch,
    Shutdown,
    TimedOut,
    Yielded,
    dumps,
    encode_frame,
    loads,
)

MiB = 1 << 20


def _function_def() -> FunctionDef:
    return FunctionDef("ab" * 16, dumps(lambda x: x + 1), "function", "inc")


def sample_messages() -> list[Any]:
    fdef = _function_def()
    failure = Failure(dumps(ValueError("bad input")), "ValueError", "bad input", "Traceback ...\n")
    return [
        fdef,
        RunBatch(1, 2, fdef.hash, fdef, None, 0, dumps([((1,), {})]), None, 300.0, False),
        RunBatch(
            2,
            2,
            fdef.hash,
            None,
            "run",
            10,
            dumps([((i,), {"k": i}) for i in range(5)]),
            (0, 3),
            None,
            True,
        ),
        Cancel(7),
        Ping(),
        Shutdown(),
        Results(1, (0, 2), dumps(["a", "b"]), ((1, failure),), (3,), True),
        Results(2, (), None, (), (), False),
        Yielded(3, 4, dumps({"step": 4})),
        Output(((2, 0, 1, "hello\n"), (2, 1, 2, "warn: é ✓\n"))),
        TimedOut(3, 1, 12.5),
        Event(2, 5, "display", dumps({"data": {"text/plain": "x"}})),
        Heartbeat(),
    ]


def norm(value: Any) -> Any:
    """A comparable form of a message (``Payload`` and ``Failure`` have no ``__eq__``)."""
    if isinstance(value, Payload):
        return ("Payload", bytes(value.data), [bytes(memoryview(b)) for b in value.buffers])
    if isinstance(value, Failure):
        return ("Failure", norm(value.exc), value.type_name, value.message, value.traceback)
    if isinstance(value, tuple):
        return (type(value).__name__, tuple(norm(v) for v in value))
    return value


def stream_of(messages: list[Any]) -> bytes:
    return b"".join(bytes(c) for m in messages for c in encode_frame(m))


def feed_stream(
    decoder: FrameDecoder, data: bytes, next_size: Callable[[], int]
) -> tuple[list[Any], set[int]]:
    """Receive ``data`` the way a socket does (``recv_into(get_buffer())``) in chunks."""
    out: list[Any] = []
    receive_buffers: set[int] = set()
    pos = 0
    while pos < len(data):
        view = decoder.get_buffer()
        assert len(view) > 0
        n = min(len(view), next_size(), len(data) - pos)
        view[:n] = data[pos : pos + n]
        receive_buffers.add(id(view.obj))
        view.release()
        pos += n
        out.extend(decoder.feed(n))
    return out, receive_buffers


def test_samples_cover_every_message_type() -> None:
    message_types = {
        name
        for name in messages_module.__all__
        if isinstance(getattr(messages_module, name), type)
        and issubclass(getattr(messages_module, name), tuple)
    }
    assert {type(m).__name__ for m in sample_messages()} == message_types


@pytest.mark.parametrize("size", [1, 2, 3, 7, 64, 4096, 1 << 30])
def test_round_trip_fixed_chunk_sizes(size: int) -> None:
    messages = sample_messages()
    out, _ = feed_stream(FrameDecoder(initial=32), stream_of(messages), lambda: size)
    assert [norm(m) for m in out] == [norm(m) for m in messages]


@pytest.mark.parametrize("seed", range(8))
def test_round_trip_random_chunk_sizes(seed: int) -> None:
    rng = random.Random(seed)
    messages = [rng.choice(sample_messages()) for _ in range(40)]
    data = stream_of(messages)
    out, _ = feed_stream(
        FrameDecoder(initial=rng.choice([16, 256, 1 << 16])),
        data,
        lambda: rng.randint(1, len(data)),
    )
    assert [norm(m) for m in out] == [norm(m) for m in messages]


def test_decoded_payloads_unpickle() -> None:
    out, _ = feed_stream(FrameDecoder(), stream_of(sample_messages()), lambda: 5)
    fdef, batch = out[0], out[2]
    assert loads(fdef.payload)(41) == 42
    assert loads(batch.args) == [((i,), {"k": i}) for i in range(5)]
    failure = out[6].failures[0][1]
    exc = loads(failure.exc)
    assert type(exc) is ValueError and str(exc) == "bad input"


def test_many_frames_in_one_chunk() -> None:
    messages = [Cancel(i) for i in range(200)] + sample_messages()
    data = stream_of(messages)
    decoder = FrameDecoder(initial=len(data))
    view = decoder.get_buffer()
    assert len(view) >= len(data)
    view[: len(data)] = data
    view.release()
    out = decoder.feed(len(data))
    assert [norm(m) for m in out] == [norm(m) for m in messages]


def test_small_frame_is_one_chunk() -> None:
    chunks = encode_frame(Yielded(1, 2, dumps(np.arange(10))))
    assert len(chunks) == 1 and isinstance(chunks[0], bytes)


def test_big_frame_buffers_are_not_copied_by_encode() -> None:
    arr = np.arange(MiB // 8 * 2, dtype=np.float64)  # 2 MiB
    chunks = encode_frame(Yielded(1, 0, dumps(arr)))
    assert len(chunks) == 2
    assert isinstance(chunks[0], bytes) and isinstance(chunks[1], memoryview)
    assert chunks[1].nbytes == arr.nbytes
    assert np.shares_memory(np.frombuffer(chunks[1], dtype=np.uint8), arr)


def test_big_frame_with_numpy_arrays_is_received_without_copy() -> None:
    a = np.arange(3 * MiB // 8, dtype=np.float64).reshape(3, -1)
    b = np.linspace(0, 1, 300_000, dtype=np.float32)
    c = np.arange(12, dtype=np.int16)  # small: rides in the same frame
    message = Yielded(5, 1, dumps({"a": a, "b": b, "c": c}))
    out, receive_buffers = feed_stream(FrameDecoder(), stream_of([message]), lambda: 1 << 16)
    assert len(out) == 1 and out[0].batch_id == 5
    value = loads(out[0].value)
    for key, original in (("a", a), ("b", b), ("c", c)):
        got = value[key]
        assert got.dtype == original.dtype and got.shape == original.shape
        np.testing.assert_array_equal(got, original)
        assert got.flags.writeable
        assert not np.shares_memory(got, original)
    # The arrays live in the frame's own receive buffer: the big bytearray the decoder
    # handed out from get_buffer(), sized for the whole frame body.
    base: Any = value["a"]
    while isinstance(base, np.ndarray):
        base = base.base
    assert isinstance(base, memoryview) and isinstance(base.obj, bytearray)
    assert id(base.obj) in receive_buffers
    assert len(base.obj) > a.nbytes + b.nbytes
    frame_memory = np.frombuffer(base.obj, dtype=np.uint8)
    assert np.shares_memory(value["a"], frame_memory)
    assert np.shares_memory(value["b"], frame_memory)
    value["a"][0, 0] = -1.0  # writable in place
    assert value["a"][0, 0] == -1.0


def test_small_frame_arrays_are_copied_out_of_the_shared_buffer() -> None:
    arr = np.arange(1000, dtype=np.int64)
    decoder = FrameDecoder(initial=1 << 16)
    data = stream_of([Yielded(1, 0, dumps(arr))])
    out, _ = feed_stream(decoder, data, lambda: len(data))
    first = loads(out[0].value)
    assert first.flags.writeable
    # The next frame reuses the shared buffer; the first array must not change.
    other = stream_of([Yielded(2, 0, dumps(np.zeros(1000, dtype=np.int64)))])
    out2, _ = feed_stream(decoder, other, lambda: len(other))
    np.testing.assert_array_equal(first, arr)
    assert loads(out2[0].value).sum() == 0


@pytest.mark.parametrize("seed", range(4))
def test_big_and_small_frames_interleaved(seed: int) -> None:
    rng = random.Random(seed)
    big = [
        Yielded(i, i, dumps(np.full(MiB // 8 + 1000 * i, i, dtype=np.float64))) for i in range(3)
    ]
    messages = [Ping(), big[0], Cancel(1), Cancel(2), big[1], big[2], Output(((1, 0, 1, "x"),))]
    data = stream_of(messages)
    sizes = [1, 2, 9, 100, 4096, 1 << 16, 1 << 20, 3 << 20]
    out, _ = feed_stream(FrameDecoder(initial=64), data, lambda: rng.choice(sizes))
    assert [norm(m) for m in out] == [norm(m) for m in messages]
    for i, msg in enumerate(m for m in out if isinstance(m, Yielded)):
        arr = loads(msg.value)
        assert arr.shape == (MiB // 8 + 1000 * i,) and (arr == i).all()


def test_large_payload_data_travels_out_of_band() -> None:
    blob = bytes(range(256)) * (5 * MiB // 256)
    message = Yielded(1, 0, dumps(blob))
    chunks = encode_frame(message)
    assert len(chunks) == 2 and len(chunks[0]) < 1024
    out, _ = feed_stream(FrameDecoder(), stream_of([message]), lambda: 1 << 18)
    assert loads(out[0].value) == blob


@pytest.mark.parametrize(
    "message", [Cancel(3), Yielded(1, 0, dumps(np.ones(MiB // 4)))], ids=["small", "big"]
)
def test_truncated_stream_yields_nothing_until_complete(message: Any) -> None:
    data = stream_of([message])
    decoder = FrameDecoder()
    cut = len(data) - 1
    out, _ = feed_stream(decoder, data[:cut], lambda: 1 << 16)
    assert out == []
    out, _ = feed_stream(decoder, data[cut:], lambda: 1)
    assert [norm(m) for m in out] == [norm(message)]


def test_truncated_header_yields_nothing() -> None:
    data = stream_of([Cancel(3)])
    decoder = FrameDecoder()
    for i in range(7):
        out, _ = feed_stream(decoder, data[i : i + 1], lambda: 1)
        assert out == []
    out, _ = feed_stream(decoder, data[7:], lambda: 1 << 10)
    assert out == [Cancel(3)]


def _feed_raw(data: bytes) -> list[Any]:
    out, _ = feed_stream(FrameDecoder(), data, lambda: len(data))
    return out


def test_too_many_buffers_is_refused() -> None:
    with pytest.raises(FrameError, match="announces 70000 buffers"):
        _feed_raw(struct.pack("!II", 10, 70000))


def test_enormous_frame_is_refused_before_allocation() -> None:
    header = struct.pack("!II", 5, 1) + struct.pack("!Q", MAX_FRAME_BYTES)
    with pytest.raises(FrameError, match="exceeds the limit"):
        _feed_raw(header)


def test_buffer_lengths_summing_past_the_limit_are_refused() -> None:
    half = MAX_FRAME_BYTES // 2 + 1
    header = struct.pack("!II", 0, 2) + struct.pack("!QQ", half, half)
    with pytest.raises(FrameError, match="exceeds the limit"):
        _feed_raw(header)


def test_undecodable_meta_is_a_frame_error() -> None:
    meta = b"\x80\x05garbage"
    with pytest.raises(FrameError, match="undecodable frame"):
        _feed_raw(struct.pack("!II", len(meta), 0) + meta)


def test_meta_missing_its_out_of_band_buffer_is_a_frame_error() -> None:
    raw: list[pickle.PickleBuffer] = []
    meta = pickle.dumps(pickle.PickleBuffer(b"x" * 100), protocol=5, buffer_callback=raw.append)
    assert len(raw) == 1
    with pytest.raises(FrameError, match="undecodable frame"):
        _feed_raw(struct.pack("!II", len(meta), 0) + meta)


def test_meta_naming_a_missing_class_is_a_frame_error() -> None:
    meta = pickle.dumps(Cancel(1), protocol=5)
    assert b"Cancel" in meta
    meta = meta.replace(b"Cancel", b"Cancal")
    with pytest.raises(FrameError, match="undecodable frame"):
        _feed_raw(struct.pack("!II", len(meta), 0) + meta)
