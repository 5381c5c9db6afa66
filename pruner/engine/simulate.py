"""A backtest: each server's policy applied once a day, for `days` days, to its backups: those
listed and those its cadence will make (docs/backtest.md).

Pure and deterministic: the same plan, policies, days, cadence and zone always give the same
Simulation. It starts from a plan at `now`, which says which policy governs each server and
resource (and which groups cannot be judged at all). Each tick decides only the backups that
exist at that tick, as a pass would (protection and the `min_keep` floor included; the guards and
caps left out), and what it deletes is gone for the ticks after it.
"""

from __future__ import annotations

from collections import Counter, deque
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta, tzinfo
from itertools import pairwise

from pruner.engine.models import (
    COUNT_RULES,
    WITHIN_RULES,
    Backup,
    Decision,
    Group,
    Plan,
    Policy,
    Resource,
)
from pruner.engine.retention import decide

__all__ = [
    "Backtest",
    "Life",
    "NotSimulated",
    "Simulation",
    "Tick",
    "cadence_of",
    "simulate",
]

_DAY = timedelta(days=1)
_CADENCE_SAMPLE = 10  # the newest backups whose gaps give a server's cadence


@dataclass(frozen=True, slots=True)
class Tick:
    """What exists at one tick, after its deletions: how many backups, and the sum of their
    `size` (the server's disk size when each was taken, in GB; not the storage they use)."""

    at: datetime
    kept: int
    size: int


@dataclass(frozen=True, slots=True)
class Life:
    """One backup that existed at a tick at least: made at `created_at`, deleted by the tick at
    `deleted_at` (None: still there at the last tick). `simulated`: made by the cadence, not
    listed."""

    created_at: datetime
    deleted_at: datetime | None
    simulated: bool


