"""``%%remote``, ``%remote`` and ``%remote_config``.

A ``%%remote`` cell runs in an IPython shell on a worker (see ``_cell``):
the globals it reads travel with it, its output streams into the cell, the
names it assigns come back, and its last value becomes ``Out[n]``.
"""

from __future__ import annotations

import contextlib
import importlib
import shlex
import warnings
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

from IPython.core.error import UsageError
from IPython.core.magic import Magics, line_cell_magic, line_magic, magics_class

from ..api import App, Secret, Volume
from ..api._options import FunctionOptions
from ..controller import controller
from ..exceptions import ConfigError, JupyterRemoteError, RemoteError, SerializationError
from ..protocol import Payload, dumps, loads
from ..runtime._mounts import check_mount_path
from ._analysis import analyze_cell
from ._cell import CellResult, CellRunner

__all__ = ["CELL_KEYS", "RemoteMagics", "parse_remote_line"]

CELL_KEYS = ("gpu", "cpu", "memory", "timeout", "retries", "image", "secrets", "volumes", "env")
CELL_TIMEOUT = 86400.0  # a cell may train for hours; set timeout= to bound it
LARGE_GLOBAL = 50 << 20
SESSION_IDLE = 86400.0  # sessions end with the kernel or %remote close, or after a day idle


@dataclass
class CellArgs:
    options: dict[str, Any] = field(default_factory=dict)
    session: str | None = None
    sync: bool = True
    out: list[str] | None = None
    backend: str | None = None


def _value(key: str, raw: str, ns: dict[str, Any]) -> Any:
    if key in ("cpu", "timeout"):
        try:
            return float(raw)
        except ValueError:
            raise UsageError(f"{key}={raw!r}: expected a number") from None
    if key == "retries":
        try:
            return int(raw)
        except ValueError:
            raise UsageError(f"retries={raw!r}: expected an integer") from None
    if key == "image":
        if raw not in ns:
            raise UsageError(f"image={raw}: no variable {raw!r} in the notebook holds an Image")
        return ns[raw]
    if key == "secrets":
        return _secret_names(raw)
    if key == "volumes":
        return _volume_names(raw)
    return raw


def _secret_names(raw: str) -> tuple[str, ...]:
    """``secrets=db,api``: the names of stored secrets (each ``jr.Secret.from_name``)."""
    names = tuple(raw.split(","))
    if not all(names):
        raise UsageError(f"secrets={raw!r}: name the stored secrets, e.g. secrets=db,api")
    for name in names:
        try:
            Secret.from_name(name)  # the name's syntax now; the store is read when the cell runs
        except ConfigError as exc:
            raise UsageError(f"secrets={raw!r}: {exc}") from None
    return names


def _volume_names(raw: str) -> dict[str, str]:
    """``volumes=/data:datasets[,...]``: mount path -> name of an existing volume."""
    vols: dict[str, str] = {}
    for item in raw.split(","):
        path, sep, name = item.rpartition(":")  # a volume name has no ':'
        if not sep or not path or not name:
            raise UsageError(f"volumes={raw!r}: use volumes=/path:NAME[,/path:NAME]")
        if name.startswith("/") and not path.startswith("/"):
            raise UsageError(
                f"volumes={raw!r}: write the path first: volumes={name}:{path} "
                f"(as in volumes={{{name!r}: jr.Volume.from_name({path!r})}})"
            )
        try:
            check_mount_path(path)
            Volume.from_name(name)
        except (ConfigError, ValueError) as exc:
            raise UsageError(f"volumes={raw!r}: {exc}") from None
        vols[path] = name
    return vols


def _api_options(options: dict[str, Any]) -> dict[str, Any]:
    """The cell's options as ``@app.cls`` takes them: names become Secrets and Volumes.

    Options keep the names (they compare equal, so a session's cells can be
    checked against its options); they become objects only here.
    """
    out = dict(options)
    if "secrets" in out:
        out["secrets"] = [Secret.from_name(n) for n in out["secrets"]]
    if "volumes" in out:
        out["volumes"] = {path: Volume.from_name(n) for path, n in out["volumes"].items()}
    return out


def parse_remote_line(line: str, ns: dict[str, Any]) -> CellArgs:
    """Parse ``key=value ... [--session NAME] [--no-sync] [--out a,b] [--backend NAME]``."""
    try:
        tokens = shlex.split(line)
    except ValueError as exc:
        raise UsageError(f"%%remote: {exc}") from None
    args = CellArgs()
    it = iter(tokens)
    for tok in it:
        if tok in ("--session", "--out", "--backend"):
            value = next(it, None)
            if value is None or value.startswith("--"):
                raise UsageError(f"{tok} needs a value")
            if tok == "--session":
                args.session = value
            elif tok == "--backend":
                args.backend = value
            else:
                args.out = [n.strip() for n in value.split(",") if n.strip()]
        elif tok == "--no-sync":
            args.sync = False
        elif tok.startswith("--"):
            raise UsageError(
                f"unknown flag {tok}; flags are --session NAME, --no-sync, --out a,b, "
                "--backend NAME"
            )
        else:
            key, sep, raw = tok.partition("=")
            if not sep:
                raise UsageError(f"{tok!r}: options are key=value, e.g. gpu=H100 cpu=8")
            if key not in CELL_KEYS:
                raise UsageError(f"unknown key {key!r}; valid keys: {', '.join(CELL_KEYS)}")
            if key == "env":
                name, eq, val = raw.partition("=")
                if not eq or not name:
                    raise UsageError(f"env={raw!r}: use env=KEY=VALUE")
                args.options.setdefault("env", {})[name] = val
            else:
                args.options[key] = _value(key, raw, ns)
    return args


