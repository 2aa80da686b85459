#!/usr/bin/env python
"""Benchmarks: jupyter_remote side by side with ProcessPoolExecutor, Dask, ipyparallel and Ray.

    python tests/benchmarks/run.py [--quick] [--only METRIC,...] [--peers PEER,...]
                                   [--json PATH] [--check]

Every peer runs the same workloads (``workloads.py``) on two warm worker
processes, one peer at a time, on this machine, in this run; ratios are
against ``concurrent.futures.ProcessPoolExecutor`` (PPE), which always runs.
Peers that are not installed or do not start are skipped with the reason.
BENCHMARKS.md explains each metric and keeps the numbers of a full run.
"""

from __future__ import annotations

import argparse
import datetime
import faulthandler
import json
import os
import platform
import shlex
import statistics
import subprocess
import sys
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))  # workers import `workloads` from here (local: via PYTHONPATH)
os.environ.setdefault("JUPYTER_REMOTE_PROGRESS", "0")

import workloads  # noqa: E402
from peers import PEERS, Bound, Peer, PeerUnavailable  # noqa: E402

OURS = "jupyter_remote"
BASE = "PPE"
MB = 1_000_000


@dataclass(frozen=True)
class Sizes:
    roundtrip_calls: int
    roundtrip_rounds: int
    warmup_calls: int
    map_inputs: int
    task_map_inputs: int  # for peers that make one task per input (Dask, Ray)
    map_repeats: int
    sleep_inputs: int
    sleep_repeats: int
    big_elements: int  # float64: 8 bytes each
    big_repeats: int
    cold_trials: int
    start_timeout: float = 60.0


FULL = Sizes(2000, 3, 200, 100_000, 10_000, 3, 4000, 2, 12_500_000, 5, 5)
QUICK = Sizes(200, 1, 20, 10_000, 500, 1, 400, 1, 1_250_000, 2, 1)


# -- what is reported --------------------------------------------------------------------------


@dataclass(frozen=True)
class Row:
    key: str
    title: str
    unit: str
    higher_is_better: bool
    fmt: Callable[[float], str]
    #: (description, met?) for jupyter_remote; met gets (our value, our ratio to PPE).
    target: tuple[str, Callable[[float, float | None], bool]] | None = None


def _int(v: float) -> str:
    return f"{v:,.0f}"


def _sig3(v: float) -> str:
    return f"{v:.3g}" if v < 100 else f"{v:,.0f}"


ROWS: dict[str, Row] = {
    r.key: r
    for r in (
        Row(
            "roundtrip_p50",
            ".remote round trip p50",
            "µs",
            False,
            _int,
            ("≤ 1.5x PPE", lambda v, r: r is not None and r <= 1.5),
        ),
        Row("roundtrip_p90", ".remote round trip p90", "µs", False, _int),
        Row(
            "map",
            ".map, trivial inputs",
            "items/s",
            True,
            _int,
            ("≥ 0.5x PPE", lambda v, r: r is not None and r >= 0.5),
        ),
        Row("sleep_map", ".map, 1 ms sleep each", "items/s", True, _int),
        Row(
            "sleep_map_ideal",
            ".map, 1 ms sleep: % of ideal",
            "%",
            True,
            lambda v: f"{v:.1f}",
            ("≥ 90 % of ideal", lambda v, r: v >= 90.0),
        ),
        Row(
            "big_arg",
            "array argument + result",
            "MB/s",
            True,
            _int,
            ("≥ 1x PPE", lambda v, r: r is not None and r >= 1.0),
        ),
        Row(
            "cold",
            "cold start to first result",
            "s",
            False,
            lambda v: f"{v:.3f}",
            ("≤ 3x PPE", lambda v, r: r is not None and r <= 3.0),
        ),
    )
}
METRICS = ("roundtrip", "map", "sleep_map", "big_arg", "cold")


@dataclass
class Cell:
    value: float
    n: int
    samples: list[float] = field(default_factory=list)
    note: str = ""


@dataclass
class Report:
    header: dict[str, Any]
    sizes: Sizes
    ideal_sleep_s: float | None = None
    cells: dict[str, dict[str, Cell]] = field(default_factory=dict)
    errors: dict[str, list[str]] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)

    def put(self, row: str, peer: str, cell: Cell) -> None:
        self.cells.setdefault(row, {})[peer] = cell

    def error(self, peer: str, what: str) -> None:
        self.errors.setdefault(peer, []).append(what)

    def ratio(self, row: str, peer: str) -> float | None:
        cells = self.cells.get(row, {})
        if peer not in cells or BASE not in cells or cells[BASE].value == 0:
            return None
        return cells[peer].value / cells[BASE].value

    def verdicts(self) -> dict[str, bool | None]:
        out: dict[str, bool | None] = {}
        for key, row in ROWS.items():
            if row.target is None or key not in self.cells:
                continue
            ours = self.cells[key].get(OURS)
            out[key] = None if ours is None else row.target[1](ours.value, self.ratio(key, OURS))
        return out


