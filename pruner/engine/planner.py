"""From a listing and the policies to a Plan: groups, policy matching, the guards.

The retention engine decides one group; this module decides whether that decision may stand.
Every guard errs on the side of keeping: a group it trips keeps its backups, and says why.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, tzinfo
from decimal import Decimal

from pruner.engine.models import (
    Backup,
    Decision,
    Group,
    GroupStatus,
    Listing,
    Plan,
    Policy,
    Problem,
    Resource,
    Server,
)
from pruner.engine.reasons import ORPHAN, SKIPPED_INCOMPLETE, UNMANAGED, Guard, Reason, skipped
from pruner.engine.retention import decide
from pruner.engine.scope import Scope
from pruner.engine.two_phase import TwoPhase
from pruner.engine.units import Duration, subtract

__all__ = [
    "LARGE_DELETIONS_HINT",
    "Revise",
    "build_plan",
    "is_stale",
    "newest_stale_backup",
    "newest_unprotected_before",
]

# A step between the policy's decisions for a group and the guards (`pruner apply`: only the
# deletions a person reviewed). It returns one decision per decision given, in the same order.
Revise = Callable[[tuple[Decision, ...], Policy], tuple[Decision, ...]]

LARGE_DELETIONS_HINT = "run with --allow-large-deletions for one pass if this is intended"
_SHOWN_IDS = 5


def build_plan(
    listing: Listing,
    policies: Sequence[Policy],
    *,
    now: datetime,
    generated_at: datetime,
    zone: tzinfo | None,
    max_deletions_per_run: int | None,
    dry_run: bool,
    allow_large_deletions: bool = False,
    two_phase: TwoPhase | None = None,
    scope: Scope | None = None,
    revise: Revise | None = None,
    cap_hint: str = LARGE_DELETIONS_HINT,
) -> Plan:
    """Decide every group of the listing and apply the guards, in their documented order.

    With `two_phase`, deletions not confirmed yet are held back (`pending:<first seen>`)
    after the stale guard and before the caps, which count only what the pass deletes. With
    `scope`, only the groups in scope are decided, and the guards and caps see them alone.
    `revise`, when given, changes the policy's decisions of each group it decides before the
    guards judge them: the guards (stale, locked, two-phase, the caps) then judge what it left.
    `cap_hint` ends the message of a cap that trips: what to do if the deletions are meant.
    """
    context = _Context.of(
        listing,
        policies,
        now=now,
        zone=zone,
        allow_large_deletions=allow_large_deletions,
        two_phase=two_phase,
        scope=scope,
        revise=revise,
        cap_hint=cap_hint,
    )
    subjects = list(_subjects(listing, context.servers))
    in_scope = [subject for subject in subjects if context.in_scope(subject)]
    outcomes = [
        outcome
        for outcome in map(context.plan_group, in_scope)
        if outcome.group.decisions or outcome.group.status != "unmanaged"
    ]
    groups = [outcome.group for outcome in outcomes]
    hostnames = {subject.server_id: subject.hostname for subject in subjects}
    problems = [problem for problem in listing.problems if context.concerns(problem, hostnames)]
    if scope is not None:
        problems.extend(_scope_warnings(scope, listing, subjects, in_scope))
    for outcome in outcomes:
        problems.extend(outcome.problems)
    empty = _empty(listing)
    if empty is not None:
        problems.append(empty)
    if max_deletions_per_run is not None and not allow_large_deletions:
        groups, run_problem = _apply_run_cap(groups, max_deletions_per_run, cap_hint)
        if run_problem is not None:
            problems.append(run_problem)
    return Plan(
        generated_at=generated_at,
        now=now,
        dry_run=dry_run,
        groups=tuple(groups),
        problems=tuple(problems),
        scope=scope,
    )


def newest_unprotected_before(decisions: Iterable[Decision], now: datetime) -> Backup | None:
    """The newest unprotected backup made before `now`: what the stale guard judges a group by
    (a backup dated after `now` is no sign that backups still happen). `decisions` are newest
    first, as the engine returns them."""
    for decision in decisions:
        if decision.backup.created_at < now and not decision.protected:
            return decision.backup
    return None


def newest_stale_backup(
    decisions: Sequence[Decision], policy: Policy, now: datetime, zone: tzinfo | None
) -> Backup | None:
    """The stale guard's test: the newest unprotected backup made before `now`, when it is older
    than `now - stale_after`; None when the group is not stale or the guard is off."""
    newest = newest_unprotected_before(decisions, now)
    if newest is None or not is_stale(newest.created_at, policy.stale_after, now, zone):
        return None
    return newest


def is_stale(
    newest: datetime, stale_after: Duration | None, now: datetime, zone: tzinfo | None
) -> bool:
    """Whether a group whose newest unprotected backup made before `now` was made at `newest`
    is stale: older than `now - stale_after` (never, when stale_after is None)."""
    if stale_after is None:
        return False
    cutoff = subtract(now, stale_after, zone)
    return cutoff is not None and newest < cutoff


@dataclass(frozen=True, slots=True)
class _Subject:
    """One server's backups of one resource, before anything is decided."""

    resource: Resource
    server_id: int
    hostname: str | None
    server: Server | None  # None when the servers listing lacks it (or there is none)
    backups: list[Backup]

    def __str__(self) -> str:
        name = f" ({self.hostname})" if self.hostname else ""
        return f"server {self.server_id}{name}, {self.resource}"


