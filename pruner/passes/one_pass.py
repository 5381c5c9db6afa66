"""One pass: list, decide, delete, record, summarise. Used by `run`, `plan`, `daemon`, `demo`.

The order is the documented one (docs/exit-codes.md): the token is found (exit 2) before the
lock is taken (exit 75), the lock before any API call; every listing is complete before
anything is decided; a dry run never reaches the executor. Every log line of a pass carries
its `run_id`; one `pass.summary` event ends it (the full plan goes to
state_dir/last-plan.json, not to the log).

Exit codes, first match wins: 1 when the pass is incomplete (a listing, a deletion, a fatal API
answer, a stop before the end, the plan file not written), 4 when `apply` refused its reviewed
plan, 3 when a cap held deletions back (a dry run too: it returns what the real pass would),
else 0. Stale, locked, unmanaged and orphaned servers are warnings.

`pruner apply` is a pass with a `review` (pruner.engine.review): once the lock is held, a plan
too old or made under another config is refused before anything is listed; after listing, the
planner carries out only the reviewed deletions, and a plan the current policy disagrees with
is refused before anything is deleted. With two-phase deletion, apply reads pending.json like
any pass (a reviewed deletion still waiting is a keep) and never writes it.
"""

from __future__ import annotations

import contextvars
import os
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any, Protocol

import structlog
from structlog.typing import FilteringBoundLogger

from pruner.config.digest import config_sha256, plan_origin
from pruner.config.schema import Config
from pruner.engine.models import Group, Listing, Plan, Problem, Resource
from pruner.engine.planner import build_plan, newest_stale_backup
from pruner.engine.results import Execution, PassResult
from pruner.engine.review import CAP_HINT, Review, ReviewOutcome
from pruner.engine.scope import Scope
from pruner.engine.two_phase import TwoPhase
from pruner.errors import EXIT_CAPPED, EXIT_INCOMPLETE, EXIT_OK, EXIT_REFUSED
from pruner.passes.audit import AuditTrail
from pruner.passes.executor import execute
from pruner.passes.hooks import FannedOut, PassHooks
from pruner.passes.lock import PassLock
from pruner.passes.pending import PendingDeletions, forget_pending, load_pending, record_pending
from pruner.passes.review import log_review
from pruner.passes.state import (
    LAST_PLAN,
    PENDING_FILE,
    recover_state_dir,
    write_json_atomically,
)
from pruner.report.pass_summary import PassSummary
from pruner.report.plan_json import PlanOrigin, plan_to_json
from pruner.report.problems import log_problem
from pruner.report.summary import Summary, summarize
from pruner.vpsbg.client import ApiClient
from pruner.vpsbg.errors import ApiAuthError, ApiPermissionError, PassInterrupted
from pruner.vpsbg.fetch import fetch_listing
from pruner.vpsbg.progress import NO_PROGRESS, Progress
from pruner.vpsbg.redaction import mask_secrets
from pruner.vpsbg.token import Secret, load_token

__all__ = [
    "Timer",
    "TimerFactory",
    "last_plan_document",
    "new_run_id",
    "run_pass",
    "utc_now",
]

_GUARD_KEYS = {
    "stale": "stale_after",
    "max_delete_fraction": "max_delete_fraction",
    "max_deletions_per_run": "safety.max_deletions_per_run",
}
_DRY_RUN = "DRY RUN: nothing will be deleted"
_STOPPED = "stopped by a signal before it finished"


class Timer(Protocol):
    """A threading.Timer, as far as a pass's deadline uses one."""

    def start(self) -> None: ...
    def cancel(self) -> None: ...


TimerFactory = Callable[[float, Callable[[], None]], Timer]  # threading.Timer's signature


def utc_now() -> datetime:
    return datetime.now(UTC)


def new_run_id() -> str:
    return uuid.uuid4().hex[:12]