def log(msg: str) -> None:
    print(f"  .. {msg}", file=sys.stderr, flush=True)


# -- the measurements --------------------------------------------------------------------------


def bench_roundtrip(b: Bound, s: Sizes, report: Report, peer: str) -> None:
    """p50 and p90 of sequential calls; the round with the lowest p50 of several is kept."""
    for i in range(s.warmup_calls):
        b.call(i)
    rounds: list[tuple[float, float]] = []
    for _ in range(s.roundtrip_rounds):
        times: list[float] = []
        for i in range(s.roundtrip_calls):
            t0 = time.perf_counter_ns()
            r = b.call(i)
            times.append((time.perf_counter_ns() - t0) / 1000)
            if r != i:
                raise AssertionError(f"identity({i}) returned {r!r}")
        rounds.append((statistics.median(times), statistics.quantiles(times, n=10)[8]))
    p50, p90 = min(rounds)
    n = s.roundtrip_calls
    report.put("roundtrip_p50", peer, Cell(p50, n, [r[0] for r in rounds]))
    report.put("roundtrip_p90", peer, Cell(p90, n, [r[1] for r in rounds]))


def _best_throughput(b: Bound, xs: list[int], repeats: int) -> tuple[float, list[float]]:
    rates = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = b.map(xs)
        elapsed = time.perf_counter() - t0
        if out != xs:
            raise AssertionError(".map returned wrong results")
        rates.append(len(xs) / elapsed)
    return max(rates), rates


