"""When a schedule fires: cron (by croniter, in an IANA time zone) or a calendar period.

A :class:`ScheduleSpec` is plain data (``jr.Cron`` and ``jr.Period`` make
one), so the app server needs no API object to run it.

- ``cron``: the next time after ``t`` that the expression matches, in its
  time zone (croniter does the math).
- ``period``: calendar arithmetic in the time zone's wall clock: ``days=1``
  keeps the wall-clock time across a DST change, ``months=1`` the day of
  month (clamped to the month's last day); ``hours``, ``minutes`` and
  ``seconds`` are elapsed time. The first fire is one period after deploy.
"""

from __future__ import annotations

import calendar
import datetime as dt
from dataclasses import dataclass
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from ..exceptions import ConfigError

__all__ = ["PERIOD_FIELDS", "ScheduleSpec", "check_timezone"]

PERIOD_FIELDS = ("years", "months", "weeks", "days", "hours", "minutes", "seconds")


def check_timezone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ConfigError(
            f"unknown time zone {name!r}: use an IANA name such as 'Europe/Paris' or 'UTC'"
        ) from exc


@dataclass(frozen=True)
class ScheduleSpec:
    kind: str  # "cron" or "period"
    timezone: str = "UTC"
    cron: str = ""
    period: tuple[tuple[str, float], ...] = ()

    def __post_init__(self) -> None:
        check_timezone(self.timezone)
        if self.kind == "cron":
            from croniter import croniter

            if not croniter.is_valid(self.cron):
                raise ConfigError(
                    f"{self.cron!r} is not a valid cron expression: use five fields, "
                    "'minute hour day-of-month month day-of-week', e.g. '0 2 * * *'"
                )
        elif self.kind == "period":
            values = dict(self.period)
            if any(v < 0 for v in values.values()) or not any(values.values()):
                raise ConfigError(
                    "a Period needs at least one positive field of "
                    f"{', '.join(PERIOD_FIELDS)}, e.g. jr.Period(days=1)"
                )
        else:
            raise ConfigError(f"unknown schedule kind {self.kind!r}")

    def describe(self) -> str:
        if self.kind == "cron":
            return f"cron {self.cron!r} ({self.timezone})"
        parts = ", ".join(f"{k}={v:g}" for k, v in self.period if v)
        return f"every {parts}" + (f" ({self.timezone})" if self.timezone != "UTC" else "")

    def next_after(self, t: float) -> float:
        """The first fire strictly after the time ``t`` (seconds since the epoch)."""
        tz = check_timezone(self.timezone)
        start = dt.datetime.fromtimestamp(t, tz)
        if self.kind == "cron":
            from croniter import croniter

            nxt: dt.datetime = croniter(self.cron, start).get_next(dt.datetime)
            return nxt.timestamp()
        return _add_period(start, dict(self.period), tz).timestamp()


def _add_period(start: dt.datetime, p: dict[str, float], tz: ZoneInfo) -> dt.datetime:
    wall = start.replace(tzinfo=None)
    months = int(p.get("years", 0)) * 12 + int(p.get("months", 0))
    if months:
        total = wall.month - 1 + months
        year, month = wall.year + total // 12, total % 12 + 1
        day = min(wall.day, calendar.monthrange(year, month)[1])
        wall = wall.replace(year=year, month=month, day=day)
    wall += dt.timedelta(weeks=p.get("weeks", 0), days=p.get("days", 0))
    local = wall.replace(tzinfo=tz)  # the same wall-clock time, in that day's offset
    elapsed = dt.timedelta(
        hours=p.get("hours", 0), minutes=p.get("minutes", 0), seconds=p.get("seconds", 0)
    )
    return (local.astimezone(dt.UTC) + elapsed).astimezone(tz)
