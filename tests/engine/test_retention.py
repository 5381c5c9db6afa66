"""The retention engine against hand-worked expectations (docs/retention.md; restic 0.19.1
`forget`).

Each case lists what is kept (with every reason, in order) and what is deleted (with its one
reason). Bucket dates were checked against the calendar, not against the engine.
"""

from __future__ import annotations

import dataclasses
import random
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, tzinfo
from typing import Any, NamedTuple
from zoneinfo import ZoneInfo

import pytest

from pruner.engine.models import Backup, Decision, Policy
from pruner.engine.reasons import Reason, texts
from pruner.engine.retention import decide
from pruner.engine.units import parse_duration, parse_size

NOW = datetime(2026, 11, 27, 3, 30, tzinfo=UTC)
SOFIA = ZoneInfo("Europe/Sofia")
NS = "not_selected"

_DURATION_KEYS = {
    "keep_within",
    "keep_within_hourly",
    "keep_within_daily",
    "keep_within_weekly",
    "keep_within_monthly",
    "keep_within_yearly",
    "max_age",
}


def rules(min_keep: int = 0, **fields: Any) -> Policy:
    """A policy; durations and sizes as text. The floor is off unless a case is about it."""
    for key, value in fields.items():
        if key in _DURATION_KEYS:
            fields[key] = parse_duration(value)
        elif key == "max_total_size":
            fields[key] = parse_size(value)
        elif key == "protect_ids":
            fields[key] = frozenset(value)
    return dataclasses.replace(Policy(name="test", min_keep=min_keep), **fields)


def group(
    times: Mapping[int, str],
    sizes: Mapping[int, int | None] | None = None,
    names: Mapping[int, str | None] | None = None,
) -> tuple[Backup, ...]:
    """Backups of one server by id: created_at as written (with its offset), size 50 GB."""
    sizes, names = sizes or {}, names or {}
    return tuple(
        Backup(
            resource="backups",
            id=id,
            server_id=2478,
            created_at=datetime.fromisoformat(when),
            name=names.get(id, f"{id}_ubuntu-2gb.qcow2.gz"),
            size=sizes.get(id, 50),
        )
        for id, when in times.items()
    )


def without(backups: Iterable[Backup], *ids: int) -> tuple[Backup, ...]:
    return tuple(b for b in backups if b.id not in ids)


def on_wall_clock(backups: Iterable[Backup], zone: tzinfo) -> tuple[Backup, ...]:
    """The same instants written with the offsets of `zone`, as an API in that zone gives them."""
    return tuple(
        dataclasses.replace(
            b, created_at=datetime.fromisoformat(b.created_at.astimezone(zone).isoformat())
        )
        for b in backups
    )


def outcome(decisions: Iterable[Decision]) -> tuple[dict[int, str], dict[int, str]]:
    """Kept ids with their reasons (space-separated, in order), and deleted ids with theirs."""
    kept: dict[int, str] = {}
    deleted: dict[int, str] = {}
    for decision in decisions:
        target = kept if decision.action == "keep" else deleted
        target[decision.backup.id] = " ".join(texts(decision.reasons))
    return kept, deleted


class Case(NamedTuple):
    name: str
    backups: tuple[Backup, ...]
    policy: Policy
    kept: dict[int, str]
    deleted: dict[int, str]
    now: datetime = NOW
    zone: tzinfo | None = None


