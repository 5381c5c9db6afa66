"""The retention engine: which backups of one group to keep, and why (docs/retention.md).

Pure: the same backups, policy, `now` and zone always give the same decisions. The keep rules
follow restic 0.19.1's `forget`: a count rule compares each backup's bucket with the bucket it
kept last (not with every bucket seen), and keeps the oldest backup while it still has budget.

Guards (stale, caps, locked, orphans) are the planner's; the `min_keep` floor is applied here.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, date, datetime, timezone, tzinfo
from fnmatch import fnmatchcase, translate
from functools import lru_cache
from itertools import compress, islice
from operator import attrgetter, ne
from typing import NamedTuple

from pruner.engine.models import COUNT_RULES, WITHIN_RULES, Backup, Decision, Policy
from pruner.engine.reasons import KEEP_ALL, NOT_SELECTED, PROTECTED, Reason
from pruner.engine.units import Duration, Size, subtract

__all__ = ["decide"]

_NOT_SELECTED = (NOT_SELECTED,)
_BY_ID = Reason(PROTECTED, "id")
_ID = attrgetter("id")
_NAME = attrgetter("name")
_CREATED_AT = attrgetter("created_at")
_ZONE = attrgetter("created_at.tzinfo")

# A candidate's reasons to keep while deciding; None = no keep rule selected it.
_Selection = list[list[Reason] | None]


def decide(
    backups: Iterable[Backup], policy: Policy, now: datetime, zone: tzinfo | None = None
) -> tuple[Decision, ...]:
    """One decision per backup, newest first (created_at, then id, descending).

    `zone` None reads calendar buckets on each timestamp's own offset; a zone reads them on its
    wall clock. `now` only places `keep_within*` (newest backup strictly before it) and `max_age`.
    """
    if now.utcoffset() is None:
        raise ValueError(f"now must be timezone-aware, not the naive {now.isoformat()}")
    walk = _Walk.newest_first(backups)
    protected = _protection(walk.backups, policy)
    if not protected:
        return tuple(_decide_unprotected(walk, policy, now, zone))
    rest = iter(_decide_unprotected(walk.without(protected), policy, now, zone))
    return tuple(
        Decision(backup, "keep", protected[position]) if position in protected else next(rest)
        for position, backup in enumerate(walk.backups)
    )


class _Walk(NamedTuple):
    """Backups newest first, with their instants: aware datetimes that all share `clock`, one
    tzinfo of a fixed offset, so that comparing them is exact and cheap.

    Comparing datetimes of different tzinfo objects is slow (offsets are looked up on every
    comparison) and comparing two sharing one ZoneInfo ignores the fold of a repeated hour. When
    the backups' times share one fixed offset already (as a listing gives them), they are the
    instants; else each is converted to UTC, once, up front. Whatever is compared with them is
    first put on their clock (`at`).
    """

    backups: list[Backup]
    instants: list[datetime]
    clock: tzinfo

    @classmethod
    def newest_first(cls, backups: Iterable[Backup]) -> _Walk:
        by_id = sorted(backups, key=_ID, reverse=True)
        zones = set(map(_ZONE, by_id))
        clock = zones.pop() if len(zones) == 1 else None
        if type(clock) is timezone:
            instants = list(map(_CREATED_AT, by_id))
        else:
            clock = UTC
            instants = [backup.created_at.astimezone(UTC) for backup in by_id]
        # Stable (also with reverse=True): equal instants keep the id order of the first sort.
        order = sorted(range(len(by_id)), key=instants.__getitem__, reverse=True)
        return cls([by_id[p] for p in order], [instants[p] for p in order], clock)

    def without(self, positions: dict[int, tuple[Reason, ...]]) -> _Walk:
        kept = [p for p in range(len(self.backups)) if p not in positions]
        backups, instants = self.backups, self.instants
        return _Walk([backups[p] for p in kept], [instants[p] for p in kept], self.clock)

    def at(self, moment: datetime) -> datetime:
        """`moment` on the clock of the instants."""
        return moment.astimezone(self.clock)


def _protection(ordered: list[Backup], policy: Policy) -> dict[int, tuple[Reason, ...]]:
    """The protected backups' positions, with `protected:id` and every glob that matched."""
    ids, globs = policy.protect_ids, policy.protect_names
    if not ids and not globs:
        return {}
    positions = range(len(ordered))
    hits = set(compress(positions, map(ids.__contains__, map(_ID, ordered)))) if ids else set()
    if globs:
        names = list(map(_NAME, ordered))
        for test in _glob_tests(globs):
            if None in names:  # the planner refuses such groups; still, no name matches no glob
                hits.update(p for p in positions if names[p] is not None and test(names[p]))
            else:
                hits.update(compress(positions, map(test, names)))
    return {p: _shared(_protection_reasons(ordered[p], ids, globs)) for p in sorted(hits)}


