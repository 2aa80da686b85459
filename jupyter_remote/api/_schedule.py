"""``jr.Cron`` and ``jr.Period``: when a deployed function runs by itself.

``@app.function(schedule=jr.Cron("0 2 * * *", timezone="Europe/Paris"))`` or
``schedule=jr.Period(days=1)``. Schedules fire only for a deployed app
(``app.deploy()``, ``jupyter-remote deploy``), never inside ``app.run()``.
"""

from __future__ import annotations

from ..deploy._schedule import PERIOD_FIELDS, ScheduleSpec

__all__ = ["Cron", "Period"]


class Cron:
    """Run on a cron schedule, in a time zone (default UTC).

    >>> Cron("0 2 * * *", timezone="Europe/Paris")
    Cron('0 2 * * *', timezone='Europe/Paris')
    """

    def __init__(self, cron_string: str, timezone: str = "UTC") -> None:
        if not isinstance(cron_string, str):
            raise TypeError(f"Cron takes a cron string like '0 2 * * *', not {cron_string!r}")
        self.spec = ScheduleSpec("cron", timezone, cron=cron_string.strip())

    def __repr__(self) -> str:
        return f"Cron({self.spec.cron!r}, timezone={self.spec.timezone!r})"


class Period:
    """Run every period, with calendar semantics (``days=1`` keeps the wall-clock time).

    >>> Period(days=1)
    Period(days=1)
    """

    def __init__(
        self,
        *,
        years: int = 0,
        months: int = 0,
        weeks: float = 0,
        days: float = 0,
        hours: float = 0,
        minutes: float = 0,
        seconds: float = 0,
        timezone: str = "UTC",
    ) -> None:
        values = (years, months, weeks, days, hours, minutes, seconds)
        self.spec = ScheduleSpec(
            "period", timezone, period=tuple(zip(PERIOD_FIELDS, values, strict=True))
        )

    def __repr__(self) -> str:
        parts = [f"{k}={v:g}" for k, v in self.spec.period if v]
        if self.spec.timezone != "UTC":
            parts.append(f"timezone={self.spec.timezone!r}")
        return f"Period({', '.join(parts)})"
