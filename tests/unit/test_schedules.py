"""``jr.Cron`` and ``jr.Period``: validation, calendar math, and where a schedule may go."""

from __future__ import annotations

import datetime as dt
import time

import pytest

import jupyter_remote as jr

PARIS = "Europe/Paris"


def _ts(*args: int, tz: str = "UTC") -> float:
    from zoneinfo import ZoneInfo

    return dt.datetime(*args, tzinfo=ZoneInfo(tz)).timestamp()


def test_cron_fires_at_its_wall_clock_time_in_its_zone() -> None:
    cron = jr.Cron("0 2 * * *", timezone=PARIS)
    assert cron.spec.next_after(_ts(2026, 7, 1, 12, 0)) == _ts(2026, 7, 2, 2, 0, tz=PARIS)
    assert jr.Cron("*/15 * * * *").spec.next_after(_ts(2026, 7, 1, 12, 1)) == _ts(
        2026, 7, 1, 12, 15
    )


def test_period_days_keeps_the_wall_clock_across_dst() -> None:
    day = jr.Period(days=1, timezone=PARIS)
    before = _ts(2026, 3, 28, 9, 0, tz=PARIS)  # the clocks go forward that night
    assert day.spec.next_after(before) == _ts(2026, 3, 29, 9, 0, tz=PARIS)
    assert day.spec.next_after(before) - before == 23 * 3600


def test_period_months_keeps_the_day_of_month_clamped() -> None:
    month = jr.Period(months=1)
    assert month.spec.next_after(_ts(2026, 1, 31, 6, 0)) == _ts(2026, 2, 28, 6, 0)
    assert month.spec.next_after(_ts(2026, 3, 15, 6, 0)) == _ts(2026, 4, 15, 6, 0)
    now = time.time()
    assert jr.Period(seconds=2).spec.next_after(now) == pytest.approx(now + 2)


@pytest.mark.parametrize(
    ("make", "match"),
    [
        (lambda: jr.Cron("61 * * * *"), "not a valid cron expression"),
        (lambda: jr.Cron("* * * * *", timezone="Mars/Olympus"), "unknown time zone 'Mars/Olympus'"),
        (lambda: jr.Period(), "at least one positive field"),
        (lambda: jr.Period(days=-1), "at least one positive field"),
    ],
)
def test_bad_schedules_are_config_errors(make: object, match: str) -> None:
    with pytest.raises(jr.ConfigError, match=match):
        make()  # type: ignore[operator]


def test_a_schedule_on_a_function_that_needs_arguments_is_refused() -> None:
    app = jr.App("sched")
    with pytest.raises(TypeError, match=r"report has a schedule but needs arguments \(day\)"):

        @app.function(schedule=jr.Period(days=1))
        def report(day: str, verbose: bool = False) -> None: ...

    @app.function(schedule=jr.Cron("0 6 * * 1-5"))
    def fine(day: str = "today") -> str:
        return day

    assert fine.options.schedule is not None
    with pytest.raises(TypeError, match=r"schedule= takes jr\.Cron"):
        app.function(schedule="0 2 * * *")
