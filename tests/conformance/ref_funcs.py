"""Functions that call other Functions from workers (importable by module name).

:func:`build` decorates them on a given app, so each test (local or Nomad)
gets its own app and options; the functions capture each other as closure
variables, which is how a shipped function refers to another one.
"""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import jupyter_remote as jr


class Boom(ValueError):
    """Raised on a worker two calls away from the caller: its type must survive the trip."""


def _refuse_to_load() -> None:
    raise RuntimeError("this value cannot be rebuilt")


class Unloadable:
    """Pickles, but cannot be unpickled anywhere."""

    def __reduce__(self) -> tuple[Any, ...]:
        return (_refuse_to_load, ())


class Adder:
    def __init__(self, k: int) -> None:
        self.k = k

    @jr.method()
    def add(self, x: int) -> int:
        return x + self.k


def build(app: jr.App, **options: Any) -> SimpleNamespace:
    """The functions of the tests, on ``app`` (``options`` for every one of them)."""

    @app.function(**options)
    def a(x: int) -> int:
        return x + 1

    @app.function(**options)
    def b(x: int) -> int:
        return a.remote(x) * 10

    @app.function(**options)
    def loud(x: int) -> int:
        print(f"loud says {x}")
        return x

    @app.function(**options)
    def calls_loud(x: int) -> int:
        return loud.remote(x)

    @app.function(**options)
    def unloadable() -> Any:
        return Unloadable()

    @app.function(**options)
    def receives_unloadable() -> str:
        try:
            unloadable.remote()
        except jr.SerializationError as exc:
            return str(exc)
        return "no error"

    @app.function(**options)
    def mapper(n: int) -> dict[str, Any]:
        return {
            "map": list(a.map(range(n))),
            "unordered": sorted(a.map(range(n), order_outputs=False)),
            "starmap": list(add.starmap([(i, i) for i in range(n)])),
            "for_each": a.for_each(range(n)),
        }

    @app.function(**options)
    def add(x: int, y: int) -> int:
        return x + y

    @app.function(**options)
    def spawner(n: int) -> list[int]:
        calls = [a.spawn(i) for i in range(n)]
        return [c.get(timeout=60) for c in calls]

    @app.function(**options)
    def boom(message: str) -> None:
        raise Boom(message)

    @app.function(**options)
    def relay(message: str) -> None:
        boom.remote(message)  # not caught: the caller gets Boom

    @app.function(**options)
    def catcher(message: str) -> str:
        try:
            boom.remote(message)
        except Boom as exc:
            return f"caught {type(exc).__name__}: {exc} (cause {type(exc.__cause__).__name__})"
        return "not raised"

    @app.function(**options)
    def slow(marker: str) -> str:
        Path(marker + ".started").write_text(str(os.getpid()))
        try:
            for _ in range(1200):
                time.sleep(0.05)
        except KeyboardInterrupt:
            Path(marker + ".interrupted").write_text("yes")
            raise
        return "finished"

    @app.function(**options)
    def waits_on_slow(marker: str) -> str:
        return slow.remote(marker)

    @app.function(**{**options, "timeout": 2})
    def waits_briefly(marker: str) -> str:
        return slow.remote(marker)  # times out first: the worker running it is replaced

    @app.function(**options)
    def apply(f: Any, x: int) -> Any:
        return f.remote(x)

    @app.function(**options)
    def give() -> Any:
        return a

    @app.function(**options)
    def counter(n: int) -> list[int]:
        return list(counting.remote_gen(n))

    @app.function(**options)
    def counting(n: int) -> Any:
        yield from range(n)

    @app.function(**options)
    def asynchronous(n: int) -> dict[str, Any]:
        async def main() -> dict[str, Any]:
            one = await a.remote.aio(n)
            mapped = [v async for v in a.map.aio(range(n))]
            spawned = await (await a.spawn.aio(n)).get.aio()
            generated = [v async for v in counting.remote_gen.aio(n)]
            return {"remote": one, "map": mapped, "spawn": spawned, "gen": generated}

        return asyncio.run(main())

    model = app.cls(**options)(Adder)

    @app.function(**options)
    def use_cls(x: int) -> int:
        return model(100).add.remote(x)

    @app.function(**options)
    def use_instance(instance: Any, x: int) -> int:
        return instance.add.remote(x)

    return SimpleNamespace(**{k: v for k, v in locals().items() if k not in ("app", "options")})


def build_recursive(app: jr.App, **options: Any) -> Any:
    @app.function(**options)
    def fact(n: int) -> int:
        return 1 if n <= 1 else n * fact.remote(n - 1)

    return fact


def build_other_app_caller(app: jr.App, other: jr.App) -> Any:
    @other.function()
    def elsewhere(x: int) -> int:
        return x

    @app.function()
    def calls_elsewhere(x: int) -> int:
        return elsewhere.remote(x)

    return calls_elsewhere


def build_tree(app: jr.App, **options: Any) -> Any:
    @app.function(**options)
    def tree(depth: int) -> int:
        return 1 if depth == 0 else sum(tree.map([depth - 1] * 4))

    return tree
