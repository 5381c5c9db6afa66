"""What a finished pass comes to: the outcome of each deletion, of the execution, of the pass.

Values only, read by whatever watches a pass (hooks, metrics, pings, reports) without reaching
back into the code that ran it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

from pruner.engine.models import Backup, Decision, Plan, Resource
from pruner.engine.review import ReviewOutcome

__all__ = [
    "DONE",
    "DeleteOutcome",
    "DeleteResult",
    "Execution",
    "Outcome",
    "PassResult",
]

DeleteResult = Literal["deleted", "already_gone", "locked", "failed"]
Outcome = Literal["deleted", "already_gone", "locked", "failed", "not_attempted"]
DONE: frozenset[Outcome] = frozenset({"deleted", "already_gone"})  # the backup is gone

_Key = tuple[Resource, int]


@dataclass(frozen=True, slots=True)
class DeleteOutcome:
    """What one DELETE came to. `deleted` and `already_gone` are both done (the backup is gone)."""

    resource: Resource
    id: int
    result: DeleteResult
    status: int | None  # the last HTTP status; None when no answer came at all
    message: str

    @property
    def done(self) -> bool:
        return self.result in DONE


@dataclass(frozen=True, slots=True)
class Execution:
    """What carrying out a plan came to."""

    plan: Plan  # groups whose deletions were not all done have status "failed"
    outcomes: tuple[DeleteOutcome, ...]  # every deletion that was attempted, in plan order
    not_attempted: tuple[Decision, ...]  # never started (stop, a fatal API or audit error)
    fatal: str | None  # why no further deletion was attempted: 401, 403, no audit trail
    interrupted: bool  # `stop` ended it before every deletion was attempted
    results: Mapping[_Key, Outcome] = field(default_factory=dict, compare=False)

    @property
    def done(self) -> tuple[DeleteOutcome, ...]:
        return tuple(outcome for outcome in self.outcomes if outcome.done)

    @property
    def failed(self) -> tuple[DeleteOutcome, ...]:
        """Attempted and not done: locked, or failed."""
        return tuple(outcome for outcome in self.outcomes if not outcome.done)

    @property
    def complete(self) -> bool:
        """Every deletion of the plan was done (404 included)."""
        return not self.failed and not self.not_attempted and self.fatal is None

    def outcome_of(self, backup: Backup) -> Outcome | None:
        """What became of this backup's deletion; None when the plan did not delete it."""
        return self.results.get((backup.resource, backup.id))

    @property
    def size_freed(self) -> int:
        return sum(
            decision.backup.size or 0
            for decision in self.plan.deletions
            if self.outcome_of(decision.backup) in DONE
        )


@dataclass(frozen=True, slots=True)
class PassResult:
    """What a pass did. `plan` is the plan after execution: groups whose deletions were not all
    done have status "failed"; `outcomes` has every attempted deletion, in plan order."""

    run_id: str
    plan: Plan
    outcomes: tuple[DeleteOutcome, ...]
    exit_code: int  # first of 1, 4, 3, 0 that applies (for execute=False: 1 or 0, as `plan`)
    interrupted: bool  # `stop` ended it before it finished: a signal, or its deadline
    duration: float  # seconds
    dry_run: bool = False  # effective: config.dry_run or --dry-run
    executed: bool = False  # the executor ran: a real pass (not dry, not `plan`) with deletions
    execution: Execution | None = None  # None when nothing was carried out
    failures: tuple[str, ...] = ()  # why exit_code is 1, one sentence each
    key_refused: bool = False  # the API refused the key (401, 403) while listing: nothing done
    deadline_reached: bool = False  # safety.max_pass_duration stopped it (a failure, exit 1)
    listed: int = 0  # backups and snapshots listed
    servers: int | None = None  # servers listed; None when the servers listing failed
    review: ReviewOutcome | None = None  # `pruner apply`: what became of the reviewed plan

    @property
    def not_attempted(self) -> tuple[Decision, ...]:
        return self.execution.not_attempted if self.execution is not None else ()

    @property
    def would_delete(self) -> int:
        """Deletions the plan holds: done, failed, or (dry run) not carried out."""
        return len(self.plan.deletions)

    @property
    def blocked_by_caps(self) -> int:
        return self.plan.blocked_by_caps

    def outcome_of(self, decision: Decision) -> str | None:
        if self.execution is None:
            return None
        return self.execution.outcome_of(decision.backup)