@lru_cache(maxsize=64)
def _glob_tests(globs: tuple[str, ...]) -> tuple[Callable[[str], object], ...]:
    """Regex tests that together say whether a name matches any of the globs (fnmatchcase).

    A glob that starts with `*` is searched for without it: the same test, and the regex engine
    skips ahead to its literal part instead of backtracking over the whole name.
    """
    floating = [translate(glob.lstrip("*")) for glob in globs if glob.startswith("*")]
    anchored = [translate(glob) for glob in globs if not glob.startswith("*")]
    tests: list[Callable[[str], object]] = []
    if floating:
        tests.append(re.compile("|".join(floating)).search)
    if anchored:
        tests.append(re.compile("|".join(anchored)).match)
    return tuple(tests)


def _protection_reasons(
    backup: Backup, ids: frozenset[int], globs: tuple[str, ...]
) -> tuple[Reason, ...]:
    name = backup.name
    by_id = (_BY_ID,) if backup.id in ids else ()
    if name is None:
        return by_id
    return (*by_id, *(Reason(PROTECTED, glob) for glob in globs if fnmatchcase(name, glob)))


def _decide_unprotected(
    walk: _Walk, policy: Policy, now: datetime, zone: tzinfo | None
) -> list[Decision]:
    """Select by the keep rules, remove by the limits, restore by the floor, in that order."""
    count = len(walk.backups)
    if not count:
        return []
    if _has_keep_rule(policy):
        reasons: _Selection = [None] * count
        _select(reasons, walk, policy, now, zone)
    else:
        reasons = [[KEEP_ALL] for _ in range(count)]
    limits = _Limits(count)
    if policy.max_age is not None:
        limits.remove_too_old(walk, now, policy.max_age, zone)
    if policy.max_total_size is not None:
        limits.remove_over_size(reasons, walk.backups, policy.max_total_size)
    return limits.decide(walk.backups, reasons, max(policy.min_keep, 0))


# Keep rules ------------------------------------------------------------------------------------

# A calendar period: the bucket keys of wall-clock times (ints: cheap to build and compare) and
# the label that names a bucket in a reason (built only for what is kept).
_Keys = Callable[[Sequence[datetime]], list[object]]
_Label = Callable[[datetime], str]


class _Period(NamedTuple):
    keys: _Keys
    label: _Label


_HOUR = attrgetter("year", "month", "day", "hour")
_DAY = attrgetter("year", "month", "day")
_MONTH = attrgetter("year", "month")
_YEAR = attrgetter("year")


def _hour_keys(walls: Sequence[datetime]) -> list[object]:
    return [wall.toordinal() * 24 + wall.hour for wall in walls]


def _day_keys(walls: Sequence[datetime]) -> list[object]:
    return list(map(date.toordinal, walls))


