"""Schedules on a real app server: fires, records, pause/resume, run now, kill -9.

Periods are short and bounds generous: a test waits for what it needs to see,
up to a limit, never for a tuned sleep.
"""

from __future__ import annotations

import itertools
import json
import os
import signal
import time
from typing import Any

import pytest
from helpers import Env, alive

TICK = """
    import time
    import jupyter_remote as jr

    app = jr.App("tick")

    @app.function(schedule=jr.Period(seconds={period}))
    def beat():
        print("beat", time.time())
        time.sleep({sleep})
        return 1
"""


def _runs(env: Env, app: str, fn: str) -> list[dict[str, Any]]:
    folder = env.store / "apps" / app / "runs"
    records = []
    for path in folder.glob("*.json") if folder.is_dir() else []:
        record = json.loads(path.read_text())
        if record["function"] == fn:
            records.append(record)
    return sorted(records, key=lambda r: r["start"])


def _done(env: Env, app: str, fn: str) -> list[dict[str, Any]]:
    return [r for r in _runs(env, app, fn) if r["status"] not in ("running", "skipped")]


def test_a_period_fires_and_every_run_is_recorded(env: Env) -> None:
    env.write("tick.py", TICK.format(period=2, sleep=0))
    env.cli("deploy", "tick.py")
    env.wait_for("two runs", lambda: len(_done(env, "tick", "beat")) >= 2, timeout=60)
    first, second = _done(env, "tick", "beat")[:2]
    for run in (first, second):
        assert run["status"] == "succeeded" and run["error"] is None
        assert run["output_tail"].startswith("beat ") and run["duration"] >= 0
        assert run["schedule"] == "every seconds=2" and run["id"].startswith("tick:beat:")
    assert second["scheduled_for"] - first["scheduled_for"] == pytest.approx(2, abs=0.01)
    runs = env.cli("schedule", "runs", "tick.beat").stdout.splitlines()
    assert runs[0].split("\t")[:2] == [first["id"], "succeeded"]
    assert env.cli("schedule", "logs", first["id"]).stdout.startswith("beat ")
    listing = env.cli("schedule", "list").stdout
    assert listing.startswith("tick.beat\tevery seconds=2\tnext ")


def test_a_failing_run_keeps_its_error_and_run_now(env: Env) -> None:
    env.write(
        "fail.py",
        """
        import jupyter_remote as jr

        app = jr.App("fail")

        @app.function(schedule=jr.Cron("0 3 1 1 *"))
        def yearly():
            print("about to fail")
            raise KeyError("missing column")
        """,
    )
    env.cli("deploy", "fail.py")
    out = env.cli("schedule", "run", "fail.yearly").stdout
    assert out.startswith("Started run fail:yearly:")
    env.wait_for("the run to end", lambda: bool(_done(env, "fail", "yearly")), timeout=60)
    (run,) = _done(env, "fail", "yearly")
    assert run["status"] == "failed" and run["scheduled_for"] is None
    assert run["error"].startswith("KeyError: 'missing column'")
    assert "Traceback (most recent call last)" in run["error"]
    assert ", in yearly" in run["error"]  # the remote frame that raised
    assert run["output_tail"] == "about to fail"
    unknown = env.cli("schedule", "run", "fail.nope", check=False)
    assert unknown.returncode != 0 and "schedules: fail.yearly" in unknown.stderr


def test_no_overlap_a_fire_during_a_run_is_skipped(env: Env) -> None:
    env.write("tick.py", TICK.format(period=1, sleep=3.5))
    env.cli("deploy", "tick.py")
    env.wait_for(
        "a skipped fire",
        lambda: any(r["status"] == "skipped" for r in _runs(env, "tick", "beat")),
        timeout=60,
    )
    skipped = next(r for r in _runs(env, "tick", "beat") if r["status"] == "skipped")
    assert (
        skipped["error"].startswith("the run tick:beat:") and "was still going" in skipped["error"]
    )
    running = [r for r in _runs(env, "tick", "beat") if r["status"] == "running"]
    assert len(running) <= 1