HOURS = group(
    {
        1: "2026-11-26T14:50Z",
        2: "2026-11-26T14:10Z",
        3: "2026-11-26T13:59Z",
        4: "2026-11-26T12:30Z",
        5: "2026-11-26T12:05Z",
        6: "2026-11-26T11:00Z",
    }
)
DAYS = group(
    {
        1: "2026-11-26T22:00Z",
        2: "2026-11-26T02:00Z",
        3: "2026-11-25T23:59:59Z",
        4: "2026-11-24T00:00Z",
        5: "2026-11-23T12:00Z",
        6: "2026-11-23T06:00Z",
    }
)
# 2021-01-03 (a Sunday) and 2020-12-28 are in 2020-W53; 2021-01-04 starts 2021-W01.
WEEK_53 = group(
    {
        1: "2021-01-04T10:00Z",
        2: "2021-01-03T10:00Z",
        3: "2020-12-28T10:00Z",
        4: "2020-12-27T10:00Z",
    }
)
# 2014-12-29 (a Monday) and 2014-12-31 are in 2015-W01 but in the calendar year 2014.
WEEK_ONE = group(
    {
        1: "2015-01-05T00:00Z",
        2: "2014-12-31T00:00Z",
        3: "2014-12-29T00:00Z",
        4: "2014-12-28T23:00Z",
    }
)
MONTHS = group(
    {
        1: "2026-03-01T00:00Z",
        2: "2026-02-28T23:59Z",
        3: "2026-02-01T00:00Z",
        4: "2026-01-31T23:59:59Z",
        5: "2025-12-31T12:00Z",
    }
)
LEAP = group({1: "2024-03-01T00:00Z", 2: "2024-02-29T12:00Z", 3: "2024-02-01T00:00Z"})
YEARS = group(
    {
        1: "2026-01-01T00:00Z",
        2: "2025-12-31T23:59Z",
        3: "2025-01-01T00:00Z",
        4: "2024-06-01T00:00Z",
    }
)
# Sofia springs forward on 2026-03-29 at 03:00 EET (01:00 UTC): that day has 23 hours.
SPRING = group(
    {
        1: "2026-03-29T22:30Z",  # 03-30 01:30 EEST
        2: "2026-03-29T20:30Z",  # 03-29 23:30 EEST
        3: "2026-03-28T22:30Z",  # 03-29 00:30 EET
        4: "2026-03-28T21:30Z",  # 03-28 23:30 EET
        5: "2026-03-27T22:30Z",  # 03-28 00:30 EET
        6: "2026-03-26T12:00Z",  # 03-26 14:00 EET
    }
)
SPRING_HOURS = group(
    {
        1: "2026-03-29T01:30Z",  # 04:30 EEST: the hour 03 never happens that day
        2: "2026-03-29T00:59Z",  # 02:59 EET
        3: "2026-03-29T00:30Z",  # 02:30 EET
        4: "2026-03-28T23:30Z",  # 01:30 EET
    }
)
# Sofia falls back on 2026-10-25 at 04:00 EEST (01:00 UTC): that day has 25 hours, 03:xx twice.
FALL = group(
    {
        1: "2026-10-25T21:30Z",  # 10-25 23:30 EET
        2: "2026-10-24T21:30Z",  # 10-25 00:30 EEST, 24 h earlier and still the same day
        3: "2026-10-24T20:30Z",  # 10-24 23:30 EEST
    }
)
REPEATED_HOUR = group(
    {
        1: "2026-10-25T02:10Z",  # 04:10 EET
        2: "2026-10-25T01:40Z",  # 03:40 EET (second time)
        3: "2026-10-25T01:10Z",  # 03:10 EET
        4: "2026-10-25T00:40Z",  # 03:40 EEST (first time)
        5: "2026-10-25T00:10Z",  # 03:10 EEST
        6: "2026-10-24T23:50Z",  # 02:50 EEST
    }
)
# 2023-06-19T00:30+03:00 is 2023-06-18T21:30Z: its day depends on whose wall clock reads it.
MIXED_OFFSETS = group(
    {1: "2023-06-18T22:00+00:00", 2: "2023-06-19T00:30+03:00", 3: "2023-06-18T20:00+00:00"}
)
FUTURE = group(
    {
        1: "2026-11-28T00:00Z",  # after NOW: a clock ahead, or a backup made meanwhile
        2: "2026-11-26T01:00Z",
        3: "2026-11-25T01:00Z",
        4: "2026-11-20T01:00Z",
    }
)
STOPPED = group({1: "2026-10-01T00:00Z", 2: "2026-09-30T12:00Z", 3: "2026-09-28T00:00Z"})
WITHIN_DAYS = group(
    {
        1: "2026-11-26T10:00Z",
        2: "2026-11-26T08:00Z",
        3: "2026-11-25T10:00Z",
        4: "2026-11-24T10:00Z",
        5: "2026-11-23T10:00:01Z",
        6: "2026-11-23T10:00Z",  # exactly 3 d before the newest: not strictly newer
        7: "2026-11-20T10:00Z",
    }
)
AGES = group(
    {
        1: "2026-11-26T00:00Z",
        2: "2026-11-17T03:30Z",  # exactly NOW - 10d: not older
        3: "2026-11-17T03:29Z",
        4: "2026-11-01T00:00Z",
    }
)
SIZED = group(
    {
        1: "2026-11-26T00:00Z",
        2: "2026-11-25T00:00Z",
        3: "2026-11-24T00:00Z",
        4: "2026-11-23T00:00Z",
    },
    sizes={1: 50, 2: 50, 3: 100, 4: 10},
)
# Two weeks around NOW: 11-23 is the Monday of 2026-W48, 11-16 of W47.
FORTNIGHT = group(
    {
        1: "2026-11-26T20:00Z",
        2: "2026-11-26T08:00Z",
        3: "2026-11-25T08:00Z",
        4: "2026-11-24T08:00Z",
        5: "2026-11-22T08:00Z",
        6: "2026-11-20T08:00Z",
        7: "2026-11-15T08:00Z",
    }
)
PRE_UPGRADE = {2: "2_before-pre-upgrade-of-kernel.qcow2.gz"}


KEEP_LAST = [
    Case(
        "two",
        DAYS,
        rules(keep_last=2),
        {1: "keep_last:1", 2: "keep_last:2"},
        dict.fromkeys([3, 4, 5, 6], NS),
    ),
    Case(
        "zero selects nothing", DAYS, rules(keep_last=0), {}, dict.fromkeys([1, 2, 3, 4, 5, 6], NS)
    ),
    Case(
        "unlimited",
        DAYS,
        rules(keep_last=-1),
        {i: f"keep_last:{i}" for i in range(1, 7)},
        {},
    ),
    Case(
        "more than there are",
        STOPPED,
        rules(keep_last=10),
        {1: "keep_last:1", 2: "keep_last:2", 3: "keep_last:3"},
        {},
    ),
]

