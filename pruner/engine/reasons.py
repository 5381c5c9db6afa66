"""Why a backup is kept or deleted: a small value, turned into words only where it is read.

A reason is a rule and, for most rules, what about it decided: `Reason("keep_daily",
"2026-11-26")`. `str(reason)` is the documented text (`keep_daily:2026-11-26`, `protected:id`,
`skipped:stale`; the list is in docs/reasons.md), which the plan JSON, the table and the logs
show; nothing reads a reason back from its text.

A reason costs what a tuple costs: the engine makes one for every backup it keeps.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Literal, NamedTuple

__all__ = [
    "CAP_GUARDS",
    "FORCED",
    "KEEP_ALL",
    "NOT_SELECTED",
    "ORPHAN",
    "PENDING",
    "PROTECTED",
    "SKIPPED",
    "SKIPPED_INCOMPLETE",
    "UNMANAGED",
    "UNREVIEWED",
    "Guard",
    "Reason",
    "pending",
    "skipped",
    "texts",
]

# The guards that keep a whole group (`skipped:<guard>`); `incomplete` is the fail-closed one.
Guard = Literal["incomplete", "locked", "stale", "max_delete_fraction", "max_deletions_per_run"]
CAP_GUARDS: frozenset[Guard] = frozenset({"max_delete_fraction", "max_deletions_per_run"})  # exit 3

PROTECTED = "protected"  # the rule of every reason that protects a backup
SKIPPED = "skipped"  # the rule of every reason a guard gives
PENDING = "pending"  # a deletion two-phase deletion holds back until a later pass confirms it


class Reason(NamedTuple):
    """A rule (`keep_daily`), what about it decided (`2026-11-26`: the bucket; None for rules
    without detail), and whether the oldest rule kept it (a count rule with budget left at the
    oldest backup: `keep_yearly:2014:oldest`)."""

    rule: str
    detail: str | None = None
    oldest: bool = False

    def __str__(self) -> str:
        if self.detail is None:
            return self.rule
        if self.oldest:
            return f"{self.rule}:{self.detail}:oldest"
        return f"{self.rule}:{self.detail}"


NOT_SELECTED = Reason("not_selected")  # no keep rule selected it
KEEP_ALL = Reason("keep_all")  # the policy has no keep rule, so every backup is selected
UNMANAGED = Reason("unmanaged")  # no policy matches its server
ORPHAN = Reason("orphan")  # its server is gone, and the policy keeps orphans
UNREVIEWED = Reason("unreviewed")  # `apply`: the reviewed plan does not delete it as it is now
FORCED = Reason("forced")  # `apply --force`: the reviewed plan deletes what the rules keep now


def skipped(guard: Guard) -> Reason:
    """The reason of a backup a guard kept: `skipped:stale`, `skipped:max_delete_fraction` …"""
    return Reason(SKIPPED, guard)


def pending(first_seen: datetime) -> Reason:
    """The reason of a deletion waiting for its confirmation: when a pass first planned it, in
    UTC to the second (`pending:2026-11-27T03:30:00+00:00`)."""
    return Reason(PENDING, first_seen.astimezone(UTC).isoformat(timespec="seconds"))


SKIPPED_INCOMPLETE = skipped("incomplete")


def texts(reasons: Iterable[Reason]) -> list[str]:
    """The documented texts of `reasons`, for JSON and log lines."""
    return [str(reason) for reason in reasons]
