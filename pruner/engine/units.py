"""Durations and sizes: the one parser for each, and calendar-aware subtraction."""

from __future__ import annotations

import calendar
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, tzinfo
from decimal import Decimal, InvalidOperation

__all__ = [
    "CALENDAR_UNITS",
    "Duration",
    "Size",
    "UnitError",
    "parse_duration",
    "parse_size",
    "subtract",
]


class UnitError(ValueError):
    """A duration or size that does not parse; the message says what to write instead."""


_EXACT_SECONDS = {"w": 7 * 86400, "d": 86400, "h": 3600, "min": 60, "s": 1}
CALENDAR_UNITS = ("y", "mo")
_UNIT_ORDER = ("y", "mo", "w", "d", "h", "min", "s")
_PART = re.compile(r"(\d+(?:\.\d+)?)([a-zA-Z]+)")


@dataclass(frozen=True, slots=True)
class Duration:
    """A calendar part (whole months) plus an exact part (seconds), and the text it came from."""

    months: int
    seconds: Decimal
    text: str

    def __str__(self) -> str:
        return self.text

    def as_timedelta(self) -> timedelta:
        """The exact part; only meaningful for durations without a calendar part."""
        return timedelta(seconds=float(self.seconds))


@dataclass(frozen=True, slots=True)
class Size:
    """A size in the API's unit (GB of server disk), and the text it came from."""

    gigabytes: Decimal
    text: str

    def __str__(self) -> str:
        return self.text


def parse_duration(text: str, *, calendar_allowed: bool = True) -> Duration:
    """Parse `90min`, `36h`, `2w`, `1y6mo`, `0.5s` … Raises UnitError with a fix in the message."""
    source = text.strip()
    if not source:
        raise UnitError("empty duration: write a number and a unit, such as 14d or 36h")
    position, months, seconds, seen = 0, 0, Decimal(0), set[str]()
    for match in _PART.finditer(source):
        if match.start() != position:
            break
        position = match.end()
        number, unit = match.group(1), match.group(2)
        if unit == "m":
            raise UnitError(
                f"{source!r}: the unit 'm' is ambiguous (minutes for systemd, months for restic); "
                "write 'min' for minutes or 'mo' for months"
            )
        if unit not in _UNIT_ORDER:
            raise UnitError(
                f"{source!r}: unknown unit {unit!r}; "
                "use y, mo, w, d, h, min or s (e.g. 1y6mo, 13d23h)"
            )
        if unit in seen:
            raise UnitError(f"{source!r}: the unit {unit!r} appears twice")
        seen.add(unit)
        if unit in CALENDAR_UNITS:
            if not calendar_allowed:
                raise UnitError(
                    f"{source!r}: calendar units (y, mo) are not allowed here; "
                    "use exact units such as d, h, min or s"
                )
            if "." in number:
                raise UnitError(f"{source!r}: years and months must be whole numbers")
            months += int(number) * (12 if unit == "y" else 1)
        else:
            seconds += Decimal(number) * _EXACT_SECONDS[unit]
    if position != len(source) or not seen:
        raise UnitError(
            f"{source!r} is not a duration: "
            "write number+unit parts such as 90min, 14d, 2w, 6mo or 1y6mo"
        )
    return Duration(months=months, seconds=seconds, text=source)


_SIZE = re.compile(r"(\d+(?:\.\d+)?)\s*(GB|TB)?", re.IGNORECASE)


def parse_size(value: str | int | float) -> Size:
    """Parse a size: a number of GB (the API's `size` unit), or `500GB`, `2TB` (1 TB = 1000 GB)."""
    if isinstance(value, bool):
        raise UnitError("a size must be a number of GB or a string such as 500GB or 2TB")
    if isinstance(value, int | float):
        if value < 0:
            raise UnitError(f"{value}: a size cannot be negative")
        try:
            amount = Decimal(str(value))
        except InvalidOperation as error:  # nan, inf
            raise UnitError(f"{value}: not a size") from error
        if not amount.is_finite():
            raise UnitError(f"{value}: not a size")
        return Size(gigabytes=amount, text=f"{value}GB")
    match = _SIZE.fullmatch(value.strip())
    if not match:
        raise UnitError(f"{value!r} is not a size: write a number of GB, or e.g. 500GB or 2TB")
    amount = Decimal(match.group(1))
    if (match.group(2) or "GB").upper() == "TB":
        amount *= 1000
    return Size(gigabytes=amount, text=value.strip())


def subtract(moment: datetime, duration: Duration, zone: tzinfo | None = None) -> datetime | None:
    """`moment - duration` as docs/configuration.md defines it; None before year 1.

    The calendar part moves the wall clock of `zone` (or of `moment`'s own offset when `zone` is
    None), clamping to the end of a shorter month; the exact part is then elapsed time.
    """
    result = moment
    if duration.months:
        wall = moment.astimezone(zone) if zone is not None else moment
        total = wall.year * 12 + (wall.month - 1) - duration.months
        year, month_index = divmod(total, 12)
        if year < 1:
            return None
        month = month_index + 1
        day = min(wall.day, calendar.monthrange(year, month)[1])
        result = wall.replace(year=year, month=month, day=day)
    try:
        # Aware arithmetic in a ZoneInfo is wall-clock arithmetic; the exact part is elapsed time.
        return result.astimezone(UTC) - timedelta(seconds=float(duration.seconds))
    except OverflowError:
        return None
