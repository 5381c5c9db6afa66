from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from pruner.config.crontab import crontab_trigger, parse_crontab

# A Friday.
NOW = datetime(2026, 11, 27, 3, 30, tzinfo=UTC)


def fire_times(expr: str, count: int = 5, zone: ZoneInfo | None = None) -> list[datetime]:
    trigger = crontab_trigger(expr, zone or ZoneInfo("UTC"))
    times: list[datetime] = []
    previous, now = None, NOW
    for _ in range(count):
        fire = trigger.get_next_fire_time(previous, now)
        assert fire is not None
        times.append(fire)
        previous, now = fire, fire + timedelta(seconds=1)
    return times


def weekdays(expr: str, count: int = 7) -> list[str]:
    return [fire.strftime("%a") for fire in fire_times(expr, count)]


def test_crontab_trigger_fires_daily_at_the_given_time() -> None:
    times = fire_times("30 3 * * *", 3)

    assert [t.isoformat() for t in times] == [
        "2026-11-27T03:30:00+00:00",
        "2026-11-28T03:30:00+00:00",
        "2026-11-29T03:30:00+00:00",
    ]


@pytest.mark.parametrize("sunday", ["0", "7", "sun", "SUN"])
def test_crontab_trigger_reads_sunday_as_0_7_or_its_name(sunday: str) -> None:
    assert set(weekdays(f"0 12 * * {sunday}", 3)) == {"Sun"}


@pytest.mark.parametrize(
    ("field", "expected"),
    [
        ("1-5", {"Mon", "Tue", "Wed", "Thu", "Fri"}),
        ("0-2", {"Sun", "Mon", "Tue"}),
        ("*/2", {"Sun", "Tue", "Thu", "Sat"}),
        ("mon-wed", {"Mon", "Tue", "Wed"}),
        ("sat,sun", {"Sat", "Sun"}),
        ("5-7", {"Fri", "Sat", "Sun"}),
    ],
)
def test_crontab_trigger_counts_day_of_week_from_sunday(field: str, expected: set[str]) -> None:
    assert set(weekdays(f"0 12 * * {field}", 14)) == expected


def test_crontab_trigger_either_day_field_fires_when_both_are_restricted() -> None:
    # The 13th of the month, or any Friday (crontab's rule; APScheduler alone would want both).
    days = [t.strftime("%a %d") for t in fire_times("0 12 13 * 5", 5)]

    assert days == ["Fri 27", "Fri 04", "Fri 11", "Sun 13", "Fri 18"]


def test_crontab_trigger_day_field_starting_with_star_is_not_restricted() -> None:
    # "*/2" counts as unrestricted (as in Vixie cron): odd days that are Mondays.
    times = fire_times("0 12 */2 * 1", 3)

    assert [t.date().isoformat() for t in times] == ["2026-12-07", "2026-12-21", "2027-01-11"]


def test_crontab_trigger_reads_fields_in_the_given_zone() -> None:
    sofia = ZoneInfo("Europe/Sofia")

    first = fire_times("30 3 * * *", 1, zone=sofia)[0]

    assert first.astimezone(sofia).hour == 3
    assert first.astimezone(UTC) == datetime(2026, 11, 28, 1, 30, tzinfo=UTC)


def test_crontab_trigger_accepts_macros() -> None:
    assert set(weekdays("@weekly", 3)) == {"Sun"}
    assert fire_times("@hourly", 1)[0] == datetime(2026, 11, 27, 4, tzinfo=UTC)


def test_crontab_trigger_jitter_delays_by_at_most_the_jitter() -> None:
    trigger = crontab_trigger("30 3 * * *", UTC, jitter=timedelta(minutes=10))

    fire = trigger.get_next_fire_time(None, NOW)

    assert NOW <= fire <= NOW + timedelta(minutes=10)


def test_crontab_trigger_impossible_day_of_month_leaves_the_weekdays() -> None:
    # February 31 never comes; with a restricted weekday the Mondays of February remain.
    times = fire_times("0 0 31 2 1", 2)

    assert [t.date().isoformat() for t in times] == ["2027-02-01", "2027-02-08"]


@pytest.mark.parametrize(
    ("expr", "message"),
    [
        ("30 3 * *", "has 4 fields"),
        ("0 30 3 * * *", "has 6 fields"),
        ("60 * * * *", "minute '60': 60 is out of range 0-59"),
        ("* 24 * * *", "hour '24'"),
        ("* * 0 * *", "day-of-month '0'"),
        ("* * * 13 *", "month '13'"),
        ("* * * * 8", "0 and 7 are Sunday"),
        ("* * * * fri-sun", "from low to high"),
        ("*/0 * * * *", "step"),
        ("5/10 * * * *", "5-59/15"),
        ("x * * * *", "expected a number"),
        ("* * * * funday", "sun..sat"),
        ("0 0 30 2 *", "never fires"),
        ("@reboot", "run_on_start"),
        ("@sometimes", "unknown macro"),
    ],
)
def test_parse_crontab_rejects_invalid_expressions(expr: str, message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        parse_crontab(expr)