BUCKETS = [
    Case(
        "hourly 3",
        HOURS,
        rules(keep_hourly=3),
        {
            1: "keep_hourly:2026-11-26T14",
            3: "keep_hourly:2026-11-26T13",
            4: "keep_hourly:2026-11-26T12",
        },
        dict.fromkeys([2, 5, 6], NS),
    ),
    Case(
        "hourly budget left at an oldest that opens a bucket: no oldest detail",
        HOURS,
        rules(keep_hourly=6),
        {
            1: "keep_hourly:2026-11-26T14",
            3: "keep_hourly:2026-11-26T13",
            4: "keep_hourly:2026-11-26T12",
            6: "keep_hourly:2026-11-26T11",
        },
        dict.fromkeys([2, 5], NS),
    ),
    Case(
        "hourly budget left keeps the oldest in a used bucket",
        without(HOURS, 6),
        rules(keep_hourly=5),
        {
            1: "keep_hourly:2026-11-26T14",
            3: "keep_hourly:2026-11-26T13",
            4: "keep_hourly:2026-11-26T12",
            5: "keep_hourly:2026-11-26T12:oldest",
        },
        {2: NS},
    ),
    Case(
        "hourly budget spent just before the oldest",
        without(HOURS, 6),
        rules(keep_hourly=3),
        {
            1: "keep_hourly:2026-11-26T14",
            3: "keep_hourly:2026-11-26T13",
            4: "keep_hourly:2026-11-26T12",
        },
        dict.fromkeys([2, 5], NS),
    ),
    Case(
        "daily 2",
        DAYS,
        rules(keep_daily=2),
        {1: "keep_daily:2026-11-26", 3: "keep_daily:2026-11-25"},
        dict.fromkeys([2, 4, 5, 6], NS),
    ),
    Case(
        "daily 4 spends the budget on the newest of each day",
        DAYS,
        rules(keep_daily=4),
        {
            1: "keep_daily:2026-11-26",
            3: "keep_daily:2026-11-25",
            4: "keep_daily:2026-11-24",
            5: "keep_daily:2026-11-23",
        },
        dict.fromkeys([2, 6], NS),
    ),
    Case(
        "daily 5 keeps the oldest with the budget left",
        DAYS,
        rules(keep_daily=5),
        {
            1: "keep_daily:2026-11-26",
            3: "keep_daily:2026-11-25",
            4: "keep_daily:2026-11-24",
            5: "keep_daily:2026-11-23",
            6: "keep_daily:2026-11-23:oldest",
        },
        {2: NS},
    ),
    Case(
        "daily unlimited keeps the oldest too",
        DAYS,
        rules(keep_daily=-1),
        {
            1: "keep_daily:2026-11-26",
            3: "keep_daily:2026-11-25",
            4: "keep_daily:2026-11-24",
            5: "keep_daily:2026-11-23",
            6: "keep_daily:2026-11-23:oldest",
        },
        {2: NS},
    ),
    Case("daily 0 selects nothing", DAYS, rules(keep_daily=0), {}, dict.fromkeys(range(1, 7), NS)),
    Case(
        "weekly across week 53",
        WEEK_53,
        rules(keep_weekly=-1),
        {1: "keep_weekly:2021-W01", 2: "keep_weekly:2020-W53", 4: "keep_weekly:2020-W52"},
        {3: NS},
    ),
    Case(
        "weekly: 2014-12-29 is in 2015-W01",
        WEEK_ONE,
        rules(keep_weekly=3),
        {1: "keep_weekly:2015-W02", 2: "keep_weekly:2015-W01", 4: "keep_weekly:2014-W52"},
        {3: NS},
    ),
    Case(
        "weekly 2",
        WEEK_ONE,
        rules(keep_weekly=2),
        {1: "keep_weekly:2015-W02", 2: "keep_weekly:2015-W01"},
        dict.fromkeys([3, 4], NS),
    ),
    Case(
        "yearly follows the calendar year, not the ISO year",
        WEEK_ONE,
        rules(keep_yearly=-1),
        {1: "keep_yearly:2015", 2: "keep_yearly:2014", 4: "keep_yearly:2014:oldest"},
        {3: NS},
    ),
    Case(
        "monthly at month ends",
        MONTHS,
        rules(keep_monthly=3),
        {1: "keep_monthly:2026-03", 2: "keep_monthly:2026-02", 4: "keep_monthly:2026-01"},
        dict.fromkeys([3, 5], NS),
    ),
    Case(
        "monthly unlimited",
        MONTHS,
        rules(keep_monthly=-1),
        {
            1: "keep_monthly:2026-03",
            2: "keep_monthly:2026-02",
            4: "keep_monthly:2026-01",
            5: "keep_monthly:2025-12",
        },
        {3: NS},
    ),
    Case(
        "daily over a leap day",
        LEAP,
        rules(keep_daily=-1),
        {1: "keep_daily:2024-03-01", 2: "keep_daily:2024-02-29", 3: "keep_daily:2024-02-01"},
        {},
    ),
    Case(
        "monthly over a leap day",
        LEAP,
        rules(keep_monthly=-1),
        {1: "keep_monthly:2024-03", 2: "keep_monthly:2024-02", 3: "keep_monthly:2024-02:oldest"},
        {},
    ),
    Case(
        "yearly 2",
        YEARS,
        rules(keep_yearly=2),
        {1: "keep_yearly:2026", 2: "keep_yearly:2025"},
        dict.fromkeys([3, 4], NS),
    ),
    Case(
        "each rule counts on its own",
        DAYS,
        rules(keep_last=1, keep_daily=2, keep_weekly=1),
        {
            1: "keep_last:1 keep_daily:2026-11-26 keep_weekly:2026-W48",
            3: "keep_daily:2026-11-25",
        },
        dict.fromkeys([2, 4, 5, 6], NS),
    ),
]

