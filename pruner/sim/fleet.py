"""A generated fleet: servers with months of VPSBG-like history, deterministic by seed.

Scheduled backups (daily, twice daily or weekly), pre-upgrade ones, snapshots taken by hand,
timestamps in Sofia time as the API gives them, and the special servers even a small fleet has
(locked, stale, terminated, suspended, resized, young).
"""

from __future__ import annotations

import functools
import random
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any, Literal

__all__ = ["Fleet", "Item", "generate_fleet", "local_text", "name_stamp", "sofia_offset"]

Item = dict[str, Any]


@dataclass(frozen=True)
class Fleet:
    """API-shaped dicts, as `GET /servers?filter[status]=all`, `GET /backups`, `GET /snapshots`
    would list them (ascending id). A Simulator copies them: one fleet can serve many."""

    servers: list[Item]
    backups: list[Item]
    snapshots: list[Item]
    now: datetime | None = None  # the moment the fleet was generated for, when known


Schedule = Literal["daily", "twice-daily", "weekly"]
Role = Literal["", "locked", "stale", "terminated", "suspended", "resized", "young"]


@dataclass(frozen=True, slots=True)
class _Template:
    hostname: str
    disk: int  # GB
    schedule: Schedule
    role: Role = ""


# Ordered so that even a small fleet has the special servers. Hostnames repeat on purpose: the
# docs' own example has two servers called ubuntu-2gb.
_TEMPLATES = (
    _Template("db-01", 160, "twice-daily"),
    _Template("db-02", 160, "twice-daily"),
    _Template("web-01", 80, "daily", "resized"),
    _Template("web-02", 40, "daily", "locked"),
    _Template("app-03", 80, "daily", "stale"),
    _Template("ubuntu-2gb", 50, "daily", "terminated"),
    _Template("mail-01", 80, "daily"),
    _Template("ubuntu-2gb", 50, "weekly"),
    _Template("db-03", 160, "daily"),
    _Template("web-03", 40, "daily", "young"),
    _Template("app-01", 80, "twice-daily"),
    _Template("app-02", 80, "daily"),
    _Template("ubuntu-4gb", 80, "weekly"),
    _Template("staging-01", 50, "weekly", "young"),
    _Template("ci-runner-01", 160, "weekly"),
    _Template("vpn-01", 20, "daily"),
    _Template("monitoring", 50, "daily"),
    _Template("redis-01", 40, "twice-daily"),
    _Template("web-04", 40, "daily"),
    _Template("lb-01", 20, "daily"),
    _Template("gitlab", 160, "daily"),
    _Template("wordpress-prod", 40, "daily", "young"),
    _Template("shop-prod", 80, "twice-daily"),
    _Template("shop-staging", 40, "weekly"),
    _Template("ns1", 20, "weekly"),
    _Template("ns2", 20, "weekly"),
    _Template("dev-box", 50, "daily"),
    _Template("minecraft", 80, "daily", "suspended"),
    _Template("db-04", 160, "daily"),
    _Template("backup-gw", 20, "daily"),
)
_DISKS = (20, 40, 50, 80, 160)
_SNAPSHOT_LABELS = (
    "before-upgrade",
    "pre-deploy",
    "clean-install",
    "before-php-8.3",
    "kernel-update",
    "manual",
    "test",
)
_STALE_DAYS = 30
_TERMINATED_DAYS = 20
_MISSED_BACKUP_RATE = 0.015


