"""A finished pass in words, worded once.

The `pass.summary` log event takes its fields from here; `pruner run`'s summary line, the
health-ping body and the demo take their words. So a pass reads the same wherever it is read.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from pruner.engine.models import Group, Resource
from pruner.engine.planner import LARGE_DELETIONS_HINT
from pruner.engine.reasons import CAP_GUARDS
from pruner.engine.results import DONE, PassResult
from pruner.engine.review import CAP_HINT
from pruner.report.summary import Summary, Tally, summarize

__all__ = [
    "UNDECIDED",
    "PassSummary",
    "deleted_size",
    "group_outcome",
    "resources_noun",
    "would_delete",
    "would_size",
]


@dataclass(frozen=True, slots=True)
class PassSummary:
    """What a pass came to, counted once from its result."""

    result: PassResult
    plan: Summary  # the plan's counts: kept, what it would delete, skipped and incomplete groups
    deleted: int  # done: deleted, or already gone
    failed: int  # attempted and not done
    not_attempted: int
    size_freed: int  # of what was deleted
    stale_servers: int
    failed_groups: int
    would: bool = False  # it only planned: a dry run, or `pruner plan` (no DELETE was sent)

    @classmethod
    def of(cls, result: PassResult, *, planned_only: bool = False) -> PassSummary:
        """`planned_only`: `pruner plan`, which never deletes, whatever dry_run says."""
        execution = result.execution
        groups = result.plan.groups
        return cls(
            result=result,
            plan=summarize(result.plan),
            deleted=len(execution.done) if execution is not None else 0,
            failed=len(execution.failed) if execution is not None else 0,
            not_attempted=len(result.not_attempted),
            size_freed=execution.size_freed if execution is not None else 0,
            stale_servers=sum(1 for group in groups if group.guard == "stale"),
            failed_groups=sum(1 for group in groups if group.status == "failed"),
            would=result.dry_run or planned_only,
        )

    def log_fields(self, *, would: bool) -> dict[str, Any]:
        """The fields of the `pass.summary` event; `would`: also what the pass would delete (a
        dry run, or `pruner plan`)."""
        result, plan = self.result, self.plan
        fields: dict[str, Any] = {
            "exit_code": result.exit_code,
            "dry_run": result.dry_run,
            "listed": result.listed,
            "servers": result.servers,
            "groups": plan.groups,
            "kept": plan.kept,
            "pending": plan.pending,
            "deleted": self.deleted,
            "failed": self.failed,
            "not_attempted": self.not_attempted,
            "skipped_groups": plan.skipped_groups,
            "incomplete_groups": plan.incomplete_groups,
            "failed_groups": self.failed_groups,
            "blocked_by_caps": result.blocked_by_caps,
            "size_freed": self.size_freed,
            "errors": plan.errors,
            "warnings": plan.warnings,
            "interrupted": result.interrupted,
            "deadline_reached": result.deadline_reached,
            "duration": result.duration,
        }
        if would:
            fields["would_delete"] = plan.deleted
            fields["would_free"] = plan.size_freed
        if result.failures:
            fields["failures"] = list(result.failures)
        if result.review is not None:  # `pruner apply`
            fields["reviewed"] = result.review.reviewed
            fields["reviewed_skipped"] = len(result.review.skipped)
            fields["reviewed_out_of_scope"] = len(result.review.out_of_scope)
            fields["refused"] = result.review.refused
        return fields

    @property
    def decided(self) -> bool:
        """Whether the pass decided anything: not when its listing failed (no group, or every
        group incomplete), and then no count of deletions may stand for what it decided."""
        plan = self.plan
        return plan.groups > plan.incomplete_groups or (plan.groups == 0 and plan.errors == 0)

    @property
    def noun(self) -> str:
        return resources_noun(group.resource for group in self.result.plan.groups)

    def acted(self) -> str:
        """`deleted 11 of 177 backups (166 kept)`; `would delete …` for a dry run; `not
        decided: the listing was incomplete` when the listing failed."""
        plan = self.plan
        if not self.decided:
            return UNDECIDED
        total, noun = plan.kept + plan.deleted, self.noun
        if self.would:
            return would_delete(plan.deleted, total, noun, plan.kept, plan.pending)
        kept = _kept(plan.kept, plan.pending)
        left = plan.deleted - self.deleted
        if left:
            kept += f", {left} left: {self._why_left()}"
        return f"deleted {self.deleted} of {total} {noun} ({kept})"

    def _why_left(self) -> str:
        parts = []
        if self.failed:
            parts.append(f"{self.failed} failed")
        if self.not_attempted:
            parts.append(f"{self.not_attempted} not attempted")
        return ", ".join(parts) or "not carried out"

    def size(self) -> str:
        """`disk size of the deleted backups: 550 GB` (VPSBG's `size` is the server's disk size
        when the backup was made, not the storage it takes), or of what it would delete."""
        if self.would:
            return would_size(self.plan.size_freed, self.noun)
        return deleted_size(self.size_freed, self.noun)

    def sentence(self) -> str:
        """`deleted 2 of 7 backups (5 kept); disk size of the deleted backups: 100 GB; skipped
        groups 1, stale servers 0 (1.2s)`; a dry run says what it would delete instead."""
        result = self.result
        parts = [self.acted(), self.size()] if self.decided else [UNDECIDED]
        undecided = self.plan.incomplete_groups
        if undecided and self.decided:
            parts.append(f"{undecided} group(s) not decided (incomplete), their backups kept")
        parts.append(
            f"skipped groups {self.plan.skipped_groups}, stale servers {self.stale_servers} "
            f"({result.duration:.1f}s)"
        )
        return "; ".join(parts)

    def caps(self) -> str | None:
        """What the caps held back, and how to lift them; None when they held nothing."""
        result = self.result
        if not result.blocked_by_caps:
            return None
        guards = sorted({g.guard for g in result.plan.groups if g.guard in CAP_GUARDS} - {None})
        hint = CAP_HINT if result.review is not None else LARGE_DELETIONS_HINT
        return (
            f"Caps held back {result.blocked_by_caps} deletion(s) "
            f"({', '.join(map(str, guards))}): {hint}"
        )

    def failures(self, shown: int | None = None) -> Iterator[str]:
        """`FAILED: …`, one line each why the pass failed (the first `shown` of them)."""
        failures = self.result.failures
        for failure in failures[:shown]:
            yield f"FAILED: {failure}"
        if shown is not None and len(failures) > shown:
            yield f"and {len(failures) - shown} more failures"


UNDECIDED = "not decided: the listing was incomplete"


def group_outcome(result: PassResult, group: Group) -> str:
    """One group in the words of `acted` and `size`: `deleted 11 of 177 backups (166 kept);
    disk size of the deleted backups: 550 GB`, or what it would delete."""
    tally = Tally.of(group)
    total, noun = len(group.decisions), group.resource
    if result.dry_run:
        would = would_delete(tally.deleted, total, noun, tally.kept, tally.pending)
        return f"{would}; {would_size(tally.size_freed, noun)}"
    deletions = [d for d in group.decisions if d.action == "delete"]
    done = [d for d in deletions if result.outcome_of(d) in DONE]
    if len(done) < len(deletions):
        why = "" if result.executed else ": not carried out"
        left = f", {len(deletions) - len(done)} left{why}"
    else:
        left = ""
    size = sum(d.backup.size or 0 for d in done)
    return (
        f"deleted {len(done)} of {total} {noun} ({_kept(tally.kept, tally.pending)}{left}); "
        f"{deleted_size(size, noun)}"
    )


def resources_noun(resources: Iterable[Resource]) -> str:
    """`backups`, `snapshots`, or `backups and snapshots`: what a count is of."""
    seen = set(resources)
    if seen == {"snapshots"}:
        return "snapshots"
    return "backups and snapshots" if len(seen) > 1 else "backups"


def would_delete(deleted: int, total: int, noun: str, kept: int, pending: int = 0) -> str:
    """`would delete 11 of 177 backups (166 kept)`: what a plan or a dry run decided."""
    return f"would delete {deleted} of {total} {noun} ({_kept(kept, pending)})"


def deleted_size(gigabytes: int, noun: str = "backups") -> str:
    return f"disk size of the deleted {noun}: {gigabytes} GB"


def would_size(gigabytes: int, noun: str = "backups") -> str:
    return f"disk size of the {noun} it would delete: {gigabytes} GB"


def _kept(kept: int, pending: int) -> str:
    """`166 kept`, or `166 kept, 3 of them pending` (deletions waiting for their confirmation)."""
    return f"{kept} kept, {pending} of them pending" if pending else f"{kept} kept"
