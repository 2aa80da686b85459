"""``jupyter-remote schedule list | pause NAME | resume NAME | run NAME | runs NAME | logs RUN_ID``.

``NAME`` is ``APP.FUNCTION`` (a deployed function with ``schedule=``).
"""

from __future__ import annotations

import argparse
import datetime
from typing import Any

from ..deploy import connection
from ..exceptions import JupyterRemoteError
from ._common import EXIT_RUNTIME, CliError, Subparsers

__all__ = ["add_parser"]


def add_parser(subparsers: Subparsers) -> None:
    schedule = subparsers.add_parser(
        "schedule", help="schedules of deployed apps: list, pause, resume, run, runs, logs"
    )
    sub = schedule.add_subparsers(title="commands", metavar="COMMAND", parser_class=type(schedule))
    sub.add_parser("list", help="every deployed schedule, its next fire").set_defaults(
        handler=_list
    )
    for name, text in (
        ("pause", "stop firing (until resumed)"),
        ("resume", "fire again, counting from now"),
        ("run", "run it now (the next fire stays)"),
        ("runs", "its runs: id, status, start, duration, error"),
    ):
        p = sub.add_parser(name, help=text)
        p.add_argument("name", metavar="APP.FUNCTION")
        p.set_defaults(handler=_one, op=name)
    logs = sub.add_parser("logs", help="the whole output of one run")
    logs.add_argument("run_id", metavar="RUN_ID")
    logs.set_defaults(handler=_logs)


def _when(ts: Any) -> str:
    if ts is None:
        return "-"
    return datetime.datetime.fromtimestamp(float(ts)).strftime("%Y-%m-%d %H:%M:%S")


def _ask(op: str, **args: Any) -> Any:
    try:
        return connection().control(op, **args)
    except JupyterRemoteError as exc:
        raise CliError(str(exc), EXIT_RUNTIME) from exc


def _list(args: argparse.Namespace) -> int:
    schedules = _ask("schedules")
    if not schedules:
        print("No schedule is deployed; add schedule=jr.Cron(...) to a function and deploy it.")
    for s in schedules:
        state = "paused" if s["paused"] else f"next {_when(s['next'])}"
        going = f", running {s['running']}" if s["running"] else ""
        print(f"{s['name']}\t{s['schedule']}\t{state}{going}")
    return 0


def _one(args: argparse.Namespace) -> int:
    op = {"run": "run_now"}.get(args.op, args.op)
    result = _ask(op, name=args.name)
    if args.op == "run":
        print(f"Started run {result['run_id']}")
    elif args.op == "runs":
        for r in result:
            duration = f"{float(r['duration']):.1f}s" if r.get("duration") is not None else "-"
            error = str(r.get("error") or "").splitlines()
            print(
                f"{r['id']}\t{r['status']}\t{_when(r.get('start'))}\t{duration}"
                + (f"\t{error[0]}" if error else "")
            )
    else:
        print(f"{'Paused' if args.op == 'pause' else 'Resumed'} {args.name}.")
    return 0


def _logs(args: argparse.Namespace) -> int:
    print(_ask("run_log", id=args.run_id), end="")
    return 0