@dataclass(frozen=True, slots=True)
class _HostnameNeeded:
    """Which policy applies cannot be told: `by` matches by hostname and the server has none.
    `candidates` are the policies that could apply, `by` first."""

    by: Policy
    candidates: tuple[Policy, ...]


@dataclass(frozen=True, slots=True)
class _Outcome:
    group: Group
    problems: list[Problem] = field(default_factory=list)


def _subjects(listing: Listing, servers: dict[int, Server] | None) -> Iterable[_Subject]:
    """Groups in report order: backups before snapshots, then by server id."""
    grouped: dict[Resource, dict[int, list[Backup]]] = {"backups": {}, "snapshots": {}}
    for backup in listing.backups:
        by_server = grouped[backup.resource]
        found = by_server.get(backup.server_id)
        if found is None:
            by_server[backup.server_id] = [backup]
        else:
            found.append(backup)
    if servers is not None:
        # A listing that failed returned nothing: its servers still get a group, so the plan
        # shows them as incomplete instead of silently leaving them out.
        for resource in listing.incomplete_resources:
            for server_id in servers:
                grouped[resource].setdefault(server_id, [])
    for resource, by_server in grouped.items():  # backups first, then snapshots
        for server_id in sorted(by_server):
            backups = by_server[server_id]
            server = servers.get(server_id) if servers is not None else None
            yield _Subject(resource, server_id, _hostname(server, backups), server, backups)


def _hostname(server: Server | None, backups: list[Backup]) -> str | None:
    """The servers listing's hostname, else the one the newest backup carries (a renamed
    server's backups may disagree)."""
    if server is not None and server.hostname is not None:
        return server.hostname
    names = {backup.server_hostname for backup in backups} - {None}
    if len(names) <= 1:
        return names.pop() if names else None
    named = [backup for backup in backups if backup.server_hostname is not None]
    return max(named, key=Backup.sort_key).server_hostname


