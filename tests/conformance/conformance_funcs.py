"""Functions the conformance suite runs on workers (importable by module name)."""

from __future__ import annotations

import itertools
import os
import signal
import sys
import time
from pathlib import Path
from typing import Any

import jupyter_remote as jr


def identity(x: Any) -> Any:
    return x


def square(x: int) -> int:
    print("squaring", x)
    return x * x


def add(a: int, b: int, c: int = 0) -> int:
    return a + b + c


def pid(_: Any = None) -> int:
    return os.getpid()


def sleep_pid(seconds: float) -> int:
    time.sleep(seconds)
    return os.getpid()


def hold_gil_pid(seconds: float) -> int:
    """Sleep in a C call that keeps the GIL (ctypes.PyDLL): no other thread of the worker runs."""
    import ctypes

    ctypes.PyDLL(None).usleep(int(seconds * 1_000_000))
    return os.getpid()


def sleep_pid_logged(seconds: float, log: str) -> int:
    """``sleep_pid`` that first appends its pid to ``log`` (one line per attempt)."""
    with open(log, "a") as fh:
        fh.write(f"{os.getpid()}\n")
    return sleep_pid(seconds)


def sleep_return(x: float) -> float:
    time.sleep(x)
    return x


class CustomError(Exception):
    pass


class UnpicklableError(Exception):
    def __init__(self, msg: str) -> None:
        super().__init__(msg)
        self.lock = __import__("threading").Lock()

    def __reduce__(self) -> Any:
        raise TypeError("no pickling")


def fail_on(x: int, bad: int = 3) -> int:
    if x == bad:
        raise CustomError(f"bad input {x}")
    return x


def raise_unpicklable() -> None:
    raise UnpicklableError("cannot travel")


def flaky(counter: str, failures: int) -> int:
    """Fail the first ``failures`` attempts (counted in a file), then succeed."""
    path = Path(counter)
    with path.open("a") as fh:
        fh.write("x")
    attempts = len(path.read_text())
    if attempts <= failures:
        raise CustomError(f"attempt {attempts} fails")
    return attempts


def sleep_interruptible(seconds: float, marker: str) -> str:
    try:
        time.sleep(seconds)
    except KeyboardInterrupt:
        Path(marker).write_text("interrupted")
        raise
    return "finished"


def kill_self_once(x: int, marker: str) -> int:
    """Input 5 kills its worker the first time it runs; every input logs its runs."""
    with open(marker + ".runs", "a") as fh:
        fh.write(f"{x}\n")
    time.sleep(0.02)
    if x == 5 and not os.path.exists(marker):
        Path(marker).write_text("killed")
        os.kill(os.getpid(), signal.SIGKILL)
    return x * 10


def start_sleeper(marker: str, die: bool = False) -> int:
    """Start a ``sleep`` that outlives this input and return its pid; ``die``: then SIGKILL
    the worker the first time (the pid is in ``marker``), as the OOM killer would."""
    import subprocess

    child = subprocess.Popen(["sleep", "300"])
    if die and not os.path.exists(marker):
        Path(marker).write_text(str(child.pid))
        os.kill(os.getpid(), signal.SIGKILL)
    return child.pid


def kill_self_always(x: int) -> int:
    print(f"allocating a huge buffer for input {x}", flush=True)
    time.sleep(0.3)  # the output is flushed to the caller and the worker's log
    os.kill(os.getpid(), signal.SIGKILL)
    return x


def echo_stderr(text: str) -> str:
    print(text, file=sys.stderr)
    os.system(f"echo from-subprocess-{text}")
    return text


def countdown(n: int) -> Any:
    yield from range(n, 0, -1)


def ticks(delay: float) -> Any:
    """Yield 0, 1, 2, ... every ``delay`` seconds, forever."""
    for i in itertools.count():
        yield i
        time.sleep(delay)


def nbytes(arr: Any) -> int:
    return int(arr.nbytes)


def make_lock() -> Any:
    import threading

    return threading.Lock()


class Model:
    def __init__(self, scale: int = 1, exit_marker: str = "") -> None:
        self.scale = scale
        self.exit_marker = exit_marker
        self.entered = 0

    @jr.enter()
    def load(self) -> None:
        self.entered += 1
        self.weights = 10 * self.scale

    @jr.method()
    def predict(self, x: int) -> tuple[int, int, int]:
        return x * self.weights, self.entered, os.getpid()

    @jr.exit()
    def bye(self) -> None:
        if self.exit_marker:
            Path(self.exit_marker).write_text(f"exited after {self.entered} enter")


def read_env(*keys: str) -> dict[str, str | None]:
    return {k: os.environ.get(k) for k in keys}


def initial_environ() -> str:
    with open(f"/proc/{os.getpid()}/environ", "rb") as fh:
        return fh.read().decode(errors="replace")


def image_package_version() -> tuple[str, str]:
    """The version of tomli-w, installed only in the image (never in the caller's venv)."""
    from importlib.metadata import version

    import tomli_w  # noqa: F401  (the import is what is tested)

    return version("tomli-w"), sys.prefix


def write_and_commit(volume: Any, path: str, text: str) -> list[str]:
    Path(path).write_text(text)
    volume.commit()
    return sorted(os.listdir(os.path.dirname(path)))


def read_text(path: str) -> str:
    return Path(path).read_text()


def _explode() -> None:
    raise RuntimeError("this argument cannot be rebuilt on the worker")


class FailsToLoad:
    """Pickles fine in the caller, fails to unpickle on the worker."""

    def __reduce__(self) -> Any:
        return (_explode, ())


def path_and_cwd() -> tuple[list[str], str]:
    return list(sys.path), os.getcwd()


class SetstateFails:
    """Pickles fine; restoring its state raises (on the worker, or in the caller)."""

    def __init__(self, x: int) -> None:
        self.x = x

    def __setstate__(self, state: Any) -> None:
        raise ValueError("cannot restore this state")


def _module_named(name: str) -> Any:
    """A module that exists only in this process, with a class ``Thing`` pickled by reference."""
    import types

    module = sys.modules.get(name)
    if module is None:
        module = types.ModuleType(name)
        module.__file__ = f"<{name}, made in process {os.getpid()}>"
        exec("class Thing:\n    def __init__(self, x):\n        self.x = x\n", module.__dict__)
        sys.modules[name] = module
    return module


def caller_only_value(x: int) -> Any:
    """An object of a class whose module only the calling process has."""
    return _module_named("jr_caller_only").Thing(x)


def worker_only_value(x: int, bad: int = -1) -> Any:
    """``x``, except for ``bad``: an object of a class whose module only the worker has."""
    if x != bad:
        return x
    return _module_named("jr_worker_only").Thing(x)


def record(x: Any, log: str) -> Any:
    with open(log, "a") as fh:
        fh.write(f"{x}\n")
    return x


class BrokenStr(Exception):
    def __str__(self) -> str:
        raise RuntimeError("__str__ is broken")


class ReduceExits(Exception):
    def __reduce__(self) -> Any:
        raise SystemExit("an exception that exits when pickled")


def raise_odd(kind: str, x: int, log: str) -> int:
    """Log the run; input 2 raises an exception that breaks when formatted or pickled."""
    record(x, log)
    if x == 2:
        raise BrokenStr() if kind == "str" else ReduceExits("odd input 2")
    return os.getpid()