def bench_map(b: Bound, s: Sizes, report: Report, peer: str, task_per_input: bool) -> None:
    n = s.task_map_inputs if task_per_input else s.map_inputs
    b.map(list(range(min(n, 1000) // 10)))  # warm-up
    best, rates = _best_throughput(b, list(range(n)), s.map_repeats)
    note = f"{n:,} inputs (one task per input)" if n < s.map_inputs else ""
    report.put("map", peer, Cell(best, n, rates, note))


def bench_sleep_map(b: Bound, s: Sizes, report: Report, peer: str) -> None:
    b.map(list(range(20)))  # warm-up
    best, rates = _best_throughput(b, list(range(s.sleep_inputs)), s.sleep_repeats)
    report.put("sleep_map", peer, Cell(best, s.sleep_inputs, rates))
    if report.ideal_sleep_s:
        ideal = 2 / report.ideal_sleep_s
        report.put("sleep_map_ideal", peer, Cell(100 * best / ideal, s.sleep_inputs))


def bench_big_arg(b: Bound, s: Sizes, report: Report, peer: str) -> None:
    import numpy as np

    arr = np.ones(s.big_elements)
    b.call(arr)  # warm-up: page in the buffers on both sides
    rates = []
    for _ in range(s.big_repeats):
        t0 = time.perf_counter()
        out = b.call(arr)
        elapsed = time.perf_counter() - t0
        if out.shape != arr.shape:
            raise AssertionError("the array came back with another shape")
        del out
        rates.append(2 * arr.nbytes / MB / elapsed)
    report.put("big_arg", peer, Cell(max(rates), s.big_repeats, rates, f"{arr.nbytes / MB:g} MB"))


def bench_cold(name: str, s: Sizes, report: Report) -> None:
    samples = []
    for _ in range(s.cold_trials):
        proc = subprocess.run(
            [sys.executable, str(HERE / "cold.py"), name],
            capture_output=True,
            text=True,
            timeout=300,
        )
        lines = proc.stdout.strip().splitlines()
        if proc.returncode != 0 or not lines:
            tail = (proc.stderr or proc.stdout).strip().splitlines()[-5:]
            raise RuntimeError(f"cold trial exited with {proc.returncode}: " + " | ".join(tail))
        samples.append(json.loads(lines[-1])["seconds"])
        time.sleep(1.0)  # let the trial's workers exit before the next one starts
    report.put("cold", name, Cell(statistics.median(samples), len(samples), samples))


def start_peer(cls: type[Peer], timeout: float) -> Peer:
    """Start a peer, giving up after ``timeout`` seconds (a start that hangs is a skip)."""
    peer = cls()
    error: list[BaseException] = []

    def target() -> None:
        try:
            peer.start()
        except BaseException as exc:
            error.append(exc)

    thread = threading.Thread(target=target, daemon=True, name=f"start-{cls.name}")
    thread.start()
    thread.join(timeout)
    if thread.is_alive():

        def clean_up() -> None:
            thread.join(timeout)  # stop what the start has started, once it ends
            peer.stop()

        threading.Thread(target=clean_up, daemon=True).start()
        raise PeerUnavailable(f"did not start within {timeout:g} s")
    if error:
        exc = error[0]
        if isinstance(exc, PeerUnavailable):
            raise exc
        raise PeerUnavailable(f"failed to start: {exc!r}") from exc
    return peer


def run_peer(cls: type[Peer], s: Sizes, metrics: list[str], report: Report) -> None:
    name = cls.name
    warm = [m for m in metrics if m != "cold"]
    if not warm:
        return
    log(f"{name}: starting 2 workers")
    peer = start_peer(cls, s.start_timeout)
    try:
        # Metrics that share a workload run back to back, on one bound function.
        plan: list[tuple[str, Callable[[Any], Any], Callable[[Bound], None]]] = [
            ("roundtrip", workloads.identity, lambda b: bench_roundtrip(b, s, report, name)),
            (
                "map",
                workloads.identity,
                lambda b: bench_map(b, s, report, name, cls.task_per_input),
            ),
            ("big_arg", workloads.identity, lambda b: bench_big_arg(b, s, report, name)),
            ("sleep_map", workloads.sleep_1ms, lambda b: bench_sleep_map(b, s, report, name)),
        ]
        bound: dict[Callable[[Any], Any], Bound] = {}
        for metric, fn, measure in plan:
            if metric not in warm:
                continue
            log(f"{name}: {metric}")
            try:
                if fn not in bound:
                    for other in bound.values():
                        other.close()
                    bound = {fn: peer.bind(fn)}
                measure(bound[fn])
            except Exception as exc:
                report.error(name, f"{metric}: {exc!r}")
                log(f"{name}: {metric} FAILED: {exc!r}")
                if name == OURS:
                    traceback.print_exc()
        for b in bound.values():
            b.close()
    finally:
        peer.stop()
        time.sleep(1.0)  # let the workers exit before the next peer runs


# -- output ------------------------------------------------------------------------------------


def _short(path: str) -> str:
    rel = os.path.relpath(path)
    return path if rel.startswith("..") else rel


def header(argv: list[str]) -> dict[str, Any]:
    cpu = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        cpu = platform.processor()
    return {
        "command": shlex.join([_short(sys.executable), _short(sys.argv[0]), *argv]),
        "date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "platform": platform.platform(),
        "cpu_count": os.cpu_count(),
        "cpus_usable": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "cpu": cpu,
        "loadavg_1min_at_start": round(os.getloadavg()[0], 2),
    }


def table(report: Report, peers: list[str]) -> str:
    """A Markdown table: one row per metric, value (ratio to PPE) per peer, our target."""
    cols = ["metric", "unit", *peers, f"target ({OURS})", "met"]
    lines = ["| " + " | ".join(cols) + " |", "|" + "|".join(["---"] * len(cols)) + "|"]
    footnotes: list[str] = []
    verdicts = report.verdicts()
    for key, row in ROWS.items():
        cells = report.cells.get(key)
        if not cells:
            continue
        title = row.title
        if key == "big_arg":
            title = f"{report.sizes.big_elements * 8 / MB:g} MB {title}"
        out = [title, row.unit]
        for p in peers:
            cell = cells.get(p)
            if cell is None:
                out.append("—")
                continue
            text = row.fmt(cell.value)
            ratio = report.ratio(key, p)
            if p != BASE and ratio is not None and key != "sleep_map_ideal":
                text += f" ({ratio:.2f}x)"
            if cell.note and key == "map":
                footnotes.append(f"{p}: {row.title} on {cell.note}")
                text += f" [{len(footnotes)}]"
            out.append(text)
        if row.target is None:
            out += ["", ""]
        else:
            v = verdicts.get(key)
            out += [row.target[0], "n/a" if v is None else ("yes" if v else "**no**")]
        lines.append("| " + " | ".join(out) + " |")
    for i, note in enumerate(footnotes, 1):
        lines.append(f"\n[{i}] {note}")
    return "\n".join(lines)


def print_report(report: Report, peers: list[str], s: Sizes) -> None:
    shown = [p for p in peers if any(p in c for c in report.cells.values())]
    print()
    print(table(report, shown))
    print()
    print("Ratios are value / PPE value, measured in this run (lower is better for µs and s).")
    if report.ideal_sleep_s:
        print(
            f"Ideal for the sleep map: 2 workers / {report.ideal_sleep_s * 1e3:.3f} ms (the "
            f"measured time.sleep(0.001) here) = {2 / report.ideal_sleep_s:,.0f} items/s."
        )
    print(
        f"Sizes: {s.roundtrip_calls} round trips after {s.warmup_calls} warm-up (best of "
        f"{s.roundtrip_rounds} rounds); map "
        f"{s.map_inputs:,} inputs (best of {s.map_repeats}); sleep map {s.sleep_inputs:,} "
        f"inputs (best of {s.sleep_repeats}); array {s.big_elements * 8 / MB:g} MB "
        f"(best of {s.big_repeats}); cold: median of {s.cold_trials} fresh processes."
    )
    for p, reason in report.skipped.items():
        print(f"skipped {p}: {reason}")
    for p, errs in report.errors.items():
        for e in errs:
            print(f"ERROR {p}: {e}")


def _csv(values: list[str], allowed: tuple[str, ...], what: str) -> list[str]:
    out = [v.strip() for arg in values for v in arg.split(",") if v.strip()]
    bad = [v for v in out if v not in allowed]
    if bad:
        raise SystemExit(f"unknown {what} {', '.join(bad)}; choose from {', '.join(allowed)}")
    return out


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="tests/benchmarks/run.py",
        description="Benchmark jupyter_remote against ProcessPoolExecutor, Dask, ipyparallel, Ray.",
    )
    parser.add_argument("--quick", action="store_true", help="small sizes: a smoke run (~1 min)")
    parser.add_argument(
        "--only",
        action="append",
        default=[],
        metavar="METRIC",
        help=f"run only these metrics (comma-separated, repeatable): {', '.join(METRICS)}",
    )
    parser.add_argument(
        "--peers",
        action="append",
        default=[],
        metavar="PEER",
        help=f"run only these peers (PPE always runs): {', '.join(PEERS)}",
    )
    parser.add_argument("--json", metavar="PATH", help="also write the results as JSON here")
    parser.add_argument(
        "--check", action="store_true", help="exit with status 1 when one of our targets is missed"
    )
    args = parser.parse_args(argv)
    metrics = _csv(args.only, METRICS, "metric") or list(METRICS)
    wanted = _csv(args.peers, tuple(PEERS), "peer") or list(PEERS)
    names = [p for p in PEERS if p == BASE or p in wanted]
    s = QUICK if args.quick else FULL
    # Last resort against a hung peer: dump the stacks and exit.
    faulthandler.dump_traceback_later(300 if args.quick else 3600, exit=True)

    report = Report(header(argv), s)
    h = report.header
    print(f"$ {h['command']}", flush=True)
    print(
        f"date: {h['date']}  python: {h['python']}  cpus: {h['cpu_count']} "
        f"(usable {h['cpus_usable']})  cpu: {h['cpu']}"
    )
    print(f"platform: {h['platform']}  load average: {h['loadavg_1min_at_start']}", flush=True)
    if h["loadavg_1min_at_start"] > 0.5:
        print(
            f"WARNING: load average {h['loadavg_1min_at_start']} before starting: other "
            "processes compete for the CPUs and the numbers will be noisy",
            flush=True,
        )

    if "sleep_map" in metrics:
        report.ideal_sleep_s = workloads.sleep_1ms_duration(200 if args.quick else 1000)
        log(f"time.sleep(0.001) takes {report.ideal_sleep_s * 1e3:.3f} ms here")

    runnable: list[type[Peer]] = []
    versions: dict[str, str] = {}
    for name in names:
        cls = PEERS[name]
        try:
            cls.check()
            versions[name] = cls.version()
            runnable.append(cls)
        except PeerUnavailable as exc:
            report.skipped[name] = str(exc)
    h["versions"] = versions
    print("versions: " + ", ".join(f"{k} {v}" for k, v in versions.items()), flush=True)

    t_start = time.perf_counter()
    for cls in runnable:
        try:
            run_peer(cls, s, metrics, report)
        except PeerUnavailable as exc:
            report.skipped[cls.name] = str(exc)
            log(f"{cls.name}: skipped: {exc}")
    if "cold" in metrics:
        for cls in runnable:
            if cls.name in report.skipped:
                continue
            log(f"{cls.name}: cold start x{s.cold_trials}")
            try:
                bench_cold(cls.name, s, report)
            except Exception as exc:
                report.error(cls.name, f"cold: {exc!r}")
    faulthandler.cancel_dump_traceback_later()
    log(f"done in {time.perf_counter() - t_start:.0f} s")

    print_report(report, names, s)
    sys.stdout.flush()
    if args.json:
        doc = {
            **asdict(report),
            "sizes": asdict(s),
            "rows": {
                k: {"title": r.title, "unit": r.unit, "higher_is_better": r.higher_is_better}
                for k, r in ROWS.items()
            },
            "ratios_vs_ppe": {
                k: {p: report.ratio(k, p) for p in cells} for k, cells in report.cells.items()
            },
            "targets": {
                k: {"target": ROWS[k].target[0], "met": v}  # type: ignore[index]
                for k, v in report.verdicts().items()
            },
        }
        Path(args.json).write_text(json.dumps(doc, indent=2, default=str) + "\n")
        print(f"wrote {args.json}")

    if OURS in report.errors or (OURS in wanted and OURS in report.skipped):
        return 1
    if args.check and any(v is False for v in report.verdicts().values()):
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
