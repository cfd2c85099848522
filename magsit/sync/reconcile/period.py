"""The reporting period: local calendar days of the shop, as UTC bounds for Magento and epochs for Sitoo."""

from __future__ import annotations

import calendar
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from magsit.config import Config, ReconcileSettings
from magsit.errors import ConfigError

MAGENTO_TS = "%Y-%m-%d %H:%M:%S"


@dataclass(frozen=True)
class Period:
    """``[start, end)`` in the shop's timezone; ``end`` is exclusive (local midnight after the last day)."""

    start: datetime
    end: datetime
    timezone: str
    label: str

    @property
    def start_utc(self) -> datetime:
        return self.start.astimezone(UTC)

    @property
    def end_utc(self) -> datetime:
        return self.end.astimezone(UTC)

    @property
    def magento_from(self) -> str:
        return self.start_utc.strftime(MAGENTO_TS)

    @property
    def magento_to(self) -> str:
        return self.end_utc.strftime(MAGENTO_TS)

    @property
    def sitoo_from(self) -> int:
        return int(self.start.timestamp())

    @property
    def sitoo_to(self) -> int:
        return int(self.end.timestamp())

    @property
    def last_day(self) -> date:
        return (self.end - timedelta(days=1)).date()

    def final_at(self, grace_days: int) -> datetime:
        return self.end + timedelta(days=grace_days)

    def contains_epoch(self, epoch: Any) -> bool:
        try:
            value = int(epoch)
        except (TypeError, ValueError):
            return False
        return self.sitoo_from <= value < self.sitoo_to

    def local_date_of_epoch(self, epoch: Any) -> date | None:
        try:
            return datetime.fromtimestamp(int(epoch), ZoneInfo(self.timezone)).date()
        except (TypeError, ValueError):
            return None

    def local_date_of_magento(self, text: Any) -> date | None:
        try:
            moment = datetime.strptime(str(text)[:19], MAGENTO_TS).replace(tzinfo=UTC)
        except ValueError:
            return None
        return moment.astimezone(ZoneInfo(self.timezone)).date()

    def days(self) -> list[date]:
        out, day = [], self.start.date()
        while day <= self.last_day:
            out.append(day)
            day += timedelta(days=1)
        return out

    def describe(self, grace_days: int, now: datetime) -> dict[str, Any]:
        final_at = self.final_at(grace_days)
        return {
            "label": self.label,
            "timezone": self.timezone,
            "from": self.start.date().isoformat(),
            "to": self.last_day.isoformat(),
            "from_utc": self.start_utc.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "to_utc_exclusive": self.end_utc.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "final": now >= final_at,
            "final_after": final_at.isoformat(),
            "generated_at": now.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        }


def zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigError(f"[reconcile] timezone {name!r} is not a known IANA timezone (e.g. Europe/Stockholm)") from None


def _month(month: str) -> tuple[date, date, str]:
    try:
        year, mon = (int(p) for p in str(month).split("-"))
    except ValueError:
        raise ConfigError(f"--month {month!r} is not YYYY-MM (e.g. 2026-03)") from None
    if not 1 <= mon <= 12:
        raise ConfigError(f"--month {month!r}: month {mon} is out of range (01 to 12)")
    try:
        first = date(year, mon, 1)
    except ValueError:
        raise ConfigError(f"--month {month!r}: year {year} is out of range") from None
    last = date(year, mon, calendar.monthrange(year, mon)[1])
    return first, last, f"{year:04d}-{mon:02d}"


def _days(date_from: str | date | None, date_to: str | date | None) -> tuple[date, date, str]:
    if not (date_from and date_to):
        raise ConfigError("--from and --to go together (dates in the shop's timezone, both inclusive)")
    try:
        first = date_from if isinstance(date_from, date) else date.fromisoformat(str(date_from))
        last = date_to if isinstance(date_to, date) else date.fromisoformat(str(date_to))
    except ValueError:
        raise ConfigError("--from/--to must be dates (YYYY-MM-DD)") from None
    if last < first:
        raise ConfigError(f"--to {last} is before --from {first}")
    return first, last, f"{first.isoformat()}..{last.isoformat()}"


def period_for(
    settings: ReconcileSettings,
    *,
    month: str | None = None,
    date_from: str | date | None = None,
    date_to: str | date | None = None,
    today: date | None = None,
) -> Period:
    """The reporting period: ``month`` (YYYY-MM), or ``date_from``..``date_to`` (both inclusive local
    dates), or by default the previous calendar month (what a cron run on the 5th wants)."""
    tz = zone(settings.timezone)
    if month and (date_from or date_to):
        raise ConfigError("give either --month or --from/--to, not both")
    if month:
        first, last, label = _month(month)
    elif date_from or date_to:
        first, last, label = _days(date_from, date_to)
    else:
        today = today or datetime.now(tz).date()
        last = today.replace(day=1) - timedelta(days=1)
        first = last.replace(day=1)
        label = f"{first.year:04d}-{first.month:02d}"
    start = datetime(first.year, first.month, first.day, tzinfo=tz)
    after = last + timedelta(days=1)
    end = datetime(after.year, after.month, after.day, tzinfo=tz)
    return Period(start, end, settings.timezone, label)


def period_from_options(config: Config, options: dict[str, Any], now: datetime | None = None) -> Period:
    """The period the command's options name; the default month is the one before ``now`` (the
    run's start) in the shop's timezone."""
    today = now.astimezone(zone(config.reconcile.timezone)).date() if now is not None else None
    return period_for(
        config.reconcile,
        month=options.get("month"),
        date_from=options.get("from"),
        date_to=options.get("to"),
        today=today,
    )
