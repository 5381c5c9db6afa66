"""Carry out a plan: exactly its `delete` decisions, nothing else.

Each deletion is on its own: one that fails (423 after retries, 5xx, …) fails for that backup
only, and the others go on. Three things end the whole execution early, and what has not started
by then is reported `not_attempted`:
- `stop` (SIGTERM): requests on the wire finish, nothing new starts;
- the API refusing the key (401, 403): every further DELETE would be refused too;
- `max_consecutive_failures` deletions failing in a row (a done one resets the count): the API is
  most likely down, and trying every deletion against it would take hours.

Deletions go one at a time until one is done; only then do the workers fan out. A key that may
not delete, or an API that is down, so costs one request, not one per worker.

The decision stays `delete` in the plan (it is what the pass set out to do); what became of it is
its outcome, and a group whose deletions were not all done gets status `failed`.

Deletions go in waves of `wave_size`, for the audit trail (pruner.passes.audit): a wave's
intents are on disk before any of its DELETEs starts, its outcomes once it is over. An audit
trail that cannot be written ends the execution like a refused key: nothing is deleted that is
not recorded first.
"""

from __future__ import annotations

import contextvars
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor, wait
from contextlib import contextmanager
from dataclasses import dataclass, replace

from structlog.typing import FilteringBoundLogger

from pruner.config.schema import SafetySettings
from pruner.engine.models import Decision, Group, Plan, Resource
from pruner.engine.reasons import texts
from pruner.engine.results import DONE, DeleteOutcome, Execution, Outcome
from pruner.passes.audit import AuditTrail, AuditWave, AuditWriteError
from pruner.vpsbg.client import ApiClient
from pruner.vpsbg.errors import ApiAuthError, ApiError, ApiPermissionError, PassInterrupted
from pruner.vpsbg.progress import NO_PROGRESS, Progress

__all__ = ["DONE", "WAVE_SIZE", "Execution", "Outcome", "execute"]

WAVE_SIZE = 100  # deletions per wave: one fsync of intents and one of outcomes per wave
_SHOWN = 5  # failures named in a group's message

_Key = tuple[Resource, int]
_DELETING = "deleting"  # the progress task


@contextmanager
def _finishing(progress: Progress) -> Iterator[None]:
    try:
        yield
    finally:
        progress.finish(_DELETING)


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
    audit: AuditTrail | None = None,
    wave_size: int = WAVE_SIZE,
    max_consecutive_failures: int = SafetySettings().max_consecutive_failures,
    progress: Progress = NO_PROGRESS,
) -> Execution:
    """Delete the plan's `delete` decisions with `concurrency` workers; see the module doc.

    Give `client` the same `stop` (ApiClient(stop=...)): its gate then also cuts retry waits
    short and refuses to start a request once `stop` is set. With `audit`, every deletion is
    recorded there (intent, then outcome); waves that never start write nothing. `progress`
    is told of each deletion attempted (task `deleting`).
    """
    if plan.dry_run:
        raise ValueError("a dry-run plan is never carried out")
    if min(concurrency, wave_size, max_consecutive_failures) < 1:
        raise ValueError("concurrency, wave_size and max_consecutive_failures must be at least 1")
    work = [(group, d) for group in plan.groups for d in group.decisions if d.action == "delete"]
    worker = _Worker(
        client,
        stop,
        halt=_Halt(),
        log=log,
        proven=threading.Event(),
        breaker=_Breaker(max_consecutive_failures),
        progress=progress,
    )
    attempts: list[_Attempt] = []
    audit_error: str | None = None
    progress.start(_DELETING, len(work))
    with _pool(concurrency) as pool, _finishing(progress):
        for start in range(0, len(work), wave_size):
            wave = work[start : start + wave_size]
            if stop.is_set() or worker.halt.is_set():
                attempts += [_Attempt(None)] * len(wave)
                continue
            try:
                attempts += _run_wave(pool, worker, wave, audit)
            except _AuditFailed as error:
                audit_error = error.message
                worker.halt.set("the audit trail cannot be written")
                attempts += [_Attempt(None)] * len(wave)
    return _execution(plan, work, attempts, log, audit_error=audit_error, worker=worker)