def test_pause_and_resume(env: Env) -> None:
    env.write("tick.py", TICK.format(period=1, sleep=0))
    env.cli("deploy", "tick.py")
    env.wait_for("a first run", lambda: bool(_done(env, "tick", "beat")), timeout=60)
    assert env.cli("schedule", "pause", "tick.beat").stdout == "Paused tick.beat.\n"
    time.sleep(0.5)  # a run started just before the pause may still be recorded
    paused_at = len(_runs(env, "tick", "beat"))
    assert "\tpaused" in env.cli("schedule", "list").stdout
    time.sleep(3)  # three periods: none fires while paused
    assert len(_runs(env, "tick", "beat")) == paused_at
    env.cli("schedule", "resume", "tick.beat")
    env.wait_for(
        "a run after resume", lambda: len(_done(env, "tick", "beat")) > paused_at, timeout=30
    )


def test_kill_9_between_and_during_fires_loses_nothing_and_fires_nothing_twice(
    env: Env,
) -> None:
    env.write("tick.py", TICK.format(period=3, sleep=1.5))
    env.cli("deploy", "tick.py")
    # Kill it while a run goes: its record must end as failed, not stay "running".
    env.wait_for(
        "a run going",
        lambda: any(r["status"] == "running" for r in _runs(env, "tick", "beat")),
        timeout=60,
    )
    state = env.server_state()
    assert state is not None
    os.kill(int(state["pid"]), signal.SIGKILL)
    env.wait_for("the app server to die", lambda: not alive(int(state["pid"])))
    before = _runs(env, "tick", "beat")
    time.sleep(7)  # two fires missed
    env.cli("server", "start")
    env.wait_for(
        "two runs after the restart",
        lambda: len(_done(env, "tick", "beat")) >= len(before) + 2,
        timeout=60,
    )
    env.stop()
    runs = _runs(env, "tick", "beat")
    interrupted = [r for r in runs if r["id"] == before[-1]["id"]]
    assert interrupted[0]["status"] == "failed"
    assert "the app server stopped during this run" in interrupted[0]["error"]
    fires = [r["scheduled_for"] for r in runs]
    assert len(fires) == len(set(fires))  # no fire ran twice
    assert all(r["status"] in ("succeeded", "failed", "skipped") for r in runs)
    after = runs[len(before) :]
    gaps = [b["scheduled_for"] - a["scheduled_for"] for a, b in itertools.pairwise(after)]
    assert all(g == pytest.approx(3, abs=0.01) for g in gaps[1:])  # one catch-up, then on time


def test_schedules_do_not_fire_inside_app_run(env: Env) -> None:
    marker = env.tmp / "fired"
    proc = env.python(
        f"""
        import time
        import jupyter_remote as jr

        app = jr.App("ephemeral")

        @app.function(schedule=jr.Period(seconds=1))
        def touch():
            open({str(marker)!r}, "w").close()

        with app.run():
            time.sleep(3)
        print(touch.remote() is None)
        """
    )
    assert proc.stdout.strip() == "True"  # it can be called, though
    assert marker.exists()  # by that call only: remove it and check nothing fires later
    marker.unlink()
    time.sleep(2)
    assert not marker.exists()
    assert env.server_state() is None  # no app server was started


@pytest.mark.slow
def test_a_cron_every_minute_fires_twice(env: Env) -> None:
    env.write(
        "minutely.py",
        """
        import jupyter_remote as jr

        app = jr.App("minutely")

        @app.function(schedule=jr.Cron("* * * * *"))
        def tick():
            print("tick")
        """,
    )
    env.cli("deploy", "minutely.py")
    env.wait_for("two runs", lambda: len(_done(env, "minutely", "tick")) >= 2, timeout=130)
    first, second = _done(env, "minutely", "tick")[:2]
    assert second["scheduled_for"] - first["scheduled_for"] == 60
    assert first["scheduled_for"] % 60 == 0 and first["status"] == "succeeded"
