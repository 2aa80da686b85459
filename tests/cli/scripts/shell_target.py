"""The `jupyter-remote shell` tests' target: a function whose environment the shell shares."""

from __future__ import annotations

import jupyter_remote as jr

app = jr.App("cli-shell")


@app.function(env={"SHELL_TEST_VAR": "from-the-function"})
def fit() -> None: ...


@app.local_entrypoint()
def main() -> None: ...
