"""A finished pass in words, worded once.

The `pass.summary` log event takes its fields from here; `pruner run`'s summary line, the
health-ping body and the demo take their words. So a pass reads the same wherever it is read.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from pruner.engine.planner import LARGE_DELETIONS_HINT
from pruner.engine.results import CAP_GUARDS, PassResult
from pruner.engine.review import CAP_HINT
from pruner.report.summary import Summary, summarize

__all__ = ["PassSummary"]


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

    @classmethod
    def of(cls, result: PassResult) -> PassSummary:
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

    def sentence(self) -> str:
        """`kept 5, deleted 2, failed 0, not attempted 0, freed 100 GB; skipped groups 1,
        stale servers 0 (1.2s)`: a dry run says what it would delete instead."""
        result = self.result
        if result.executed:
            acted = (
                f"deleted {self.deleted}, failed {self.failed}, "
                f"not attempted {self.not_attempted}, freed {self.size_freed} GB"
            )
        elif result.dry_run:
            acted = f"would delete {self.plan.deleted} ({self.plan.size_freed} GB)"
        else:
            acted = "deleted 0"
        pending = f" ({self.plan.pending} pending)" if self.plan.pending else ""
        return (
            f"kept {self.plan.kept}{pending}, {acted}; skipped groups {self.plan.skipped_groups}, "
            f"stale servers {self.stale_servers} ({result.duration:.1f}s)"
        )

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
