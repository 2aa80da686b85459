"""The example `jupyter-remote run` script of the CLI tests."""

from __future__ import annotations

import sys

import jupyter_remote as jr

app = jr.App("cli-example")


@app.function()
def square(x: int) -> int:
    return x * x


@app.function()
def script_imported_on_worker() -> bool:
    # The CLI pickles the script by value: workers never import it.
    return __name__ in sys.modules


@app.local_entrypoint()
def main(n: int, name: str = "world", verbose: bool = False, scale: float = 1.0) -> None:
    """Square 0..n-1 on workers and greet NAME."""
    squares = [square.remote(i) for i in range(n)]
    print(f"hello {name}: {squares} verbose={verbose} scale={scale}")


if __name__ == "__main__":
    print("the __main__ block ran")