def run_pass(
    config: Config,
    *,
    dry_run: bool,
    allow_large_deletions: bool = False,
    execute: bool = True,
    client: ApiClient | None = None,
    token: Secret | None = None,
    clock: Callable[[], datetime] = utc_now,
    now: datetime | None = None,
    stop: threading.Event | None = None,
    write_state: bool = True,
    hooks: Sequence[PassHooks] = (),
    timer: TimerFactory = threading.Timer,
    scope: Scope | None = None,
    review: Review | None = None,
    progress: Progress = NO_PROGRESS,
) -> PassResult:
    """One pass. `execute=False` is `pruner plan`: never a DELETE, no lock, no state written.

    A dry run (config.dry_run or `dry_run`) sends no DELETE whatever else happens. Raises
    TokenMissing (exit 2) and LockHeld (exit 75) before any API call. Once it has started, a
    pass ends with a result however it ends (the key refused, a failed listing or deletion,
    `stop`), and records it: last-plan.json, one `pass.summary`. Only a bug raises, after its
    own `pass.summary`.

    `clock` is the wall clock: when the plan was made (`generated_at`) and the audit trail's
    times. `now` (`plan --now`) fixes the time the policies are applied at; None: the clock's.

    If `client` is None it is built from config.api and `token` (else load_token from the
    environment) with `stop`; a client passed in should share `stop` (ApiClient(stop=...)).

    `hooks` (pruner.passes.hooks) are told when the pass starts (after the lock), of every API
    answer (only with the client built here), and how it ended; a hook that raises never fails
    the pass.

    Once started, a pass has `safety.max_pass_duration`: `timer(seconds, expire)` (a
    threading.Timer) then sets `stop` as a signal would, and the pass says its deadline ended it.

    `scope` (`--server`, `--policy`): the pass lists everything, and decides, deletes and
    records (pending.json) only the groups in scope; the caps count those alone.

    `review` makes it `pruner apply`: it deletes the reviewed plan's deletions that the fresh
    listing and the current policy confirm, or refuses the plan (exit 4); see the module doc.

    `progress` is told of each page listed and each deletion (a bar on a terminal).
    """
    stop = stop if stop is not None else threading.Event()
    run_id = new_run_id()
    watchers = FannedOut(hooks)
    log = structlog.get_logger("pruner")
    with structlog.contextvars.bound_contextvars(run_id=run_id), ExitStack() as stack:
        if client is None:
            token = token if token is not None else load_token(config.api, os.environ)
        if token is not None:
            stack.enter_context(mask_secrets(token.reveal()))
        if execute:
            stack.enter_context(PassLock(config.state_dir))
            if write_state:  # what a kill -9 or a full disk left there, before writing anew
                recover_state_dir(config.state_dir, now=clock(), log=log)
        if client is None:
            assert token is not None
            client = stack.enter_context(
                ApiClient.from_settings(
                    config.api,
                    token,
                    stop=stop,
                    on_response=watchers.api_response if watchers.hooks else None,
                )
            )
        effective_dry_run = config.dry_run or dry_run
        watchers.pass_started(run_id, dry_run=effective_dry_run)
        deadline = _Deadline(config.safety.max_pass_duration, stop, threading.Event(), log)
        stack.callback(deadline.arm(timer).cancel)
        one = _Pass(
            config=config,
            run_id=run_id,
            dry_run=effective_dry_run,
            allow_large_deletions=allow_large_deletions,
            execute=execute,
            client=client,
            clock=clock,
            fixed_now=now,
            stop=stop,
            write_state=execute and write_state,
            log=log,
            started=time.monotonic(),
            deadline=deadline,
            scope=scope,
            review=review,
            progress=progress,
        )
        try:
            result = one.run()
        except BaseException as error:
            one.log_raised(error)
            watchers.pass_failed(run_id, error)
            raise
        watchers.pass_finished(result)
        return result


