from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest

from pruner.engine.units import UnitError, parse_duration, parse_size, subtract

SOFIA = ZoneInfo("Europe/Sofia")


@pytest.mark.parametrize(
    ("text", "months", "seconds"),
    [
        ("90min", 0, 5400),
        ("36h", 0, 129600),
        ("14d", 0, 1209600),
        ("2w", 0, 1209600),
        ("6mo", 6, 0),
        ("1y6mo", 18, 0),
        ("13d23h", 0, 13 * 86400 + 23 * 3600),
        ("0.5s", 0, Decimal("0.5")),
        ("1d12h30min15s", 0, 86400 + 12 * 3600 + 30 * 60 + 15),
    ],
)
def test_parse_duration_reads_parts(text: str, months: int, seconds: int | Decimal) -> None:
    duration = parse_duration(text)

    assert (duration.months, duration.seconds, str(duration)) == (months, seconds, text)


def test_parse_duration_rejects_bare_m_suggesting_min_or_mo() -> None:
    with pytest.raises(UnitError, match="ambiguous") as raised:
        parse_duration("5m")

    assert "'min'" in str(raised.value)
    assert "'mo'" in str(raised.value)


@pytest.mark.parametrize("text", ["6mo", "1y", "1d6mo"])
def test_parse_duration_rejects_calendar_units_where_not_allowed(text: str) -> None:
    with pytest.raises(UnitError, match="calendar units"):
        parse_duration(text, calendar_allowed=False)


@pytest.mark.parametrize("text", ["", "14", "d", "14 d", "1x", "1d1d", "1.5mo", "-1d", "1d-"])
def test_parse_duration_rejects_malformed_text(text: str) -> None:
    with pytest.raises(UnitError):
        parse_duration(text)


@pytest.mark.parametrize(
    ("value", "gigabytes"),
    [(50, 50), (0.5, Decimal("0.5")), ("500GB", 500), ("2TB", 2000), ("1.5TB", 1500), ("20", 20)],
)
def test_parse_size_reads_gb_and_tb(value: str | int | float, gigabytes: int | Decimal) -> None:
    assert parse_size(value).gigabytes == gigabytes


@pytest.mark.parametrize("value", ["5PB", "GB", "", "-1GB", -1, True, float("nan")])
def test_parse_size_rejects_what_is_not_a_size(value: str | int | float) -> None:
    with pytest.raises(UnitError):
        parse_size(value)


@pytest.mark.parametrize(
    ("moment", "expected"),
    [
        (datetime(2026, 3, 31, 12, tzinfo=UTC), datetime(2026, 2, 28, 12, tzinfo=UTC)),
        (datetime(2024, 3, 31, 12, tzinfo=UTC), datetime(2024, 2, 29, 12, tzinfo=UTC)),
        (datetime(2026, 1, 15, 12, tzinfo=UTC), datetime(2025, 12, 15, 12, tzinfo=UTC)),
    ],
)
def test_subtract_month_clamps_to_the_end_of_a_shorter_month(
    moment: datetime, expected: datetime
) -> None:
    assert subtract(moment, parse_duration("1mo")) == expected


def test_subtract_years_and_months_together() -> None:
    moment = datetime(2026, 8, 31, 6, tzinfo=UTC)

    assert subtract(moment, parse_duration("1y6mo")) == datetime(2025, 2, 28, 6, tzinfo=UTC)


def test_subtract_exact_units_are_elapsed_time() -> None:
    moment = datetime(2026, 11, 27, 3, 30, tzinfo=UTC)

    assert subtract(moment, parse_duration("13d23h")) == moment - timedelta(days=13, hours=23)
    assert subtract(moment, parse_duration("0.5s")) == moment - timedelta(milliseconds=500)


def test_subtract_beyond_year_one_is_none() -> None:
    moment = datetime(2026, 11, 27, tzinfo=UTC)

    assert subtract(moment, parse_duration("9999y")) is None
    assert subtract(moment, parse_duration("99999999999d")) is None
    assert subtract(moment, parse_duration("9" * 400 + "s")) is None


def test_subtract_calendar_part_keeps_the_wall_clock_across_dst() -> None:
    # 12:00 in Sofia is 09:00 UTC in summer (EEST, +3) and 10:00 UTC in winter (EET, +2).
    summer_noon = datetime(2026, 4, 15, 12, tzinfo=SOFIA)

    result = subtract(summer_noon, parse_duration("1mo"), SOFIA)

    assert result is not None
    assert result.astimezone(SOFIA).replace(tzinfo=None) == datetime(2026, 3, 15, 12)
    assert summer_noon - result == timedelta(days=31) - timedelta(hours=1)


def test_subtract_exact_part_is_elapsed_time_across_dst() -> None:
    # Sofia moved to summer time at 2026-03-29 01:00 UTC: that day had 23 hours.
    after_switch = datetime(2026, 3, 29, 12, tzinfo=SOFIA)

    result = subtract(after_switch, parse_duration("1d"), SOFIA)

    assert result is not None
    assert after_switch - result == timedelta(hours=24)
    assert result.astimezone(SOFIA).replace(tzinfo=None) == datetime(2026, 3, 28, 11)


def test_subtract_without_zone_uses_the_moments_own_offset() -> None:
    # 2026-03-31 01:00 at +03:00 is still March 30 in UTC: the clamp follows the +03:00 wall clock.
    moment = datetime(2026, 3, 31, 1, tzinfo=timezone(timedelta(hours=3)))

    result = subtract(moment, parse_duration("1mo"))

    assert result == datetime(2026, 2, 28, 1, tzinfo=timezone(timedelta(hours=3)))