@dataclass(frozen=True, slots=True)
class _Context:
    """What every group is judged against: the listing's trust, the policies, the clock."""

    policies: Sequence[Policy]
    servers: dict[int, Server] | None
    now: datetime
    zone: tzinfo | None
    allow_large_deletions: bool
    two_phase: TwoPhase | None
    scope: Scope | None
    listing_faults: dict[Resource, list[str]]  # why a whole resource cannot be pruned
    server_errors: dict[tuple[Resource, int], list[Problem]]
    revise: Revise | None
    cap_hint: str

    @classmethod
    def of(
        cls,
        listing: Listing,
        policies: Sequence[Policy],
        *,
        now: datetime,
        zone: tzinfo | None,
        allow_large_deletions: bool,
        two_phase: TwoPhase | None = None,
        scope: Scope | None = None,
        revise: Revise | None = None,
        cap_hint: str = LARGE_DELETIONS_HINT,
    ) -> _Context:
        servers = None if listing.servers is None else {s.id: s for s in listing.servers}
        faults, server_errors = _listing_faults(listing)
        return cls(
            policies,
            servers,
            now,
            zone,
            allow_large_deletions,
            two_phase,
            scope,
            faults,
            server_errors,
            revise,
            cap_hint,
        )

    def in_scope(self, subject: _Subject) -> bool:
        """The group is one the pass decides: all are, unless the pass is scoped."""
        scope = self.scope
        if scope is None:
            return True
        if not scope.selects_server(subject.server_id, subject.hostname):
            return False
        if scope.policy is None:
            return True
        policy = self._policy_for(subject)
        if isinstance(policy, _HostnameNeeded):  # may be the policy's: fail closed, show it
            return any(candidate.name == scope.policy for candidate in policy.candidates)
        return policy is not None and policy.name == scope.policy

    def concerns(self, problem: Problem, hostnames: Mapping[int, str | None]) -> bool:
        """A listing problem concerns the pass: it names no server, or one in scope."""
        if self.scope is None or problem.server_id is None:
            return True
        server = self.servers.get(problem.server_id) if self.servers is not None else None
        hostname = hostnames.get(problem.server_id) or (server.hostname if server else None)
        if problem.resource is None:
            return self.scope.selects_server(problem.server_id, hostname)
        return self.in_scope(_Subject(problem.resource, problem.server_id, hostname, server, []))

    def plan_group(self, subject: _Subject) -> _Outcome:
        policy = self._policy_for(subject)
        if policy is None:
            return _unmanaged(subject)
        if isinstance(policy, _HostnameNeeded):
            if self._is_orphan(subject) and all(p.orphans == "keep" for p in policy.candidates):
                # Whichever policy applies keeps this orphan's backups: nothing to tell apart.
                why = "its hostname is unknown, and every policy that could apply has orphans: keep"
                return _orphan(subject, None, why)
            return _hostname_unknown(subject, policy.by)
        incomplete = self._incomplete(subject, policy)
        if incomplete is not None:
            return incomplete
        outcome = self._decide(subject, policy)
        future = _dated_after(subject, outcome.group.decisions, self.now)
        if future is None or outcome.group.status == "orphan":
            return outcome
        return _Outcome(outcome.group, [*outcome.problems, future])

    def _decide(self, subject: _Subject, policy: Policy) -> _Outcome:
        """The policy's decisions for a group it may judge, and the guards that hold them back."""
        if subject.server is not None and subject.server.locked:
            decisions = self._policy_decisions(subject, policy)
            detail = "the server is locked (an operation is running on it): not pruned this pass"
            return _skipped(subject, policy, decisions, "locked", detail)
        orphan = self._is_orphan(subject)
        if orphan and policy.orphans == "keep":
            return _orphan(subject, policy.name, f"policy {policy.name!r} has orphans: keep")
        decisions = self._policy_decisions(subject, policy)
        notes = [_orphan_note(subject)] if orphan else []
        stale = self._stale(subject, policy, decisions)
        if stale is not None:
            return _skipped(subject, policy, decisions, "stale", stale, notes=notes)
        if self.two_phase is not None:
            decisions = self.two_phase.hold(decisions, self.now)
        too_many = self._too_many(policy, decisions)
        if too_many is not None:
            return _skipped(
                subject, policy, decisions, "max_delete_fraction", too_many, notes=notes
            )
        return _Outcome(_group(subject, policy.name, "ok", decisions, messages=notes))

    def _policy_decisions(self, subject: _Subject, policy: Policy) -> tuple[Decision, ...]:
        decisions = decide(subject.backups, policy, self.now, self.zone)
        return decisions if self.revise is None else self.revise(decisions, policy)

    def _is_orphan(self, subject: _Subject) -> bool:
        """Its server is gone: missing from a servers listing, or terminated."""
        return self.servers is not None and (subject.server is None or subject.server.is_terminated)

    def _policy_for(self, subject: _Subject) -> Policy | _HostnameNeeded | None:
        """The first policy that matches; without a hostname, the first that would need one
        when it comes before any match (falling through to a later policy could delete what
        the earlier one keeps)."""
        candidates = [p for p in self.policies if p.resource == subject.resource]
        for index, policy in enumerate(candidates):
            if subject.hostname is None and policy.needs_hostname(subject.server_id):
                return _HostnameNeeded(policy, _could_apply(candidates[index:], subject.server_id))
            if policy.matches(subject.server_id, subject.hostname):
                return policy
        return None

    def _incomplete(self, subject: _Subject, policy: Policy) -> _Outcome | None:
        """Fail closed: the group is not pruned if anything it depends on is not trustworthy."""
        reasons = list(self.listing_faults.get(subject.resource, ()))
        needed = policy.needed_fields()
        errors = [
            problem.message
            for problem in self.server_errors.get((subject.resource, subject.server_id), ())
            if problem.field is None or problem.field in needed
        ]
        reasons.extend(errors[:_SHOWN_IDS])
        if len(errors) > _SHOWN_IDS:
            reasons.append(f"and {len(errors) - _SHOWN_IDS} more listing errors for this server")
        problems = []
        missing = _missing_fields(subject.backups, policy)
        if missing:
            problems.append(
                Problem(
                    level="error",
                    message=f"{subject}: {missing}: not pruned",
                    resource=subject.resource,
                    server_id=subject.server_id,
                )
            )
            reasons.append(missing)
        if not reasons:
            return None
        decisions = _all_keep(subject.backups, SKIPPED_INCOMPLETE)
        group = _group(subject, policy.name, "incomplete", decisions, messages=reasons)
        return _Outcome(group, problems)

    def _stale(
        self, subject: _Subject, policy: Policy, decisions: Sequence[Decision]
    ) -> str | None:
        """Why the group is stale, or None: its newest unprotected backup before now is too old."""
        newest = newest_stale_backup(decisions, policy, self.now, self.zone)
        if newest is None:
            return None
        return (
            f"its newest backup (id {newest.id}, {newest.created_at.isoformat()}) is older than "
            f"stale_after {policy.stale_after} ({_governing(policy, 'stale_after')}): "
            "its backups have stopped; keeping its history, not pruned"
        )

    def _too_many(self, policy: Policy, decisions: Sequence[Decision]) -> str | None:
        """Why the fraction cap trips, or None."""
        if self.allow_large_deletions:
            return None
        deleted = unprotected = 0
        for decision in decisions:
            if decision.action == "delete":
                deleted += 1
                unprotected += 1
            elif not decision.protected:
                unprotected += 1
        if not deleted:
            return None
        fraction = Decimal(repr(policy.max_delete_fraction))  # exact: 0.29 * 100 is 29, not 28.99…
        if deleted <= fraction * unprotected:
            return None
        number, noun = _count(unprotected, policy.resource).split(" ")
        return (
            f"the plan would delete {deleted} of {number} unprotected {noun} "
            f"({deleted / unprotected:.0%}), more than max_delete_fraction "
            f"{policy.max_delete_fraction} ({_governing(policy, 'max_delete_fraction')}): "
            f"not pruned; {self.cap_hint}"
        )


