"""Standard crontab expressions as APScheduler 3 triggers.

APScheduler's own cron syntax differs from crontab in two ways that would silently shift a
schedule: it numbers day-of-week from Monday = 0 (crontab: Sunday = 0 or 7), and when both
day-of-month and day-of-week are restricted it requires both (crontab: either). So the fields are
parsed here, by crontab's rules, and handed to APScheduler as explicit values.

Like Vixie cron and cronie, a day field that starts with `*` (such as `*/2`) counts as
unrestricted for the either-day rule.
"""

from __future__ import annotations

import calendar
from dataclasses import dataclass
from datetime import timedelta, tzinfo

from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.combining import OrTrigger
from apscheduler.triggers.cron import CronTrigger

__all__ = ["Crontab", "crontab_trigger", "parse_crontab"]

_MACROS = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}
_MONTHS = tuple(name.lower() for name in calendar.month_abbr[1:])  # jan .. dec
_WEEKDAYS = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")  # crontab numbering: sun = 0


@dataclass(frozen=True, slots=True)
class _Field:
    name: str
    low: int
    high: int
    names: tuple[str, ...] = ()  # names[i] stands for low + i
    hint: str = ""


_FIELDS = (
    _Field("minute", 0, 59),
    _Field("hour", 0, 23),
    _Field("day-of-month", 1, 31),
    _Field("month", 1, 12, _MONTHS),
    _Field("day-of-week", 0, 7, _WEEKDAYS, " (0 and 7 are Sunday)"),
)


@dataclass(frozen=True, slots=True)
class Crontab:
    """The values each field allows; a field given as `*` is None (any)."""

    minutes: frozenset[int] | None
    hours: frozenset[int] | None
    days: frozenset[int] | None
    months: frozenset[int] | None
    weekdays: frozenset[int] | None  # 0 = Sunday .. 6 = Saturday
    either_day: bool  # both day fields restricted: a day matching either one fires


def parse_crontab(expr: str) -> Crontab:
    """Parse a standard 5-field crontab expression (or @daily etc.). Raises ValueError."""
    source = expr.strip()
    if source.startswith("@"):
        if source == "@reboot":
            raise ValueError("'@reboot' is not a schedule: use schedule.run_on_start: true")
        if source not in _MACROS:
            raise ValueError(f"{source!r}: unknown macro; use one of {', '.join(_MACROS)}")
        source = _MACROS[source]
    texts = source.split()
    if len(texts) != len(_FIELDS):
        raise ValueError(
            f"{expr!r} has {len(texts)} fields: a crontab schedule has 5 "
            '(minute hour day-of-month month day-of-week), e.g. "30 3 * * *"'
        )
    values = [_parse_field(field, text) for field, text in zip(_FIELDS, texts, strict=True)]
    weekdays = None if values[4] is None else frozenset(day % 7 for day in values[4])
    crontab = Crontab(
        minutes=values[0],
        hours=values[1],
        days=values[2],
        months=values[3],
        weekdays=weekdays,
        either_day=not texts[2].startswith("*") and not texts[4].startswith("*"),
    )
    if not crontab.either_day and not _has_a_day(crontab):
        raise ValueError(f"{expr!r} never fires: no month has that day")
    return crontab


def crontab_trigger(expr: str, zone: tzinfo, jitter: timedelta | None = None) -> BaseTrigger:
    """An APScheduler trigger that fires when crontab would, reading the fields in `zone`.

    `jitter` delays each fire time by up to that much (whole seconds). Raises ValueError.
    """
    crontab = parse_crontab(expr)
    seconds = int(jitter.total_seconds()) if jitter else None
    common = {
        "minute": _listed(crontab.minutes),
        "hour": _listed(crontab.hours),
        "month": _listed(crontab.months),
        "timezone": zone,
    }
    days, weekdays = _listed(crontab.days), _weekday_names(crontab.weekdays)
    if not crontab.either_day:
        return CronTrigger(day=days, day_of_week=weekdays, jitter=seconds, **common)
    if not _has_a_day(crontab):  # "0 0 31 2 mon" means Mondays; APScheduler would search to 9999
        return CronTrigger(day_of_week=weekdays, jitter=seconds, **common)
    return OrTrigger(
        [CronTrigger(day=days, **common), CronTrigger(day_of_week=weekdays, **common)],
        jitter=seconds,
    )


def _parse_field(field: _Field, text: str) -> frozenset[int] | None:
    if text == "*":
        return None
    values: set[int] = set()
    for item in text.split(","):
        values |= _parse_item(field, item)
    return frozenset(values)


def _parse_item(field: _Field, item: str) -> set[int]:
    where = f"{field.name} {item!r}"
    body, slash, step_text = item.partition("/")
    step = 1
    if slash:
        if not step_text.isdigit() or int(step_text) < 1:
            raise ValueError(f"{where}: the step after / must be a whole number >= 1")
        step = int(step_text)
    if body == "*":
        low, high = field.low, field.high
    elif "-" in body:
        first, _, last = body.partition("-")
        low, high = _parse_value(field, first, where), _parse_value(field, last, where)
        if low > high:
            raise ValueError(f"{where}: a range must go from low to high")
    else:
        if slash:
            raise ValueError(f"{where}: a step needs * or a range before it: */15 or 5-59/15")
        low = high = _parse_value(field, body, where)
    return set(range(low, high + 1, step))


def _parse_value(field: _Field, text: str, where: str) -> int:
    if text.lower() in field.names:
        return field.low + field.names.index(text.lower())
    if not text.isdigit():
        named = f" or a name ({field.names[0]}..{field.names[-1]})" if field.names else ""
        raise ValueError(f"{where}: expected a number{named}")
    value = int(text)
    if not field.low <= value <= field.high:
        raise ValueError(f"{where}: {value} is out of range {field.low}-{field.high}{field.hint}")
    return value


def _has_a_day(crontab: Crontab) -> bool:
    if crontab.days is None:
        return True
    months = crontab.months or range(1, 13)
    longest = max(calendar.monthrange(2000, month)[1] for month in months)  # 2000: Feb has 29
    return min(crontab.days) <= longest


def _listed(values: frozenset[int] | None) -> str:
    return "*" if values is None else ",".join(str(value) for value in sorted(values))


def _weekday_names(weekdays: frozenset[int] | None) -> str:
    # APScheduler's day_of_week numbers Monday = 0; its names are unambiguous.
    return "*" if weekdays is None else ",".join(_WEEKDAYS[day] for day in sorted(weekdays))
