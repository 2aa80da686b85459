"""Classes and functions the class-parameters suite runs on workers.

On Nomad this module travels by value (the nodes cannot import it), with the
``jr.parameter()`` fields of its classes.
"""

from __future__ import annotations

import os
from typing import Any

import jupyter_remote as jr


class Model:
    """A parametrized class: ``@enter`` builds its state from the parameters."""

    size: str = jr.parameter(default="small")
    layers: int = jr.parameter(default=2)
    verbose: bool = jr.parameter(default=False)
    seed: bytes = jr.parameter(default=b"\x00")
    loaded: str = jr.parameter(default="not loaded", init=False)

    @jr.enter()
    def load(self) -> None:
        self.loaded = f"{self.size}/{self.layers}/{self.verbose}/{self.seed!r}"

    @jr.method()
    def describe(self) -> tuple[str, int]:
        return self.loaded, os.getpid()

    @jr.method()
    def env(self, key: str) -> str | None:
        return os.environ.get(key)


class Required:
    name: str = jr.parameter()

    @jr.method()
    def hello(self) -> str:
        return f"hello {self.name}"


def pid_and_env(key: str) -> tuple[int, str | None]:
    return os.getpid(), os.environ.get(key)


def construct_on_worker(model: Any, **params: Any) -> tuple[str, int]:
    """A worker that makes an instance of a class it was given, by its parameters."""
    result: tuple[str, int] = model(**params).describe.remote()
    return result