def _check_options(options: dict[str, Any]) -> None:
    try:
        FunctionOptions.parse(**_api_options(options))
    except (ConfigError, TypeError) as exc:
        raise UsageError(str(exc)) from None


@dataclass
class Session:
    name: str
    options: dict[str, Any]
    app: App
    runner: Any
    remote_names: set[str] = field(default_factory=set)
    synced: dict[str, int] = field(default_factory=dict)  # name -> id() of the value synced back


@magics_class
class RemoteMagics(Magics):
    def __init__(self, shell: Any) -> None:
        super().__init__(shell)
        self.defaults: dict[str, Any] = {}
        self.sessions: dict[str, Session] = {}
        self._apps: dict[str | None, App] = {}
        self.default_backend: str | None = None

    @property
    def ip(self) -> Any:
        """The shell (IPython types it as optional; a registered magic always has one)."""
        return self.shell

    # -- %remote_config / %remote -----------------------------------------------------------

    @line_magic
    def remote_config(self, line: str) -> None:
        """Set notebook-wide defaults for %%remote cells: %remote_config gpu=A100 cpu=8."""
        if not line.strip():
            print("defaults:", self._describe(self.defaults) or "(none)")
            return
        args = parse_remote_line(line, self.ip.user_ns)
        if args.session or args.out or not args.sync:
            raise UsageError("%remote_config takes key=value options only")
        merged = {**self.defaults, **args.options}
        _check_options(merged)
        self.defaults = merged
        if args.backend:
            self.default_backend = args.backend
        print("defaults:", self._describe(self.defaults))

    @line_cell_magic
    def remote(self, line: str, cell: str | None = None) -> Any:
        """Run a cell on a worker: ``%%remote gpu=H100 cpu=8 memory=32Gi [--session NAME]``.

        Line forms: ``%remote`` (backend, defaults, sessions, running work),
        ``%remote sessions``, ``%remote close NAME``.
        """
        if cell is not None:
            try:
                return self.run_cell(line, cell)
            except (ConfigError, SerializationError) as exc:
                raise UsageError(str(exc)) from None
        words = line.split()
        if not words:
            self._status()
        elif words[0] == "sessions":
            self._list_sessions()
        elif words[0] == "close" and len(words) == 2:
            self.close_session(words[1])
        else:
            raise UsageError("usage: %remote | %remote sessions | %remote close NAME")
        return None

    @staticmethod
    def _describe(options: dict[str, Any]) -> str:
        """The options as a %%remote line writes them (secrets and volumes by name)."""
        shown = dict(options)
        if "secrets" in shown:
            shown["secrets"] = ",".join(shown["secrets"])
        if "volumes" in shown:
            shown["volumes"] = ",".join(f"{p}:{n}" for p, n in shown["volumes"].items())
        return " ".join(f"{k}={v}" for k, v in shown.items())

    def _status(self) -> None:
        ctl = controller()
        print(f"backend: {self._app(self.default_backend).backend_name}")
        print("defaults:", self._describe(self.defaults) or "(none)")
        self._list_sessions()
        running = [
            (pool.label, call)
            for pool in list(ctl.pools.values())
            for call in list(pool.calls.values())
        ]
        print(f"running calls: {len(running)}")
        for label, call in running:
            done = call.n_succeeded + call.n_failed
            print(
                f"  {call.object_id} {label}: {done}/{call.n_inputs} done, {call.inflight} running"
            )

    def _list_sessions(self) -> None:
        if not self.sessions:
            print("sessions: (none)")
            return
        print("sessions:")
        for s in self.sessions.values():
            names = ", ".join(sorted(s.remote_names)) or "-"
            print(f"  {s.name} [{self._describe(s.options) or 'default resources'}] holds: {names}")

    def close_session(self, name: str) -> None:
        session = self.sessions.pop(name, None)
        if session is None:
            raise UsageError(f"no session {name!r}; sessions: {', '.join(self.sessions) or 'none'}")
        session.app.stop()
        print(f"session {name} closed")

    # -- %%remote -------------------------------------------------------------------------

    def _app(self, backend: str | None) -> App:
        if backend not in self._apps:
            self._apps[backend] = App("notebook", backend=backend)
        return self._apps[backend]

    def _runner(self, args: CellArgs, options: dict[str, Any]) -> tuple[Any, Session | None]:
        opts = {"timeout": CELL_TIMEOUT, **_api_options(options)}
        if args.session is None:
            app = self._app(args.backend)
            return app.cls(name="cell", **opts)(CellRunner)("").run, None
        session = self.sessions.get(args.session)
        if session is not None:
            if args.options and options != session.options:
                raise UsageError(
                    f"session {args.session!r} runs with "
                    f"[{self._describe(session.options) or 'default resources'}]; "
                    f"close it first (%remote close {args.session}) to change its resources"
                )
            return session.runner, session
        app = App(f"session-{args.session}", backend=args.backend)
        cls = app.cls(
            name="session",
            min_containers=1,
            max_containers=1,
            scaledown_window=SESSION_IDLE,
            **opts,
        )(CellRunner)
        session = Session(args.session, options, app, cls(args.session).run)
        self.sessions[args.session] = session
        return session.runner, session

    def _ship(
        self, reads: frozenset[str], session: Session | None
    ) -> tuple[dict[str, Payload], dict[str, str]]:
        ns = self.ip.user_ns
        shipped: dict[str, Payload] = {}
        modules: dict[str, str] = {}
        for name in sorted(reads):
            if name not in ns:
                continue  # a builtin, or something the session defined remotely
            value = ns[name]
            if isinstance(value, ModuleType):
                modules[name] = value.__name__
                continue
            if session is not None and session.synced.get(name) == id(value):
                continue  # the session holds this very value already
            try:
                payload = dumps(value)
            except Exception as exc:
                if session is not None and name in session.remote_names:
                    continue  # it lives on the worker
                kind = f"{type(value).__module__}.{type(value).__qualname__}"
                raise UsageError(
                    f"{name!r} (type {kind}) cannot be sent to the remote cell: {exc}. Create it "
                    "inside the cell, or keep it remote with --session"
                ) from None
            if payload.nbytes > LARGE_GLOBAL:
                warnings.warn(
                    f"{name!r} is {payload.nbytes >> 20} MiB and is sent with every cell that "
                    "reads it; load it remotely (or use --session) to send it once",
                    stacklevel=2,
                )
            shipped[name] = payload
        return shipped, modules

    def run_cell(self, line: str, cell: str) -> Any:
        shell = self.ip
        args = parse_remote_line(line, shell.user_ns)
        args.backend = args.backend or self.default_backend
        options = {**self.defaults, **args.options}
        _check_options(options)
        names = analyze_cell(shell.transform_cell(cell))
        runner, session = self._runner(args, options)
        shipped, modules = self._ship(names.reads, session)
        if not args.sync:
            sync: list[str] = []
        elif args.out is not None:
            sync = args.out
        else:
            sync = sorted(names.assigns | names.deletes)
        try:
            # IPython counts the running cell as the next one: In[n] is count - 1.
            count = shell.execution_count - 1
            result: CellResult = runner.remote(cell, shipped, modules, sync, count)
        except JupyterRemoteError as exc:
            if isinstance(exc, RemoteError):
                raise
            raise UsageError(str(exc)) from None
        return self._finish(result, names.deletes, session)

    def _finish(self, result: CellResult, deletes: frozenset[str], session: Session | None) -> Any:
        ns = self.ip.user_ns
        stayed = dict(result.unpicklable)
        for name, payload in result.values.items():
            try:
                ns[name] = loads(payload)
            except Exception as exc:
                stayed[name] = f"cannot be unpickled here: {exc}"
                continue
            if session is not None:
                session.synced[name] = id(ns[name])
        for name, ref in result.modules.items():
            try:
                ns[name] = importlib.import_module(ref)
            except ImportError:
                stayed[name] = f"module {ref}, not installed here"
        for name in result.deleted:
            if name in deletes:
                ns.pop(name, None)
        if session is not None:
            session.remote_names.update(result.values, result.modules, stayed)
            session.remote_names.difference_update(result.deleted)
        if stayed:
            where = f"stay in session {session.name!r}" if session else "were not brought back"
            listing = ", ".join(f"{n} ({t})" for n, t in sorted(stayed.items()))
            warnings.warn(f"{listing} {where}: they cannot be pickled", stacklevel=2)
        if result.error is not None:
            raise _cell_error(result.error)
        if result.result is not None:
            return loads(result.result)
        return result.display


def _cell_error(error: tuple[str, str, list[str], Payload | None]) -> BaseException:
    ename, evalue, stb, payload = error
    exc: BaseException | None = None
    if payload is not None:
        try:
            exc = loads(payload)
        except Exception:
            exc = None
    if not isinstance(exc, BaseException):
        exc = RemoteError(f"{ename}: {evalue}", "\n".join(stb))
    # IPython shows this instead of the local frames: the remote cell's own traceback.
    with contextlib.suppress(AttributeError):  # an exception type without __dict__
        exc._render_traceback_ = lambda: stb  # type: ignore[attr-defined]
    return exc