def _scope_warnings(
    scope: Scope, listing: Listing, subjects: Sequence[_Subject], in_scope: Sequence[_Subject]
) -> Iterable[Problem]:
    """A server given that no listed server answers to, or a policy that none in scope has:
    most likely a typo, which must not read as "nothing to do"."""
    listed = [(server.id, server.hostname) for server in listing.servers or ()]
    listed.extend((subject.server_id, subject.hostname) for subject in subjects)
    for pattern in scope.unmatched(listed):
        yield Problem(
            level="warning",
            message=f"--server {pattern} matches no listed server (by id or hostname): nothing "
            "of it was planned; check the id or the hostname glob",
        )
    if scope.policy is not None and not in_scope:
        among = f"the servers in scope ({Scope(scope.servers)})" if scope.servers else "the servers"
        yield Problem(
            level="warning",
            message=f"--policy {scope.policy} matches none of {among}: nothing was planned",
        )


def _listing_faults(
    listing: Listing,
) -> tuple[dict[Resource, list[str]], dict[tuple[Resource, int], list[Problem]]]:
    """Reasons that block a whole resource, and the error problems of single servers."""
    faults: dict[Resource, list[str]] = {"backups": [], "snapshots": []}
    server_errors: dict[tuple[Resource, int], list[Problem]] = {}
    unplaced: dict[Resource | None, int] = {}
    for problem in listing.problems:
        if problem.level != "error":
            continue
        if problem.resource is None or problem.server_id is None:
            unplaced[problem.resource] = unplaced.get(problem.resource, 0) + 1
        else:
            server_errors.setdefault((problem.resource, problem.server_id), []).append(problem)
    for resource, reasons in faults.items():
        if resource in listing.incomplete_resources:
            reasons.append(f"the {resource} listing could not be read completely")
        if not listing.servers_complete:
            reasons.append(
                "the servers listing could not be read completely: nothing is deleted this pass"
            )
        elif unplaced.get(None):
            reasons.append(
                f"{unplaced[None]} listing error(s) concern no single resource: "
                "nothing is deleted this pass"
            )
        if unplaced.get(resource):
            reasons.append(
                f"{unplaced[resource]} {resource} item(s) cannot be attributed to a server, "
                "so any server may be missing some"
            )
    return {resource: reasons for resource, reasons in faults.items() if reasons}, server_errors