ZONES = [
    Case(
        "Sofia spring day: 23 hours, one bucket",
        SPRING,
        rules(keep_daily=-1),
        {
            1: "keep_daily:2026-03-30",
            2: "keep_daily:2026-03-29",
            4: "keep_daily:2026-03-28",
            6: "keep_daily:2026-03-26",
        },
        dict.fromkeys([3, 5], NS),
        zone=SOFIA,
    ),
    Case(
        "Sofia spring day read on the backups' own offsets",
        on_wall_clock(SPRING, SOFIA),
        rules(keep_daily=-1),
        {
            1: "keep_daily:2026-03-30",
            2: "keep_daily:2026-03-29",
            4: "keep_daily:2026-03-28",
            6: "keep_daily:2026-03-26",
        },
        dict.fromkeys([3, 5], NS),
    ),
    Case(
        "the same spring instants on UTC offsets",
        SPRING,
        rules(keep_daily=-1),
        {
            1: "keep_daily:2026-03-29",
            3: "keep_daily:2026-03-28",
            5: "keep_daily:2026-03-27",
            6: "keep_daily:2026-03-26",
        },
        dict.fromkeys([2, 4], NS),
    ),
    Case(
        "Sofia spring hours skip 03",
        SPRING_HOURS,
        rules(keep_hourly=-1),
        {
            1: "keep_hourly:2026-03-29T04",
            2: "keep_hourly:2026-03-29T02",
            4: "keep_hourly:2026-03-29T01",
        },
        {3: NS},
        zone=SOFIA,
    ),
    Case(
        "Sofia autumn day: 25 hours, one bucket",
        FALL,
        rules(keep_daily=-1),
        {1: "keep_daily:2026-10-25", 3: "keep_daily:2026-10-24"},
        {2: NS},
        zone=SOFIA,
    ),
    Case(
        "the same autumn instants on UTC offsets",
        FALL,
        rules(keep_daily=-1),
        {1: "keep_daily:2026-10-25", 2: "keep_daily:2026-10-24", 3: "keep_daily:2026-10-24:oldest"},
        {},
    ),
    Case(
        "Sofia repeated hour is one wall-clock bucket",
        REPEATED_HOUR,
        rules(keep_hourly=-1),
        {
            1: "keep_hourly:2026-10-25T04",
            2: "keep_hourly:2026-10-25T03",
            6: "keep_hourly:2026-10-25T02",
        },
        dict.fromkeys([3, 4, 5], NS),
        zone=SOFIA,
    ),
    Case(
        "Sofia repeated hour read on the backups' own offsets",
        on_wall_clock(REPEATED_HOUR, SOFIA),
        rules(keep_hourly=-1),
        {
            1: "keep_hourly:2026-10-25T04",
            2: "keep_hourly:2026-10-25T03",
            6: "keep_hourly:2026-10-25T02",
        },
        dict.fromkeys([3, 4, 5], NS),
    ),
    Case(
        "the same repeated-hour instants on UTC offsets",
        REPEATED_HOUR,
        rules(keep_hourly=-1),
        {
            1: "keep_hourly:2026-10-25T02",
            2: "keep_hourly:2026-10-25T01",
            4: "keep_hourly:2026-10-25T00",
            6: "keep_hourly:2026-10-24T23",
        },
        dict.fromkeys([3, 5], NS),
    ),
    Case(
        "own offset: +03:00 after midnight is that day",
        group({1: "2023-06-19T00:30+03:00"}),
        rules(keep_daily=1),
        {1: "keep_daily:2023-06-19"},
        {},
    ),
    Case(
        "configured UTC: the same backup is the day before",
        group({1: "2023-06-19T00:30+03:00"}),
        rules(keep_daily=1),
        {1: "keep_daily:2023-06-18"},
        {},
        zone=ZoneInfo("UTC"),
    ),
    Case(
        "own offsets that go back: restic compares with the bucket kept last",
        MIXED_OFFSETS,
        rules(keep_daily=-1),
        {1: "keep_daily:2023-06-18", 2: "keep_daily:2023-06-19", 3: "keep_daily:2023-06-18"},
        {},
    ),
    Case(
        "the same mixed offsets on one configured zone",
        MIXED_OFFSETS,
        rules(keep_daily=-1),
        {1: "keep_daily:2023-06-18", 3: "keep_daily:2023-06-18:oldest"},
        {2: NS},
        zone=ZoneInfo("UTC"),
    ),
]

