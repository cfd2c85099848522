"""Schedule expressions: ``every 5m`` or a 5-field crontab line (UTC) -> an APScheduler trigger.

Apart from the daemon because alerts (staleness) and status need a job's period too, and they
must not import the daemon that imports them.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger

_EVERY = re.compile(r"^every\s+(\d+)\s*(s|sec|secs|seconds?|m|min|mins|minutes?|h|hours?|d|days?)$", re.I)
_UNIT = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_DOW_NAMES = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")


def _cron_dow(field: str) -> str:
    """Crontab weekday numbers (0/7 = Sunday) -> names, because APScheduler 3.x reads 0 as Monday."""
    if not re.search(r"\d", field):
        return field  # "*", "mon-fri" and names mean the same in both
    days: set[int] = set()
    for part in field.split(","):
        body, _, step_text = part.partition("/")
        step = int(step_text) if step_text else 1
        if step < 1:
            raise ValueError(f"bad step in day-of-week {field!r}")
        if body == "*":
            low, high = 0, 6
        elif "-" in body:
            a, b = body.split("-", 1)
            low, high = int(a), int(b)
        else:
            low = high = int(body)
            if step_text:
                high = 6
        if not (0 <= low <= 7 and 0 <= high <= 7 and low <= high):
            raise ValueError(f"day-of-week {field!r} out of range 0-7")
        days.update(day % 7 for day in range(low, high + 1, step))
    return ",".join(_DOW_NAMES[day] for day in sorted(days))


def parse_trigger(expr: str) -> BaseTrigger:
    """``every 5m`` / ``every 30s`` / ``every 2h`` or a 5-field crontab line (UTC). ValueError if neither."""
    text = expr.strip()
    match = _EVERY.match(text)
    if match:
        amount = int(match.group(1))
        if amount <= 0:
            raise ValueError("the interval must be positive")
        return IntervalTrigger(seconds=amount * _UNIT[match.group(2)[0].lower()], timezone=UTC)
    fields = text.split()
    if len(fields) != 5:
        raise ValueError(
            f"{expr!r} is neither 'every <n>s|m|h|d' nor a 5-field cron expression (minute hour day month weekday)"
        )
    minute, hour, day, month, dow = fields
    return CronTrigger(minute=minute, hour=hour, day=day, month=month, day_of_week=_cron_dow(dow), timezone=UTC)


def period_seconds(expr: str) -> float:
    """The (typical) time between two runs of a schedule, for grace times and staleness."""
    trigger = parse_trigger(expr)
    if isinstance(trigger, IntervalTrigger):
        return float(trigger.interval.total_seconds())
    first = trigger.get_next_fire_time(None, datetime.now(UTC))
    second = trigger.get_next_fire_time(first, first + timedelta(seconds=1)) if first else None
    if not first or not second or second <= first:
        return 86400.0
    return float((second - first).total_seconds())