@dataclass(frozen=True, slots=True)
class Backtest:
    """One server's backups of one resource under its policy, tick by tick."""

    resource: Resource
    server_id: int
    hostname: str | None
    policy: str
    cadence: timedelta | None  # None: fewer than two backups (and no cadence given)
    timeline: tuple[Tick, ...]  # one per tick, day 0 first
    filled: tuple[tuple[str, int | None], ...]  # count rule, first day its buckets are all kept
    lives: tuple[Life, ...]  # by creation

    @property
    def settled(self) -> tuple[int, int]:
        """The least and most backups kept over the later half of the timeline (from index
        ⌊(N+1)/2⌋ on, for days 0…N): the band the policy settles into."""
        later = [tick.kept for tick in self.timeline[len(self.timeline) // 2 :]]
        return min(later), max(later)


@dataclass(frozen=True, slots=True)
class NotSimulated:
    """A group the backtest leaves out, and why (no policy matches it, or the plan could not
    judge it: an incomplete listing, a field the policy needs, an unknown hostname)."""

    resource: Resource
    server_id: int
    hostname: str | None
    policy: str | None
    why: str


@dataclass(frozen=True, slots=True)
class Simulation:
    now: datetime
    days: int
    backtests: tuple[Backtest, ...]  # in plan order: backups, then snapshots; by server id
    not_simulated: tuple[NotSimulated, ...]

    @property
    def ticks(self) -> tuple[datetime, ...]:
        return _ticks(self.now, self.days)

    @property
    def totals(self) -> tuple[Tick, ...]:
        """Every server's timeline summed, tick by tick."""
        return tuple(
            Tick(
                at,
                sum(run.timeline[index].kept for run in self.backtests),
                sum(run.timeline[index].size for run in self.backtests),
            )
            for index, at in enumerate(self.ticks)
        )


def simulate(
    plan: Plan,
    policies: Sequence[Policy],
    *,
    days: int,
    cadence: timedelta | None = None,
    zone: tzinfo | None = None,
) -> Simulation:
    """Backtest every group of `plan` that a policy governs, at plan.now + d days (d = 0…days).

    `cadence` (None: each server's own, see cadence_of) spaces the backups to come, which start
    after the newest listed one with its size. `zone` reads calendar buckets, as in a pass.
    """
    if days < 0:
        raise ValueError(f"days must be 0 or more, not {days}")
    if cadence is not None and cadence <= timedelta(0):
        raise ValueError(f"a cadence must be longer than zero, not {cadence}")
    by_name = {(policy.resource, policy.name): policy for policy in policies}
    ticks = _ticks(plan.now, days)
    backtests: list[Backtest] = []
    left_out: list[NotSimulated] = []
    for group in plan.groups:
        policy = by_name.get((group.resource, group.policy or ""))
        if policy is None or group.status == "incomplete":
            left_out.append(_not_simulated(group))
        else:
            backtests.append(_backtest(group, policy, ticks, cadence, zone))
    return Simulation(plan.now, days, tuple(backtests), tuple(left_out))


def cadence_of(backups: Iterable[Backup]) -> timedelta | None:
    """How often a server makes backups: the median gap between its newest ten (nine gaps; the
    mean of the middle two for an even count). None below two backups or for a zero median."""
    newest = sorted(backups, key=Backup.sort_key)[-_CADENCE_SAMPLE:]
    gaps = sorted(_instant(later) - _instant(earlier) for earlier, later in pairwise(newest))
    if not gaps:
        return None
    middle = len(gaps) // 2
    median = gaps[middle] if len(gaps) % 2 else (gaps[middle - 1] + gaps[middle]) / 2
    return median if median > timedelta(0) else None


def _ticks(now: datetime, days: int) -> tuple[datetime, ...]:
    return tuple(now + day * _DAY for day in range(days + 1))


def _not_simulated(group: Group) -> NotSimulated:
    if group.status == "unmanaged":
        why = "no policy matches it"
    else:
        why = "; ".join(group.messages) or "the plan could not judge it"
    return NotSimulated(group.resource, group.server_id, group.server_hostname, group.policy, why)


def _backtest(
    group: Group,
    policy: Policy,
    ticks: Sequence[datetime],
    cadence: timedelta | None,
    zone: tzinfo | None,
) -> Backtest:
    listed = [decision.backup for decision in group.decisions]
    cadence = cadence or cadence_of(listed)
    made = _to_come(listed, cadence, ticks[0], ticks[-1])
    arrivals = deque(sorted([*listed, *made], key=Backup.sort_key))
    first_made = min((backup.id for backup in made), default=None)
    run = _Run(policy, zone)
    for day, tick in enumerate(ticks):
        arrived = []
        while arrivals and arrivals[0].created_at <= tick:
            arrived.append(arrivals.popleft())
        run.tick(day, tick, arrived)
    return Backtest(
        resource=group.resource,
        server_id=group.server_id,
        hostname=group.server_hostname,
        policy=policy.name,
        cadence=cadence,
        timeline=tuple(run.timeline),
        filled=tuple(run.filled.items()),
        lives=tuple(run.lives(first_made)),
    )


def _to_come(
    listed: Sequence[Backup], cadence: timedelta | None, now: datetime, horizon: datetime
) -> list[Backup]:
    """The backups the cadence makes after the newest listed one, from after `now` to the
    horizon: a server whose backups stopped resumes now, without a history it never had.
    They carry the newest one's size and no name (so no `protect.names` glob matches them)."""
    if cadence is None or not listed:
        return []
    newest = max(listed, key=Backup.sort_key)
    start = _instant(newest)
    first = 1 if start > now else (now - start) // cadence + 1
    last = (horizon - start) // cadence
    next_id = max(backup.id for backup in listed) + 1
    offset = newest.created_at.tzinfo
    return [
        Backup(
            resource=newest.resource,
            id=next_id + k - first,
            server_id=newest.server_id,
            created_at=(start + k * cadence).astimezone(offset),
            size=newest.size,
            server_hostname=newest.server_hostname,
        )
        for k in range(first, last + 1)
    ]


class _Run:
    """One group's backups as the ticks go by: what exists, and what it came to.

    Each tick decides only what exists then (what earlier ticks kept, and what was made since),
    so a year of hourly backups costs a year of ticks over a settled few, not the whole history.
    A tick that finds what the last one kept, unchanged, under rules blind to the clock (no
    keep_within*, no max_age), keeps it all again without deciding.
    """

    def __init__(self, policy: Policy, zone: tzinfo | None) -> None:
        self._policy = policy
        self._zone = zone
        self._clock_blind = policy.max_age is None and all(
            getattr(policy, rule) is None for rule in WITHIN_RULES
        )
        self._unchanged = False  # the last tick deleted nothing
        self._present: list[Backup] = []
        self._born: dict[int, Backup] = {}  # backups kept at some tick, by id
        self._deleted: dict[int, datetime] = {}
        self.timeline: list[Tick] = []
        # Count rules with a budget to fill: first day full (None: not yet).
        self.filled: dict[str, int | None] = {
            rule: None for rule in COUNT_RULES if (getattr(policy, rule) or 0) > 0
        }

    def tick(self, day: int, at: datetime, arrived: list[Backup]) -> None:
        if self._unchanged and self._clock_blind and not arrived and self.timeline:
            self.timeline.append(replace(self.timeline[-1], at=at))
            return
        decisions = decide([*self._present, *arrived], self._policy, at, self._zone)
        kept = [decision for decision in decisions if decision.action == "keep"]
        for decision in decisions:
            backup = decision.backup
            if decision.action == "keep":
                self._born.setdefault(backup.id, backup)
            elif backup.id in self._born:
                self._deleted[backup.id] = at
        self._unchanged = len(kept) == len(decisions)
        self._present = [decision.backup for decision in kept]
        size = sum(backup.size or 0 for backup in self._present)
        self.timeline.append(Tick(at, len(kept), size))
        self._note_filled(day, kept)

    def _note_filled(self, day: int, kept: list[Decision]) -> None:
        """A count rule is full once it keeps its count of buckets (or newest backups), not
        counting the oldest backup it keeps while it still has budget."""
        open_rules = [rule for rule, filled in self.filled.items() if filled is None]
        if not open_rules:
            return
        counts = Counter(
            reason.rule for decision in kept for reason in decision.reasons if not reason.oldest
        )
        for rule in open_rules:
            if counts[rule] >= getattr(self._policy, rule):
                self.filled[rule] = day

    def lives(self, first_made: int | None) -> Iterator[Life]:
        for backup in sorted(self._born.values(), key=Backup.sort_key):
            simulated = first_made is not None and backup.id >= first_made
            yield Life(backup.created_at, self._deleted.get(backup.id), simulated)


def _instant(backup: Backup) -> datetime:
    return backup.created_at.astimezone(UTC)
