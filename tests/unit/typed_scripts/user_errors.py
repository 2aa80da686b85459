"""A user's script with mistakes mypy (strict) must report: tests/unit/test_typed_surface.py.

Each ``# error: CODE`` names the error code mypy must report on that line, and
no other line may have one.
"""

from collections.abc import Iterator

import jupyter_remote as jr

app = jr.App("typed-errors")


@app.function()
def square(x: int) -> str:
    return str(x * x)


@app.function()
async def fetch(url: str) -> bytes:
    return url.encode()


@app.function()
def count(n: int) -> Iterator[int]:
    yield from range(n)


@app.cls()
class Model:
    @jr.method()
    def predict(self, x: float) -> list[float]:
        return [x]


async def main() -> None:
    square.remote("3")  # error: arg-type
    square.remote(3, 4)  # error: call-arg
    n: int = square.remote(3)  # error: assignment
    _ = square.remote(3).nope  # error: attr-defined
    await square.remote.aio(y=3)  # error: call-arg
    square.spawn("3")  # error: arg-type
    square.spawn(3).get() + 1  # error: operator
    for s in square.map([1]):
        s + 1  # error: operator
    fetch.remote("u") + "v"  # error: operator
    b: str = await fetch.remote.aio("u")  # error: assignment
    for i in count.remote_gen(3):
        i.upper()  # error: attr-defined
    Model().predict.remote("x")  # error: arg-type
    Model(1)  # error: call-arg
    _ = jr.Functoin  # error: attr-defined
    print(n, b)
