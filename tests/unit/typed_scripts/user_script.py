"""A user's script, type-checked (mypy strict) by tests/unit/test_typed_surface.py.

Each ``# revealed: TYPE`` says what ``reveal_type`` on that line must print.
"""

# ruff: noqa: E501 (the expected types are long)
from collections.abc import AsyncIterator, Iterator
from typing import cast, reveal_type

import jupyter_remote as jr

image = jr.Image.debian_slim().pip_install("numpy")
app = jr.App("typed", image=image, secrets=[jr.Secret.from_dict({"K": "v"})])
vol = jr.Volume.from_name("data", create_if_missing=True)


@app.function(cpu=1, volumes={"/data": vol})
def square(x: int) -> str:
    return str(x * x)


@app.function()
async def fetch(url: str, *, tries: int = 1) -> bytes:
    return url.encode() * tries


@app.function()
def count(n: int) -> Iterator[int]:
    yield from range(n)


@app.function()
async def acount(n: int) -> AsyncIterator[float]:
    for i in range(n):
        yield float(i)


@app.function(schedule=jr.Cron("0 * * * *"))
def hourly() -> None: ...


@app.function(schedule=jr.Period(minutes=5))
def often() -> None: ...


@app.cls(gpu="T4")
@jr.concurrent(max_inputs=4)
class Model:
    def __init__(self, size: int = 1) -> None:
        self.size = size
        self.weights: list[float] = []

    @jr.enter()
    def load(self) -> None:
        self.weights = [1.0] * self.size

    @jr.method()
    def predict(self, x: float) -> list[float]:
        return [x * w for w in self.weights]

    @jr.method()
    async def apredict(self, x: float) -> float:
        return x

    @jr.method()
    def twice(self, x: float) -> list[float]:
        return self.predict(x) * 2  # on the worker, the plain method


async def main() -> None:
    reveal_type(square)  # revealed: jupyter_remote.api._function.Function[[x: int], str, str]
    reveal_type(square.remote(3))  # revealed: str
    reveal_type(await square.remote.aio(3))  # revealed: str
    reveal_type(square.local(3))  # revealed: str
    reveal_type(square.map([1, 2]))  # revealed: jupyter_remote.api._results.MapCall[str]
    reveal_type(list(square.map([1, 2], order_outputs=False)))  # revealed: list[str]
    async for s in square.map.aio([1, 2]):
        reveal_type(s)  # revealed: str
    reveal_type(square.starmap([(1,)]))  # revealed: jupyter_remote.api._results.MapCall[str]
    async for t in square.starmap.aio([(1,)]):
        reveal_type(t)  # revealed: str
    reveal_type(square.for_each([1]))  # revealed: None
    reveal_type(await square.for_each.aio([1]))  # revealed: None
    call = square.spawn(4)
    reveal_type(call)  # revealed: jupyter_remote.api._call.FunctionCall[str]
    reveal_type(call.get(timeout=1))  # revealed: str
    reveal_type(await call.get.aio())  # revealed: str
    reveal_type(await square.spawn.aio(4))  # revealed: jupyter_remote.api._call.FunctionCall[str]
    reveal_type(square.with_options(gpu="H100").remote(2))  # revealed: str

    reveal_type(fetch.remote("u", tries=2))  # revealed: bytes
    reveal_type(await fetch.remote.aio("u"))  # revealed: bytes
    coroutine = reveal_type(fetch.local("u"))  # revealed: typing.Coroutine[Any, Any, bytes]
    reveal_type(await coroutine)  # revealed: bytes
    reveal_type(fetch.map(["u"]))  # revealed: jupyter_remote.api._results.MapCall[bytes]
    reveal_type(fetch.spawn("u").get())  # revealed: bytes

    for i in count.remote_gen(3):
        reveal_type(i)  # revealed: int
    async for j in count.remote_gen.aio(3):
        reveal_type(j)  # revealed: int
    for k in acount.remote_gen(3):
        reveal_type(k)  # revealed: float

    reveal_type(Model)  # revealed: def (size: int =) -> user_script.Model
    predict = Model(size=2).predict
    # fmt: off
    reveal_type(predict)  # revealed: jupyter_remote.api._verbs.MethodHandle[[x: float], list[float], list[float]]
    # fmt: on
    reveal_type(Model().predict.remote(1.0))  # revealed: list[float]
    reveal_type(Model().predict.local(1.0))  # revealed: list[float]
    reveal_type(list(Model().predict.map([1.0])))  # revealed: list[list[float]]
    reveal_type(await Model().apredict.remote.aio(1.0))  # revealed: float
    reveal_type(Model().apredict.spawn(1.0).get())  # revealed: float
    handle = cast("jr.Cls[Model]", Model)  # mypy does not apply class decorators
    reveal_type(handle.with_options(gpu="T4")().predict.remote(1.0))  # revealed: list[float]

    reveal_type(jr.NotFoundError("x"))  # revealed: jupyter_remote.exceptions.NotFoundError
    reveal_type(jr.Retries(max_retries=2))  # revealed: jupyter_remote.retries.Retries
    reveal_type(jr.current_input_id())  # revealed: str | None
    reveal_type(jr.is_local())  # revealed: bool
    reveal_type(jr.gpu.H100)  # revealed: def (*, count: int =) -> jupyter_remote.gpu.H100
