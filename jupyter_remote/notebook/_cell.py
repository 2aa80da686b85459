"""The worker side of ``%%remote``: run a cell in an IPython shell on the worker.

``CellRunner`` is a class run through ``@app.cls`` machinery: ``@enter``
creates an ``InteractiveShell`` once per worker, so line magics, ``!shell``
lines, ``%pip`` and IPython's input transforms work remotely; a session keeps
the shell's namespace across cells. Displays (``display()``, figures,
``update_display``, ``clear_output``) are sent to the caller as events while
the cell runs; what the cell assigned comes back in the :class:`CellResult`.

IPython is imported only here, on workers that run a ``%%remote`` cell.
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import sys
from dataclasses import dataclass, field
from typing import Any

from ..protocol import ENTER_MARK, METHOD_MARK, Payload, dumps, loads
from ..runtime import emit

__all__ = ["CellResult", "CellRunner", "RemoteDisplay"]


@dataclass
class RemoteDisplay:
    """The MIME bundle of a value that stayed on the worker (it could not be pickled)."""

    data: dict[str, Any]
    metadata: dict[str, Any] = field(default_factory=dict)

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> Any:
        return self.data, self.metadata

    def __repr__(self) -> str:
        return str(self.data.get("text/plain", "<remote value>"))


@dataclass
class CellResult:
    values: dict[str, Payload]  # names the cell assigned, pickled one by one
    modules: dict[str, str]  # names bound to modules: re-imported by the caller
    unpicklable: dict[str, str]  # name -> type of values that stayed on the worker
    result: Payload | None = None  # the last expression's value, when it pickles
    display: RemoteDisplay | None = None  # ... else its MIME bundle
    error: tuple[str, str, list[str], Payload | None] | None = None  # ename, evalue, tb, exc
    deleted: list[str] = field(default_factory=list)


def _import(ref: str) -> Any:
    module, _, attr = ref.partition(":")
    mod = importlib.import_module(module)
    return getattr(mod, attr) if attr else mod


class CellRunner:
    """Runs cells for one session (or, with ``session=""``, fresh namespaces)."""

    def __init__(self, session: str = "") -> None:
        self.session = session
        self.shell: Any = None
        self.last_tb: tuple[str, str, list[str], BaseException | None] | None = None

    def start(self) -> None:
        from IPython.core.displayhook import DisplayHook
        from IPython.core.displaypub import DisplayPublisher
        from IPython.core.interactiveshell import InteractiveShell

        class EventPublisher(DisplayPublisher):
            def publish(
                self,
                data: dict[str, Any],
                metadata: dict[str, Any] | None = None,
                source: Any = None,
                *,
                transient: dict[str, Any] | None = None,
                update: bool = False,
                **kwargs: Any,
            ) -> None:
                sys.stdout.flush()
                emit(
                    "display",
                    {
                        "data": data,
                        "metadata": metadata or {},
                        "transient": transient or {},
                        "update": update,
                    },
                )

            def clear_output(self, wait: bool = False) -> None:
                emit("clear_output", {"wait": wait})

        class QuietDisplayHook(DisplayHook):
            """Keeps the last value (``Out[n]``) without printing it: the caller shows it."""

            def write_output_prompt(self) -> None:
                pass

            def write_format_data(self, format_dict: Any, md_dict: Any = None) -> None:
                pass

        shell: Any = InteractiveShell.instance(display_pub_class=EventPublisher)
        hook: Any = QuietDisplayHook
        shell.displayhook = hook(shell=shell, cache_size=shell.cache_size)
        shell.display_trap.hook = shell.displayhook
        shell._showtraceback = self._keep_traceback  # stays with the result, not on stdout
        if importlib.util.find_spec("matplotlib") is not None:
            with contextlib.suppress(Exception):
                shell.enable_matplotlib("inline")
        self.shell = shell

    def _keep_traceback(self, etype: type, evalue: BaseException, stb: list[str]) -> None:
        self.last_tb = (etype.__name__, str(evalue), list(stb), evalue)

    def run(
        self,
        code: str,
        shipped: dict[str, Payload],
        modules: dict[str, str],
        sync: list[str],
        execution_count: int,
    ) -> CellResult:
        shell = self.shell
        if not self.session:
            shell.reset(new_session=False)
        ns = shell.user_ns
        for name, ref in modules.items():
            ns[name] = _import(ref)
        for name, payload in shipped.items():
            ns[name] = loads(payload)
        self.last_tb = None
        shell.execution_count = execution_count
        # A first line standing for the %%remote line: tracebacks then give the line
        # numbers the user sees in the notebook cell (IPython drops leading blank lines).
        outcome = shell.run_cell("# %%remote\n" + code, store_history=True)
        sys.stdout.flush()
        sys.stderr.flush()
        return self._result(outcome, sync)

    def _result(self, outcome: Any, sync: list[str]) -> CellResult:
        import types

        ns = self.shell.user_ns
        res = CellResult({}, {}, {})
        for name in sync:
            if name not in ns:
                res.deleted.append(name)
                continue
            value = ns[name]
            if isinstance(value, types.ModuleType):
                res.modules[name] = value.__name__
                continue
            try:
                res.values[name] = dumps(value)
            except Exception:
                res.unpicklable[name] = f"{type(value).__module__}.{type(value).__qualname__}"
        value = outcome.result
        if value is not None:
            try:
                res.result = dumps(value)
            except Exception:
                data, md = self.shell.display_formatter.format(value)
                res.display = RemoteDisplay(data, md)
        if self.last_tb is not None and (outcome.error_in_exec or outcome.error_before_exec):
            ename, evalue, stb, exc = self.last_tb
            payload: Payload | None = None
            if exc is not None:
                try:
                    payload = dumps(exc.with_traceback(None))
                    loads(payload)
                except Exception:
                    payload = None
            res.error = (ename, evalue, stb, payload)
        return res


# The @enter / @method marks, set directly: the worker need not import the API.
setattr(CellRunner.start, ENTER_MARK, True)
setattr(CellRunner.run, METHOD_MARK, True)
