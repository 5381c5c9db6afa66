"""What a plan comes to, counted once: for the plan JSON, the table, the logs and the exit code."""

from __future__ import annotations

from dataclasses import dataclass

from pruner.engine.models import Group, Plan

__all__ = ["Summary", "Tally", "summarize"]


@dataclass(frozen=True, slots=True)
class Tally:
    """One group's counts (Group's properties count again on every call)."""

    kept: int
    deleted: int
    size_freed: int
    pending: int = 0  # of the kept: deletions that wait for their confirmation (confirm_after)

    @classmethod
    def of(cls, group: Group) -> Tally:
        deleted = size_freed = pending = 0
        for decision in group.decisions:
            if decision.action == "delete":
                deleted += 1
                size_freed += decision.backup.size or 0
            elif decision.pending:
                pending += 1
        return cls(len(group.decisions) - deleted, deleted, size_freed, pending)


@dataclass(frozen=True, slots=True)
class Summary:
    """What a plan comes to, counted once: for the report, the summary log event and exit code."""

    tallies: tuple[Tally, ...]  # one per group, in plan order
    kept: int
    deleted: int
    size_freed: int
    groups: int
    skipped_groups: int
    incomplete_groups: int
    errors: int
    warnings: int
    pending: int = 0  # of the kept: deletions that wait for their confirmation (confirm_after)

    @property
    def complete(self) -> bool:
        """No group is incomplete and no problem is an error (exit 1 otherwise)."""
        return not self.incomplete_groups and not self.errors

    def as_json(self) -> dict[str, int]:
        """The plan JSON's `summary`."""
        return {
            "kept": self.kept,
            "deleted": self.deleted,
            "skipped_groups": self.skipped_groups,
            "size_freed": self.size_freed,
            "pending": self.pending,
        }

    def as_log(self) -> dict[str, int | bool]:
        return {
            "complete": self.complete,
            "groups": self.groups,
            **self.as_json(),
            "incomplete_groups": self.incomplete_groups,
            "errors": self.errors,
            "warnings": self.warnings,
        }


def summarize(plan: Plan) -> Summary:
    tallies = tuple(Tally.of(group) for group in plan.groups)
    statuses = [group.status for group in plan.groups]
    levels = [problem.level for problem in plan.problems]
    return Summary(
        tallies=tallies,
        kept=sum(t.kept for t in tallies),
        deleted=sum(t.deleted for t in tallies),
        size_freed=sum(t.size_freed for t in tallies),
        groups=len(statuses),
        skipped_groups=statuses.count("skipped"),
        incomplete_groups=statuses.count("incomplete"),
        errors=levels.count("error"),
        warnings=levels.count("warning"),
        pending=sum(t.pending for t in tallies),
    )