def _week_keys(walls: Sequence[datetime]) -> list[object]:
    # Ordinal 1 (0001-01-01) is a Monday, so this numbers ISO weeks (Monday first).
    return [(ordinal - 1) // 7 for ordinal in map(date.toordinal, walls)]


def _month_keys(walls: Sequence[datetime]) -> list[object]:
    return [wall.year * 12 + wall.month for wall in walls]


def _year_keys(walls: Sequence[datetime]) -> list[object]:
    return list(map(_YEAR, walls))


# printf-style formatting: twice as fast as format specs in an f-string, and labels are hot.
def _hour_label(wall: datetime) -> str:
    return "%04d-%02d-%02dT%02d" % _HOUR(wall)  # noqa: UP031


def _day_label(wall: datetime) -> str:
    return "%04d-%02d-%02d" % _DAY(wall)  # noqa: UP031


def _week_label(wall: datetime) -> str:
    year, week, _ = wall.isocalendar()
    return "%04d-W%02d" % (year, week)  # noqa: UP031


def _month_label(wall: datetime) -> str:
    return "%04d-%02d" % _MONTH(wall)  # noqa: UP031


def _year_label(wall: datetime) -> str:
    return "%04d" % wall.year  # noqa: UP031


_PERIODS = (  # hourly, daily, weekly, monthly, yearly: the order of COUNT_RULES[1:]
    _Period(_hour_keys, _hour_label),
    _Period(_day_keys, _day_label),
    _Period(_week_keys, _week_label),
    _Period(_month_keys, _month_label),
    _Period(_year_keys, _year_label),
)
_BUCKET_RULES = tuple(zip(COUNT_RULES[1:], _PERIODS, strict=True))
_WITHIN_BUCKET_RULES = tuple(zip(WITHIN_RULES[1:], _PERIODS, strict=True))
_BUDGETS = attrgetter(*COUNT_RULES[1:])
_WINDOWS = attrgetter(*WITHIN_RULES[1:])
_KEEP_RULES = attrgetter(*COUNT_RULES, *WITHIN_RULES)


def _has_keep_rule(policy: Policy) -> bool:
    return any(rule is not None for rule in _KEEP_RULES(policy))


def _select(
    reasons: _Selection, walk: _Walk, policy: Policy, now: datetime, zone: tzinfo | None
) -> None:
    """Apply every keep rule in the order of docs/reasons.md, so reasons come out in that order."""
    if policy.keep_last is not None:
        _select_last(reasons, policy.keep_last)
    budgets: tuple[int | None, ...] = _BUDGETS(policy)
    windows: tuple[Duration | None, ...] = _WINDOWS(policy)
    walls: Sequence[datetime] = ()
    if budgets.count(None) + windows.count(None) < len(budgets) + len(windows):
        walls = _wall_clocks(walk, zone)
    for (rule, period), budget in zip(_BUCKET_RULES, budgets, strict=True):
        if budget is not None:
            _select_buckets(reasons, walls, rule, period, budget=budget)
    latest = _latest_before(walk, now)
    if policy.keep_within is not None:
        end = _window_end(walk, latest, policy.keep_within, zone)
        _select_newest(reasons, end, Reason("keep_within", policy.keep_within.text))
    for (rule, period), within in zip(_WITHIN_BUCKET_RULES, windows, strict=True):
        if within is not None:
            end = _window_end(walk, latest, within, zone)
            _select_buckets(reasons, walls, rule, period, end=end)


def _wall_clocks(walk: _Walk, zone: tzinfo | None) -> list[datetime]:
    if zone is None:
        return [backup.created_at for backup in walk.backups]  # each on its own offset
    return [instant.astimezone(zone) for instant in walk.instants]


def _select_last(reasons: _Selection, keep_last: int) -> None:
    count = len(reasons) if keep_last == -1 else min(max(keep_last, 0), len(reasons))
    for index in range(count):
        _add(reasons, index, _last_reason(index + 1))


def _select_newest(reasons: _Selection, end: int, reason: Reason) -> None:
    for index in range(end):
        _add(reasons, index, reason)


def _select_buckets(
    reasons: _Selection,
    walls: Sequence[datetime],
    rule: str,
    period: _Period,
    *,
    budget: int = -1,
    end: int | None = None,
) -> None:
    """restic's bucket walk over walls[:end]: keep each backup that opens a new bucket, and the
    oldest of all, while budget lasts (-1: unlimited; other negative counts select nothing).

    restic compares with the bucket it kept last; while budget lasts that is the bucket of the
    backup just before, so the openers are where the key changes. With mixed offsets the wall
    clock can go back, and a bucket may then be kept twice, as in restic.
    """
    if budget == 0 or budget < -1:
        return
    count = len(walls)
    end = count if end is None else end
    if end == 0:
        return
    openers = _openers(walls, period.keys, end, budget)
    label = period.label
    for index in openers:
        _add(reasons, index, _bucket_reason(rule, label(walls[index])))
    has_budget = budget == -1 or len(openers) < budget
    if end == count and has_budget and openers[-1] != count - 1:
        _add(reasons, count - 1, Reason(rule, label(walls[count - 1]), oldest=True))


# The same reasons recur across servers (every server keeps `keep_daily:2026-11-26`), and so do
# whole tuples of them. Sharing them saves memory and the collector's time on a large fleet: it
# never stops tracking a tuple subclass such as Reason, nor any tuple that holds one.
@lru_cache(maxsize=1 << 16)
def _shared(reasons: tuple[Reason, ...]) -> tuple[Reason, ...]:
    return reasons


@lru_cache(maxsize=1024)
def _last_reason(position: int) -> Reason:
    return Reason("keep_last", str(position))


@lru_cache(maxsize=4096)
def _bucket_reason(rule: str, bucket: str) -> Reason:
    return Reason(rule, bucket)


def _openers(walls: Sequence[datetime], keys_of: _Keys, end: int, budget: int) -> list[int]:
    """Positions in walls[:end] whose bucket differs from the one before: at most `budget`.

    A count rule rarely needs the whole walk, so keys are computed on a prefix that grows.
    """
    limit = end if budget == -1 else min(end, 4 * budget + 4)
    while True:
        keys = keys_of(walls[:limit])
        openers = [0, *compress(range(1, limit), map(ne, keys, islice(keys, 1, None)))]
        if budget != -1 and len(openers) >= budget:
            return openers[:budget]
        if limit == end:
            return openers
        limit = min(end, 4 * limit)


def _latest_before(walk: _Walk, now: datetime) -> datetime | None:
    """The newest backup's created_at strictly before now (its own offset, for calendar math)."""
    instant_now = walk.at(now)
    for index, instant in enumerate(walk.instants):
        if instant < instant_now:
            return walk.backups[index].created_at
    return None


def _window_end(walk: _Walk, latest: datetime | None, within: Duration, zone: tzinfo | None) -> int:
    """How many of the newest backups are strictly newer than `latest - within`."""
    start = subtract(latest, within, zone) if latest is not None else None
    if start is None:  # nothing before now, or a window reaching before year 1: unbounded
        return len(walk.instants)
    start = walk.at(start)
    for index, instant in enumerate(walk.instants):
        if instant <= start:
            return index
    return len(walk.instants)


def _add(reasons: _Selection, index: int, reason: Reason) -> None:
    found = reasons[index]
    if found is None:
        reasons[index] = [reason]
    else:
        found.append(reason)


# Limits and floor ------------------------------------------------------------------------------


class _Limits:
    """Where the limits start removing: each removes a tail of the newest-first walk.

    Selected backups from `too_old` on are older than `now - max_age`; from `over_size` on (up
    to `too_old`), selected backups no longer fit in `max_total_size`.
    """

    def __init__(self, count: int) -> None:
        self.too_old = self.over_size = count
        self.age_reason = self.size_reason = NOT_SELECTED  # replaced when the limit is set

    def remove_too_old(
        self, walk: _Walk, now: datetime, max_age: Duration, zone: tzinfo | None
    ) -> None:
        cutoff = subtract(now, max_age, zone)
        if cutoff is None:  # reaches before year 1: nothing is that old
            return
        self.age_reason = Reason("max_age", max_age.text)
        cutoff = walk.at(cutoff)
        for index, instant in enumerate(walk.instants):
            if instant < cutoff:
                self.too_old = self.over_size = index
                return

    def remove_over_size(
        self, reasons: _Selection, backups: list[Backup], max_total_size: Size
    ) -> None:
        """The first selected backup that takes the sum over the limit, and every older one."""
        self.size_reason = Reason("max_total_size", max_total_size.text)
        limit, total = max_total_size.gigabytes, 0
        for index in range(self.too_old):
            if reasons[index] is not None:
                total += backups[index].size or 0  # the planner refuses groups lacking sizes
                if total > limit:
                    self.over_size = index
                    return

    def decide(self, backups: list[Backup], reasons: _Selection, min_keep: int) -> list[Decision]:
        """Decide each backup; the newest `min_keep` are kept whatever the rules and limits."""
        head = min(min_keep, len(backups))
        floor = (Reason("min_keep", str(min_keep)),)
        decisions = [
            Decision(backup, "keep", _with_floor(kept, floor, removed=p >= self.over_size))
            for p, (backup, kept) in enumerate(zip(backups[:head], reasons, strict=False))
        ]
        over_size, too_old = max(self.over_size, head), max(self.too_old, head)
        decisions += [
            Decision(backup, "delete", _NOT_SELECTED)
            if kept is None
            else Decision(backup, "keep", _shared(tuple(kept)))
            for backup, kept in zip(backups[head:over_size], reasons[head:over_size], strict=True)
        ]
        decisions += _removed(backups, reasons, over_size, too_old, self.size_reason)
        decisions += _removed(backups, reasons, too_old, len(backups), self.age_reason)
        return decisions


def _with_floor(
    kept: list[Reason] | None, floor: tuple[Reason], *, removed: bool
) -> tuple[Reason, ...]:
    """A floor backup's reasons: the floor where no rule selected it or a limit removed it (then
    after the rules that selected it, so the reader sees both)."""
    if kept is None:
        return floor
    return _shared((*kept, *floor) if removed else tuple(kept))


def _removed(
    backups: list[Backup], reasons: _Selection, start: int, stop: int, reason: Reason
) -> list[Decision]:
    """Deletions in backups[start:stop]: by the limit `reason` if selected, else not_selected."""
    removed = (reason,)
    return [
        Decision(backup, "delete", _NOT_SELECTED if kept is None else removed)
        for backup, kept in zip(backups[start:stop], reasons[start:stop], strict=True)
    ]