@dataclass(frozen=True, slots=True)
class _Deadline:
    """A pass's own limit: past it the pass stops as if signalled, and `reached` says why."""

    limit: timedelta
    stop: threading.Event
    reached: threading.Event
    log: FilteringBoundLogger

    @property
    def seconds(self) -> float:
        return self.limit.total_seconds()

    def arm(self, timer: TimerFactory) -> Timer:
        """Start `timer` for this deadline, in the caller's context: the line `expire` logs
        carries the pass's run_id and masks its token."""
        alarm = timer(self.seconds, partial(contextvars.copy_context().run, self.expire))
        alarm.start()
        return alarm

    def expire(self) -> None:
        if self.stop.is_set():
            return  # a signal came first: that is why the pass stops
        self.reached.set()  # before `stop`: whoever sees the stop can tell why
        self.stop.set()
        self.log.warning(
            "pass.deadline",
            max_pass_duration_seconds=round(self.seconds),
            message="the pass has run for safety.max_pass_duration: it stops as if signalled "
            "(the requests on the wire finish, nothing new starts) and records what it did",
        )

    def why_stopped(self) -> str:
        if self.reached.is_set():
            return (
                "the pass reached its deadline (safety.max_pass_duration: "
                f"{round(self.seconds)} s) before it finished"
            )
        return _STOPPED


