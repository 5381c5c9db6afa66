"""Carry out a plan: exactly its `delete` decisions, nothing else (SPEC §5).

Each deletion is on its own: one that fails (423 after retries, 5xx, …) fails for that backup
only, and the others go on. Two things end the whole execution early, and what has not started
by then is reported `not_attempted`:
- `stop` (SIGTERM): requests on the wire finish, nothing new starts;
- the API refusing the key (401, 403): every further DELETE would be refused too.

The decision stays `delete` in the plan (it is what the pass set out to do); what became of it is
its outcome, and a group whose deletions were not all done gets status `failed`.
"""

from __future__ import annotations

import contextvars
import threading
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from typing import Literal

from structlog.typing import FilteringBoundLogger

from pruner.api import (
    ApiAuthError,
    ApiClient,
    ApiError,
    ApiPermissionError,
    DeleteOutcome,
    PassInterrupted,
)
from pruner.models import Backup, Decision, Group, Plan, Resource

__all__ = ["DONE", "Execution", "Outcome", "execute"]

Outcome = Literal["deleted", "already_gone", "locked", "failed", "not_attempted"]
DONE: frozenset[Outcome] = frozenset({"deleted", "already_gone"})  # the backup is gone

_SHOWN = 5  # failures named in a group's message

_Key = tuple[Resource, int]


@dataclass(frozen=True, slots=True)
class Execution:
    """What carrying out a plan came to."""

    plan: Plan  # groups whose deletions were not all done have status "failed"
    outcomes: tuple[DeleteOutcome, ...]  # every deletion that was attempted, in plan order
    not_attempted: tuple[Decision, ...]  # deletions never started (stop or a fatal API error)
    fatal: str | None  # why the API refused every deletion (401, 403), if it did
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
class _Attempt:
    outcome: DeleteOutcome | None  # None: not attempted
    fatal: ApiError | None = None


def execute(
    plan: Plan,
    client: ApiClient,
    *,
    concurrency: int,
    stop: threading.Event,
    log: FilteringBoundLogger,
) -> Execution:
    """Delete the plan's `delete` decisions with `concurrency` workers; see the module doc.

    Give `client` the same `stop` (ApiClient(stop=...)): its gate then also cuts retry waits
    short and refuses to start a request once `stop` is set.
    """
    if plan.dry_run:
        raise ValueError("a dry-run plan is never carried out")
    if concurrency < 1:
        raise ValueError(f"concurrency must be at least 1, not {concurrency}")
    work = [(group, d) for group in plan.groups for d in group.decisions if d.action == "delete"]
    worker = _Worker(client, stop, threading.Event(), log)
    with ThreadPoolExecutor(concurrency, thread_name_prefix="pruner-delete") as pool:
        # Each deletion in a copy of this context: the pass's run_id and masked secrets follow.
        futures = [
            pool.submit(contextvars.copy_context().run, worker.delete, group, decision)
            for group, decision in work
        ]
        attempts = [future.result() for future in futures]
    return _execution(plan, work, attempts, log)


@dataclass(frozen=True, slots=True)
class _Worker:
    client: ApiClient
    stop: threading.Event
    halt: threading.Event  # set on a fatal API error: no further deletion starts
    log: FilteringBoundLogger

    def delete(self, group: Group, decision: Decision) -> _Attempt:
        if self.stop.is_set() or self.halt.is_set():
            return _Attempt(None)
        backup = decision.backup
        fatal: ApiError | None = None
        try:
            outcome = self.client.delete(backup.resource, backup.id)
        except PassInterrupted:  # stop came while this one waited for its turn or a retry
            return _Attempt(None)
        except (ApiAuthError, ApiPermissionError) as error:
            self.halt.set()
            fatal = error
            outcome = DeleteOutcome(
                backup.resource, backup.id, "failed", error.status, error.message
            )
        except Exception as error:  # a bug must not hide what the other deletions did
            self.log.exception("backup.delete_error", **_fields(group, decision))
            outcome = DeleteOutcome(
                backup.resource, backup.id, "failed", None, f"{type(error).__name__}: {error}"
            )
        _log_outcome(self.log, group, decision, outcome)
        return _Attempt(outcome, fatal)


def _log_outcome(
    log: FilteringBoundLogger, group: Group, decision: Decision, outcome: DeleteOutcome
) -> None:
    fields = _fields(group, decision)
    if outcome.done:
        log.info("backup.deleted", outcome=outcome.result, status=outcome.status, **fields)
    else:
        log.error(
            "backup.delete_failed",
            outcome=outcome.result,
            status=outcome.status,
            message=outcome.message,
            **fields,
        )


def _fields(group: Group, decision: Decision) -> dict[str, object]:
    backup = decision.backup
    return {
        "server_id": backup.server_id,
        "server_hostname": backup.server_hostname or group.server_hostname,
        "resource": backup.resource,
        "backup_id": backup.id,
        "name": backup.name,
        "created_at": backup.created_at.isoformat(),
        "size": backup.size,
        "reasons": list(decision.reasons),
        "policy": group.policy,
    }


def _execution(
    plan: Plan,
    work: Sequence[tuple[Group, Decision]],
    attempts: Sequence[_Attempt],
    log: FilteringBoundLogger,
) -> Execution:
    results: dict[_Key, Outcome] = {}
    why: dict[_Key, str] = {}
    outcomes: list[DeleteOutcome] = []
    not_attempted: list[Decision] = []
    fatal: str | None = None
    for (_, decision), attempt in zip(work, attempts, strict=True):
        key = (decision.backup.resource, decision.backup.id)
        if attempt.outcome is None:
            not_attempted.append(decision)
            results[key] = "not_attempted"
        else:
            outcomes.append(attempt.outcome)
            results[key] = attempt.outcome.result
            why[key] = f"{attempt.outcome.result.replace('_', ' ')}: {attempt.outcome.message}"
        if attempt.fatal is not None and fatal is None:
            fatal = attempt.fatal.message
    interrupted = bool(not_attempted) and fatal is None
    if not_attempted:
        reason = "the API refused the key" if fatal is not None else "the pass was stopped"
        for decision in not_attempted:
            why[(decision.backup.resource, decision.backup.id)] = f"not attempted: {reason}"
        log.warning(
            "executor.stopped",
            reason=reason,
            not_attempted=len(not_attempted),
            attempted=len(outcomes),
        )
    groups = tuple(_judged(group, results, why) for group in plan.groups)
    return Execution(
        plan=replace(plan, groups=groups),
        outcomes=tuple(outcomes),
        not_attempted=tuple(not_attempted),
        fatal=fatal,
        interrupted=interrupted,
        results=results,
    )


def _judged(group: Group, results: Mapping[_Key, Outcome], why: Mapping[_Key, str]) -> Group:
    """The group with status `failed` and a message if any of its deletions was not done."""
    deletions = [(d.backup.resource, d.backup.id) for d in group.decisions if d.action == "delete"]
    unfinished = [key for key in deletions if results[key] not in DONE]
    if not unfinished:
        return group
    shown = "; ".join(f"id {key[1]} {why[key]}" for key in unfinished[:_SHOWN])
    more = f"; and {len(unfinished) - _SHOWN} more" if len(unfinished) > _SHOWN else ""
    message = (
        f"{len(unfinished)} of {len(deletions)} deletions were not done ({shown}{more}): "
        "those backups are still there; the next pass decides again"
    )
    return replace(group, status="failed", messages=(*group.messages, message))