WITHIN = [
    Case(
        "keep_within counts from the newest before now; a future backup is within",
        FUTURE,
        rules(keep_within="1d"),
        {1: "keep_within:1d", 2: "keep_within:1d"},
        dict.fromkeys([3, 4], NS),  # 3 is exactly 1 d before the newest: not strictly newer
    ),
    Case(
        "a server whose backups stopped keeps its history",
        STOPPED,
        rules(keep_within="2d"),
        {1: "keep_within:2d", 2: "keep_within:2d"},
        {3: NS},
    ),
    Case(
        "nothing before now: the window is unbounded",
        group({1: "2026-03-01T00:00Z", 2: "2026-02-01T00:00Z"}),
        rules(keep_within="1d"),
        {1: "keep_within:1d", 2: "keep_within:1d"},
        {},
        now=datetime(2026, 1, 1, tzinfo=UTC),
    ),
    Case(
        "9999y reaches before year 1: everything is within",
        STOPPED,
        rules(keep_within="9999y"),
        {1: "keep_within:9999y", 2: "keep_within:9999y", 3: "keep_within:9999y"},
        {},
    ),
    Case(
        "calendar keep_within on the configured zone's wall clock",
        group({1: "2026-03-31T10:00Z", 2: "2026-02-28T10:00:01Z", 3: "2026-02-28T10:00Z"}),
        rules(keep_within="1mo"),  # Mar 31 - 1mo = Feb 28 (clamped), same wall time
        {1: "keep_within:1mo", 2: "keep_within:1mo"},
        {3: NS},
        now=datetime(2026, 4, 1, tzinfo=UTC),
        zone=ZoneInfo("UTC"),
    ),
    Case(
        "within_daily 3d",
        WITHIN_DAYS,
        rules(keep_within_daily="3d"),
        {
            1: "keep_within_daily:2026-11-26",
            3: "keep_within_daily:2026-11-25",
            4: "keep_within_daily:2026-11-24",
            5: "keep_within_daily:2026-11-23",
        },
        dict.fromkeys([2, 6, 7], NS),
    ),
    Case(
        "within_daily keeps the oldest when it is inside the window",
        WITHIN_DAYS,
        rules(keep_within_daily="30d"),
        {
            1: "keep_within_daily:2026-11-26",
            3: "keep_within_daily:2026-11-25",
            4: "keep_within_daily:2026-11-24",
            5: "keep_within_daily:2026-11-23",
            7: "keep_within_daily:2026-11-20",
        },
        dict.fromkeys([2, 6], NS),
    ),
    Case(
        "within_daily oldest in a used bucket",
        without(WITHIN_DAYS, 7),
        rules(keep_within_daily="30d"),
        {
            1: "keep_within_daily:2026-11-26",
            3: "keep_within_daily:2026-11-25",
            4: "keep_within_daily:2026-11-24",
            5: "keep_within_daily:2026-11-23",
            6: "keep_within_daily:2026-11-23:oldest",
        },
        {2: NS},
    ),
    Case(
        "within_daily with nothing before now is unbounded",
        WITHIN_DAYS,
        rules(keep_within_daily="1d"),
        {
            1: "keep_within_daily:2026-11-26",
            3: "keep_within_daily:2026-11-25",
            4: "keep_within_daily:2026-11-24",
            5: "keep_within_daily:2026-11-23",
            7: "keep_within_daily:2026-11-20",
        },
        dict.fromkeys([2, 6], NS),
        now=datetime(2026, 11, 1, tzinfo=UTC),
    ),
    Case(
        "within_hourly 3h",
        HOURS,
        rules(keep_within_hourly="3h"),
        {
            1: "keep_within_hourly:2026-11-26T14",
            3: "keep_within_hourly:2026-11-26T13",
            4: "keep_within_hourly:2026-11-26T12",
        },
        dict.fromkeys([2, 5, 6], NS),
    ),
    Case(
        "within_weekly 1w across week 53",
        WEEK_53,
        rules(keep_within_weekly="1w"),
        {1: "keep_within_weekly:2021-W01", 2: "keep_within_weekly:2020-W53"},
        dict.fromkeys([3, 4], NS),
    ),
    Case(
        "within_monthly 1mo",
        MONTHS,
        rules(keep_within_monthly="1mo"),
        {1: "keep_within_monthly:2026-03", 2: "keep_within_monthly:2026-02"},
        dict.fromkeys([3, 4, 5], NS),
    ),
    Case(
        "within_yearly 1y",
        YEARS,
        rules(keep_within_yearly="1y"),
        {1: "keep_within_yearly:2026", 2: "keep_within_yearly:2025"},
        dict.fromkeys([3, 4], NS),
    ),
    Case(
        "within_yearly 9999y keeps the newest of each year and the oldest",
        YEARS,
        rules(keep_within_yearly="9999y"),
        {1: "keep_within_yearly:2026", 2: "keep_within_yearly:2025", 4: "keep_within_yearly:2024"},
        {3: NS},
    ),
    Case(
        "every rule at once, reasons in the documented order",
        group({1: "2026-11-26T12:00Z"}),
        rules(
            min_keep=1,
            keep_last=1,
            keep_hourly=1,
            keep_daily=1,
            keep_weekly=1,
            keep_monthly=1,
            keep_yearly=1,
            keep_within="1h",
            keep_within_hourly="1h",
            keep_within_daily="1h",
            keep_within_weekly="1h",
            keep_within_monthly="1h",
            keep_within_yearly="1h",
        ),
        {
            1: "keep_last:1 keep_hourly:2026-11-26T12 keep_daily:2026-11-26 keep_weekly:2026-W48"
            " keep_monthly:2026-11 keep_yearly:2026 keep_within:1h"
            " keep_within_hourly:2026-11-26T12 keep_within_daily:2026-11-26"
            " keep_within_weekly:2026-W48 keep_within_monthly:2026-11 keep_within_yearly:2026"
        },
        {},
    ),
]