@dataclass(frozen=True, slots=True)
class _Pass:
    config: Config
    run_id: str
    dry_run: bool
    allow_large_deletions: bool
    execute: bool
    client: ApiClient
    clock: Callable[[], datetime]
    fixed_now: datetime | None
    stop: threading.Event
    write_state: bool
    log: FilteringBoundLogger
    started: float
    deadline: _Deadline
    scope: Scope | None
    review: Review | None
    progress: Progress

    def run(self) -> PassResult:
        resources = tuple(dict.fromkeys(policy.resource for policy in self.config.policies))
        self._log_start(resources)
        refused = self._refused_before_listing()
        if refused is not None:
            return self._ended_unlisted(resources, refused)
        try:
            listing = fetch_listing(self.client, resources, self.progress)
        except PassInterrupted:
            message = f"{self.deadline.why_stopped()} (while listing): nothing was deleted"
            return self._ended_while_listing(resources, message, interrupted=True)
        except (ApiAuthError, ApiPermissionError) as error:
            return self._ended_while_listing(resources, error.message, key_refused=True)
        generated_at = self.clock()
        pending = self._pending()
        plan = build_plan(
            listing,
            self.config.policies,
            now=self.fixed_now or generated_at,
            generated_at=generated_at,
            zone=self.config.timezone,
            max_deletions_per_run=self.config.safety.max_deletions_per_run,
            dry_run=self.dry_run,
            allow_large_deletions=self.allow_large_deletions,
            two_phase=self._two_phase(pending),
            scope=self.scope,
            **_reviewing(self.review),
        )
        summary = summarize(plan)  # of the plan as decided: completeness and guards
        _log_problems(plan, self.config, self.log)
        review = self._reviewed(listing, plan)
        if review is not None:
            plan = replace(plan, problems=(*plan.problems, *review.problems))
        recorded = self._record_pending(plan, pending)
        may_delete = recorded and (review is None or not review.refused)
        execution = self._carry_out(plan) if may_delete else None
        if execution is not None:
            plan = execution.plan
        failures = list(_failures(plan, summary, execution, self.deadline.why_stopped()))
        if not recorded:
            failures.append(
                f"state_dir {self.config.state_dir}: {PENDING_FILE} was not written, so nothing "
                "was deleted"
            )
        return self._finish(
            plan,
            listing,
            execution,
            failures,
            interrupted=execution is not None and execution.interrupted,
            review=review,
        )

    def _refused_before_listing(self) -> ReviewOutcome | None:
        """`apply`: the outcome of a plan too old or made under another config; None when
        the pass goes on to list."""
        if self.review is None:
            return None
        refusals = self.review.refusals(
            now=self.clock(),
            config_sha256=config_sha256(self.config),
            api_base_url=self.config.api.base_url,
        )
        if not refusals:
            return None
        outcome = ReviewOutcome.refused_unlisted(self.review.plan, refusals)
        log_review(outcome, self.review.plan, self.log)
        return outcome

    def _reviewed(self, listing: Listing, plan: Plan) -> ReviewOutcome | None:
        """`apply`: what became of the reviewed deletions in `plan`, logged."""
        if self.review is None:
            return None
        outcome = self.review.outcome(listing, plan)
        log_review(outcome, self.review.plan, self.log)
        return outcome

    def _ended_unlisted(self, resources: tuple[Resource, ...], review: ReviewOutcome) -> PassResult:
        """`apply` refused its plan before listing: an empty plan that says why."""
        plan, listing = self._nothing_listed(resources, review.problems)
        return self._finish(plan, listing, None, [], interrupted=False, review=review)

    def _ended_while_listing(
        self,
        resources: tuple[Resource, ...],
        message: str,
        *,
        interrupted: bool = False,
        key_refused: bool = False,
    ) -> PassResult:
        """A pass that could list nothing: an empty plan that says why, recorded as any other."""
        plan, listing = self._nothing_listed(resources, (Problem("error", message),))
        return self._finish(
            plan,
            listing,
            None,
            [message],
            interrupted=interrupted,
            key_refused=key_refused,
        )

    def _nothing_listed(
        self, resources: tuple[Resource, ...], problems: tuple[Problem, ...]
    ) -> tuple[Plan, Listing]:
        """An empty plan whose problems say why nothing was listed, and the empty listing."""
        generated_at = self.clock()
        plan = Plan(
            generated_at=generated_at,
            now=self.fixed_now or generated_at,
            dry_run=self.dry_run,
            groups=(),
            problems=problems,
            scope=self.scope,
        )
        return plan, Listing(backups=(), servers=None, resources=frozenset(resources))

    def _finish(
        self,
        plan: Plan,
        listing: Listing,
        execution: Execution | None,
        failures: list[str],
        *,
        interrupted: bool,
        key_refused: bool = False,
        review: ReviewOutcome | None = None,
    ) -> PassResult:
        """Record the pass (last-plan.json), log its summary, and return its result."""
        if self.write_state and not self._record(plan, execution):
            failures.append(f"state_dir {self.config.state_dir}: {LAST_PLAN} was not written")
        refused = review is not None and review.refused
        result = PassResult(
            run_id=self.run_id,
            plan=plan,
            outcomes=execution.outcomes if execution is not None else (),
            exit_code=self._exit_code(plan, failures, refused=refused),
            interrupted=interrupted,
            duration=self._duration(),
            dry_run=self.dry_run,
            executed=execution is not None,
            execution=execution,
            failures=tuple(failures),
            key_refused=key_refused,
            deadline_reached=interrupted and self.deadline.reached.is_set(),
            listed=len(listing.backups),
            servers=len(listing.servers) if listing.servers is not None else None,
            review=review,
        )
        self._log_summary(result)
        return result

    def log_raised(self, error: BaseException) -> None:
        """The `pass.summary` of a pass that raised: a bug (whose traceback the caller shows),
        or Ctrl-C where no signal handler turned it into a stop (`pruner plan`)."""
        interrupted = isinstance(error, KeyboardInterrupt)
        failure = (
            f"{_STOPPED} (KeyboardInterrupt)"
            if interrupted
            else f"the pass failed unexpectedly: {type(error).__name__}: {error}"
        )
        self.log.error(
            "pass.summary",
            exit_code=EXIT_INCOMPLETE,
            dry_run=self.dry_run,
            interrupted=interrupted,
            duration=self._duration(),
            failures=[failure],
        )

    def _pending(self) -> PendingDeletions | None:
        """What earlier passes planned to delete, when two-phase deletion is on."""
        if self.config.safety.confirm_after is None:
            return None
        return load_pending(self.config.state_dir, self.log)

    def _two_phase(self, pending: PendingDeletions | None) -> TwoPhase | None:
        confirm_after = self.config.safety.confirm_after
        if pending is None or confirm_after is None:
            return None
        return pending.two_phase(confirm_after)

    def _record_pending(self, plan: Plan, pending: PendingDeletions | None) -> bool:
        """Before any deletion, record what this pass planned (a pass that writes state, dry
        runs included); whether the pass may delete.

        `apply` only reads the record: its plan is the reviewed plan's, not the policy's (what
        a reviewer struck is kept, `unreviewed`), and recording it would restart waits that no
        change of the policy reset. The next pass brings the record up to date; what apply
        deleted falls out of it then, no longer listed."""
        if not self.write_state or self.review is not None:
            return True
        if pending is None:
            forget_pending(self.config.state_dir, self.log)
            return True
        return record_pending(self.config.state_dir, pending, plan, self.log)

    def _carry_out(self, plan: Plan) -> Execution | None:
        if not self.execute or self.dry_run:
            return None  # the executor is not even built: a dry run sends no DELETE
        assert not plan.dry_run
        if not plan.deletions:
            return None
        audit = AuditTrail(self.config.state_dir, run_id=self.run_id, clock=self.clock)
        return execute(
            plan,
            self.client,
            concurrency=self.config.api.concurrency,
            stop=self.stop,
            log=self.log,
            audit=audit if self.write_state else None,
            max_consecutive_failures=self.config.safety.max_consecutive_failures,
            progress=self.progress,
        )

    def _exit_code(self, plan: Plan, failures: list[str], *, refused: bool) -> int:
        if failures:
            return EXIT_INCOMPLETE
        if refused:
            return EXIT_REFUSED
        capped = plan.blocked_by_caps > 0
        if capped and self.execute:
            return EXIT_CAPPED
        return EXIT_OK

    def _record(self, plan: Plan, execution: Execution | None) -> bool:
        """Write last-plan.json; whether it was written."""
        path = self.config.state_dir / LAST_PLAN
        document = last_plan_document(
            plan,
            self.run_id,
            execution,
            executed=not self.dry_run,
            origin=plan_origin(self.config),
        )
        try:
            write_json_atomically(path, document)
        except OSError as error:
            self.log.error(
                "state.write_failed",
                path=str(path),
                message=f"{error.strerror or error}: check that state_dir is writable",
            )
            return False
        return True

    def _duration(self) -> float:
        return round(time.monotonic() - self.started, 3)

    def _log_start(self, resources: tuple[Resource, ...]) -> None:
        dry = {"message": _DRY_RUN} if self.execute and self.dry_run else {}
        self.log.info(
            "pass.start",
            **dry,
            dry_run=self.dry_run,
            execute=self.execute,
            resources=list(resources),
            scope=None if self.scope is None else self.scope.as_json(),
            api=self.client.base_url,
            state_dir=str(self.config.state_dir),
        )
        if self.execute and self.dry_run:
            cause = "dry_run: true in the config" if self.config.dry_run else "--dry-run"
            self.log.warning("pass.dry_run", message=f"{_DRY_RUN} ({cause})")

    def _log_summary(self, result: PassResult) -> None:
        summary = PassSummary.of(result, planned_only=not self.execute)
        fields = summary.log_fields(would=summary.would)
        emit = {EXIT_OK: self.log.info, EXIT_CAPPED: self.log.warning}.get(
            result.exit_code, self.log.error
        )
        emit("pass.summary", message=summary.sentence(), **fields)


