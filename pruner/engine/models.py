"""The domain values that flow through a pass: Backup, Server, Policy, Decision, Group, Plan.

All frozen: a stage never changes what an earlier stage produced.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from fnmatch import fnmatchcase
from typing import Literal

from pruner.engine.reasons import CAP_GUARDS, PENDING, PROTECTED, Guard, Reason
from pruner.engine.scope import Scope
from pruner.engine.units import Duration, Size

__all__ = [
    "COUNT_RULES",
    "WITHIN_RULES",
    "Action",
    "Backup",
    "Decision",
    "Group",
    "GroupStatus",
    "Listing",
    "Orphans",
    "Plan",
    "Policy",
    "Problem",
    "Resource",
    "Server",
]

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

Resource = Literal["backups", "snapshots"]
Action = Literal["keep", "delete"]
GroupStatus = Literal["ok", "skipped", "unmanaged", "orphan", "incomplete", "failed"]
Orphans = Literal["keep", "apply"]

# Keep rules in the order reasons are listed (docs/reasons.md).
COUNT_RULES = (
    "keep_last",
    "keep_hourly",
    "keep_daily",
    "keep_weekly",
    "keep_monthly",
    "keep_yearly",
)
WITHIN_RULES = (
    "keep_within",
    "keep_within_hourly",
    "keep_within_daily",
    "keep_within_weekly",
    "keep_within_monthly",
    "keep_within_yearly",
)


@dataclass(frozen=True, slots=True)
class Backup:
    """One backup or snapshot as listed by the API. `created_at` is aware and keeps its offset."""

    resource: Resource
    id: int
    server_id: int
    created_at: datetime
    name: str | None = None
    size: int | None = None  # GB of the server's disk when taken (not the backup's storage)
    server_hostname: str | None = None

    def sort_key(self) -> tuple[timedelta, int]:
        """Newest first is `sorted(..., key=Backup.sort_key, reverse=True)`: time, then id.

        Time as elapsed since the epoch: aware datetimes sharing one tzinfo compare on their
        wall clocks, which a repeated hour (a ZoneInfo's fold) would put out of order."""
        return (self.created_at - _EPOCH, self.id)


@dataclass(frozen=True, slots=True)
class Server:
    id: int
    hostname: str | None = None
    status: str | None = None
    locked: bool = False
    created_at: datetime | None = None

    @property
    def is_terminated(self) -> bool:
        return self.status is not None and self.status.lower() in {"terminated", "deleted"}


@dataclass(frozen=True, slots=True)
class Policy:
    """A resolved policy: safety overrides already applied, durations and sizes parsed."""

    name: str
    resource: Resource = "backups"
    hostnames: tuple[str, ...] | None = None  # shell globs; None = no condition
    server_ids: frozenset[int] | None = None
    keep_last: int | None = None  # counts: None = key absent, 0 = selects nothing, -1 = unlimited
    keep_hourly: int | None = None
    keep_daily: int | None = None
    keep_weekly: int | None = None
    keep_monthly: int | None = None
    keep_yearly: int | None = None
    keep_within: Duration | None = None
    keep_within_hourly: Duration | None = None
    keep_within_daily: Duration | None = None
    keep_within_weekly: Duration | None = None
    keep_within_monthly: Duration | None = None
    keep_within_yearly: Duration | None = None
    max_age: Duration | None = None
    max_total_size: Size | None = None
    min_keep: int = 1
    max_delete_fraction: float = 0.5
    stale_after: Duration | None = None
    protect_ids: frozenset[int] = frozenset()
    protect_names: tuple[str, ...] = ()
    orphans: Orphans = "keep"

    def matches(self, server_id: int, hostname: str | None) -> bool:
        """All given conditions hold; an unknown hostname never matches a hostname glob."""
        if self.server_ids is not None and server_id not in self.server_ids:
            return False
        if self.hostnames is not None:
            return hostname is not None and any(fnmatchcase(hostname, g) for g in self.hostnames)
        return True

    def needs_hostname(self, server_id: int) -> bool:
        """Whether this policy matching the server depends on its hostname."""
        return self.hostnames is not None and (
            self.server_ids is None or server_id in self.server_ids
        )

    def needed_fields(self) -> tuple[str, ...]:
        """Backup fields a group must have for this policy to decide (docs/retention.md)."""
        fields = ["id", "server_id", "created_at"]
        if self.max_total_size is not None:
            fields.append("size")
        if self.protect_names:
            fields.append("name")
        return tuple(fields)


@dataclass(frozen=True, slots=True)
class Decision:
    backup: Backup
    action: Action
    reasons: tuple[Reason, ...]  # never empty; a protected backup's are all `protected`

    def __init__(self, backup: Backup, action: Action, reasons: tuple[Reason, ...]) -> None:
        # A plan makes a Decision per backup. The frozen dataclass's own __init__ sets each
        # field through object.__setattr__; the slots' setters do the same at half the cost.
        _set_backup(self, backup)
        _set_action(self, action)
        _set_reasons(self, reasons)

    @property
    def protected(self) -> bool:
        """Protected backups count for nothing: not for staleness, nor for the caps."""
        return self.reasons[0].rule == PROTECTED

    @property
    def pending(self) -> bool:
        """A deletion two-phase deletion holds back: kept this pass, awaiting confirmation."""
        return self.reasons[0].rule == PENDING


_set_backup, _set_action, _set_reasons = (
    vars(Decision)[name].__set__ for name in ("backup", "action", "reasons")
)


@dataclass(frozen=True, slots=True)
class Problem:
    """Something wrong with the input or a guard that tripped, scoped as narrowly as is known.

    `server_id` None with a `resource`: the whole resource listing is affected.
    """

    level: Literal["error", "warning"]
    message: str
    resource: Resource | None = None
    server_id: int | None = None
    backup_id: int | None = None
    field: str | None = None  # the backup field at fault; only matters if the policy needs it
    guard: Guard | None = None  # the guard that tripped, for the warning a guard gives


@dataclass(frozen=True, slots=True)
class Listing:
    """What was listed, and how much of it can be trusted (fail closed on anything incomplete)."""

    backups: tuple[Backup, ...]
    servers: tuple[Server, ...] | None  # None: not listed (an offline listing without servers)
    resources: frozenset[Resource]  # which resources were listed at all
    incomplete_resources: frozenset[Resource] = frozenset()  # could not be read completely
    servers_complete: bool = True
    problems: tuple[Problem, ...] = ()  # item-level errors mark their group incomplete


@dataclass(frozen=True, slots=True)
class Group:
    """One server's backups of one resource, and what the pass does with them (newest first)."""

    resource: Resource
    server_id: int
    server_hostname: str | None
    policy: str | None
    status: GroupStatus
    decisions: tuple[Decision, ...]
    guard: Guard | None = None  # the guard that skipped it, for status "skipped"
    messages: tuple[str, ...] = ()
    blocked_deletions: int = 0  # deletions a guard prevented

    @property
    def kept(self) -> int:
        return sum(1 for d in self.decisions if d.action == "keep")

    @property
    def deleted(self) -> int:
        return sum(1 for d in self.decisions if d.action == "delete")

    @property
    def size_freed(self) -> int:
        return sum(d.backup.size or 0 for d in self.decisions if d.action == "delete")


@dataclass(frozen=True, slots=True)
class Plan:
    generated_at: datetime
    now: datetime
    dry_run: bool
    groups: tuple[Group, ...]
    problems: tuple[Problem, ...] = field(default=())
    scope: Scope | None = None  # None: every server; else the pass decided these alone

    @property
    def decisions(self) -> tuple[Decision, ...]:
        return tuple(d for g in self.groups for d in g.decisions)

    @property
    def deletions(self) -> tuple[Decision, ...]:
        return tuple(d for g in self.groups for d in g.decisions if d.action == "delete")

    @property
    def blocked_by_caps(self) -> int:
        """Deletions the caps held back (exit 3)."""
        return sum(g.blocked_deletions for g in self.groups if g.guard in CAP_GUARDS)