LIMITS = [
    Case(
        "max_age alone: no keep rule keeps all, then the old go",
        AGES,
        rules(max_age="10d"),
        {1: "keep_all", 2: "keep_all"},
        {3: "max_age:10d", 4: "max_age:10d"},
    ),
    Case(
        "max_age removes only what was selected",
        AGES,
        rules(keep_last=3, max_age="10d"),
        {1: "keep_last:1", 2: "keep_last:2"},
        {3: "max_age:10d", 4: NS},
    ),
    Case(
        "max_age in calendar months, clamped to the month's end",
        group({1: "2026-03-30T00:00Z", 2: "2026-02-28T12:00Z", 3: "2026-02-28T11:59Z"}),
        rules(max_age="1mo"),
        {1: "keep_all", 2: "keep_all"},
        {3: "max_age:1mo"},
        now=datetime(2026, 3, 31, 12, tzinfo=UTC),
    ),
    Case(
        "max_age 9999y: nothing is that old",
        AGES,
        rules(max_age="9999y"),
        dict.fromkeys([1, 2, 3, 4], "keep_all"),
        {},
    ),
    Case(
        "max_total_size: the first over and every older one",
        SIZED,
        rules(max_total_size="150GB"),
        {1: "keep_all", 2: "keep_all"},
        {3: "max_total_size:150GB", 4: "max_total_size:150GB"},
    ),
    Case(
        "max_total_size: reaching the limit exactly fits",
        SIZED,
        rules(max_total_size="200GB"),
        {1: "keep_all", 2: "keep_all", 3: "keep_all"},
        {4: "max_total_size:200GB"},
    ),
    Case(
        "max_total_size in TB",
        group(
            {1: "2026-11-26T00:00Z", 2: "2026-11-25T00:00Z", 3: "2026-11-24T00:00Z"},
            sizes={1: 1000, 2: 900, 3: 200},
        ),
        rules(max_total_size="2TB"),
        {1: "keep_all", 2: "keep_all"},
        {3: "max_total_size:2TB"},
    ),
    Case(
        "max_total_size sums only what is still selected",
        DAYS,
        rules(keep_daily=-1, max_total_size="150GB"),
        {1: "keep_daily:2026-11-26", 3: "keep_daily:2026-11-25", 4: "keep_daily:2026-11-24"},
        {2: NS, 5: "max_total_size:150GB", 6: "max_total_size:150GB"},
    ),
    Case(
        "max_total_size after max_age: the too old do not count",
        group(
            {
                1: "2026-11-26T00:00Z",
                2: "2026-11-25T00:00Z",
                3: "2026-10-02T00:00Z",
                4: "2026-10-01T00:00Z",
            },
            sizes={1: 50, 2: 40, 3: 5, 4: 1000},
        ),
        rules(max_age="30d", max_total_size="100GB"),
        {1: "keep_all", 2: "keep_all"},
        {3: "max_age:30d", 4: "max_age:30d"},
    ),
    Case(
        "a missing size counts as 0",
        SIZED + group({5: "2026-11-26T12:00Z"}, sizes={5: None}),
        rules(max_total_size="100GB"),
        {5: "keep_all", 1: "keep_all", 2: "keep_all"},
        {3: "max_total_size:100GB", 4: "max_total_size:100GB"},
    ),
]

FLOOR = [
    Case(
        "the floor keeps the newest when no rule does",
        DAYS,
        rules(min_keep=2, keep_last=0),
        {1: "min_keep:2", 2: "min_keep:2"},
        dict.fromkeys([3, 4, 5, 6], NS),
    ),
    Case(
        "min_keep 0 keeps nothing",
        DAYS,
        rules(min_keep=0, keep_last=0),
        {},
        dict.fromkeys(range(1, 7), NS),
    ),
    Case(
        "the floor says nothing where a rule keeps",
        DAYS,
        rules(min_keep=2, keep_last=1),
        {1: "keep_last:1", 2: "min_keep:2"},
        dict.fromkeys([3, 4, 5, 6], NS),
    ),
    Case(
        "a floor larger than the group keeps all",
        STOPPED,
        rules(min_keep=10, keep_last=0),
        dict.fromkeys([1, 2, 3], "min_keep:10"),
        {},
    ),
    Case(
        "the floor restores a backup a size limit removed, with both reasons",
        SIZED,
        rules(min_keep=2, keep_last=3, max_total_size="60GB"),
        {1: "keep_last:1", 2: "keep_last:2 min_keep:2"},
        {3: "max_total_size:60GB", 4: NS},
    ),
    Case(
        "the floor restores what max_age removed",
        STOPPED,
        rules(min_keep=1, max_age="1d"),
        {1: "keep_all min_keep:1"},
        {2: "max_age:1d", 3: "max_age:1d"},
    ),
    Case(
        "a zero size limit leaves only the floor",
        SIZED,
        rules(min_keep=1, max_total_size=0),
        {1: "keep_all min_keep:1"},
        dict.fromkeys([2, 3, 4], "max_total_size:0GB"),
    ),
]