def _reviewing(review: Review | None) -> dict[str, Any]:
    """build_plan's arguments for `apply`: only the reviewed deletions, and its own hint."""
    if review is None:
        return {}
    return {"revise": review.revise, "cap_hint": CAP_HINT}


def _failures(
    plan: Plan, summary: Summary, execution: Execution | None, why_stopped: str
) -> Iterator[str]:
    errors = [problem.message for problem in plan.problems if problem.level == "error"]
    if summary.incomplete_groups or errors:
        what = (
            f"{summary.incomplete_groups} group(s) incomplete, their backups kept"
            if summary.incomplete_groups
            else "the listing had errors"
        )
        more = f" (and {len(errors) - 1} more errors)" if len(errors) > 1 else ""
        yield f"{what}: {errors[0]}{more}" if errors else what
    if execution is None:
        return
    if execution.fatal is not None:
        yield execution.fatal
    elif execution.interrupted:
        yield f"{why_stopped}: {len(execution.not_attempted)} deletion(s) not attempted"
    if execution.failed:
        yield f"{len(execution.failed)} deletion(s) failed (see the failed groups)"


def last_plan_document(
    plan: Plan,
    run_id: str,
    execution: Execution | None,
    *,
    executed: bool,
    origin: PlanOrigin | None = None,
) -> dict[str, Any]:
    """The plan JSON (docs/plan-json.md) of a pass, plus `run_id`, and for a real pass an
    `outcome` on each delete decision and an `execution` block with the counts."""
    document = plan_to_json(plan, origin=origin)
    document["run_id"] = run_id
    if not executed:
        return document
    outcomes: dict[str, int] = dict.fromkeys(
        ("deleted", "already_gone", "locked", "failed", "not_attempted"), 0
    )
    for entry, decision in zip(document["decisions"], plan.decisions, strict=True):
        if decision.action != "delete":
            continue
        outcome = execution.outcome_of(decision.backup) if execution is not None else None
        entry["outcome"] = outcome or "not_attempted"
        outcomes[entry["outcome"]] += 1
    document["execution"] = {
        **outcomes,
        "size_freed": execution.size_freed if execution is not None else 0,
        "interrupted": execution is not None and execution.interrupted,
        "fatal": execution.fatal if execution is not None else None,
    }
    return document