@functools.lru_cache(maxsize=64)
def _last_sunday(year: int, month: int) -> date:
    last = date(year + month // 12, month % 12 + 1, 1) - timedelta(days=1)
    return last - timedelta(days=(last.weekday() + 1) % 7)


def sofia_offset(moment: datetime) -> timezone:
    """Europe/Sofia's offset at an aware moment, without needing tzdata: +03:00 from the last
    Sunday of March 01:00 UTC to the last Sunday of October 01:00 UTC (the EU rule), else +02:00.
    """
    utc = moment.astimezone(UTC)
    start = datetime.combine(_last_sunday(utc.year, 3), datetime.min.time(), UTC)
    end = datetime.combine(_last_sunday(utc.year, 10), datetime.min.time(), UTC)
    summer = start + timedelta(hours=1) <= utc < end + timedelta(hours=1)
    return timezone(timedelta(hours=3 if summer else 2))


def local_text(moment: datetime) -> str:
    """A moment as the API writes it: Sofia's wall clock with its offset, to the second."""
    return moment.astimezone(sofia_offset(moment)).isoformat(timespec="seconds")


def _server_text(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.000000Z")


def name_stamp(started: datetime) -> str:
    """The UTC timestamp in a backup's file name (`2023_06_19-19_34_40`)."""
    return started.astimezone(UTC).strftime("%Y_%m_%d-%H_%M_%S")


@dataclass(slots=True)
class _Plan:
    """One server as generated, before ids are given out in creation order."""

    template: _Template
    created: datetime
    ip: str
    stops: datetime | None  # its backups end here (stale, terminated)
    resized_at: datetime | None
    hour: int  # schedule, UTC
    minute: int
    weekday: int
    server_id: int = 0


@dataclass(slots=True)
class _Event:
    plan: _Plan
    started: datetime
    finished: datetime
    manual: bool = False
    counter: int = 0


def generate_fleet(*, now: datetime, servers: int = 30, days: int = 120, seed: int = 0) -> Fleet:
    """A realistic, deterministic account: the same arguments give the same fleet.

    Backups follow each server's schedule (daily, twice daily or weekly, in UTC) with a few
    minutes of jitter and the odd missed night. A name carries the server's own backup counter and
    the start time in UTC; `created_at` is the finish time in Europe/Sofia's offset, as in the
    docs' example. Ids grow with `created_at` across the account. With six servers or more there
    is a locked server, a stale one (backups stopped 30 days ago) and a terminated one that still
    has backups; two db servers have a `pre-upgrade` backup each; hand-made snapshots come at
    irregular times.
    """
    if now.tzinfo is None:
        raise ValueError("generate_fleet needs an aware `now`, e.g. datetime.now(UTC)")
    if servers < 0 or days < 1:
        raise ValueError(f"generate_fleet needs servers >= 0 and days >= 1, not {servers}, {days}")
    rng = random.Random(seed)
    window_start = now - timedelta(days=days)
    plans = [
        _plan_server(rng, _template(rng, index), now, window_start) for index in range(servers)
    ]
    plans.sort(key=lambda plan: plan.created)
    for plan, server_id in zip(plans, _growing_ids(rng, 2401, len(plans)), strict=True):
        plan.server_id = server_id
    events = [event for plan in plans for event in _backup_events(rng, plan, now, window_start)]
    events += _pre_upgrade_events(rng, plans, now, window_start)
    return Fleet(
        servers=[_server_item(plan) for plan in plans],
        backups=_backup_items(rng, events, window_start),
        snapshots=_snapshot_items(rng, plans, now, window_start),
        now=now,
    )


def _template(rng: random.Random, index: int) -> _Template:
    if index < len(_TEMPLATES):
        return _TEMPLATES[index]
    schedules: tuple[Schedule, ...] = ("daily", "daily", "twice-daily", "weekly")
    schedule = rng.choice(schedules)
    return _Template(f"node-{index - len(_TEMPLATES) + 1:02d}", rng.choice(_DISKS), schedule)


def _plan_server(
    rng: random.Random, template: _Template, now: datetime, window_start: datetime
) -> _Plan:
    span = now - window_start
    if template.role == "young":
        created = window_start + span * rng.uniform(0.3, 0.7)
    else:
        created = window_start - timedelta(days=rng.uniform(20, 700))
    stops = {
        "stale": now - timedelta(days=_STALE_DAYS),
        "terminated": now - timedelta(days=_TERMINATED_DAYS),
    }.get(template.role)
    return _Plan(
        template,
        created=created.replace(microsecond=0),
        ip=f"87.120.{rng.randrange(32, 40)}.{rng.randrange(2, 254)}",
        stops=stops,
        resized_at=window_start + span / 2 if template.role == "resized" else None,
        hour=rng.randrange(24),
        minute=rng.randrange(60),
        weekday=rng.randrange(7),
    )


def _growing_ids(rng: random.Random, first: int, count: int) -> list[int]:
    """Increasing ids with small gaps (other accounts' objects share the sequence)."""
    ids, current = [], first
    for _ in range(count):
        ids.append(current)
        current += rng.choice((1, 1, 1, 2, 3, 7))
    return ids


def _scheduled_starts(plan: _Plan, since: datetime, until: datetime) -> Iterator[datetime]:
    day = since.date() - timedelta(days=1)
    while day <= until.date():
        base = datetime(day.year, day.month, day.day, plan.hour, plan.minute, tzinfo=UTC)
        if plan.template.schedule == "daily":
            yield base
        elif plan.template.schedule == "twice-daily":
            yield base
            yield base + timedelta(hours=12)
        elif day.weekday() == plan.weekday:
            yield base
        day += timedelta(days=1)


def _duration(rng: random.Random, disk: int) -> timedelta:
    return timedelta(seconds=round(disk * 3 * rng.uniform(0.7, 1.3)))


def _backup_events(
    rng: random.Random, plan: _Plan, now: datetime, window_start: datetime
) -> list[_Event]:
    until = min(now, plan.stops) if plan.stops else now
    events = []
    for scheduled in _scheduled_starts(plan, window_start, until):
        started = scheduled + timedelta(seconds=rng.randrange(240))
        finished = started + _duration(rng, plan.template.disk)
        missed = rng.random() < _MISSED_BACKUP_RATE
        if started >= max(window_start, plan.created) and finished < until and not missed:
            events.append(_Event(plan, started, finished))
    return events


def _pre_upgrade_events(
    rng: random.Random, plans: Sequence[_Plan], now: datetime, window_start: datetime
) -> list[_Event]:
    databases = [p for p in plans if p.template.hostname.startswith("db-")] or list(plans)
    events = []
    for plan in sorted(databases, key=lambda p: p.template.hostname)[:2]:
        since = max(window_start, plan.created)
        started = (since + (now - since) * rng.uniform(0.2, 0.8)).replace(microsecond=0)
        events.append(_Event(plan, started, started + _duration(rng, plan.template.disk), True))
    return events


def _disk_at(plan: _Plan, moment: datetime) -> int:
    if plan.resized_at is not None and moment < plan.resized_at:
        return plan.template.disk // 2
    return plan.template.disk


def _counter_start(plan: _Plan, window_start: datetime) -> int:
    """Backups the server made before the window (pruned since), so counters look lived-in."""
    if plan.created >= window_start:
        return 0
    per_day = {"daily": 1.0, "twice-daily": 2.0, "weekly": 1 / 7}[plan.template.schedule]
    return int((window_start - plan.created).days * per_day)


def _backup_items(rng: random.Random, events: list[_Event], window_start: datetime) -> list[Item]:
    counters: dict[int, int] = {}
    for event in sorted(events, key=lambda e: e.started):
        server_id = event.plan.server_id
        counters[server_id] = counters.get(server_id, _counter_start(event.plan, window_start)) + 1
        event.counter = counters[server_id]
    events = sorted(events, key=lambda e: (e.finished, e.plan.server_id))
    items = []
    for event, backup_id in zip(events, _growing_ids(rng, 40117, len(events)), strict=True):
        plan = event.plan
        marker = "pre-upgrade_" if event.manual else ""
        name = f"{event.counter}_{plan.template.hostname}_{marker}{name_stamp(event.started)}"
        items.append(
            {
                "id": backup_id,
                "server_id": plan.server_id,
                "server_hostname": plan.template.hostname,
                "server_ip": plan.ip,
                "name": f"{name}.qcow2.gz",
                "created_at": local_text(event.finished),
                "size": _disk_at(plan, event.started),
            }
        )
    return items


def _snapshot_items(
    rng: random.Random, plans: Sequence[_Plan], now: datetime, window_start: datetime
) -> list[Item]:
    made: list[tuple[datetime, _Plan, str]] = []
    for plan in plans:
        if plan.template.role == "terminated":
            continue
        since = max(window_start, plan.created)
        for _ in range(rng.choice((0, 1, 1, 2, 3, 4, 5))):
            moment = since + (now - since) * rng.random()
            # made by hand: office hours, Sofia time
            local = moment.astimezone(sofia_offset(moment))
            moment = local.replace(
                hour=rng.randrange(9, 19), minute=rng.randrange(60), second=rng.randrange(60)
            ).replace(microsecond=0)
            if since <= moment < now:
                made.append((moment, plan, rng.choice(_SNAPSHOT_LABELS)))
    made.sort(key=lambda m: (m[0], m[1].server_id))
    return [
        {
            "id": snapshot_id,
            "server_id": plan.server_id,
            "name": f"{plan.template.hostname}-{label}-{moment:%Y%m%d}",
            "created_at": local_text(moment),
            "size": _disk_at(plan, moment),
        }
        for (moment, plan, label), snapshot_id in zip(
            made, _growing_ids(rng, 1201, len(made)), strict=True
        )
    ]


def _server_item(plan: _Plan) -> Item:
    role = plan.template.role
    return {
        "id": plan.server_id,
        "hostname": plan.template.hostname,
        "status": role if role in {"terminated", "suspended"} else "active",
        "locked": role == "locked",
        "created_at": _server_text(plan.created),
    }