PROTECTED = [
    Case(
        "by id, invisible to keep_last",
        DAYS,
        rules(keep_last=2, protect_ids={1}),
        {1: "protected:id", 2: "keep_last:1", 3: "keep_last:2"},
        dict.fromkeys([4, 5, 6], NS),
    ),
    Case(
        "by name glob",
        group(
            {
                1: "2026-11-26T22:00Z",
                2: "2026-11-26T02:00Z",
                3: "2026-11-25T23:59:59Z",
                4: "2026-11-24T00:00Z",
            },
            names=PRE_UPGRADE,
        ),
        rules(keep_last=1, protect_names=("*pre-upgrade*",)),
        {1: "keep_last:1", 2: "protected:*pre-upgrade*"},
        dict.fromkeys([3, 4], NS),
    ),
    Case(
        "by id and globs: every match, id first",
        group({1: "2026-11-26T00:00Z", 2: "2026-11-25T00:00Z"}, names=PRE_UPGRADE),
        rules(keep_last=0, protect_ids={2}, protect_names=("*pre-upgrade*", "nomatch*", "2_*")),
        {2: "protected:id protected:*pre-upgrade* protected:2_*"},
        {1: NS},
    ),
    Case(
        "globs are case-sensitive shell globs",
        group(
            {1: "2026-11-26T00:00Z", 2: "2026-11-25T00:00Z"}, names={1: "1_PRE-UPGRADE", 2: "2_x"}
        ),
        rules(keep_last=0, protect_names=("*pre-upgrade*", "2_?")),
        {2: "protected:2_?"},
        {1: NS},
    ),
    Case(
        "a backup without a name matches no glob",
        group({1: "2026-11-26T00:00Z", 2: "2026-11-25T00:00Z"}, names={1: None}),
        rules(keep_last=0, protect_names=("*",)),
        {2: "protected:*"},
        {1: NS},
    ),
    Case(
        "invisible to the floor",
        DAYS,
        rules(min_keep=1, keep_last=0, protect_ids={1}),
        {1: "protected:id", 2: "min_keep:1"},
        dict.fromkeys([3, 4, 5, 6], NS),
    ),
    Case(
        "invisible to the size sum, and never removed by a limit",
        group(
            {
                1: "2026-11-26T00:00Z",
                2: "2026-11-25T00:00Z",
                3: "2026-11-24T00:00Z",
                4: "2026-11-23T12:00Z",
                5: "2026-11-23T00:00Z",
            },
            sizes={1: 1000, 2: 50, 3: 50, 4: 5000, 5: 1},
        ),
        rules(max_total_size="100GB", max_age="30d", protect_ids={1, 4}),
        {1: "protected:id", 2: "keep_all", 3: "keep_all", 4: "protected:id"},
        {5: "max_total_size:100GB"},
    ),
    Case(
        "invisible to the oldest rule",
        group({1: "2026-11-26T10:00Z", 2: "2026-11-26T08:00Z", 3: "2026-11-25T10:00Z"}),
        rules(keep_daily=-1, protect_ids={3}),
        {1: "keep_daily:2026-11-26", 2: "keep_daily:2026-11-26:oldest", 3: "protected:id"},
        {},
    ),
    Case(
        "invisible to keep_within's latest",
        group({1: "2026-11-26T00:00Z", 2: "2026-11-20T00:00Z", 3: "2026-11-19T12:00Z"}),
        rules(keep_within="1d", protect_ids={1}),
        {1: "protected:id", 2: "keep_within:1d", 3: "keep_within:1d"},
        {},
    ),
]

COMBINED = [
    Case(
        "last, daily and weekly, cut by size",
        FORTNIGHT,
        rules(min_keep=1, keep_last=2, keep_daily=3, keep_weekly=2, max_total_size="200GB"),
        {
            1: "keep_last:1 keep_daily:2026-11-26 keep_weekly:2026-W48",
            2: "keep_last:2",
            3: "keep_daily:2026-11-25",
            4: "keep_daily:2026-11-24",
        },
        {5: "max_total_size:200GB", 6: NS, 7: NS},
    ),
    Case(
        "both limits: age first, then size on what is left",
        FORTNIGHT,
        rules(keep_last=2, keep_daily=3, keep_weekly=2, max_age="4d", max_total_size="150GB"),
        {
            1: "keep_last:1 keep_daily:2026-11-26 keep_weekly:2026-W48",
            2: "keep_last:2",
            3: "keep_daily:2026-11-25",
        },
        {4: "max_total_size:150GB", 5: "max_age:4d", 6: NS, 7: NS},
    ),
    Case(
        "both limits, with a floor that restores both",
        FORTNIGHT,
        rules(
            min_keep=5,
            keep_last=2,
            keep_daily=3,
            keep_weekly=2,
            max_age="4d",
            max_total_size="150GB",
        ),
        {
            1: "keep_last:1 keep_daily:2026-11-26 keep_weekly:2026-W48",
            2: "keep_last:2",
            3: "keep_daily:2026-11-25",
            4: "keep_daily:2026-11-24 min_keep:5",
            5: "keep_weekly:2026-W47 min_keep:5",
        },
        {6: NS, 7: NS},
    ),
    Case(
        "within, within_daily and protection with age",
        WITHIN_DAYS + group({8: "2026-11-26T09:00Z"}, names={8: "8_pre-upgrade"}),
        rules(
            min_keep=1,
            keep_within="1d",
            keep_within_daily="3d",
            max_age="3d",
            protect_names=("*pre-upgrade*",),
        ),
        {
            1: "keep_within:1d keep_within_daily:2026-11-26",
            2: "keep_within:1d",
            8: "protected:*pre-upgrade*",
            3: "keep_within_daily:2026-11-25",
            4: "keep_within_daily:2026-11-24",
        },
        {5: "max_age:3d", 6: NS, 7: NS},
    ),
    Case(
        "9999y everywhere does not crash",
        STOPPED,
        rules(keep_within="9999y", keep_within_monthly="9999y", max_age="9999y"),
        {
            1: "keep_within:9999y keep_within_monthly:2026-10",
            2: "keep_within:9999y keep_within_monthly:2026-09",
            3: "keep_within:9999y keep_within_monthly:2026-09:oldest",
        },
        {},
    ),
]