@contextmanager
def _pool(concurrency: int) -> Iterator[ThreadPoolExecutor | None]:
    """The workers; None with one: the calling thread then deletes, one after another, with
    no hand-off to a thread and back for each deletion."""
    if concurrency == 1:
        yield None
        return
    with ThreadPoolExecutor(concurrency, thread_name_prefix="pruner-delete") as pool:
        yield pool


class _AuditFailed(Exception):
    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def _run_wave(
    pool: ThreadPoolExecutor | None,
    worker: _Worker,
    wave: Sequence[tuple[Group, Decision]],
    audit: AuditTrail | None,
) -> list[_Attempt]:
    """One wave: its intents on disk first, then its DELETEs, then its outcomes on disk."""
    recorder = _open_wave(audit, wave, worker.log) if audit is not None else None
    record = recorder.record if recorder is not None else None
    attempts = _delete_all(pool, worker, wave, record)
    if recorder is not None:
        reason = worker.halt.reason or "the pass was stopped"
        try:
            recorder.close(f"not attempted: {reason}")
        except AuditWriteError as error:  # the deletions are done: say what the file misses
            worker.log.error("audit.write_failed", **_unclosed(error))
    return attempts


def _unclosed(error: AuditWriteError) -> dict[str, object]:
    """The log fields of a wave whose end could not be written."""
    if not error.unrecorded:
        message = f"the wave's outcomes may not be on disk ({error.reason})"
        return {"path": str(error.path), "message": message}
    message = (
        f"the not_attempted outcomes of {len(error.unrecorded)} deletions cannot be written "
        f"({error.reason}): their intents stay without one, though their DELETEs were not sent"
    )
    return {"path": str(error.path), "message": message, "unrecorded": list(error.unrecorded)}


def _open_wave(
    audit: AuditTrail, wave: Sequence[tuple[Group, Decision]], log: FilteringBoundLogger
) -> AuditWave:
    """The wave's intents on disk, or _AuditFailed: then none of its DELETEs may be sent."""
    try:
        return audit.wave(wave)
    except AuditWriteError as error:
        message = (
            f"the audit trail {audit.path} cannot be written ({error.reason}): nothing was "
            "deleted that was not recorded; check that state_dir is writable and not full"
        )
        log.error("audit.write_failed", path=str(audit.path), message=message, **_left_out(error))
        raise _AuditFailed(message) from None


def _left_out(error: AuditWriteError) -> dict[str, list[str]]:
    """What a wave that could not be written left out of the file, for its log event."""
    lost = {"withdrawn": list(error.withdrawn), "unrecorded": list(error.unrecorded)}
    return {key: names for key, names in lost.items() if names}


_Record = Callable[[Decision, str, int | None, str | None], None]


def _delete_all(
    pool: ThreadPoolExecutor | None,
    worker: _Worker,
    wave: Sequence[tuple[Group, Decision]],
    record: _Record | None,
) -> list[_Attempt]:
    """The wave's deletions, in its order: one at a time until a deletion was done in this
    execution, then the rest by every worker at once."""
    attempts: list[_Attempt] = []
    while len(attempts) < len(wave) and (pool is None or not worker.proven.is_set()):
        group, decision = wave[len(attempts)]
        attempts.append(worker.delete(group, decision, record))
    if pool is None:
        return attempts
    # Each deletion in a copy of this context: the pass's run_id and masked secrets follow.
    futures = [
        pool.submit(contextvars.copy_context().run, worker.delete, group, decision, record)
        for group, decision in wave[len(attempts) :]
    ]
    # Woken once, when the whole wave is over, not once for each deletion as it ends.
    wait(futures)
    return attempts + [future.result() for future in futures]