def _empty(listing: Listing) -> Problem | None:
    """A warning when a whole listing holds nothing (most likely another account's key)."""
    if listing.backups or listing.incomplete_resources or not listing.servers_complete:
        return None
    what = " or ".join(
        resource for resource in ("backups", "snapshots") if resource in listing.resources
    )
    servers = "" if listing.servers is None else f" ({_servers(len(listing.servers))} listed)"
    return Problem(
        level="warning",
        message=f"the listing holds no {what or 'backups'} at all{servers}: nothing to prune; "
        "if the account has some, check that the API key belongs to it",
    )


def _missing_fields(backups: list[Backup], policy: Policy) -> str | None:
    """Which backups lack a field the policy needs, as a sentence, or None."""
    needs = [
        (name, rule)
        for name, rule, wanted in (
            ("size", "max_total_size", policy.max_total_size is not None),
            ("name", "protect.names", bool(policy.protect_names)),
        )
        if wanted
    ]
    for field_name, rule in needs:
        lacking = sorted(b.id for b in backups if getattr(b, field_name) is None)
        if lacking:
            shown = ", ".join(str(i) for i in lacking[:_SHOWN_IDS])
            more = f" and {len(lacking) - _SHOWN_IDS} more" if len(lacking) > _SHOWN_IDS else ""
            verb = "lacks" if len(lacking) == 1 else "lack"
            return (
                f"{_count(len(lacking), policy.resource)} {verb} {field_name} (ids {shown}{more}), "
                f"which policy {policy.name!r} needs for {rule}"
            )
    return None


def _dated_after(subject: _Subject, decisions: Sequence[Decision], now: datetime) -> Problem | None:
    """A warning naming the backups dated after `now`, or None. They take the newest slots
    (keep_last, min_keep), as in restic: no one should learn that by surprise.

    `decisions` are the group's, newest first as the engine orders them (the guards keep that
    order): when the newest is not after `now`, none is, without comparing every backup's time
    with `now` (across offsets, a comparison costs a conversion).
    """
    if not decisions or decisions[0].backup.created_at <= now:
        return None
    future = sorted(
        (backup for backup in subject.backups if backup.created_at > now),
        key=Backup.sort_key,
        reverse=True,
    )
    if not future:
        return None
    one = len(future) == 1
    ids = ", ".join(str(backup.id) for backup in future[:_SHOWN_IDS])
    more = f" and {len(future) - _SHOWN_IDS} more" if len(future) > _SHOWN_IDS else ""
    return _warning(
        subject,
        f"{_count(len(future), subject.resource)} {'is' if one else 'are'} dated after now "
        f"({now.isoformat()}), {'' if one else 'the latest '}{future[0].created_at.isoformat()} "
        f"({'id' if one else 'ids'} {ids}{more}): {'it counts' if one else 'they count'} as the "
        f"newest for keep_last and min_keep, as in restic, so older {subject.resource} may be "
        "deleted sooner than expected; check the clock of whatever dates them",
    )


def _unmanaged(subject: _Subject) -> _Outcome:
    decisions = _all_keep(subject.backups, UNMANAGED)
    detail = f"no policy matches it: its {_count(len(decisions), subject.resource)} are kept"
    group = _group(subject, None, "unmanaged", decisions, messages=[detail])
    return _Outcome(group, [_warning(subject, detail)])


def _hostname_unknown(subject: _Subject, by: Policy) -> _Outcome:
    detail = (
        "its hostname is unknown (null or absent in the servers listing and in its "
        f"{subject.resource}) and policy {by.name!r} matches by hostname "
        f"({', '.join(by.hostnames or ())}) before any policy that matches it without one: "
        "which policy applies cannot be told, so it is not pruned; give the server a hostname, "
        f"or match it by server_ids in a policy before {by.name!r}"
    )
    decisions = _all_keep(subject.backups, SKIPPED_INCOMPLETE)
    group = _group(subject, None, "incomplete", decisions, messages=[detail])
    problem = Problem(
        level="error",
        message=f"{subject}: {detail}",
        resource=subject.resource,
        server_id=subject.server_id,
    )
    return _Outcome(group, [problem])


def _could_apply(policies: Sequence[Policy], server_id: int) -> tuple[Policy, ...]:
    """Of `policies` (in order), those that may apply to a server of unknown hostname: each
    that matches by hostname, up to and with the first that matches it without one."""
    could: list[Policy] = []
    for policy in policies:
        if policy.needs_hostname(server_id):
            could.append(policy)
        elif policy.matches(server_id, None):
            could.append(policy)
            break
    return tuple(could)


