"""``jupyter-remote deploy FILE[::app]``, ``server start|status|stop`` and ``app ...``.

``app list | stop NAME | logs NAME [-f] | history NAME`` manage deployed apps.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import sys
import time
import traceback
from typing import Any

from ..api import App
from ..deploy import connection, not_running
from ..deploy._launch import ensure_started, reachable, server_lock, stop_pid
from ..deploy._paths import read_state, remove_state, state_dir
from ..deploy._store import DeploymentStore, validate_app_name
from ..exceptions import JupyterRemoteError
from ._common import EXIT_RUNTIME, CliError, Subparsers
from ._target import UserImportError, import_target, split_target

__all__ = ["add_parser"]


def add_parser(subparsers: Subparsers) -> None:
    deploy = subparsers.add_parser(
        "deploy",
        help="deploy an app: its functions keep running on the app server",
        description="Import FILE (or a module with -m), then register the app it defines "
        "(or the one named after '::') with the app server, which is started if it is not "
        "running. A redeploy replaces the app atomically.",
    )
    deploy.add_argument("target", metavar="FILE[::app]", help="script or module, and app variable")
    deploy.add_argument("--name", help="deploy under this name (default: the App's name)")
    deploy.add_argument("-m", dest="module_path", action="store_true", help="TARGET is a module")
    deploy.set_defaults(handler=_deploy)

    server = subparsers.add_parser("server", help="the app server: start, status, stop")
    sub = server.add_subparsers(title="commands", metavar="COMMAND", parser_class=type(server))
    for name, handler, text in (
        ("start", _server_start, "start the app server (it resumes every deployment)"),
        ("status", _server_status, "say whether the app server runs, and what it serves"),
        ("stop", _server_stop, "stop the app server and its workers (deployments are kept)"),
    ):
        sub.add_parser(name, help=text).set_defaults(handler=handler)

    app = subparsers.add_parser("app", help="deployed apps: list, stop, logs, history")
    sub = app.add_subparsers(title="commands", metavar="COMMAND", parser_class=type(app))
    sub.add_parser("list", help="list the deployed apps").set_defaults(handler=_app_list)
    stop = sub.add_parser("stop", help="stop a deployed app and remove its deployment")
    stop.add_argument("name")
    stop.set_defaults(handler=_app_stop)
    logs = sub.add_parser("logs", help="what a deployed app's functions printed")
    logs.add_argument("name")
    logs.add_argument("-f", "--follow", action="store_true", help="keep printing new lines")
    logs.set_defaults(handler=_app_logs)
    history = sub.add_parser("history", help="a deployed app's deploys and stops")
    history.add_argument("name")
    history.set_defaults(handler=_app_history)


def _when(ts: Any) -> str:
    return datetime.datetime.fromtimestamp(float(ts)).strftime("%Y-%m-%d %H:%M:%S")


def _find_app(where: str, name: str | None, module_path: bool) -> App:
    try:
        module = import_target(where, module_path=module_path)
    except UserImportError as exc:
        cause = exc.__cause__ or exc
        traceback.print_exception(cause, file=sys.stderr)
        raise CliError(f"importing {where} failed: {cause}", EXIT_RUNTIME) from None
    apps = {k: v for k, v in vars(module).items() if isinstance(v, App)}
    if name is not None:
        app = apps.get(name)
        if app is None:
            names = ", ".join(sorted(apps)) or "none"
            raise CliError(f"{where} has no App named {name!r}; its App variables: {names}")
        return app
    if len(apps) != 1:
        names = ", ".join(sorted(apps)) or "none"
        raise CliError(f"{where} defines {len(apps)} Apps ({names}): name one with {where}::VAR")
    return next(iter(apps.values()))


def _deploy(args: argparse.Namespace) -> int:
    where, var = split_target(args.target)
    app = _find_app(where, var, args.module_path)
    name = app.name if args.name is None else args.name
    try:
        app.deploy(name=name)
        summary = connection().control("describe", app=name)
    except JupyterRemoteError as exc:
        raise CliError(str(exc), EXIT_RUNTIME) from exc
    parts = list(summary["functions"]) + [f"{c} (class)" for c in summary["classes"]]
    print(f"Deployed app {name!r} version {summary['version']}: {', '.join(parts) or 'nothing'}")
    print(f'Call it from any process: jr.Function.from_name("{name}", "<function>")')
    return 0


def _server_start(args: argparse.Namespace) -> int:
    try:
        state = ensure_started()
    except JupyterRemoteError as exc:
        raise CliError(str(exc), EXIT_RUNTIME) from exc
    print(f"The app server runs (pid {state['pid']}, port {state['port']}).")
    return 0


def _server_status(args: argparse.Namespace) -> int:
    state = read_state()
    if not reachable(state):
        print(f"Not running: {not_running()}")
        return 3
    try:
        status = connection(start=False).control("status")
    except JupyterRemoteError as exc:
        raise CliError(str(exc), EXIT_RUNTIME) from exc
    apps = ", ".join(status["apps"]) or "none"
    print(f"The app server runs: pid {status['pid']}, since {_when(status['started'])}.")
    print(f"Deployed apps: {apps}. State: {state_dir()}")
    return 0


def _server_stop(args: argparse.Namespace) -> int:
    with server_lock():
        state = read_state()
        if not reachable(state):
            print("The app server is not running.")
            return 0
        assert state is not None
        pid = int(state["pid"])
        # It may close the connection before its answer arrives: the pid tells below.
        with contextlib.suppress(JupyterRemoteError):
            connection(start=False).control("shutdown", timeout=30)
        if not stop_pid(pid):
            raise CliError(f"the app server (pid {pid}) did not stop", EXIT_RUNTIME)
        remove_state(pid)
    print(f"Stopped the app server (pid {pid}); deployments are kept for its next start.")
    return 0


def _app_list(args: argparse.Namespace) -> int:
    try:
        apps = connection().control("list")
    except JupyterRemoteError as exc:
        raise CliError(str(exc), EXIT_RUNTIME) from exc
    if not apps:
        print("No app is deployed; deploy one with `jupyter-remote deploy FILE`.")
        return 0
    for a in apps:
        parts = list(a["functions"]) + [f"{c} (class)" for c in a["classes"]]
        print(f"{a['name']}\tv{a['version']}\t{_when(a['deployed_at'])}\t{', '.join(parts)}")
    return 0


def _app_stop(args: argparse.Namespace) -> int:
    try:
        connection().control("stop_app", app=validate_app_name(args.name))
    except JupyterRemoteError as exc:
        raise CliError(str(exc), EXIT_RUNTIME) from exc
    print(f"Stopped app {args.name!r}; its deployment is removed (its history is kept).")
    return 0


def _app_logs(args: argparse.Namespace) -> int:
    path = state_dir() / "logs" / f"{validate_app_name(args.name)}.log"
    if not path.exists() and not args.follow:
        print(f"App {args.name!r} has printed nothing yet.", file=sys.stderr)
        return 0
    offset = 0
    while True:
        if path.exists():
            with open(path, "rb") as f:
                f.seek(offset)
                data = f.read()
            offset += len(data)
            sys.stdout.write(data.decode(errors="replace"))
            sys.stdout.flush()
        if not args.follow:
            return 0
        time.sleep(0.5)


def _app_history(args: argparse.Namespace) -> int:
    try:
        events = DeploymentStore().history(validate_app_name(args.name))
    except JupyterRemoteError as exc:
        raise CliError(str(exc), EXIT_RUNTIME) from exc
    for e in events:
        what = f"deployed v{e.get('version')}" if e.get("event") == "deploy" else str(e["event"])
        extra = ", ".join(e.get("functions") or []) if e.get("event") == "deploy" else ""
        print(f"{_when(e['time'])}\t{what}\t{extra}".rstrip())
    return 0