def _cases(*tables: list[Case]) -> list[Any]:
    return [pytest.param(case, id=case.name) for table in tables for case in table]


@pytest.mark.parametrize(
    "case", _cases(KEEP_LAST, BUCKETS, ZONES, WITHIN, LIMITS, FLOOR, PROTECTED, COMBINED)
)
def test_decide_keeps_and_deletes_with_reasons(case: Case) -> None:
    decisions = decide(case.backups, case.policy, case.now, case.zone)

    assert outcome(decisions) == (case.kept, case.deleted)


def test_decide_orders_newest_first_and_equal_times_by_id_descending() -> None:
    backups = group(
        {
            5: "2026-11-26T12:00Z",
            9: "2026-11-26T12:00Z",
            7: "2026-11-26T15:00+03:00",  # the same instant on another offset
            1: "2026-11-26T12:00:00.000001Z",
            2: "2026-11-25T00:00Z",
        }
    )
    shuffled = list(backups)
    random.Random(4).shuffle(shuffled)

    decisions = decide(shuffled, rules(keep_last=1, keep_daily=1), NOW)

    assert [d.backup.id for d in decisions] == [1, 9, 7, 5, 2]
    assert outcome(decisions) == (
        {1: "keep_last:1 keep_daily:2026-11-26"},
        dict.fromkeys([9, 7, 5, 2], NS),
    )


def test_decide_orders_a_repeated_hour_by_instant_not_wall_clock() -> None:
    # Both at 03:xx in Sofia on 2026-10-25: 03:10 of the second pass is 20 min after 03:50.
    later = Backup("backups", 1, 2478, datetime(2026, 10, 25, 3, 10, tzinfo=SOFIA, fold=1))
    earlier = Backup("backups", 2, 2478, datetime(2026, 10, 25, 3, 50, tzinfo=SOFIA))

    decisions = decide([earlier, later], rules(keep_last=1), NOW)

    assert [(d.backup.id, d.action) for d in decisions] == [(1, "keep"), (2, "delete")]


def test_decide_places_protected_backups_in_order() -> None:
    decisions = decide(DAYS, rules(keep_last=1, protect_ids={2, 5}), NOW)

    assert [(d.backup.id, d.action) for d in decisions] == [
        (1, "keep"),
        (2, "keep"),
        (3, "delete"),
        (4, "delete"),
        (5, "keep"),
        (6, "delete"),
    ]


def test_decide_returns_the_backups_it_was_given() -> None:
    decisions = decide(reversed(FORTNIGHT), rules(keep_daily=2), NOW)

    assert sorted((d.backup for d in decisions), key=lambda b: b.id) == list(FORTNIGHT)


def test_decide_without_backups_decides_nothing() -> None:
    assert decide([], rules(keep_daily=7, max_total_size="1TB", min_keep=3), NOW) == ()


def test_decide_with_only_protected_backups_keeps_them() -> None:
    decisions = decide(STOPPED, rules(min_keep=2, keep_last=1, protect_ids={1, 2, 3}), NOW)

    assert outcome(decisions) == (dict.fromkeys([1, 2, 3], "protected:id"), {})


def test_decide_without_keep_rules_or_limits_keeps_everything() -> None:
    decisions = decide(FORTNIGHT, rules(), NOW)

    assert outcome(decisions) == (dict.fromkeys(range(1, 8), "keep_all"), {})


def test_decide_ignores_the_zone_for_the_exact_part_of_durations() -> None:
    # 1d is 24 h of elapsed time even across the spring change in Sofia (a 23-hour day).
    # A wall-clock day back from 1 would end at 03-29 00:00 (22:00 UTC) and leave 2 out.
    backups = group(
        {1: "2026-03-30T00:00+03:00", 2: "2026-03-28T23:30+02:00", 3: "2026-03-28T23:00+02:00"}
    )

    decisions = decide(backups, rules(keep_within="1d"), NOW, SOFIA)

    assert outcome(decisions) == ({1: "keep_within:1d", 2: "keep_within:1d"}, {3: NS})


def test_decide_refuses_a_naive_now() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        decide(DAYS, rules(keep_last=1), datetime(2026, 11, 27, 3, 30))


def test_a_decision_is_a_frozen_value() -> None:
    """Decision builds itself through its slots (a plan makes a million): it stays a value."""
    backup = Backup("backups", 1, 2478, datetime(2026, 11, 26, tzinfo=UTC))
    decision = Decision(backup, "delete", (Reason("not_selected"),))
    same = Decision(backup=backup, action="delete", reasons=(Reason("not_selected"),))
    assert decision == same
    assert hash(decision) == hash(same)
    assert (decision.backup, decision.action, decision.reasons) == (backup, "delete", same.reasons)
    with pytest.raises(dataclasses.FrozenInstanceError):
        decision.action = "keep"  # type: ignore[misc]
    kept = dataclasses.replace(decision, action="keep")
    assert (kept.action, decision.action) == ("keep", "delete")