def _orphan(subject: _Subject, policy: str | None, why: str) -> _Outcome:
    decisions = _all_keep(subject.backups, ORPHAN)
    detail = (
        f"{_orphan_note(subject)}: its {_count(len(decisions), subject.resource)} are kept ({why})"
    )
    group = _group(subject, policy, "orphan", decisions, messages=[detail])
    return _Outcome(group, [_warning(subject, detail)])


def _orphan_note(subject: _Subject) -> str:
    if subject.server is None:
        return "the server is not in the servers listing (terminated or deleted)"
    return f"the server's status is {subject.server.status}"


def _skipped(
    subject: _Subject,
    policy: Policy,
    decisions: Sequence[Decision],
    guard: Guard,
    detail: str,
    *,
    notes: Sequence[str] = (),
) -> _Outcome:
    kept, blocked = _skip(decisions, guard)
    if blocked and guard != "max_delete_fraction":  # whose message has the numbers already
        detail = f"{detail} ({_count(blocked, subject.resource)} the policy would delete are kept)"
    group = _group(
        subject,
        policy.name,
        "skipped",
        kept,
        messages=[*notes, detail],
        guard=guard,
        blocked=blocked,
    )
    return _Outcome(group, [_warning(subject, detail, guard=guard)])


def _skip(decisions: Sequence[Decision], guard: Guard) -> tuple[tuple[Decision, ...], int]:
    """Every deletion becomes a keep that names the guard; returns how many were blocked."""
    reasons = (skipped(guard),)
    blocked = 0
    kept = []
    for decision in decisions:
        if decision.action == "delete":
            blocked += 1
            kept.append(Decision(decision.backup, "keep", reasons))
        else:
            kept.append(decision)
    return tuple(kept), blocked


def _apply_run_cap(groups: list[Group], cap: int, hint: str) -> tuple[list[Group], Problem | None]:
    """Guard 6: too many deletions across all groups means none at all this pass."""
    total = sum(group.deleted for group in groups)
    if total <= cap:
        return groups, None
    detail = (
        f"the pass would delete {total} backups and snapshots across all servers, more than "
        f"max_deletions_per_run {cap} (safety.max_deletions_per_run): nothing is deleted "
        f"this pass; {hint}"
    )
    capped = []
    servers = 0
    for group in groups:
        if not group.deleted:
            capped.append(group)
            continue
        servers += 1
        decisions, blocked = _skip(group.decisions, "max_deletions_per_run")
        capped.append(
            replace(
                group,
                status="skipped",
                guard="max_deletions_per_run",
                decisions=decisions,
                blocked_deletions=blocked,
                messages=(*group.messages, detail),
            )
        )
    problem = Problem(
        level="warning",
        message=f"{detail} ({servers} groups held back)",
        guard="max_deletions_per_run",
    )
    return capped, problem


def _group(
    subject: _Subject,
    policy: str | None,
    status: GroupStatus,
    decisions: tuple[Decision, ...],
    *,
    messages: Sequence[str],
    guard: Guard | None = None,
    blocked: int = 0,
) -> Group:
    return Group(
        resource=subject.resource,
        server_id=subject.server_id,
        server_hostname=subject.hostname,
        policy=policy,
        status=status,
        decisions=decisions,
        guard=guard,
        messages=tuple(messages),
        blocked_deletions=blocked,
    )


def _all_keep(backups: list[Backup], reason: Reason) -> tuple[Decision, ...]:
    ordered = sorted(backups, key=Backup.sort_key, reverse=True)
    reasons = (reason,)
    return tuple(Decision(backup, "keep", reasons) for backup in ordered)


def _warning(subject: _Subject, detail: str, *, guard: Guard | None = None) -> Problem:
    return Problem(
        level="warning",
        message=f"{subject}: {detail}",
        resource=subject.resource,
        server_id=subject.server_id,
        guard=guard,
    )


def _governing(policy: Policy, key: str) -> str:
    return f"policy {policy.name!r} or safety.{key}"


def _servers(count: int) -> str:
    return f"{count} server{'s' if count != 1 else ''}"


def _count(count: int, resource: Resource) -> str:
    """`3 backups`, `1 snapshot`."""
    return f"{count} {resource if count != 1 else resource.removesuffix('s')}"
