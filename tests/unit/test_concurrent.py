"""``@concurrent``, async function detection and input ids: the parts that need no worker."""

from __future__ import annotations

import asyncio
import contextvars
from collections.abc import AsyncIterator

import pytest

import jupyter_remote as jr
from jupyter_remote.api._concurrent import Concurrency, concurrency_of
from jupyter_remote.protocol import input_object_id
from jupyter_remote.runtime import _context
from jupyter_remote.runtime._capture import INPUT_TAG, OutputBuffer
from jupyter_remote.runtime._concurrent import is_async


def test_concurrent_marks_the_function_and_leaves_it_callable() -> None:
    @jr.concurrent(max_inputs=8, target_inputs=5)
    def f(x: int) -> int:
        return x + 1

    assert f(1) == 2
    assert concurrency_of(f) == Concurrency(8, 5)


def test_target_inputs_defaults_to_max_inputs_and_no_mark_means_one() -> None:
    @jr.concurrent(max_inputs=3)
    async def f() -> None:
        pass

    assert concurrency_of(f) == Concurrency(3, 3)
    assert concurrency_of(lambda: None) == Concurrency(1, 1)


def test_function_and_cls_read_the_mark() -> None:
    app = jr.App("unit-concurrent")

    @app.function()
    @jr.concurrent(max_inputs=4, target_inputs=2)
    async def f(x: int) -> int:
        return x

    assert f.concurrency == Concurrency(4, 2)

    @app.cls()
    @jr.concurrent(max_inputs=6)
    class C:
        @jr.method()
        def m(self) -> None:
            pass

    assert C().m.concurrency == Concurrency(6, 6)
    faster = C.with_concurrency(max_inputs=9, target_inputs=3)
    assert faster().m.concurrency == Concurrency(9, 3)
    assert faster.with_options(cpu=2)().m.concurrency == Concurrency(9, 3)
    assert C().m.with_options(cpu=2).concurrency == Concurrency(6, 6)
    with pytest.raises(jr.ConfigError, match="above max_inputs=2"):
        C.with_concurrency(max_inputs=2, target_inputs=4)


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"max_inputs": 0}, jr.ConfigError, r"max_inputs=0\): accepted values are 1 to"),
        ({"max_inputs": "4"}, TypeError, r"max_inputs=...\) takes an int, not str"),
        ({"max_inputs": True}, TypeError, r"takes an int, not bool"),
        ({"max_inputs": 2, "target_inputs": 3}, jr.ConfigError, "above max_inputs=2"),
        ({"max_inputs": 2, "target_inputs": 0}, jr.ConfigError, "target_inputs=0"),
    ],
)
def test_bad_values_say_what_is_accepted(
    kwargs: dict[str, object], error: type[Exception], match: str
) -> None:
    with pytest.raises(error, match=match):
        jr.concurrent(**kwargs)  # type: ignore[arg-type]


def test_missing_parentheses_and_wrong_order_are_explained() -> None:
    with pytest.raises(TypeError, match="Did you forget parentheses"):
        jr.concurrent(lambda: None)
    with pytest.raises(TypeError, match="needs max_inputs="):
        jr.concurrent()
    app = jr.App("unit-concurrent-order")
    f = app.function()(lambda x: x)
    with pytest.raises(TypeError, match=r"under @app\.function"):
        jr.concurrent(max_inputs=2)(f)


def test_concurrent_on_a_method_asks_for_the_class() -> None:
    app = jr.App("unit-concurrent-method")

    class C:
        @jr.method()
        @jr.concurrent(max_inputs=2)
        def m(self) -> None:
            pass

    with pytest.raises(TypeError, match="on method 'm' of C; put it on the class"):
        app.cls()(C)


def test_allow_concurrent_inputs_points_to_the_decorator() -> None:
    app = jr.App("unit-concurrent-old")
    with pytest.raises(jr.NotSupportedError, match=r"jr.concurrent\(max_inputs=N\) under @app"):
        app.function(allow_concurrent_inputs=10)


def test_async_functions_and_generators_are_told_apart() -> None:
    async def coro() -> None:
        pass

    async def agen() -> AsyncIterator[int]:
        yield 1

    def sync() -> None:
        pass

    assert is_async(coro) and is_async(agen) and not is_async(sync)
    app = jr.App("unit-async-gen")
    assert app.function()(agen).is_generator
    assert not app.function()(coro).is_generator


def test_input_ids_take_the_shape_of_modal_ones() -> None:
    assert input_object_id("fc-1a2b-7", 0) == "in-1a2b-7-0"
    assert input_object_id("fc-1a2b-7", 12) == "in-1a2b-7-12"


def test_ids_are_none_outside_an_input() -> None:
    assert jr.current_input_id() is None
    assert jr.current_function_call_id() is None


def test_ids_and_output_tag_follow_each_context() -> None:
    """What concurrent inputs rely on: each task sees its own ids and output tag."""
    buffer = OutputBuffer()
    buffer.tag = (9, 9)  # the main thread's input: the fallback for contexts that set none

    async def one(index: int) -> str | None:
        INPUT_TAG.set((5, index))
        _context.CALL_REF.set("fc-ab-5")
        await asyncio.sleep(0)  # the others run in between
        buffer.write(1, f"from {index}\n")
        return jr.current_input_id()

    async def main() -> list[str | None]:
        return list(await asyncio.gather(*(one(i) for i in range(3))))

    assert contextvars.copy_context().run(asyncio.run, main()) == [
        "in-ab-5-0",
        "in-ab-5-1",
        "in-ab-5-2",
    ]
    buffer.write(2, "outside\n")
    assert sorted(buffer.take()) == [
        (5, 0, 1, "from 0\n"),
        (5, 1, 1, "from 1\n"),
        (5, 2, 1, "from 2\n"),
        (9, 9, 2, "outside\n"),
    ]
    assert jr.current_input_id() is None