# --- guards and problems in the log -----------------------------------------------------------


def _log_problems(plan: Plan, config: Config, log: FilteringBoundLogger) -> None:
    """Every problem once: a guard that tripped as `guard.<name>` with the numbers and the
    config key (the stale guard as `backup.stale`, the event to alert on), anything else as
    `plan.problem`. A locked server whose backups stopped too gets its `backup.stale`."""
    skipped = {
        (g.resource, g.server_id): g
        for g in plan.groups
        if g.status == "skipped" and g.guard != "max_deletions_per_run"
    }
    capped = [g for g in plan.groups if g.guard == "max_deletions_per_run"]
    for problem in plan.problems:
        group = _group_of(problem, skipped)
        if group is not None and problem.guard == group.guard:
            stale = _staleness(group, plan, config)
            log.warning(
                "backup.stale" if group.guard == "stale" else f"guard.{group.guard}",
                message=problem.message,
                blocked_deletions=group.blocked_deletions,
                config_key=_GUARD_KEYS.get(group.guard or ""),
                **_group_fields(group),
                **(stale or {}),
            )
            if group.guard == "locked" and stale is not None:
                log.warning(
                    "backup.stale",
                    message=f"server {group.server_id}{_hostname(group)}, {group.resource}: "
                    f"its newest backup is older than stale_after {stale['stale_after']}: its "
                    "backups have stopped (it is locked too: not pruned this pass)",
                    **_group_fields(group),
                    **stale,
                )
        elif problem.guard == "max_deletions_per_run":
            log.warning(
                "guard.max_deletions_per_run",
                message=problem.message,
                would_delete=sum(g.blocked_deletions for g in capped),
                max_deletions_per_run=config.safety.max_deletions_per_run,
                groups=len(capped),
                config_key=_GUARD_KEYS["max_deletions_per_run"],
            )
        else:
            log_problem(problem, log)


def _group_of(problem: Problem, groups: dict[tuple[Resource, int], Group]) -> Group | None:
    if problem.guard is None or problem.resource is None or problem.server_id is None:
        return None
    return groups.get((problem.resource, problem.server_id))


def _staleness(group: Group, plan: Plan, config: Config) -> dict[str, object] | None:
    """The newest backup of a group whose backups have stopped, and how old it is; None when
    it is not stale (or its policy has no stale_after, as snapshot policies by default).

    The planner's own rule: the newest unprotected backup made before now, against
    stale_after back from now. It only judges groups it prunes; this also sees locked ones.
    """
    policy = next(
        (p for p in config.policies if p.name == group.policy and p.resource == group.resource),
        None,
    )
    if policy is None or policy.stale_after is None:
        return None
    newest = newest_stale_backup(group.decisions, policy, plan.now, config.timezone)
    if newest is None:
        return None
    return {
        "newest_backup_id": newest.id,
        "newest_created_at": newest.created_at.isoformat(),
        "age_seconds": round((plan.now - newest.created_at).total_seconds()),
        "stale_after": policy.stale_after.text,
    }


def _hostname(group: Group) -> str:
    return f" ({group.server_hostname})" if group.server_hostname else ""


def _group_fields(group: Group) -> dict[str, object]:
    return {
        "resource": group.resource,
        "server_id": group.server_id,
        "server_hostname": group.server_hostname,
        "policy": group.policy,
    }