class _Breaker:
    """Counts deletions that failed in a row, across workers (a done one resets the count), and
    trips once `limit` is reached; `tripped` then says why, for people."""

    def __init__(self, limit: int) -> None:
        self._limit = limit
        self._lock = threading.Lock()
        self._in_a_row = 0
        self.tripped: str | None = None

    def count(self, outcome: DeleteOutcome) -> bool:
        """Whether this outcome trips the breaker (only the one that reaches the limit does)."""
        with self._lock:
            self._in_a_row = 0 if outcome.done else self._in_a_row + 1
            if self._in_a_row < self._limit or self.tripped is not None:
                return False
            self.tripped = (
                f"stopped deleting after {self._in_a_row} deletions in a row failed (the last: "
                f"{outcome.resource} id {outcome.id}, {outcome.message}): the API seems to be "
                "failing, so the deletions left were not attempted and those backups are still "
                "there; check the VPSBG API's status and the network; the next pass tries again"
            )
            return True

    @property
    def reason(self) -> str:
        return f"{self._limit} deletions in a row failed"


class _Halt:
    """Set on a fatal API or audit error, or when the breaker trips: no further deletion
    starts. The first cause is kept, so the audit trail and the log give the same one."""

    def __init__(self) -> None:
        self._set = threading.Event()
        self._lock = threading.Lock()
        self.reason: str | None = None

    def set(self, reason: str) -> None:
        with self._lock:
            if self.reason is None:
                self.reason = reason
            self._set.set()

    def is_set(self) -> bool:
        return self._set.is_set()


@dataclass(frozen=True, slots=True)
class _Worker:
    client: ApiClient
    stop: threading.Event
    halt: _Halt
    log: FilteringBoundLogger
    proven: threading.Event  # a deletion was done: the key may delete, the API answers
    breaker: _Breaker
    progress: Progress

    def delete(self, group: Group, decision: Decision, record: _Record | None) -> _Attempt:
        if self.stop.is_set() or self.halt.is_set():
            return _Attempt(None)
        backup = decision.backup
        fatal: ApiError | None = None
        try:
            outcome = self.client.delete(backup.resource, backup.id)
        except PassInterrupted:  # stop came while this one waited for its turn or a retry
            return _Attempt(None)
        except (ApiAuthError, ApiPermissionError) as error:
            self.halt.set("the API refused the key")
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
        self.progress.advance(_DELETING)
        if record is not None:
            self._record(record, decision, outcome)
        if outcome.done:
            self.proven.set()
        # Once halted, nothing new starts: a failure still in flight cannot trip the breaker.
        if not self.halt.is_set() and self.breaker.count(outcome):
            self.halt.set(self.breaker.reason)
            self.log.error("executor.breaker_tripped", message=self.breaker.tripped)
        return _Attempt(outcome, fatal)

    def _record(self, record: _Record, decision: Decision, outcome: DeleteOutcome) -> None:
        try:
            record(decision, outcome.result, outcome.status, outcome.message)
        except AuditWriteError as error:  # the deletion is done: the log has it
            self.log.error(
                "audit.write_failed",
                path=str(error.path),
                backup_id=decision.backup.id,
                message=f"outcome not recorded ({error.reason}): its intent stays without one; "
                "backup.deleted or backup.delete_failed in this log says what happened",
            )


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
        "reasons": texts(decision.reasons),
        "policy": group.policy,
    }


def _execution(
    plan: Plan,
    work: Sequence[tuple[Group, Decision]],
    attempts: Sequence[_Attempt],
    log: FilteringBoundLogger,
    *,
    audit_error: str | None,
    worker: _Worker,
) -> Execution:
    results: dict[_Key, Outcome] = {}
    why: dict[_Key, str] = {}
    outcomes: list[DeleteOutcome] = []
    not_attempted: list[Decision] = []
    fatal: str | None = audit_error
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
    fatal = fatal or worker.breaker.tripped
    interrupted = bool(not_attempted) and fatal is None
    if not_attempted:
        reason = worker.halt.reason or "the pass was stopped"
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
